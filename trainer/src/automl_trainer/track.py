"""Stage 5: the MLflow run (one per job), its params/metrics/artifacts, and how it ends on every path."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from importlib.metadata import version
from typing import Any

from automl_trainer.spec import JobSpec


def pins(*distributions: str) -> list[str]:
    """Exact pip requirements of a logged model, from what this environment runs (no slow inference)."""
    return [f"{name}=={version(name)}" for name in distributions]


class Run:
    """The job's MLflow run. end() is idempotent and safe to call from the SIGTERM thread."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self._client: Any = None
        self._ended = threading.Lock()
        self._done = False

    def start(self, spec: JobSpec) -> str:
        import mlflow
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient()  # made now, so ending the run later is one request and no import
        mlflow.set_experiment(spec.mlflow_experiment_name)
        tags = {
            "automl.job_id": spec.job_id,
            "automl.algorithm": spec.algorithm,
            "automl.problem_type": spec.problem_type,
            "automl.preset": spec.preset,
            "automl.source_table": spec.source_table,
        }
        if spec.owner:
            tags["automl.owner"] = spec.owner
        if spec.domain:
            tags["automl.domain"] = spec.domain
        run = mlflow.start_run(run_name=f"{spec.name}-{spec.job_id[:8]}", tags=tags)
        self.run_id = run.info.run_id
        return self.run_id

    def end(self, status: str) -> None:
        """FINISHED, FAILED or KILLED; only the first call counts."""
        with self._ended:
            if self._done or self.run_id is None:
                return
            self._done = True
        import mlflow

        active = mlflow.active_run()  # thread-local: the main thread's run, never the SIGTERM thread's
        if active is not None and active.info.run_id == self.run_id:
            # Pops the fluent run too: otherwise MLflow's atexit hook ends it again, as FINISHED.
            mlflow.end_run(status=status)
        else:
            self._client.set_terminated(self.run_id, status=status)

    def end_within(self, status: str, seconds: float) -> bool:
        """end() bounded in time (the client retries for minutes when the server is gone). True if it ended.

        The status is set from a helper thread; then, on the main thread, the fluent run is ended with the same
        status, or MLflow's atexit hook would end it again as FINISHED. When the server did not answer in
        time the caller must leave with os._exit (that hook would hang on the same dead server).
        """
        outcome: list[bool] = []

        def terminate() -> None:
            # The process is exiting on another cause, which is what it reports.
            with contextlib.suppress(Exception):
                self.end(status)
                outcome.append(True)

        worker = threading.Thread(target=terminate, daemon=True)
        worker.start()
        worker.join(seconds)
        if not outcome:
            return False
        if threading.current_thread() is threading.main_thread():
            import mlflow

            active = mlflow.active_run()
            if active is not None and active.info.run_id == self.run_id:
                with contextlib.suppress(Exception):
                    mlflow.end_run(status=status)
        return True


def log_json(name: str, payload: Any) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, default=str)
        mlflow.log_artifact(path)


def log_params(params: dict[str, Any]) -> None:
    import mlflow

    clean = {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in params.items()}
    mlflow.log_params({k: str(v)[:6000] for k, v in clean.items()})


def log_metrics(metrics: dict[str, float]) -> None:
    import math

    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})


def tag_version(name: str, model_version: str, job_id: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient().set_model_version_tag(name, model_version, "automl.job_id", job_id)


def set_tag(key: str, value: str) -> None:
    import mlflow

    mlflow.set_tag(key, value)

"""Stage 5: the MLflow run (one per job), its params/metrics/artifacts, and how it ends on every path."""

from __future__ import annotations

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
        self._ended = threading.Lock()
        self._done = False

    def start(self, spec: JobSpec) -> str:
        import mlflow

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
        from mlflow.tracking import MlflowClient

        MlflowClient().set_terminated(self.run_id, status=status)

    def end_within(self, status: str, seconds: float) -> bool:
        """end() bounded in time (the client retries for minutes when the server is gone)."""
        worker = threading.Thread(target=self._end_quietly, args=(status,), daemon=True)
        worker.start()
        worker.join(seconds)
        return not worker.is_alive()

    def _end_quietly(self, status: str) -> None:
        try:
            self.end(status)
        except Exception:  # noqa: S110  the process is exiting on another error; that one is reported
            pass


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

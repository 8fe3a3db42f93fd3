"""The runtime every AutoML training job's Airflow file shares (callbacks, trainer process, Connections, log relay).

Written once per version into the DAG folder by the AutoML Training service, as
automl_runtime_<hash of this text>.py, and listed in the folder's .airflowignore so
the dag-processor never parses it as a job; each job's file imports the version it
was rendered with, so a newer version never changes a job already deployed. Do not
edit: a changed file would change the jobs that import it.

The job's own values arrive as arguments of TrainingJob (its file's JOB_SPEC and
constants); no secret is in either file: the callback PSK is read at run time from
an Airflow Variable, the trainer's source database URL and MLflow credentials from
Airflow Connections.

The trainer contract (both paths): the spec arrives as a file named by
AUTOML_JOB_SPEC_PATH (command path) or gzip+base64 in AUTOML_JOB_SPEC_GZ_B64
(container path); the trainer writes its result JSON to AUTOML_RESULT_PATH.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, Variable
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.python import PythonOperator  # type: ignore[no-redef]

__all__ = ["DAG", "TrainingJob"]

# What the trainer gets from the worker's environment; nothing else (not the
# metadata database URL, the Fernet key, nor any other secret of the worker).
# The trainer's own settings pass when the worker sets them: its memory limit
# and thread count are the worker's to choose.
ENV_ALLOWLIST = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "AUTOML_TRAINER_MAX_MEMORY",
    "AUTOML_TRAINER_THREADS",
    "DASK_SCHEDULER_ADDRESS",
    "AUTOML_DASK_FORCE",
)
# A Dask scheduler's default port, for a Connection that names none.
DASK_SCHEDULER_PORT = 8786
# Where KubernetesPodOperator's XCom sidecar reads a pod's result.
CONTAINER_RESULT_PATH = "/airflow/xcom/return.json"
# The training pod's resources by the job's preset: CPU and memory requested (what the scheduler places it by) and a
# memory limit (the trainer reads its cgroup limit and refuses a table whose estimate is over it, before loading);
# no CPU limit, so a pod may use a node's idle cores without being throttled.
POD_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "fast": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
    "balanced": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
    "best_quality": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi"}},
}
# With a pod Secret (TRAINING_POD_SECRET) the trainer's credentials come from it by secretKeyRef, never as a value in
# the pod spec: the keys it must hold (the MLflow credentials may be empty strings for a server without auth).
POD_SECRET_KEYS = ("AUTOML_SOURCE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
# The callbacks fail fast: a wrong PSK or an unreachable service shows within about a minute.
CALLBACK_TIMEOUT_SECONDS = 10
CALLBACK_TASK_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(seconds=30),
    "execution_timeout": timedelta(seconds=60),
}
FAILURE_CALLBACK_ATTEMPTS = 3
# The train task writes back `running` once it holds its pool slot and a worker, before the trainer starts: a service
# briefly unreachable (or answering 5xx) is tried again this many times, RUNNING_CALLBACK_DELAY_SECONDS apart (then
# twice and three times that); a refusal (4xx: a wrong key, a job that has ended) fails the task at once.
RUNNING_CALLBACK_ATTEMPTS = 4
RUNNING_CALLBACK_DELAY_SECONDS = 5.0
# The train task's execution_timeout is the job's time budget plus this margin (the service renders its own,
# TRAINING_TIMEOUT_MARGIN_MINUTES): the trainer stops its search at the budget by itself, and the margin covers
# loading the table before the budget starts and the final fit, registration and report after it. A trainer
# still running at the timeout is hung: Airflow fails the task ("Timeout") and the trainer is stopped.
DEFAULT_TIMEOUT_MARGIN_MINUTES = 30
# The service's writeback limits on the result summary: MAX_WRITEBACK_METRICS and WRITEBACK_NAME_MAX_LENGTH of
# its request DTO (a unit test holds them equal).
MAX_METRICS = 100
MAX_NAME_LENGTH = 250

log = logging.getLogger("automl_training")


class WritebackRefused(RuntimeError):
    """The service answered the writeback with an HTTP error."""

    def __init__(self, status: str, code: int, text: str) -> None:
        super().__init__(f"writeback '{status}' refused with HTTP {code}: {text}")
        self.code = code


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:limit] if limit else text


def _metrics(metrics: Any) -> dict[str, float] | None:
    """The result's metrics the service accepts: finite numbers under names of 1..MAX_NAME_LENGTH characters."""
    if not isinstance(metrics, dict):
        return None
    kept: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if 0 < len(str(name)) <= MAX_NAME_LENGTH and len(kept) < MAX_METRICS:
            kept[str(name)] = value
    return kept or None


def _connection(conn_id: str) -> Any:
    """An Airflow Connection, read at run time on the worker (never while parsing a DAG file)."""
    try:  # Airflow 3
        from airflow.sdk import Connection

        get = Connection.get
    except (ImportError, AttributeError):  # Airflow 2
        from airflow.hooks.base import BaseHook  # type: ignore[attr-defined]

        get = BaseHook.get_connection
    try:
        return get(conn_id)
    except Exception as error:
        raise RuntimeError(
            f"Airflow Connection '{conn_id}' could not be read ({type(error).__name__}); create it, e.g. "
            f"`airflow connections add {conn_id} --conn-uri ...`"
        ) from None


def _mask(value: str) -> None:
    """Registers `value` with Airflow's log masker, so no task log line shows it (the trainer's relayed output
    included)."""
    for module in ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker", "airflow.utils.log.secrets_masker"):
        try:
            mask_secret = importlib.import_module(module).mask_secret
        except (ImportError, AttributeError):
            continue
        mask_secret(value)
        return


def _die_with_parent() -> Callable[[], None] | None:
    """preexec_fn: on Linux the trainer is SIGKILLed if this task process dies first (say Airflow SIGKILLs it)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_parent_death_signal


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signals the trainer's process group: the trainer and anything it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


class _SignalsHeld:
    """Holds Airflow's kill (SIGTERM) and timeout (SIGALRM) handling while a block runs, then runs it.

    Starting the trainer and registering it for on_kill, and stopping it, must not be cut
    short by an exception raised from a signal handler, or the trainer would be orphaned.
    Python runs signal handlers in the main thread only, which is where Airflow calls the
    task; elsewhere nothing is held.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGALRM)

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.held: list[tuple[int, Any]] = []

    def _hold(self, signum: int, frame: Any) -> None:
        self.held.append((signum, frame))

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._hold)

    def __exit__(self, *_: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        for signum, frame in self.held:
            handler = self.previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def _relay(stream: IO[bytes], tail: collections.deque[str] | None) -> None:
    """Copies one of the trainer's output streams into the task log, keeping the last lines in `tail`."""
    with stream:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if tail is not None and line.strip():
                tail.append(line)
            log.info("trainer: %s", line)


def _failure(code: int, tail: collections.deque[str]) -> str:
    """The failed writeback's cause: the trainer's last stderr line, and how it ended."""
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    cause = tail[-1] if tail else "the trainer wrote nothing to stderr"
    return f"{cause} (trainer {how})"


def _read_result(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except FileNotFoundError:
        raise RuntimeError("the trainer exited 0 without writing its result to AUTOML_RESULT_PATH") from None
    except ValueError as error:
        raise RuntimeError(f"the trainer's result is not valid JSON: {error}") from None
    if not isinstance(result, dict):
        raise RuntimeError("the trainer's result is not a JSON object")
    return result


def with_env(env_vars: Any, extra: dict[str, str]) -> Any:
    """KubernetesPodOperator's env_vars (a dict, or V1EnvVars once converted) plus `extra`."""
    if isinstance(env_vars, dict):
        return {**env_vars, **extra}
    from kubernetes.client import models as k8s

    return [*(env_vars or []), *(k8s.V1EnvVar(name=name, value=value) for name, value in extra.items())]


class TrainingOperator(PythonOperator):
    """Runs TrainingJob.train; on a kill (cancel, timeout: Airflow's SIGTERM handling) the trainer is stopped, never
    orphaned."""

    def __init__(self, *, job: TrainingJob, **kwargs: Any) -> None:
        super().__init__(python_callable=job.train, **kwargs)

    def on_kill(self) -> None:
        # The job whose train() runs: PythonOperator copies python_callable shallowly, so every copy of this task
        # shares it.
        self.python_callable.__self__.request_stop()  # type: ignore[attr-defined]


class TrainingJob:
    """One job's callbacks, trainer process and tasks, from the values its DAG file holds."""

    # After SIGTERM, the trainer has this long to end its MLflow run before SIGKILL.
    trainer_stop_grace_seconds: float = 15

    def __init__(
        self,
        *,
        job_spec: dict[str, Any],
        callback_url: str,
        psk_variable: str,
        source_conn_id: str,
        mlflow_conn_id: str,
        training_image: str | None,
        training_command: list[str],
        job_spec_gz_b64: str | None,
        training_pool: str | None = None,
        training_queue: str | None = None,
        timeout_margin_minutes: int = DEFAULT_TIMEOUT_MARGIN_MINUTES,
        pod: dict[str, str | None] | None = None,
        dask_conn_id: str | None = None,
    ) -> None:
        self.job_spec = job_spec
        self.callback_url = callback_url
        self.psk_variable = psk_variable
        self.source_conn_id = source_conn_id
        self.mlflow_conn_id = mlflow_conn_id
        # Optional: a Connection naming the Dask scheduler the trainer may train a table too big for one worker on.
        self.dask_conn_id = dask_conn_id
        self.training_image = training_image
        self.training_command = training_command
        self.job_spec_gz_b64 = job_spec_gz_b64
        self.time_budget = timedelta(minutes=job_spec["tuning"]["time_budget_minutes"])
        # Where the train task runs: an Airflow pool caps trainings across every job's DAG (None: Airflow's
        # default_pool), a queue routes it to the workers serving it (None: [operators] default_queue).
        self.training_pool = training_pool
        self.training_queue = training_queue
        self.timeout_margin = timedelta(minutes=timeout_margin_minutes)
        # The container path's pod: its namespace, service account and the Secret holding the trainer's credentials
        # (each None: the provider's default; no Secret: the Connections' values, set when the task runs).
        self.pod: dict[str, str | None] = pod or {}
        # The trainer this task process runs, for on_kill (Airflow's SIGTERM handling calls it).
        self.running: dict[str, Any] = {}

    # The DAG and its tasks.

    def dag_arguments(self) -> dict[str, Any]:
        """What every training DAG shares: no catch-up, one run at a time, the failure callback (the start date is
        the job's own, in its file: an auto-triggered DAG's one run has it as its logical date and in its run id)."""
        return {
            "description": self.job_spec["description"],
            "catchup": False,
            "is_paused_upon_creation": False,
            "max_active_runs": 1,
            "tags": ["automl-training"],
            "default_args": {"retries": 0, "on_failure_callback": self.report_failure},
        }

    def report_complete_task(self) -> Any:
        return PythonOperator(task_id="report_complete", python_callable=self.report_complete, **CALLBACK_TASK_ARGS)

    def train_task_arguments(self) -> dict[str, Any]:
        """What the train task is given on both paths: its timeout (the budget plus the margin), pool and queue."""
        arguments: dict[str, Any] = {"execution_timeout": self.time_budget + self.timeout_margin}
        if self.training_pool:
            arguments["pool"] = self.training_pool
            arguments["pool_slots"] = 1
        if self.training_queue:
            arguments["queue"] = self.training_queue
        return arguments

    def train_task(self) -> Any:
        """The trainer: TRAINING_IMAGE in a pod (KubernetesPodOperator), else TRAINING_COMMAND on the worker."""
        if not self.training_image:
            return TrainingOperator(task_id="train", job=self, **self.train_task_arguments())
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        job = self
        pod_secret = self.pod.get("secret")
        trainer_secrets = self.trainer_secrets

        class TrainingPodOperator(KubernetesPodOperator):
            """The trainer image; the task writes back `running` before it builds the pod; without a pod Secret the
            trainer's credentials come from the Connections when the task runs, after templating."""

            def execute(self, context: Any) -> Any:
                job.report_running()
                current: Any = getattr(self, "env_vars", None)
                self.env_vars = with_env(current, {**job.dask_env(), **({} if pod_secret else trainer_secrets())})
                return super().execute(context)

        return TrainingPodOperator(
            task_id="train",
            name="automl-train",
            image=self.training_image,
            env_vars=self.container_spec_env(),
            secrets=self.pod_secrets(),
            container_resources=self.pod_resources(),
            namespace=self.pod.get("namespace"),
            service_account_name=self.pod.get("service_account"),
            do_xcom_push=True,
            on_finish_action="delete_pod",
            **self.train_task_arguments(),
        )

    def pod_resources(self) -> Any:
        """The pod's requests and limits, by the job's preset (POD_RESOURCES)."""
        from kubernetes.client import models as k8s

        resources = POD_RESOURCES.get(self.job_spec.get("preset", ""), POD_RESOURCES["balanced"])
        return k8s.V1ResourceRequirements(requests=resources["requests"], limits=resources["limits"])

    def pod_secrets(self) -> list[Any]:
        """secretKeyRef environment variables from the pod Secret (TRAINING_POD_SECRET); none without one."""
        name = self.pod.get("secret")
        if not name:
            return []
        from airflow.providers.cncf.kubernetes.secret import Secret

        return [Secret("env", key, name, key) for key in POD_SECRET_KEYS]

    # Callbacks.

    def _writeback(self, status: str, **fields: Any) -> None:
        """PUT the job's status to the service; fields with a None value are left out."""
        body = {"status": status}
        body.update({key: value for key, value in fields.items() if value is not None})
        request = urllib.request.Request(  # noqa: S310 (see below)
            self.callback_url,
            data=json.dumps(body, allow_nan=False).encode("utf-8"),
            method="PUT",
            headers={"Content-Type": "application/json", "Authorization-PSK": Variable.get(self.psk_variable)},
        )
        try:
            # callback_url is the service's own http(s) URL, rendered by the service.
            with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT_SECONDS) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as error:
            text = error.read(2000).decode("utf-8", "replace")
            raise WritebackRefused(status, error.code, text) from None

    def _writeback_retried(self, status: str, attempts: int, delay_seconds: float, **fields: Any) -> None:
        """_writeback, tried again after a transport failure or a 5xx (delay, then twice and three times that); a 4xx
        refusal is raised at once."""
        for attempt in range(attempts):
            try:
                self._writeback(status, **fields)
                return
            except WritebackRefused as refused:
                if refused.code < 500 or attempt == attempts - 1:
                    raise
            except OSError:
                if attempt == attempts - 1:
                    raise
            time.sleep(delay_seconds * (attempt + 1))

    def report_running(self, **_: Any) -> None:
        """`running`, from the train task once it has started: a job whose task waits for a pool slot or a worker
        stays `queued`."""
        self._writeback_retried("running", RUNNING_CALLBACK_ATTEMPTS, RUNNING_CALLBACK_DELAY_SECONDS)

    def report_complete(self, ti: Any, **_: Any) -> None:
        result = ti.xcom_pull(task_ids="train") or {}
        self._writeback(
            "complete",
            mlflow_run_id=_text(result.get("mlflow_run_id")),
            registered_model_name=_text(result.get("registered_model_name")) or self.job_spec["registered_model_name"],
            model_version=_text(result.get("model_version"), MAX_NAME_LENGTH),
            objective=_text(result.get("objective"), MAX_NAME_LENGTH),
            metrics=_metrics(result.get("metrics")),
        )

    def report_failure(self, context: Any) -> None:
        """on_failure_callback: writes back `failed` with the error; a few short attempts, never long."""
        error = context.get("exception")
        task = context.get("task_instance")
        where = task.task_id if task is not None else "unknown task"
        message = f"{where}: {error if error is not None else 'failed'}"[:4000]
        self._writeback_retried("failed", FAILURE_CALLBACK_ATTEMPTS, 2, error_message=message)

    # Connections.

    def _source_url(self) -> str:
        """SQLAlchemy URL of the source database, from the Connection source_conn_id."""
        url: str = _connection(self.source_conn_id).get_uri()
        # Airflow names PostgreSQL connections "postgres"; SQLAlchemy only knows "postgresql".
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        return url

    def _mlflow_env(self) -> dict[str, str]:
        """MLflow tracking URI and credentials from the Connection mlflow_conn_id.

        The URI is the extra field `tracking_uri` when set, else built from the
        host, the port and the schema (`http` or `https` as the URL scheme; any
        other schema is a path prefix); login and password are the credentials.
        """
        conn = _connection(self.mlflow_conn_id)
        extra = conn.extra_dejson if conn.extra else {}
        uri = extra.get("tracking_uri") if isinstance(extra, dict) else None
        if not uri:
            host = (conn.host or "").rstrip("/")
            if not host:
                raise RuntimeError(
                    f"Airflow Connection '{self.mlflow_conn_id}' has no host for the MLflow tracking server"
                )
            schema = (conn.schema or "").strip("/")
            if "://" in host:
                uri = host
            else:
                if schema in ("http", "https"):
                    scheme = schema
                elif (conn.conn_type or "").lower() == "https":
                    scheme = "https"
                else:
                    scheme = "http"
                uri = f"{scheme}://{host}"
            if conn.port:
                uri += f":{conn.port}"
            if schema and schema not in ("http", "https"):
                uri += "/" + schema
        env = {"MLFLOW_TRACKING_URI": uri}
        if conn.login:
            env["MLFLOW_TRACKING_USERNAME"] = conn.login
        if conn.password:
            env["MLFLOW_TRACKING_PASSWORD"] = conn.password
        return env

    def dask_env(self) -> dict[str, str]:
        """DASK_SCHEDULER_ADDRESS from the optional Connection dask_conn_id: its extra `address` when set, else
        `<schema or tcp>://host:port` (port DASK_SCHEDULER_PORT when none); no Connection (or one that cannot be
        read), none: the trainer then uses the worker's DASK_SCHEDULER_ADDRESS if it has one, else one worker."""
        if not self.dask_conn_id:
            return {}
        try:
            conn = _connection(self.dask_conn_id)
        except RuntimeError as error:
            log.info("no Dask cluster from the Connection: %s", error)
            return {}
        extra = conn.extra_dejson if conn.extra else {}
        address = extra.get("address") if isinstance(extra, dict) else None
        if not address:
            host = (conn.host or "").strip().rstrip("/")
            if not host:
                raise RuntimeError(f"Airflow Connection '{self.dask_conn_id}' has no host for the Dask scheduler")
            scheme = (conn.schema or "tcp").strip().strip("/") or "tcp"
            address = host if "://" in host else f"{scheme}://{host}:{conn.port or DASK_SCHEDULER_PORT}"
        return {"DASK_SCHEDULER_ADDRESS": str(address)}

    def trainer_secrets(self) -> dict[str, str]:
        """What the trainer needs that is secret, read from Airflow Connections at run time."""
        secrets = {"AUTOML_SOURCE_URL": self._source_url(), **self._mlflow_env()}
        for name in ("AUTOML_SOURCE_URL", "MLFLOW_TRACKING_PASSWORD"):
            if secrets.get(name):
                _mask(secrets[name])
        return secrets

    def trainer_environment(self, spec_path: str, result_path: str) -> dict[str, str]:
        """The whole environment of the train subprocess: the allowlist, the Connections' values, the contract's
        paths."""
        env = {name: os.environ[name] for name in ENV_ALLOWLIST if name in os.environ}
        env.update(self.dask_env())
        env.update(self.trainer_secrets())
        env["AUTOML_JOB_SPEC_PATH"] = spec_path
        env["AUTOML_RESULT_PATH"] = result_path
        return env

    def container_spec_env(self) -> dict[str, str]:
        """The pod's contract environment: the spec gzip+base64 (base64 has no Jinja in it) and the XCom result path."""
        if self.job_spec_gz_b64 is None:
            raise RuntimeError("this DAG was rendered without TRAINING_IMAGE: it has no encoded spec for a pod")
        return {"AUTOML_JOB_SPEC_GZ_B64": self.job_spec_gz_b64, "AUTOML_RESULT_PATH": CONTAINER_RESULT_PATH}

    # The trainer process (command path).

    def write_spec(self, workdir: str) -> str:
        """Writes the job spec to a file only this user can read, in `workdir` (itself private: mkdtemp's 0700)."""
        path = os.path.join(workdir, "job_spec.json")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(self.job_spec, handle)
        return path

    def request_stop(self) -> None:
        """Forward a stop to the trainer: SIGTERM now, SIGKILL if it is still running after the grace period."""
        if self.running.get("stop_deadline") is None:
            self.running["stop_deadline"] = time.monotonic() + self.trainer_stop_grace_seconds
        process = self.running.get("process")
        if process is not None and process.returncode is None:
            _signal_group(process, signal.SIGTERM)

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """Ends the trainer's whole process group: SIGTERM, up to the grace period, then SIGKILL; reaps the trainer."""
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=self.trainer_stop_grace_seconds)
        _signal_group(process, signal.SIGKILL)
        process.wait()

    def train(self, **_: Any) -> dict[str, Any]:
        """Writes back `running`, then runs the training command on the spec (command path); returns its result JSON
        (the task's XCom)."""
        running = self.running
        running.clear()
        self.report_running()
        workdir = tempfile.mkdtemp(prefix="automl-train-")
        process: subprocess.Popen[bytes] | None = None
        try:
            spec_path = self.write_spec(workdir)
            result_path = os.path.join(workdir, "result.json")
            env = self.trainer_environment(spec_path, result_path)
            with _SignalsHeld():
                if running.get("stop_deadline") is not None:
                    raise RuntimeError("training stopped: the task was terminated before the trainer started")
                process = subprocess.Popen(
                    self.training_command,
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),
                )
                running["process"] = process
            tail: collections.deque[str] = collections.deque(maxlen=20)
            relays = [
                threading.Thread(target=_relay, args=(process.stdout, None), daemon=True),
                threading.Thread(target=_relay, args=(process.stderr, tail), daemon=True),
            ]
            for relay in relays:
                relay.start()
            while True:
                try:
                    code = process.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    deadline = running.get("stop_deadline")
                    if deadline is not None and time.monotonic() > deadline:
                        _signal_group(process, signal.SIGKILL)
            _signal_group(process, signal.SIGKILL)  # whatever the trainer left behind in its group
            for relay in relays:
                relay.join(timeout=5)
            if running.get("stop_deadline") is not None:
                raise RuntimeError(
                    "training stopped: the task was terminated (cancelled or timed out); " + _failure(code, tail)
                )
            if code != 0:
                raise RuntimeError(_failure(code, tail))
            return _read_result(result_path)
        finally:
            with _SignalsHeld():
                running.clear()
                if process is not None:
                    self._stop(process)
                shutil.rmtree(workdir, ignore_errors=True)

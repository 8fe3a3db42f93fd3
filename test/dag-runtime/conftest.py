"""Unit tests of the DAG runtime (src/automl-training/dag/training_runtime.py) without Airflow.

The runtime imports Airflow's DAG, Variable and PythonOperator when it loads, and Connection, the log masker and
KubernetesPodOperator when a task runs; these tests give it small stand-ins for each (installed in sys.modules
before the runtime is imported), whose values each test sets through the `airflow` fixture. The real Airflow runs
the same module in the Airflow suite (npm run test:airflow).
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "src" / "automl-training" / "dag"


@dataclass
class StubConnection:
    """What the runtime reads of an Airflow Connection."""

    uri: str = ""
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    extra: str | None = None

    @property
    def extra_dejson(self) -> Any:
        return json.loads(self.extra) if self.extra else {}

    def get_uri(self) -> str:
        return self.uri


@dataclass
class StubAirflow:
    """The stand-ins' state: Variables and Connections the runtime reads, the values it gave the log masker."""

    variables: dict[str, str] = field(default_factory=dict)
    connections: dict[str, StubConnection] = field(default_factory=dict)
    masked: list[str] = field(default_factory=list)
    variable_reads: list[str] = field(default_factory=list)


STATE = StubAirflow()


class StubOperator:
    """An operator that keeps its arguments (PythonOperator, KubernetesPodOperator)."""

    def __init__(self, *, task_id: str, **kwargs: Any) -> None:
        self.task_id = task_id
        self.kwargs = kwargs
        self.python_callable = kwargs.get("python_callable")
        self.env_vars = kwargs.get("env_vars")

    def execute(self, context: Any) -> Any:
        return {"env_vars": self.env_vars}

    def on_kill(self) -> None:
        return None


@dataclass
class StubSecret:
    """KubernetesPodOperator's Secret: an environment variable from a key of a Kubernetes Secret."""

    deploy_type: str
    deploy_target: str
    secret: str
    key: str


@dataclass
class StubResources:
    """kubernetes.client's V1ResourceRequirements."""

    requests: dict[str, str]
    limits: dict[str, str]


class StubDAG:
    def __init__(self, dag_id: str, **kwargs: Any) -> None:
        self.dag_id = dag_id
        self.kwargs = kwargs


class StubVariable:
    @staticmethod
    def get(key: str) -> str:
        STATE.variable_reads.append(key)
        return STATE.variables[key]


class StubConnectionGetter:
    @staticmethod
    def get(conn_id: str) -> StubConnection:
        return STATE.connections[conn_id]


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    module.__path__ = []  # a package, so submodules import
    return module


def _install_stubs() -> None:
    modules = {
        "airflow": _module("airflow"),
        "airflow.sdk": _module("airflow.sdk", DAG=StubDAG, Variable=StubVariable, Connection=StubConnectionGetter),
        "airflow.sdk.log": _module("airflow.sdk.log", mask_secret=STATE.masked.append),
        "airflow.providers": _module("airflow.providers"),
        "airflow.providers.standard": _module("airflow.providers.standard"),
        "airflow.providers.standard.operators": _module("airflow.providers.standard.operators"),
        "airflow.providers.standard.operators.python": _module(
            "airflow.providers.standard.operators.python", PythonOperator=StubOperator
        ),
        "airflow.providers.cncf": _module("airflow.providers.cncf"),
        "airflow.providers.cncf.kubernetes": _module("airflow.providers.cncf.kubernetes"),
        "airflow.providers.cncf.kubernetes.operators": _module("airflow.providers.cncf.kubernetes.operators"),
        "airflow.providers.cncf.kubernetes.operators.pod": _module(
            "airflow.providers.cncf.kubernetes.operators.pod", KubernetesPodOperator=StubOperator
        ),
    }
    modules["airflow.providers.cncf.kubernetes.secret"] = _module(
        "airflow.providers.cncf.kubernetes.secret", Secret=StubSecret
    )
    try:
        import kubernetes.client  # noqa: F401
    except ImportError:
        modules["kubernetes"] = _module("kubernetes")
        modules["kubernetes.client"] = _module("kubernetes.client")
        modules["kubernetes.client.models"] = _module("kubernetes.client.models", V1ResourceRequirements=StubResources)
    sys.modules.update(modules)


_install_stubs()
sys.path.insert(0, str(RUNTIME_DIR))
sys.dont_write_bytecode = True  # no __pycache__ beside the runtime: src/ is the build's input


@pytest.fixture
def airflow() -> StubAirflow:
    """The stand-ins' Variables and Connections (PSK, source database, MLflow), fresh for each test."""
    STATE.variables.clear()
    STATE.connections.clear()
    STATE.masked.clear()
    STATE.variable_reads.clear()
    STATE.variables["automl_psk"] = "psk-0123456789"
    STATE.connections["automl_source"] = StubConnection(uri="postgres://trainer:source-secret@db:5432/warehouse")
    STATE.connections["automl_mlflow"] = StubConnection(
        conn_type="http", host="mlflow", port=5000, login="ml", password="mlflow-secret"
    )
    return STATE


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any
    # When it arrived, by CLOCK_MONOTONIC (one clock for every process of the machine).
    at: float = field(default_factory=time.monotonic)


@dataclass
class CallbackServer:
    """A local HTTP server standing in for the service's writeback endpoint: answers the queued statuses in turn
    (200 once the queue is empty) and records every request."""

    url: str
    answers: list[tuple[int, str]]
    received: list[Received]


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    answers: list[tuple[int, str]] = []
    received: list[Received] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            received.append(Received("PUT", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            code, text = answers.pop(0) if answers else (200, "{}")
            payload = text.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield CallbackServer(f"http://127.0.0.1:{port}/automl-training/jobs/j1/status", answers, received)
    finally:
        server.shutdown()
        server.server_close()


JobFactory = Callable[..., Any]


@pytest.fixture
def make_job(airflow: StubAirflow, callback_server: CallbackServer) -> JobFactory:
    """A TrainingJob as a rendered DAG file makes it (its values as keyword overrides), calling back callback_server."""
    import training_runtime

    def make(**overrides: Any) -> training_runtime.TrainingJob:
        values: dict[str, Any] = {
            "job_spec": {
                "job_id": "j1",
                "description": "AutoML training: churn",
                "registered_model_name": "marketing.churn",
                "tuning": {"trials": 5, "time_budget_minutes": 5},
            },
            "callback_url": callback_server.url,
            "psk_variable": "automl_psk",
            "source_conn_id": "automl_source",
            "mlflow_conn_id": "automl_mlflow",
            "training_image": None,
            "training_command": [sys.executable, "-c", "pass"],
            "job_spec_gz_b64": None,
            **overrides,
        }
        return training_runtime.TrainingJob(**values)

    return make

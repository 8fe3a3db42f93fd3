"""Runs parts of a rendered training DAG in plain python3, for the e2e tests (test use only).

The DAG file imports its runtime module from its own folder (as in Airflow's DAG folder); its
callables are those of the file's `job` (a TrainingJob).

Reads one JSON request on stdin, prints one JSON answer on stdout. Airflow is stubbed only when it
is not importable: the stubs record what the DAG gives its operators and serve the request's
Connections and Variables. With a real Airflow the same values go through its environment
variables (AIRFLOW_CONN_*, AIRFLOW_VAR_*), which both Airflow 2 and 3 read.

Scenarios:
- train: run the `train` task's callable; answer its result and what is left in TMPDIR.
- stop: run `train` on a trainer that waits; once it is up, SIGTERM this process the way Airflow
  does (handler "airflow3": the handler calls the task's on_kill; "airflow2": on_kill, then raise);
  answer the error, how long the stop took and whether the trainer and its child are still alive.
- timeout: as stop, but the task's execution timeout fires once the trainer is up (SIGALRM raising inside
  the callable).
- orphan: run `train` on a waiting trainer and print its pids; the test SIGKILLs this process.
- report_running: call `report_running` (the writeback the train task makes before its trainer starts).
- report_complete: call `report_complete` with `result` as the train task's XCom.
- report_failure: run `train` (the trainer fails), then the DAG's on_failure_callback with its error.
- container: the pod task's environment as rendered and as its execute() completes it.
- held: Airflow's signal handling is held, not lost, while the trainer is started or stopped.
"""

import base64
import gzip
import http.server
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

Request = dict[str, Any]

# What the DAG registered with the (stub) log masker.
MASKED: list[str] = []


def install_airflow_stubs(request: Request) -> None:
    """Minimal stand-ins for the Airflow names the rendered DAG imports."""
    connections: dict[str, dict[str, Any]] = request.get("connections", {})
    variables: dict[str, str] = request.get("variables", {})
    current: list[Any] = []  # the DAGs whose `with` block is open

    class StubDAG:
        def __init__(self, dag_id: str, **kwargs: Any) -> None:
            self.dag_id = dag_id
            self.kwargs = kwargs
            self.task_dict: dict[str, StubOperator] = {}

        def __enter__(self) -> "StubDAG":
            current.append(self)
            return self

        def __exit__(self, *_: object) -> None:
            current.pop()

    class StubOperator:
        def __init__(self, task_id: str, **kwargs: Any) -> None:
            self.task_id = task_id
            self.kwargs = kwargs
            self.python_callable = kwargs.get("python_callable")
            current[-1].task_dict[task_id] = self

        def __rshift__(self, other: "StubOperator") -> "StubOperator":
            return other

        def on_kill(self) -> None:
            return None

    class StubVariable:
        @staticmethod
        def get(key: str) -> str:
            return variables[key]

    class StubConnection:
        def __init__(self, conn_id: str, **fields: Any) -> None:
            self.conn_id = conn_id
            self.conn_type: str | None = fields.get("conn_type")
            self.host: str | None = fields.get("host")
            self.schema: str | None = fields.get("schema")
            self.login: str | None = fields.get("login")
            self.password: str | None = fields.get("password")
            self.port: int | None = fields.get("port")
            self.extra: str | None = json.dumps(fields["extra"]) if fields.get("extra") else None

        @property
        def extra_dejson(self) -> dict[str, Any]:
            return json.loads(self.extra) if self.extra else {}

        def get_uri(self) -> str:
            """Airflow's form for the fields used here: type://login:password@host:port/schema."""
            auth = ""
            if self.login is not None:
                auth = quote(self.login, safe="") + (":" + quote(self.password, safe="") if self.password else "") + "@"
            port = f":{self.port}" if self.port else ""
            schema = "/" + quote(self.schema, safe="") if self.schema else ""
            return "{}://{}{}{}{}".format(self.conn_type, auth, self.host or "", port, schema)

        @classmethod
        def get(cls, conn_id: str) -> "StubConnection":
            if conn_id not in connections:
                raise LookupError(f"The conn_id `{conn_id}` isn't defined")
            return cls(conn_id, **connections[conn_id])

    def module(name: str, **attributes: Any) -> types.ModuleType:
        created = types.ModuleType(name)
        created.__path__ = []
        created.__dict__.update(attributes)
        sys.modules[name] = created
        return created

    module("airflow")
    module("airflow.sdk", DAG=StubDAG, Variable=StubVariable, Connection=StubConnection)
    module("airflow.sdk.log", mask_secret=MASKED.append)
    module("airflow.providers")
    module("airflow.providers.standard")
    module("airflow.providers.standard.operators")
    module("airflow.providers.standard.operators.python", PythonOperator=StubOperator)

    class StubPodOperator(StubOperator):
        """Records the pod's environment as the real operator would build it, at execute."""

        def __init__(self, task_id: str, **kwargs: Any) -> None:
            super().__init__(task_id, **kwargs)
            self.env_vars = kwargs.get("env_vars")

        def execute(self, context: Any) -> Any:
            return {"env_vars": self.env_vars}

    module("airflow.providers.cncf")
    module("airflow.providers.cncf.kubernetes")
    module("airflow.providers.cncf.kubernetes.operators")
    module("airflow.providers.cncf.kubernetes.operators.pod", KubernetesPodOperator=StubPodOperator)

    class StubSecret:
        def __init__(self, deploy_type: str, deploy_target: str, secret: str, key: str) -> None:
            self.fields = {"deploy_type": deploy_type, "deploy_target": deploy_target, "secret": secret, "key": key}

    module("airflow.providers.cncf.kubernetes.secret", Secret=StubSecret)
    try:
        import kubernetes.client  # noqa: F401
    except ImportError:

        class StubResources:
            def __init__(self, requests: dict[str, str], limits: dict[str, str]) -> None:
                self.requests = requests
                self.limits = limits

        module("kubernetes")
        module("kubernetes.client")
        module("kubernetes.client.models", V1ResourceRequirements=StubResources)


def configure_real_airflow(request: Request) -> None:
    for conn_id, fields in request.get("connections", {}).items():
        os.environ["AIRFLOW_CONN_" + conn_id.upper()] = json.dumps(fields)
    for key, value in request.get("variables", {}).items():
        os.environ["AIRFLOW_VAR_" + key.upper()] = value


def load_dag(path: str) -> types.ModuleType:
    # As Airflow does: the DAG folder is on sys.path, so the DAG file imports its runtime module from there.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("rendered_training_dag", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    dag_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dag_module)
    return dag_module


def runtime_of(dag_module: types.ModuleType) -> types.ModuleType:
    """The runtime module the DAG file imported (automl_runtime_<version>)."""
    return sys.modules[type(dag_module.job).__module__]


def task_arguments(dag_module: types.ModuleType) -> dict[str, dict[str, Any]]:
    """What each task was given (stubs only), timedeltas in seconds."""
    tasks = getattr(dag_module.dag, "task_dict", {})
    described: dict[str, dict[str, Any]] = {}
    for task_id, task in tasks.items():
        kwargs = getattr(task, "kwargs", {})
        described[task_id] = {
            key: value.total_seconds() if isinstance(value, timedelta) else value
            for key, value in kwargs.items()
            if isinstance(value, bool | int | float | str | timedelta)
        }
        described[task_id]["operator"] = type(task).__name__
    return described


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def still_alive(pid: int, within: float = 2.0) -> bool:
    """Whether `pid` still runs after `within` seconds: a SIGKILL is delivered asynchronously."""
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive(pid)


def wait_for_pids(tmpdir: str, timeout: float = 30.0) -> dict[str, int]:
    path = os.path.join(tmpdir, "trainer-pids.json")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                pids: dict[str, int] = json.load(handle)
                return pids
        time.sleep(0.02)
    raise TimeoutError("the trainer never wrote its pids")


def run_train(dag_module: types.ModuleType) -> tuple[Any, str | None]:
    try:
        return dag_module.job.train(), None
    except BaseException as error:
        return None, f"{type(error).__name__}: {error}"


def scenario_stop(request: Request, dag_module: types.ModuleType, tmpdir: str) -> dict[str, Any]:
    task = dag_module.dag.task_dict["train"]
    handler_kind = request.get("handler", "airflow3")

    def on_term(_signum: int, _frame: object) -> None:
        task.on_kill()
        if handler_kind == "airflow2":
            raise RuntimeError("Task received SIGTERM signal")

    signal.signal(signal.SIGTERM, on_term)
    sent: dict[str, float] = {}
    pids: dict[str, int] = {}

    def stop_when_up() -> None:
        pids.update(wait_for_pids(tmpdir))
        sent["at"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_up, daemon=True).start()
    _, error = run_train(dag_module)
    returned = time.monotonic()
    return {
        "error": error,
        "stop_seconds": returned - sent["at"] if "at" in sent else None,
        "trainer_alive": still_alive(pids["trainer"]) if pids else None,
        "grandchild_alive": still_alive(pids["grandchild"]) if pids else None,
        "trainer_got_sigterm": os.path.exists(os.path.join(tmpdir, "trainer-pids.json.sigterm")),
    }


def scenario_timeout(request: Request, dag_module: types.ModuleType, tmpdir: str) -> dict[str, Any]:
    class TaskTimeout(Exception):
        pass

    def on_alarm(_signum: int, _frame: object) -> None:
        raise TaskTimeout("Timeout, the task ran over its execution_timeout")

    signal.signal(signal.SIGALRM, on_alarm)

    def time_out_when_up() -> None:
        wait_for_pids(tmpdir)
        time.sleep(float(request.get("timeout_seconds", 0.5)))
        os.kill(os.getpid(), signal.SIGALRM)  # what the execution_timeout's timer does

    threading.Thread(target=time_out_when_up, daemon=True).start()
    _, error = run_train(dag_module)
    pids = wait_for_pids(tmpdir, timeout=0.1) if os.path.exists(os.path.join(tmpdir, "trainer-pids.json")) else {}
    return {
        "error": error,
        "trainer_alive": still_alive(pids["trainer"]) if pids else None,
        "grandchild_alive": still_alive(pids["grandchild"]) if pids else None,
        "trainer_got_sigterm": os.path.exists(os.path.join(tmpdir, "trainer-pids.json.sigterm")),
    }


def scenario_orphan(_request: Request, dag_module: types.ModuleType, tmpdir: str) -> dict[str, Any]:
    def announce() -> None:
        print(json.dumps({"pids": wait_for_pids(tmpdir)}), flush=True)

    threading.Thread(target=announce, daemon=True).start()
    run_train(dag_module)
    return {"error": "train returned although the test should have killed this process"}


class StubTaskInstance:
    def __init__(self, task_id: str, xcom: Any = None) -> None:
        self.task_id = task_id
        self.xcom = xcom

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom if task_ids == "train" else None


def scenario_report_complete(request: Request, dag_module: types.ModuleType, _tmpdir: str) -> dict[str, Any]:
    dag_module.job.report_complete(ti=StubTaskInstance("report_complete", request["result"]))
    return {"reported": True}


def scenario_report_running(_request: Request, dag_module: types.ModuleType, _tmpdir: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        dag_module.job.report_running()
    except Exception as error:  # the answer reports whatever the callback raised
        return {"error": f"{type(error).__name__}: {error}", "seconds": time.monotonic() - started}
    return {"error": None, "seconds": time.monotonic() - started}


def scenario_report_failure(_request: Request, dag_module: types.ModuleType, _tmpdir: str) -> dict[str, Any]:
    try:
        dag_module.job.train()
    except Exception as error:
        dag_module.job.report_failure({"exception": error, "task_instance": StubTaskInstance("train")})
        return {"error": str(error)}
    return {"error": None}


def scenario_train(_request: Request, dag_module: types.ModuleType, tmpdir: str) -> dict[str, Any]:
    result, error = run_train(dag_module)
    return {"result": result, "error": error, "left_in_tmpdir": sorted(os.listdir(tmpdir))}


def scenario_held(_request: Request, dag_module: types.ModuleType, tmpdir: str) -> dict[str, Any]:
    """A SIGTERM inside the DAG's held section runs Airflow's handler only when the section ends;
    a kill before the trainer starts means no trainer starts."""
    calls: list[str] = []
    signal.signal(signal.SIGTERM, lambda _signum, _frame: calls.append("handler"))
    with runtime_of(dag_module)._SignalsHeld():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        calls.append("end of section")
    # The kill arrives while the task reads the Connections, before the trainer starts.
    read_environment = dag_module.job.trainer_environment

    def killed_while_reading(spec_path: str, result_path: str) -> dict[str, str]:
        dag_module.dag.task_dict["train"].on_kill()
        environment: dict[str, str] = read_environment(spec_path, result_path)
        return environment

    setattr(dag_module.job, "trainer_environment", killed_while_reading)  # noqa: B010 - replaces the job's method
    _, error = run_train(dag_module)
    return {
        "calls": calls,
        "error": error,
        "trainer_started": os.path.exists(os.path.join(tmpdir, "trainer-pids.json")),
    }


def scenario_container(_request: Request, dag_module: types.ModuleType, _tmpdir: str) -> dict[str, Any]:
    """The pod's environment as rendered (parse time) and as sent (execute, with the Connections' values)."""
    task = dag_module.dag.task_dict["train"]
    rendered = dict(task.env_vars)
    encoded = rendered["AUTOML_JOB_SPEC_GZ_B64"]
    spec = json.loads(gzip.decompress(base64.b64decode(encoded)))
    executed = task.execute({})
    return {
        "rendered_env_names": sorted(rendered),
        "result_path": rendered["AUTOML_RESULT_PATH"],
        "encoded_length": len(encoded),
        "spec_intact": spec == dag_module.JOB_SPEC,
        "executed_env": executed["env_vars"],
        "operator_class": type(task).__name__,
        "task_kwargs": {
            key: value for key, value in task.kwargs.items() if key != "env_vars" and isinstance(value, str | bool)
        },
    }


SCENARIOS: dict[str, Callable[[Request, types.ModuleType, str], dict[str, Any]]] = {
    "train": scenario_train,
    "stop": scenario_stop,
    "timeout": scenario_timeout,
    "orphan": scenario_orphan,
    "report_running": scenario_report_running,
    "report_complete": scenario_report_complete,
    "report_failure": scenario_report_failure,
    "container": scenario_container,
    "held": scenario_held,
}


def start_writeback_sink(statuses: list[str]) -> str:
    """A writeback endpoint on 127.0.0.1 that answers 200 and appends each status it is sent; its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            statuses.append(body["status"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/api/automl/train/jobs/harness/status"


def main() -> None:
    request: Request = json.load(sys.stdin)
    tmpdir = tempfile.mkdtemp(prefix="dag-harness-")
    # The worker's own environment: the trainer must get none of it but the allowlist.
    os.environ.update(request.get("worker_env", {}))
    os.environ["TMPDIR"] = tmpdir
    tempfile.tempdir = None
    try:
        import airflow  # noqa: F401

        configure_real_airflow(request)
        stubbed = False
    except ImportError:
        install_airflow_stubs(request)
        stubbed = True
    dag_module = load_dag(request["dag"])
    # The service's writeback: the request's callback_url (a running service), else a local sink that answers 200
    # and records each status (the train task writes back `running` before its trainer starts).
    writebacks: list[str] = []
    callback_url = request.get("callback_url") or start_writeback_sink(writebacks)
    setattr(dag_module.job, "callback_url", callback_url)  # noqa: B010 - an attribute the callbacks read
    if "grace_seconds" in request:
        setattr(dag_module.job, "trainer_stop_grace_seconds", request["grace_seconds"])  # noqa: B010 - as above
    answer = SCENARIOS[request["scenario"]](request, dag_module, tmpdir)
    answer["stubbed_airflow"] = stubbed
    answer["writebacks"] = writebacks
    answer["masked"] = MASKED
    answer["tasks"] = task_arguments(dag_module) if stubbed else {}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

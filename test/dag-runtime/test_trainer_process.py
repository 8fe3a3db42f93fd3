"""The trainer process (command path): its environment and files, its result, how it is stopped, the signals held."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import training_runtime
from conftest import CallbackServer, JobFactory, StubAirflow

# A trainer that reports what it was given: its environment, its spec, its files' modes, its process group.
REPORTING_TRAINER = """
import json, os, stat, sys
spec_path = os.environ["AUTOML_JOB_SPEC_PATH"]
with open(spec_path, encoding="utf-8") as handle:
    spec = json.load(handle)
print("loading", flush=True)
print("a warning", file=sys.stderr, flush=True)
result = {
    "env": dict(os.environ),
    "spec": spec,
    "spec_mode": stat.S_IMODE(os.stat(spec_path).st_mode),
    "workdir": os.getcwd(),
    "workdir_mode": stat.S_IMODE(os.stat(os.getcwd()).st_mode),
    "own_group": os.getpgid(0) == os.getpid(),
    "stdin": sys.stdin.read(),
}
with open(os.environ["AUTOML_RESULT_PATH"], "w", encoding="utf-8") as handle:
    json.dump(result, handle)
"""

# A trainer that starts a child in its process group, writes both pids to argv[1], then waits; with argv[2]
# "ignore-term" both ignore SIGTERM (an ignored signal stays ignored across exec).
WAITING_TRAINER = """
import os, signal, subprocess, sys, time
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(f"{os.getpid()} {child.pid}")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
print("waiting for the stop", file=sys.stderr, flush=True)
time.sleep(120)
"""

# A trainer that leaves a child behind in its group and ends at once, successfully.
LEAVING_TRAINER = """
import json, os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], stdout=subprocess.DEVNULL)
with open(sys.argv[1], "w") as handle:
    handle.write(str(child.pid))
with open(os.environ["AUTOML_RESULT_PATH"], "w", encoding="utf-8") as handle:
    json.dump({"mlflow_run_id": "run-1"}, handle)
"""


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def gone(pids: list[int], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


@pytest.fixture
def workdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the task's private work directories are made in (so a test sees what is left of them)."""
    root = tmp_path / "workdirs"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


class Background:
    """TrainingJob.train in a thread, where nothing is held (Python runs signal handlers in the main thread only)."""

    def __init__(self, job: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self.thread.start()

    def _run(self, job: Any) -> None:
        try:
            self.result = job.train()
        except BaseException as error:
            self.error = error

    def join(self, timeout: float = 30) -> BaseException | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "train() did not return"
        return self.error


@pytest.fixture
def main_thread_handler() -> Iterator[Callable[[int, Callable[[int, Any], None]], None]]:
    """Sets a signal handler for the test (as Airflow does around a task), restoring the previous one after."""
    previous: dict[int, Any] = {}

    def install(signum: int, handler: Callable[[int, Any], None]) -> None:
        previous.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, handler)

    yield install
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_the_trainer_gets_the_allowlist_its_secrets_and_the_contract_paths_only(
    make_job: JobFactory, airflow: StubAirflow, workdirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "fernet-secret")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow:meta-secret@db/airflow")
    monkeypatch.setenv("AIRFLOW_VAR_AUTOML_PSK", "psk-0123456789")
    monkeypatch.setenv("AUTOML_TRAINER_THREADS", "2")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    job = make_job(training_command=python(REPORTING_TRAINER))
    result = job.train()
    env = result["env"]
    env.pop("LC_CTYPE", None)  # Python's own locale coercion may set it in the trainer
    inherited = {name: os.environ[name] for name in training_runtime.ENV_ALLOWLIST if name in os.environ}
    assert env == {
        **inherited,
        "AUTOML_SOURCE_URL": "postgresql://trainer:source-secret@db:5432/warehouse",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLFLOW_TRACKING_USERNAME": "ml",
        "MLFLOW_TRACKING_PASSWORD": "mlflow-secret",
        "AUTOML_JOB_SPEC_PATH": os.path.join(result["workdir"], "job_spec.json"),
        "AUTOML_RESULT_PATH": os.path.join(result["workdir"], "result.json"),
    }
    assert env["AUTOML_TRAINER_THREADS"] == "2"
    assert airflow.masked == ["postgresql://trainer:source-secret@db:5432/warehouse", "mlflow-secret"]
    # The PSK is the callbacks' (the task's `running` writeback read it once), never the trainer's.
    assert airflow.variable_reads == ["automl_psk"]
    assert "psk-0123456789" not in json.dumps(result)
    assert result["spec"] == job.job_spec
    assert (result["spec_mode"], result["workdir_mode"]) == (0o600, 0o700)
    assert result["own_group"] is True
    assert result["stdin"] == ""
    assert list(workdirs.iterdir()) == []  # the spec and the result are removed with the work directory


def test_the_trainers_output_goes_to_the_task_log(
    make_job: JobFactory, workdirs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="automl_training")
    make_job(training_command=python(REPORTING_TRAINER)).train()
    assert "trainer: loading" in caplog.messages
    assert "trainer: a warning" in caplog.messages


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "import sys; print('loading'); print('first', file=sys.stderr); print('the cause', file=sys.stderr);"
            " print('  ', file=sys.stderr); sys.exit(3)",
            "the cause (trainer exit code 3)",
        ),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "the trainer wrote nothing to stderr (trainer killed by SIGKILL)",
        ),
        ("pass", "the trainer exited 0 without writing its result to AUTOML_RESULT_PATH"),
        (
            "import os; open(os.environ['AUTOML_RESULT_PATH'], 'w').write('{')",
            "the trainer's result is not valid JSON: ",
        ),
        (
            "import os; open(os.environ['AUTOML_RESULT_PATH'], 'w').write('[1]')",
            "the trainer's result is not a JSON object",
        ),
    ],
)
def test_a_failed_trainer_fails_the_task_with_its_cause(
    make_job: JobFactory, workdirs: Path, script: str, message: str
) -> None:
    with pytest.raises(RuntimeError) as failed:
        make_job(training_command=python(script)).train()
    assert str(failed.value).startswith(message)
    assert list(workdirs.iterdir()) == []


def test_on_kill_stops_the_trainers_whole_group(make_job: JobFactory, workdirs: Path, tmp_path: Path) -> None:
    job = make_job(training_command=python(WAITING_TRAINER, str(tmp_path / "pids"), "honour-term"))
    task = job.train_task()
    assert isinstance(task, training_runtime.TrainingOperator)
    assert task.kwargs["execution_timeout"] == timedelta(minutes=5 + 30)
    assert "pool" not in task.kwargs and "queue" not in task.kwargs
    running = Background(job)
    pids = [int(pid) for pid in wait_for(tmp_path / "pids").split()]
    started = time.monotonic()
    task.on_kill()
    error = running.join()
    assert time.monotonic() - started < job.trainer_stop_grace_seconds
    assert str(error) == (
        "training stopped: the task was terminated (cancelled or timed out); "
        "waiting for the stop (trainer killed by SIGTERM)"
    )
    assert gone(pids)
    assert list(workdirs.iterdir()) == []


def test_a_trainer_that_ignores_the_stop_is_killed_after_the_grace_period(
    make_job: JobFactory, workdirs: Path, tmp_path: Path
) -> None:
    job = make_job(training_command=python(WAITING_TRAINER, str(tmp_path / "pids"), "ignore-term"))
    job.trainer_stop_grace_seconds = 0.5
    running = Background(job)
    pids = [int(pid) for pid in wait_for(tmp_path / "pids").split()]
    job.request_stop()
    error = running.join()
    assert str(error).endswith("waiting for the stop (trainer killed by SIGKILL)")
    assert gone(pids)


def test_a_stop_before_the_trainer_starts_starts_none(
    make_job: JobFactory, workdirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "started"
    job = make_job(training_command=python("import sys; open(sys.argv[1], 'w')", str(marker)))
    environment = job.trainer_environment

    def stopped_meanwhile(spec_path: str, result_path: str) -> dict[str, str]:
        job.request_stop()
        return environment(spec_path, result_path)

    monkeypatch.setattr(job, "trainer_environment", stopped_meanwhile)
    with pytest.raises(RuntimeError, match="terminated before the trainer started"):
        job.train()
    assert not marker.exists()
    assert list(workdirs.iterdir()) == []


def test_what_the_trainer_leaves_in_its_group_is_killed(make_job: JobFactory, workdirs: Path, tmp_path: Path) -> None:
    job = make_job(training_command=python(LEAVING_TRAINER, str(tmp_path / "child")))
    assert job.train() == {"mlflow_run_id": "run-1"}
    assert gone([int((tmp_path / "child").read_text())])


class TaskTimeout(Exception):
    """Stands for Airflow's timeout and termination exceptions."""


@pytest.mark.parametrize(
    ("signum", "trainer"),
    [
        # Airflow's execution timeout: SIGALRM whose handler raises; here the trainer ignores SIGTERM, so it is
        # SIGKILLed after the grace period.
        (signal.SIGALRM, "ignore-term"),
        # Airflow 2's kill: SIGTERM whose handler calls on_kill, then raises.
        (signal.SIGTERM, "honour-term"),
    ],
)
def test_an_exception_from_airflows_signal_handler_stops_the_trainer(
    make_job: JobFactory,
    workdirs: Path,
    tmp_path: Path,
    main_thread_handler: Callable[[int, Callable[[int, Any], None]], None],
    signum: int,
    trainer: str,
) -> None:
    job = make_job(training_command=python(WAITING_TRAINER, str(tmp_path / "pids"), trainer))
    job.trainer_stop_grace_seconds = 0.5
    task = job.train_task()

    def handler(_signum: int, _frame: Any) -> None:
        if signum == signal.SIGTERM:
            task.on_kill()
        raise TaskTimeout

    main_thread_handler(signum, handler)
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        wait_for(tmp_path / "pids")
        signal.pthread_kill(main, signum)

    threading.Thread(target=fire, daemon=True).start()
    with pytest.raises(TaskTimeout):
        job.train()
    assert gone([int(pid) for pid in (tmp_path / "pids").read_text().split()])
    assert list(workdirs.iterdir()) == []


def test_signals_are_held_while_the_trainer_starts_or_stops_then_handled(
    main_thread_handler: Callable[[int, Callable[[int, Any], None]], None],
) -> None:
    seen: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        seen.append(signum)

    main_thread_handler(signal.SIGTERM, handler)
    main_thread_handler(signal.SIGALRM, handler)
    with training_runtime._SignalsHeld():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGALRM)
        time.sleep(0.05)
        assert seen == []
    assert seen == [signal.SIGTERM, signal.SIGALRM]
    assert signal.getsignal(signal.SIGTERM) is handler
    assert signal.getsignal(signal.SIGALRM) is handler


def test_nothing_is_held_off_the_main_thread(
    main_thread_handler: Callable[[int, Callable[[int, Any], None]], None],
) -> None:
    def handler(_signum: int, _frame: Any) -> None:
        return None

    main_thread_handler(signal.SIGTERM, handler)
    inside: list[Any] = []

    def run() -> None:
        with training_runtime._SignalsHeld():
            inside.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert inside == [handler]


@pytest.mark.parametrize(
    ("code", "tail", "message"),
    [
        (2, ["usage", "bad spec"], "bad spec (trainer exit code 2)"),
        (-int(signal.SIGTERM), [], "the trainer wrote nothing to stderr (trainer killed by SIGTERM)"),
        (-200, ["out of memory"], "out of memory (trainer killed by signal 200)"),
    ],
)
def test_failure_names_the_last_line_and_how_the_trainer_ended(code: int, tail: list[str], message: str) -> None:
    import collections

    assert training_runtime._failure(code, collections.deque(tail)) == message


def test_the_spec_file_is_private_and_never_overwritten(make_job: JobFactory, tmp_path: Path) -> None:
    job = make_job()
    path = job.write_spec(str(tmp_path))
    assert json.loads(Path(path).read_text()) == job.job_spec
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        job.write_spec(str(tmp_path))


def test_the_train_task_is_bounded_by_the_budget_plus_the_margin_and_takes_the_pool_and_queue(
    make_job: JobFactory,
) -> None:
    job = make_job(training_pool="automl_training", training_queue="train-large", timeout_margin_minutes=7)
    task = job.train_task()
    assert task.kwargs["execution_timeout"] == timedelta(minutes=5 + 7)
    assert task.kwargs["pool"] == "automl_training"
    assert task.kwargs["pool_slots"] == 1
    assert task.kwargs["queue"] == "train-large"
    callback = job.report_complete_task()
    assert "pool" not in callback.kwargs and "queue" not in callback.kwargs


def test_the_train_task_writes_back_running_before_the_trainer_starts(
    make_job: JobFactory, callback_server: CallbackServer, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    trainer = f"""
import json, os, pathlib, time
pathlib.Path({str(started)!r}).write_text(repr(time.monotonic()))
with open(os.environ["AUTOML_RESULT_PATH"], "w") as handle:
    json.dump({{"mlflow_run_id": "run-1"}}, handle)
"""
    assert make_job(training_command=python(trainer)).train() == {"mlflow_run_id": "run-1"}
    [running] = callback_server.received
    assert running.body == {"status": "running"}
    assert running.at < float(started.read_text())


def test_a_refused_running_writeback_fails_the_task_and_starts_no_trainer(
    make_job: JobFactory, callback_server: CallbackServer, workdirs: Path, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    callback_server.answers.append((409, "job is failed"))
    job = make_job(training_command=python(f"import pathlib; pathlib.Path({str(started)!r}).write_text('x')"))
    with pytest.raises(training_runtime.WritebackRefused, match="409"):
        job.train()
    assert not started.exists()
    assert list(workdirs.iterdir()) == []

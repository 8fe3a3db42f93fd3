"""Real services for the trainer tests: a fresh PostgreSQL database per session and an MLflow tracking server
(database-backed registry on SQLite, proxied artifacts in a temp dir) on a free loopback port. The trainer runs
as `python -m automl_trainer` in a subprocess with only the contract's environment, exactly as the DAG runs it.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2
import pytest
import sqlalchemy as sa

SRC = Path(__file__).resolve().parents[1] / "src"
ADMIN_URL = os.environ.get("TRAINER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MEASUREMENTS: list[dict[str, Any]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"automl_trainer_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = sa.engine.make_url(ADMIN_URL).set(drivername="postgresql+psycopg2", database=name)
    try:
        yield base.render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115  closed below
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # No job runner: it starts 7 huey consumer processes (~1.7 GB RSS, a minute of CPU at start) for
        # server-side jobs (GenAI evaluation, prompt optimisation) that model training and the registry never use.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:  # noqa: S310  loopback http
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        import mlflow

        mlflow.set_tracking_uri(uri)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def write_table(url: str, table: str, frame: pd.DataFrame, schema: str | None = None) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            if schema:
                connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            frame.to_sql(table, connection, schema=schema, index=False, if_exists="replace")
    finally:
        engine.dispose()


def make_spec(**overrides: Any) -> dict[str, Any]:
    job_id = str(uuid.uuid4())
    spec: dict[str, Any] = {
        "job_id": job_id,
        "name": "test job",
        "description": "AutoML training: test job",
        "domain": "tests",
        "owner": "alice",
        "source_table": "t",
        "label_column": None,
        "feature_columns": None,
        "problem_type": "binary_classification",
        "algorithm": "lightgbm_classifier",
        "preset": "fast",
        "tuning": {"trials": 3, "time_budget_minutes": 5},
        "mlflow_experiment_name": "automl/tests",
        "registered_model_name": f"tests-{job_id[:8]}",
        "feature_engineering_job_id": None,
    }
    spec.update(overrides)
    return spec


@dataclass
class TrainerRun:
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] | None
    seconds: float
    max_rss_mb: float

    @property
    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def trainer_env(
    tmp: Path, source_url: str, mlflow_uri: str, spec: dict[str, Any] | None, how: str = "path"
) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    env.update(
        {
            "PYTHONPATH": str(SRC),
            "AUTOML_RESULT_PATH": str(tmp / "out" / "result.json"),
            "AUTOML_SOURCE_URL": source_url,
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "AUTOML_TRAINER_THREADS": "2",
        }
    )
    if spec is not None:
        text = json.dumps(spec)
        if how == "path":
            path = tmp / "spec.json"
            path.write_text(text, encoding="utf-8")
            env["AUTOML_JOB_SPEC_PATH"] = str(path)
        else:
            env["AUTOML_JOB_SPEC_GZ_B64"] = base64.b64encode(gzip.compress(text.encode())).decode()
    return env


def start_trainer(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with open(out, "wb") as o, open(err, "wb") as e:
        process = subprocess.Popen([sys.executable, "-m", "automl_trainer"], env=env, stdout=o, stderr=e)
    return process, out, err


def finish_trainer(
    process: subprocess.Popen[bytes], out: Path, err: Path, env: dict[str, str], t0: float, timeout: float = 240
) -> TrainerRun:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    result_path = Path(env["AUTOML_RESULT_PATH"])
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return TrainerRun(process.returncode, out.read_text(), err.read_text(), result, seconds, usage.ru_maxrss / 1024)


def run_trainer(env: dict[str, str], tmp: Path, timeout: float = 240) -> TrainerRun:
    t0 = time.monotonic()
    process, out, err = start_trainer(env, tmp)
    return finish_trainer(process, out, err, env, t0, timeout)


def run_status(run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    return str(MlflowClient().get_run(run_id).info.status)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MEASUREMENTS:
        return
    terminalreporter.write_sep("-", "trainer runs: wall time and peak RSS of each `python -m automl_trainer`")
    for m in MEASUREMENTS:
        terminalreporter.write_line(
            f"{m['case']:<40} {m['seconds']:6.1f} s  {m['max_rss_mb']:7.1f} MB  trials {m['trials_run']}"
            f"  {m['objective']}={m['value']:.4f} (baseline {m['baseline']:.4f})"
        )
    target = Path(os.environ.get("TRAINER_MEASUREMENTS", SRC.parents[1] / "test-artifacts" / "trainer-runs.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(MEASUREMENTS, indent=1))

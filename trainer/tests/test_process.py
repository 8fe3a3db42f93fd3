"""The process contract: SIGTERM ends the run KILLED promptly, a failure ends it FAILED with one clear last
line, and specs far over Linux's 128 KiB environment-variable limit arrive intact through the file."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from automl_trainer.spec import load_spec

from . import data
from .conftest import finish_trainer, make_spec, run_status, run_trainer, start_trainer, trainer_env, write_table


def _run_id(stderr_path: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        text = stderr_path.read_text()
        if "trials" in text or "loaded" in text:
            for line in text.splitlines():
                if "MLflow run " in line:
                    return line.rsplit("MLflow run ", 1)[1].strip()
        time.sleep(0.2)
    raise AssertionError(f"trainer did not start training: {stderr_path.read_text()[-2000:]}")


def test_sigterm_ends_the_run_killed_within_seconds(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "sigterm_rows", data.binary(n=20000))
    spec = make_spec(
        source_table="sigterm_rows",
        label_column="churned",
        algorithm="xgboost_classifier",
        tuning={"trials": 1000, "time_budget_minutes": 30},
    )
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    t0 = time.monotonic()
    process, out, err = start_trainer(env, tmp_path)
    run_id = _run_id(err, time.monotonic() + 120)
    time.sleep(1.0)  # well inside the search
    sent = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)
    run = finish_trainer(process, out, err, env, t0, timeout=30)
    waited = time.monotonic() - sent
    assert run.returncode == 143, run.stderr[-2000:]
    assert waited < 6, f"exit took {waited:.1f}s"
    assert run.last_error_line == "error: terminated by SIGTERM; MLflow run ended KILLED"
    assert run_status(run_id) == "KILLED"
    assert run.result is None


def test_failure_ends_the_run_failed_with_one_clear_line(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "has_no_x", data.binary(n=50))
    spec = make_spec(source_table="public.has_no_x", label_column="churned", feature_columns=["x2", "x"])
    run = run_trainer(trainer_env(tmp_path, pg_url, mlflow_uri, spec), tmp_path)
    assert run.returncode == 1
    assert run.last_error_line == "error: column 'x' not found in table public.has_no_x"
    experiment = MlflowClient().get_experiment_by_name("automl/tests")
    assert experiment is not None
    runs = MlflowClient().search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`automl.job_id` = '{spec['job_id']}'",
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    assert run.result is None


def test_unreachable_source_names_the_table_not_the_url(mlflow_uri: str, tmp_path: Path) -> None:
    spec = make_spec(source_table="t", label_column="y")
    url = "postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:1/nowhere"
    run = run_trainer(trainer_env(tmp_path, url, mlflow_uri, spec), tmp_path)
    assert run.returncode == 1
    assert run.last_error_line.startswith("error: cannot read table t: ")
    assert "s3cret-pw" not in run.stderr


def _wide_spec(columns: int, width: int) -> dict[str, object]:
    names = [f"c{i:05d}_" + secrets.token_hex(width)[: width - 7] for i in range(columns)]
    return make_spec(source_table="narrow", label_column="churned", feature_columns=names)


@pytest.mark.parametrize("how", ["path", "gz_b64"])
def test_large_spec_reaches_the_trainer_intact(pg_url: str, mlflow_uri: str, tmp_path: Path, how: str) -> None:
    # Command path: 5000 feature columns of 500 characters (~2.6 MB of JSON) through AUTOML_JOB_SPEC_PATH.
    # Container path: the gzip+base64 variable must itself stay under Linux's 128 KiB per variable, so a spec of
    # 200 such columns (~100 kB of JSON of random names, ~77 kB once packed).
    write_table(pg_url, "narrow", data.binary(n=30))
    spec = _wide_spec(5000 if how == "path" else 200, 500)
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec, how=how)
    if how == "path":
        assert len(json.dumps(spec)) > 2_500_000
    else:
        assert 64 * 1024 < len(env["AUTOML_JOB_SPEC_GZ_B64"]) < 128 * 1024
    assert load_spec(env).feature_columns == spec["feature_columns"]  # every name, byte for byte
    run = run_trainer(env, tmp_path)
    # The table has none of the columns: the trainer names the first one, all 500 characters of it, proving the
    # spec arrived whole (the API's own test proves the DAG passes it this way).
    first = spec["feature_columns"][0]  # type: ignore[index]
    assert run.returncode == 1
    assert run.last_error_line == f"error: column '{first}' not found in table narrow"

"""The final model trained across a real Dask cluster: a `dask scheduler` and two `dask worker` processes (one thread
and a memory limit each) on 127.0.0.1, reading their partitions from the test PostgreSQL themselves; and each way the
cluster fails (scheduler unreachable, a worker lost mid-training, a partition over its worker's memory), named in the
job's error with its MLflow run FAILED."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import psycopg2
import pytest
from mlflow.tracking import MlflowClient

from automl_trainer import cluster as dask_engine
from automl_trainer.errors import TrainerError
from automl_trainer.load import load_frame
from automl_trainer.memory import Estimate
from automl_trainer.prepare import describe_features
from automl_trainer.spec import parse_spec

from . import data
from .conftest import SRC, finish_trainer, free_port, make_spec, run_trainer, start_trainer, trainer_env, write_table

DASK = str(Path(sys.executable).parent / "dask")
STALE_ROWS = 2_000_000
WORKER_LIMIT = "450MB"


@dataclass
class DaskCluster:
    address: str
    workers: list[subprocess.Popen[bytes]]
    logs: Path

    def worker_addresses(self) -> list[str]:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return sorted(client.scheduler_info(n_workers=-1)["workers"])


def _env(**extra: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    # The workers run the trainer's environment: its venv and its package on the path.
    env.update({"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **extra})
    return env


def start_cluster(root: Path, memory_limit: str, **config: str) -> DaskCluster:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = _env(**config)
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(root / f"{name}.log", "wb")  # noqa: SIM115  the process writes it until it ends
        process = subprocess.Popen(
            [DASK, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root
        )
        processes.append(process)
        return process

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    workers = [
        start(
            f"worker{i}", "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
            "--memory-limit", memory_limit, "--no-dashboard", "--name", f"w{i}",
        )
        for i in (1, 2)
    ]  # fmt: skip
    cluster = DaskCluster(address, workers, root)
    cluster.processes = processes  # type: ignore[attr-defined]
    deadline = time.monotonic() + 90
    while True:
        try:
            if len(cluster.worker_addresses()) == 2:
                return cluster
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_cluster(cluster)
            raise RuntimeError(f"the Dask cluster did not start: {(root / 'worker1.log').read_text()[-2000:]}")
        time.sleep(0.5)


def stop_cluster(cluster: DaskCluster) -> None:
    for process in cluster.processes:  # type: ignore[attr-defined]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    cluster = start_cluster(tmp_path / "dask", "1GB")
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def test_credential_never_shown_and_partitions_sized_by_memory() -> None:
    url = "postgresql+psycopg2://reader:s3cr%40t@db.internal:5432/src"
    assert "s3cr" not in repr(dask_engine.Secret(url))
    message = f"could not connect with {url} (postgresql://reader:s3cr%40t@db.internal/src)"
    assert "s3cr" not in dask_engine.masked(message, url)
    engine = dask_engine.Cluster("tcp://127.0.0.1:1", url)
    engine.table = "t"
    engine.workers = {"a": {"memory_limit": 2 * 2**30}, "b": {"memory_limit": 2 * 2**30}}
    # 10 M rows of 20 features: 880 MB encoded, ×3 held; one partition may take a tenth of 1.45 GiB to read.
    rows = Estimate(rows=10_000_000, row_bytes=180, total=0)
    parts = engine.partitions(rows, pages=200_000, features=20)
    plannable = int(0.8 * 2 * 2**30) - 150 * 2**20
    assert parts == -(-10_000_000 * 180 // int(0.1 * plannable))
    assert engine.partitions(Estimate(rows=1000, row_bytes=180, total=0), pages=10, features=20) == 2  # one a worker
    with pytest.raises(TrainerError, match=r"needs about .* across the Dask cluster, over what its 2 workers"):
        engine.partitions(Estimate(rows=100_000_000, row_bytes=180, total=0), pages=2_000_000, features=20)


def _run(spec_id: str) -> mlflow.entities.Run:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("automl/tests")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`automl.job_id` = '{spec_id}'")
    assert len(runs) == 1
    return runs[0]


def test_final_model_trains_across_the_cluster(
    pg_url: str, mlflow_uri: str, tmp_path: Path, dask_cluster: DaskCluster
) -> None:
    table = data.binary(n=40000, seed=3)
    write_table(pg_url, "dask_binary", table)
    with psycopg2.connect(pg_url.replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
        cursor.execute("ANALYZE dask_binary")
    spec = make_spec(source_table="dask_binary", label_column="churned", tuning={"trials": 3, "time_budget_minutes": 5})
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    env.update({"DASK_SCHEDULER_ADDRESS": dask_cluster.address, "AUTOML_DASK_FORCE": "1"})
    run = run_trainer(env, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    assert pg_url.split("@")[0] not in run.stderr  # the credential never reaches the log

    params = _run(spec["job_id"]).data.params
    assert params["engine"] == "dask"
    assert params["engine_reason"] == "AUTOML_DASK_FORCE is set"
    assert params["dask_workers"] == "2"
    assert params["final_model"] == "refit on every training row across the Dask cluster"
    held = json.loads(params["dask_partitions_by_worker"])
    assert sorted(held) == dask_cluster.worker_addresses()  # both workers held partitions
    assert all(count >= 1 for count in held.values())
    assert sum(held.values()) == int(params["dask_partitions"])
    assert int(params["n_rows"]) == len(table)
    assert int(params["n_train"]) + int(params["n_test"]) == len(table)
    assert 0.15 < int(params["n_test"]) / len(table) < 0.25
    metrics = run.result["metrics"]
    assert metrics["test_rows"] == float(params["n_test"])
    assert metrics["roc_auc"] > 0.8  # the table's signal, learned on the cluster and scored there

    # The encoding fixed before the partitions were read is the one a whole load of the table gives.
    frame, features = load_frame(pg_url, parse_spec(json.dumps(spec)))
    expected = describe_features(frame, features).to_json()
    artifact = mlflow.artifacts.download_artifacts(
        run_id=run.result["mlflow_run_id"], artifact_path="preprocessing.json"
    )
    assert json.loads(Path(artifact).read_text())["columns"] == json.loads(json.dumps(expected))

    # The registered model scores raw rows like any other.
    model = mlflow.pyfunc.load_model(f"models:/{spec['registered_model_name']}/{run.result['model_version']}")
    rows = data.binary(n=400, seed=11)
    labels = model.predict(rows.drop(columns=["churned"]))
    assert set(np.asarray(labels).tolist()) <= {"yes", "no"}
    assert float(np.mean(np.asarray(labels) == rows["churned"].to_numpy())) > 0.7
    proba = model.predict(rows.drop(columns=["churned"]), params={"predict_method": "predict_proba"})
    assert isinstance(proba, pd.DataFrame) and list(proba.columns) == ["no", "yes"]


def test_xgboost_regressor_on_the_cluster(
    pg_url: str, mlflow_uri: str, tmp_path: Path, dask_cluster: DaskCluster
) -> None:
    write_table(pg_url, "dask_regression", data.regression(n=30000, seed=4))
    spec = make_spec(
        source_table="dask_regression",
        label_column="spend",
        problem_type="regression",
        algorithm="xgboost_regressor",
        tuning={"trials": 2, "time_budget_minutes": 5},
    )
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    # Over the trainer's own memory limit: the estimate sends the table to the cluster.
    env.update({"DASK_SCHEDULER_ADDRESS": dask_cluster.address, "AUTOML_TRAINER_MAX_MEMORY": "300MiB"})
    run = run_trainer(env, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    params = _run(spec["job_id"]).data.params
    assert params["engine"] == "dask"
    assert params["engine_reason"].startswith("the memory estimate (")
    assert params["engine_reason"].endswith("is over AUTOML_TRAINER_MAX_MEMORY 300.0 MiB")
    assert run.result["metrics"]["rmse"] < 1.0  # the target's spread is about 3.5; its noise 0.5
    model = mlflow.pyfunc.load_model(f"models:/{spec['registered_model_name']}/{run.result['model_version']}")
    rows = data.regression(n=300, seed=12)
    predicted = np.asarray(model.predict(rows.drop(columns=["spend"])), dtype=np.float64)
    assert float(np.sqrt(np.mean((predicted - rows["spend"].to_numpy()) ** 2))) < 1.0


def test_multiclass_classifier_on_the_cluster(
    pg_url: str, mlflow_uri: str, tmp_path: Path, dask_cluster: DaskCluster
) -> None:
    write_table(pg_url, "dask_multiclass", data.multiclass(n=20000, seed=9))
    spec = make_spec(
        source_table="dask_multiclass",
        label_column="segment",
        problem_type="multiclass_classification",
        tuning={"trials": 1, "time_budget_minutes": 5},
    )
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    env.update({"DASK_SCHEDULER_ADDRESS": dask_cluster.address, "AUTOML_DASK_FORCE": "1"})
    run = run_trainer(env, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    assert "n_jobs will be ignored" not in run.stderr
    assert _run(spec["job_id"]).data.params["engine"] == "dask"
    assert run.result["metrics"]["accuracy"] > 0.6  # three classes
    model = mlflow.pyfunc.load_model(f"models:/{spec['registered_model_name']}/{run.result['model_version']}")
    rows = data.multiclass(n=300, seed=13)
    proba = model.predict(rows.drop(columns=["segment"]), params={"predict_method": "predict_proba"})
    assert sorted(proba.columns) == ["bronze", "gold", "silver"]
    assert np.allclose(proba.to_numpy().sum(axis=1), 1.0)


def test_unreachable_scheduler_fails_the_job(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "dask_nowhere", data.binary(n=2000, seed=5))
    spec = make_spec(source_table="dask_nowhere", label_column="churned")
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    env.update({"DASK_SCHEDULER_ADDRESS": address, "AUTOML_DASK_FORCE": "1"})
    run = run_trainer(env, tmp_path)
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.last_error_line.startswith(f"error: Dask scheduler {address} (DASK_SCHEDULER_ADDRESS) is unreachable")
    assert _run(spec["job_id"]).info.status == "FAILED"


def test_refused_table_the_cluster_cannot_train_fails_saying_why(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "dask_vw", data.binary(n=2000, seed=8))
    spec = make_spec(source_table="dask_vw", label_column="churned", algorithm="vw_classifier")
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    env.update({"DASK_SCHEDULER_ADDRESS": f"tcp://127.0.0.1:{free_port()}", "AUTOML_TRAINER_MAX_MEMORY": "300MiB"})
    run = run_trainer(env, tmp_path)
    assert run.returncode == 1, run.stderr[-2000:]
    line = run.last_error_line
    assert line.startswith("error: table dask_vw (")
    assert line.endswith(
        "over AUTOML_TRAINER_MAX_MEMORY 300.0 MiB; the Dask cluster trains LightGBM and XGBoost classifiers and "
        "regressors only"
    )
    assert _run(spec["job_id"]).info.status == "FAILED"


def test_without_a_cluster_nothing_changes(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "dask_none", data.binary(n=2000, seed=6))
    spec = make_spec(source_table="dask_none", label_column="churned", tuning={"trials": 1, "time_budget_minutes": 5})
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    env["AUTOML_DASK_FORCE"] = "1"  # no scheduler address: forcing means nothing
    run = run_trainer(env, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert _run(spec["job_id"]).data.params["engine"] == "single node"


def test_worker_lost_mid_training_fails_the_job(
    pg_url: str, mlflow_uri: str, tmp_path: Path, dask_cluster: DaskCluster
) -> None:
    write_table(pg_url, "dask_lost", data.binary(n=60000, seed=7))
    spec = make_spec(source_table="dask_lost", label_column="churned", tuning={"trials": 1, "time_budget_minutes": 5})
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    env.update({"DASK_SCHEDULER_ADDRESS": dask_cluster.address, "AUTOML_DASK_FORCE": "1"})
    lost = dask_cluster.worker_addresses()
    t0 = time.monotonic()
    process, out, err = start_trainer(env, tmp_path)
    deadline = time.monotonic() + 180
    while "training the final model across the Dask cluster" not in err.read_text():
        assert process.poll() is None, err.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = dask_cluster.workers[1]
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its nanny: gone, as a lost machine is
    run = finish_trainer(process, out, err, env, t0, timeout=240)
    assert run.returncode == 1, run.stderr[-3000:]
    line = run.last_error_line
    assert line.startswith("error: Dask worker tcp://127.0.0.1:"), run.stderr[-3000:]
    assert "was lost while training the final model" in line
    survivors = set(dask_cluster.worker_addresses())
    assert len(survivors) == 1 and survivors < set(lost)
    assert _run(spec["job_id"]).info.status == "FAILED"
    assert run.seconds < 120
    # The job's tasks are released with its client: none is left running on the survivor.
    from distributed import Client

    with Client(dask_cluster.address, timeout=10, set_as_default=False) as client:
        deadline = time.monotonic() + 30
        while any(client.processing().values()):
            assert time.monotonic() < deadline, client.processing()
            time.sleep(0.5)


def test_partition_over_its_workers_memory_fails_the_job(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    # A table whose statistics say 1,000 rows (analysed before most of its rows came): the partitions, sized from
    # that estimate, are far larger than a worker's memory limit.
    columns = [f"x{i}" for i in range(8)]
    values = ", ".join("random()" for _ in columns)
    with psycopg2.connect(pg_url.replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE dask_stale ({', '.join(f'{c} double precision' for c in columns)}, label integer) "
            "WITH (autovacuum_enabled = false)"
        )
        cursor.execute(f"INSERT INTO dask_stale SELECT {values}, (random() < 0.5)::int FROM generate_series(1, 1000)")
        cursor.execute("ANALYZE dask_stale")
        cursor.execute(
            f"INSERT INTO dask_stale SELECT {values}, (random() < 0.5)::int FROM generate_series(1, {STALE_ROWS})"
        )
    cluster = start_cluster(
        tmp_path / "dask",
        WORKER_LIMIT,
        # No spilling or pausing: the nanny's restart at 95 % of the limit is what these workers do.
        DASK_DISTRIBUTED__WORKER__MEMORY__TARGET="False",
        DASK_DISTRIBUTED__WORKER__MEMORY__SPILL="False",
        DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE="False",
    )
    try:
        spec = make_spec(
            source_table="dask_stale", label_column="label", tuning={"trials": 1, "time_budget_minutes": 5}
        )
        env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
        env.update({"DASK_SCHEDULER_ADDRESS": cluster.address, "AUTOML_DASK_FORCE": "1"})
        run = run_trainer(env, tmp_path)
    finally:
        stop_cluster(cluster)
    assert run.returncode == 1, run.stderr[-3000:]
    line = run.last_error_line
    assert line.startswith(
        "error: a partition of table dask_stale did not fit its Dask worker's memory while reading table dask_stale"
    ), run.stderr[-3000:]
    assert "at its memory limit" in line and "1,000 rows" in line
    assert _run(spec["job_id"]).info.status == "FAILED"

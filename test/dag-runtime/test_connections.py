"""The trainer's secrets: read from Airflow Connections when a task runs, masked in the task log, given to the pod
only when it executes."""

from __future__ import annotations

import json

import pytest

import training_runtime
from conftest import JobFactory, StubAirflow, StubConnection


def test_the_source_url_is_the_connections_uri_in_sqlalchemys_spelling(
    make_job: JobFactory, airflow: StubAirflow
) -> None:
    assert make_job()._source_url() == "postgresql://trainer:source-secret@db:5432/warehouse"
    airflow.connections["automl_source"] = StubConnection(uri="trino://user@trino:8080/hive")
    assert make_job()._source_url() == "trino://user@trino:8080/hive"


@pytest.mark.parametrize(
    ("connection", "uri"),
    [
        (StubConnection(conn_type="http", host="mlflow", port=5000), "http://mlflow:5000"),
        (StubConnection(conn_type="https", host="mlflow.example"), "https://mlflow.example"),
        (StubConnection(conn_type="generic", host="mlflow", schema="https"), "https://mlflow"),
        (StubConnection(conn_type="http", host="mlflow", port=80, schema="/tracking/"), "http://mlflow:80/tracking"),
        (StubConnection(conn_type="http", host="https://mlflow.example/", port=8443), "https://mlflow.example:8443"),
        (
            StubConnection(conn_type="http", host="ignored", extra=json.dumps({"tracking_uri": "databricks"})),
            "databricks",
        ),
    ],
)
def test_the_mlflow_tracking_uri_comes_from_the_connection(
    make_job: JobFactory, airflow: StubAirflow, connection: StubConnection, uri: str
) -> None:
    airflow.connections["automl_mlflow"] = connection
    assert make_job()._mlflow_env() == {"MLFLOW_TRACKING_URI": uri}


def test_an_mlflow_connection_without_a_host_is_refused(make_job: JobFactory, airflow: StubAirflow) -> None:
    airflow.connections["automl_mlflow"] = StubConnection(conn_type="http")
    with pytest.raises(RuntimeError, match="'automl_mlflow' has no host"):
        make_job()._mlflow_env()


def test_a_connection_that_cannot_be_read_is_named_without_the_cause_text(
    make_job: JobFactory, airflow: StubAirflow
) -> None:
    del airflow.connections["automl_source"]
    with pytest.raises(RuntimeError) as failed:
        make_job().trainer_secrets()
    assert str(failed.value).startswith("Airflow Connection 'automl_source' could not be read (KeyError); create it")
    assert failed.value.__suppress_context__


def test_the_secrets_are_masked_and_the_rest_is_not(make_job: JobFactory, airflow: StubAirflow) -> None:
    secrets = make_job().trainer_secrets()
    assert secrets == {
        "AUTOML_SOURCE_URL": "postgresql://trainer:source-secret@db:5432/warehouse",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLFLOW_TRACKING_USERNAME": "ml",
        "MLFLOW_TRACKING_PASSWORD": "mlflow-secret",
    }
    assert airflow.masked == ["postgresql://trainer:source-secret@db:5432/warehouse", "mlflow-secret"]


def test_the_pod_gets_its_secrets_when_it_executes_not_in_the_dag(make_job: JobFactory, airflow: StubAirflow) -> None:
    job = make_job(training_image="registry.example/automl-trainer:1", job_spec_gz_b64="H4sIAAAA")
    task = job.train_task()
    assert task.kwargs["image"] == "registry.example/automl-trainer:1"
    assert task.kwargs["do_xcom_push"] is True
    rendered = {"AUTOML_JOB_SPEC_GZ_B64": "H4sIAAAA", "AUTOML_RESULT_PATH": training_runtime.CONTAINER_RESULT_PATH}
    assert task.kwargs["env_vars"] == rendered
    assert airflow.masked == []  # no Connection is read while the DAG file is parsed
    executed = task.execute({})
    assert executed["env_vars"] == {**rendered, **job.trainer_secrets()}
    assert "mlflow-secret" in airflow.masked


def test_with_a_pod_secret_the_pod_reads_its_credentials_by_reference_and_no_connection_is_read(
    make_job: JobFactory, airflow: StubAirflow
) -> None:
    job = make_job(
        training_image="registry.example/automl-trainer:1",
        job_spec_gz_b64="H4sIAAAA",
        pod={"namespace": "automl", "service_account": "automl-trainer", "secret": "automl-trainer-credentials"},
    )
    task = job.train_task()
    assert [(s.deploy_type, s.deploy_target, s.secret, s.key) for s in task.kwargs["secrets"]] == [
        ("env", key, "automl-trainer-credentials", key) for key in training_runtime.POD_SECRET_KEYS
    ]
    assert (task.kwargs["namespace"], task.kwargs["service_account_name"]) == ("automl", "automl-trainer")
    assert task.kwargs["on_finish_action"] == "delete_pod"
    executed = task.execute({})
    assert executed["env_vars"] == task.kwargs["env_vars"]  # only the spec and the result path
    assert airflow.masked == []


@pytest.mark.parametrize(
    ("preset", "memory_limit"), [("fast", "4Gi"), ("balanced", "8Gi"), ("best_quality", "16Gi"), ("other", "8Gi")]
)
def test_the_pod_requests_and_limits_follow_the_preset(make_job: JobFactory, preset: str, memory_limit: str) -> None:
    job = make_job(training_image="registry.example/automl-trainer:1", job_spec_gz_b64="H4sIAAAA")
    job.job_spec["preset"] = preset
    resources = job.train_task().kwargs["container_resources"]
    assert resources.limits == {"memory": memory_limit}
    assert set(resources.requests) == {"cpu", "memory"}


def test_a_dag_without_an_image_has_no_pod_environment(make_job: JobFactory) -> None:
    with pytest.raises(RuntimeError, match="without TRAINING_IMAGE"):
        make_job().container_spec_env()


def test_with_env_adds_to_a_dict_of_env_vars() -> None:
    assert training_runtime.with_env({"A": "1", "B": "2"}, {"B": "3", "C": "4"}) == {"A": "1", "B": "3", "C": "4"}


@pytest.mark.parametrize(
    ("connection", "address"),
    [
        (StubConnection(conn_type="generic", host="dask-scheduler"), "tcp://dask-scheduler:8786"),
        (StubConnection(conn_type="generic", host="10.0.0.5", port=9786), "tcp://10.0.0.5:9786"),
        (StubConnection(conn_type="generic", host="dask.example", port=8786, schema="tls"), "tls://dask.example:8786"),
        (StubConnection(conn_type="generic", host="tcp://dask:8786/"), "tcp://dask:8786"),
        (
            StubConnection(conn_type="generic", host="ignored", extra=json.dumps({"address": "ucx://10.0.0.9:8786"})),
            "ucx://10.0.0.9:8786",
        ),
    ],
)
def test_the_dask_scheduler_address_comes_from_its_optional_connection(
    make_job: JobFactory, airflow: StubAirflow, connection: StubConnection, address: str
) -> None:
    airflow.connections["automl_dask"] = connection
    job = make_job(dask_conn_id="automl_dask")
    assert job.dask_env() == {"DASK_SCHEDULER_ADDRESS": address}
    env = job.trainer_environment("/w/spec.json", "/w/result.json")
    assert env["DASK_SCHEDULER_ADDRESS"] == address


def test_without_a_dask_connection_the_trainer_has_the_workers_address_or_none(
    make_job: JobFactory, airflow: StubAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(dask_conn_id="automl_dask")  # no such Connection: one worker
    assert job.dask_env() == {}
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert "DASK_SCHEDULER_ADDRESS" not in job.trainer_environment("/w/spec.json", "/w/result.json")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://worker-side:8786")
    assert job.trainer_environment("/w/s.json", "/w/r.json")["DASK_SCHEDULER_ADDRESS"] == "tcp://worker-side:8786"
    airflow.connections["automl_dask"] = StubConnection(conn_type="generic", host="from-connection")
    assert job.trainer_environment("/w/s.json", "/w/r.json")["DASK_SCHEDULER_ADDRESS"] == "tcp://from-connection:8786"


def test_a_dask_connection_without_a_host_is_refused(make_job: JobFactory, airflow: StubAirflow) -> None:
    airflow.connections["automl_dask"] = StubConnection(conn_type="generic")
    with pytest.raises(RuntimeError, match="'automl_dask' has no host"):
        make_job(dask_conn_id="automl_dask").dask_env()


def test_the_pod_gets_the_dask_address_when_it_executes(make_job: JobFactory, airflow: StubAirflow) -> None:
    airflow.connections["automl_dask"] = StubConnection(conn_type="generic", host="dask-scheduler")
    job = make_job(
        training_image="registry.example/automl-trainer:1",
        job_spec_gz_b64="H4sIAAAA",
        pod={"secret": "automl-trainer-credentials"},
        dask_conn_id="automl_dask",
    )
    task = job.train_task()
    assert "DASK_SCHEDULER_ADDRESS" not in task.kwargs["env_vars"]  # nothing is read while the DAG is parsed
    executed = task.execute({})
    assert executed["env_vars"] == {**task.kwargs["env_vars"], "DASK_SCHEDULER_ADDRESS": "tcp://dask-scheduler:8786"}

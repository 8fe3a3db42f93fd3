"""The writeback callbacks: the PSK header, the payload and its caps, the failure callback's retries."""

from __future__ import annotations

import logging
import math
import socket
import types
import urllib.error
from datetime import timedelta
from typing import Any

import pytest

import training_runtime
from conftest import CallbackServer, JobFactory, StubAirflow


class TaskInstance:
    """What report_complete and report_failure read of Airflow's task instance."""

    def __init__(self, task_id: str = "train", xcom: Any = None) -> None:
        self.task_id = task_id
        self.xcom = xcom

    def xcom_pull(self, task_ids: str) -> Any:
        assert task_ids == "train"
        return self.xcom


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The failure callback's waits between attempts, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(training_runtime, "time", types.SimpleNamespace(sleep=waits.append))
    return waits


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/automl-training/jobs/j1/status"


def test_writeback_puts_the_status_with_the_psk_of_the_variable_read_at_each_call(
    make_job: JobFactory, airflow: StubAirflow, callback_server: CallbackServer
) -> None:
    job = make_job(callback_url=callback_server.url)
    assert airflow.variable_reads == []  # nothing is read while the DAG file is parsed
    job.report_running()
    airflow.variables["automl_psk"] = "psk-rotated"
    job.report_running()
    first, second = callback_server.received
    assert first.method == "PUT"
    assert first.path == "/automl-training/jobs/j1/status"
    assert first.body == {"status": "running"}
    assert first.headers["content-type"] == "application/json"
    assert first.headers["authorization-psk"] == "psk-0123456789"
    assert second.headers["authorization-psk"] == "psk-rotated"
    assert airflow.variable_reads == ["automl_psk", "automl_psk"]


def test_the_psk_is_never_logged_nor_in_a_refusal(
    make_job: JobFactory, callback_server: CallbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job = make_job(callback_url=callback_server.url)
    job.report_running()
    callback_server.answers.append((401, "wrong PSK"))
    with pytest.raises(training_runtime.WritebackRefused) as refused:
        job.report_running()
    assert "psk-0123456789" not in caplog.text
    assert "psk-0123456789" not in str(refused.value)
    assert str(refused.value) == "writeback 'running' refused with HTTP 401: wrong PSK"
    assert refused.value.code == 401


def test_a_refusal_keeps_the_first_2000_bytes_of_the_answer(
    make_job: JobFactory, callback_server: CallbackServer
) -> None:
    callback_server.answers.append((409, "x" * 5000))
    with pytest.raises(training_runtime.WritebackRefused) as refused:
        make_job(callback_url=callback_server.url).report_running()
    assert str(refused.value).endswith(": " + "x" * 2000)


def test_report_complete_sends_the_result_summary(make_job: JobFactory, callback_server: CallbackServer) -> None:
    result = {
        "mlflow_run_id": "run-1",
        "registered_model_name": "marketing.churn_v2",
        "model_version": 7,
        "objective": "roc_auc",
        "metrics": {"roc_auc": 0.91, "rows": 1200},
        "best_params": {"num_leaves": 31},
    }
    make_job(callback_url=callback_server.url).report_complete(ti=TaskInstance(xcom=result))
    assert callback_server.received[0].body == {
        "status": "complete",
        "mlflow_run_id": "run-1",
        "registered_model_name": "marketing.churn_v2",
        "model_version": "7",
        "objective": "roc_auc",
        "metrics": {"roc_auc": 0.91, "rows": 1200},
    }


def test_report_complete_without_a_result_names_the_jobs_model(
    make_job: JobFactory, callback_server: CallbackServer
) -> None:
    make_job(callback_url=callback_server.url).report_complete(ti=TaskInstance(xcom=None))
    assert callback_server.received[0].body == {"status": "complete", "registered_model_name": "marketing.churn"}


def test_report_complete_keeps_what_the_service_accepts(make_job: JobFactory, callback_server: CallbackServer) -> None:
    limit = training_runtime.MAX_NAME_LENGTH
    metrics: dict[str, Any] = {
        "": 1.0,
        "n" * limit: 1.0,
        "n" * (limit + 1): 1.0,
        "flag": True,
        "text": "0.5",
        "nan": math.nan,
        "inf": math.inf,
        "none": None,
    }
    metrics.update({f"m{index:03d}": float(index) for index in range(training_runtime.MAX_METRICS + 20)})
    result = {"model_version": "v" * (limit + 10), "objective": "o" * (limit + 10), "metrics": metrics}
    make_job(callback_url=callback_server.url).report_complete(ti=TaskInstance(xcom=result))
    body = callback_server.received[0].body
    assert body["model_version"] == "v" * limit
    assert body["objective"] == "o" * limit
    kept = body["metrics"]
    assert len(kept) == training_runtime.MAX_METRICS
    assert list(kept)[:2] == ["n" * limit, "m000"]  # the first ones that pass, in the result's order
    assert not {"", "n" * (limit + 1), "flag", "text", "nan", "inf", "none"} & set(kept)


@pytest.mark.parametrize("metrics", [None, [], {"nan": math.nan}, "0.9"])
def test_report_complete_leaves_metrics_out_when_none_pass(
    make_job: JobFactory, callback_server: CallbackServer, metrics: Any
) -> None:
    make_job(callback_url=callback_server.url).report_complete(ti=TaskInstance(xcom={"metrics": metrics}))
    assert "metrics" not in callback_server.received[0].body


def test_report_failure_sends_the_task_and_its_error_cut_at_4000_characters(
    make_job: JobFactory, callback_server: CallbackServer, sleeps: list[float]
) -> None:
    job = make_job(callback_url=callback_server.url)
    job.report_failure({"exception": RuntimeError("boom " * 1000), "task_instance": TaskInstance("train")})
    job.report_failure({})
    first, second = (received.body for received in callback_server.received)
    assert first["status"] == "failed"
    assert first["error_message"].startswith("train: boom boom")
    assert len(first["error_message"]) == 4000
    assert second == {"status": "failed", "error_message": "unknown task: failed"}
    assert sleeps == []


def test_report_failure_retries_server_errors_with_growing_waits(
    make_job: JobFactory, callback_server: CallbackServer, sleeps: list[float]
) -> None:
    callback_server.answers.extend([(503, "busy"), (502, "bad gateway")])
    make_job(callback_url=callback_server.url).report_failure({"exception": RuntimeError("boom")})
    assert len(callback_server.received) == 3
    assert sleeps == [2, 4]


def test_report_failure_gives_up_after_its_attempts(
    make_job: JobFactory, callback_server: CallbackServer, sleeps: list[float]
) -> None:
    callback_server.answers.extend([(500, "down")] * 5)
    with pytest.raises(training_runtime.WritebackRefused) as refused:
        make_job(callback_url=callback_server.url).report_failure({"exception": RuntimeError("boom")})
    assert refused.value.code == 500
    assert len(callback_server.received) == training_runtime.FAILURE_CALLBACK_ATTEMPTS
    assert sleeps == [2, 4]


def test_report_failure_does_not_retry_a_client_error(
    make_job: JobFactory, callback_server: CallbackServer, sleeps: list[float]
) -> None:
    callback_server.answers.append((401, "wrong PSK"))
    with pytest.raises(training_runtime.WritebackRefused):
        make_job(callback_url=callback_server.url).report_failure({"exception": RuntimeError("boom")})
    assert len(callback_server.received) == 1
    assert sleeps == []


def test_report_failure_retries_an_unreachable_service(make_job: JobFactory, sleeps: list[float]) -> None:
    with pytest.raises(urllib.error.URLError):
        make_job(callback_url=closed_port_url()).report_failure({"exception": RuntimeError("boom")})
    assert sleeps == [2, 4]


def test_the_complete_callback_task_retries_briefly_with_backoff(make_job: JobFactory) -> None:
    job = make_job()
    complete = job.report_complete_task()
    assert complete.task_id == "report_complete"
    assert complete.python_callable == job.report_complete
    assert complete.kwargs["retries"] == 3
    assert complete.kwargs["retry_exponential_backoff"] is True
    assert complete.kwargs["retry_delay"] == timedelta(seconds=10)
    assert complete.kwargs["max_retry_delay"] == timedelta(seconds=30)
    assert complete.kwargs["execution_timeout"] == timedelta(seconds=60)
    assert training_runtime.CALLBACK_TIMEOUT_SECONDS == 10


def test_report_running_retries_an_unreachable_service(make_job: JobFactory, sleeps: list[float]) -> None:
    with pytest.raises(urllib.error.URLError):
        make_job(callback_url=closed_port_url()).report_running()
    assert sleeps == [5, 10, 15]


def test_report_running_retries_a_5xx_and_stops_at_a_refusal(
    make_job: JobFactory, callback_server: CallbackServer, sleeps: list[float]
) -> None:
    callback_server.answers.extend([(503, "restarting"), (200, "{}")])
    make_job().report_running()
    assert [r.body for r in callback_server.received] == [{"status": "running"}] * 2
    assert sleeps == [5]
    callback_server.answers.append((409, "job is failed"))
    with pytest.raises(training_runtime.WritebackRefused):
        make_job().report_running()
    assert len(callback_server.received) == 3 and sleeps == [5]


def test_dag_arguments_report_any_failure_and_run_once_at_a_time(make_job: JobFactory) -> None:
    job = make_job()
    arguments = job.dag_arguments()
    assert arguments["default_args"] == {"retries": 0, "on_failure_callback": job.report_failure}
    assert arguments["max_active_runs"] == 1
    assert arguments["catchup"] is False
    assert arguments["description"] == "AutoML training: churn"

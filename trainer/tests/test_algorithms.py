"""Every algorithm trains on a real PostgreSQL table with a tiny budget, beats a trivial baseline clearly, is
tracked in a real MLflow server, and its registered version loads with mlflow.pyfunc and predicts new rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from automl_trainer.evaluate import mean_ndcg, random_order_ndcg

from . import data
from .conftest import MEASUREMENTS, TrainerRun, make_spec, run_status, run_trainer, trainer_env, write_table


@dataclass
class Case:
    algorithm: str
    problem: str
    make: Callable[..., pd.DataFrame]
    columns: dict[str, Any]
    table: str = "t"
    schema: str | None = None
    trials: int = 3


CLASSIFIER = {"label_column": "churned"}
MULTI = {"label_column": "segment"}
REGRESSION = {"label_column": "spend"}
RANKING = {"label_column": "relevance", "group_column": "query_id"}
ANOMALY = {"label_column": "is_anomaly"}
BANDIT = {
    "label_column": "clicked",
    "action_column": "shown",
    "reward_column": "clicked",
    "propensity_column": "p_logged",
}

CASES = {
    "lightgbm_classifier-binary": Case(
        "lightgbm_classifier", "binary_classification", data.binary, CLASSIFIER, table="Churn Cases", schema="ml data"
    ),
    "lightgbm_classifier-multiclass": Case("lightgbm_classifier", "multiclass_classification", data.multiclass, MULTI),
    "lightgbm_regressor": Case("lightgbm_regressor", "regression", data.regression, REGRESSION),
    "lightgbm_ranker": Case("lightgbm_ranker", "ranking", data.ranking, RANKING),
    "xgboost_classifier-binary": Case("xgboost_classifier", "binary_classification", data.binary, CLASSIFIER),
    "xgboost_classifier-multiclass": Case("xgboost_classifier", "multiclass_classification", data.multiclass, MULTI),
    "xgboost_regressor": Case("xgboost_regressor", "regression", data.regression, REGRESSION),
    "xgboost_ranker": Case("xgboost_ranker", "ranking", data.ranking, RANKING),
    "isolation_forest": Case("isolation_forest", "anomaly_detection", data.anomaly, ANOMALY),
    "vw_classifier-binary": Case("vw_classifier", "binary_classification", data.binary, CLASSIFIER),
    "vw_classifier-multiclass": Case("vw_classifier", "multiclass_classification", data.multiclass, MULTI),
    "vw_regressor": Case("vw_regressor", "regression", data.regression, REGRESSION),
    "vw_contextual_bandit": Case("vw_contextual_bandit", "contextual_bandit", data.bandit, BANDIT),
}


def baseline_and_check(case: Case, frame: pd.DataFrame, metrics: dict[str, float]) -> tuple[float, float]:
    """(objective value, trivial baseline), asserting the margin the problem type allows."""
    if case.problem.endswith("classification"):  # what a user acts on, on the test and the validation rows
        for name in ("log_loss", "brier", "accuracy", "majority_rate"):
            assert name in metrics and f"validation_{name}" in metrics, name
        assert metrics["validation_accuracy"] > metrics["validation_majority_rate"]
    if case.problem == "binary_classification":
        assert 0.0 < metrics["decision_threshold"] < 1.0
        assert metrics["roc_auc"] >= 0.8
        assert metrics["accuracy"] > (frame["churned"] == "yes").mean() + 0.1 or metrics["accuracy"] > 0.75
        return metrics["roc_auc"], 0.5
    if case.problem == "multiclass_classification":
        priors = frame["segment"].value_counts(normalize=True).to_numpy()
        prior_loss = float(-(priors * np.log(priors)).sum())  # log loss of always predicting the class shares
        assert metrics["log_loss"] < 0.75 * prior_loss
        assert metrics["accuracy"] > priors.max() + 0.15
        return metrics["log_loss"], prior_loss
    if case.problem == "regression":
        std = float(frame["spend"].std())
        assert metrics["rmse"] < 0.7 * std
        assert metrics["r2"] > 0.5
        return metrics["rmse"], std
    if case.problem == "ranking":
        assert metrics["ndcg_at_10"] > metrics["ndcg_at_10_random_order"] + 0.1
        return metrics["ndcg_at_10"], metrics["ndcg_at_10_random_order"]
    if case.problem == "anomaly_detection":
        assert metrics["roc_auc"] >= 0.9
        assert metrics["score_p99"] > metrics["score_p50"]
        return metrics["roc_auc"], 0.5
    assert metrics["policy_value_snips"] > metrics["logged_policy_value"] + 0.15
    assert metrics["policy_value_dr"] > metrics["logged_policy_value"] + 0.15
    return metrics["policy_value_snips"], metrics["logged_policy_value"]


def check_new_rows(case: Case, model: Any, frame: pd.DataFrame) -> None:
    """The registered model predicts raw rows it never saw (the table's own columns, label included and ignored)
    and answers in the table's own values."""
    fresh = case.make(seed=1)
    if case.problem == "ranking":
        fresh = fresh.sort_values("query_id", kind="stable").reset_index(drop=True)
    predictions = np.asarray(model.predict(fresh))
    assert len(predictions) == len(fresh)
    if case.problem in ("binary_classification", "multiclass_classification"):
        label = case.columns["label_column"]
        assert set(predictions) <= set(frame[label])
        accuracy = float((predictions == fresh[label].to_numpy()).mean())
        assert accuracy > (0.75 if case.problem == "binary_classification" else 0.6)
        proba = model.predict(fresh, params={"predict_method": "predict_proba"})
        assert sorted(proba.columns) == sorted(str(c) for c in frame[label].unique())
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        if case.problem == "binary_classification":  # labels: P(second class) at or above the stored threshold
            threshold = model.metadata.get_params_schema().to_dict()
            default = next(p["default"] for p in threshold if p["name"] == "decision_threshold")
            second = str(sorted(frame[label].unique())[1])
            expected = np.where(proba[second] >= default, second, str(sorted(frame[label].unique())[0]))
            assert (expected == predictions.astype(str)).all()
            assert (model.predict(fresh, params={"decision_threshold": 0.0}) == second).all()
        else:
            assert (proba.idxmax(axis=1).to_numpy() == predictions.astype(str)).all()
    elif case.problem == "regression":
        assert predictions.dtype == np.float64
        rmse = float(np.sqrt(np.mean((predictions - fresh["spend"].to_numpy()) ** 2)))
        assert rmse < 0.7 * float(fresh["spend"].std())
    elif case.problem == "ranking":
        groups = pd.factorize(fresh["query_id"])[0]
        y = fresh["relevance"].to_numpy()
        assert mean_ndcg(y, predictions.astype(float), groups, 10) > random_order_ndcg(y, groups, 10) + 0.1
    elif case.problem == "anomaly_detection":
        assert set(np.unique(predictions)) <= {"anomaly", "normal"}
        flagged = predictions == "anomaly"
        truth = fresh["is_anomaly"].to_numpy() == 1
        assert flagged[truth].mean() > flagged[~truth].mean() + 0.5
        scores = np.asarray(model.predict(fresh, params={"predict_method": "score"}))
        assert scores[truth].mean() > scores[~truth].mean()
    else:
        assert (predictions == data.bandit_best_action(fresh)).mean() > 0.6
        rewards = model.predict(fresh, params={"predict_method": "score"})
        assert sorted(rewards.columns) == sorted(frame["shown"].unique())


Trained = tuple[Case, pd.DataFrame, dict[str, Any], TrainerRun]
TEST_NAME = "test_algorithm_trains_tracks_and_registers"


def train_case(case_id: str, pg_url: str, mlflow_uri: str, tmp: Path) -> Trained:
    case = CASES[case_id]
    frame = case.make()
    table = f"{case.table} {case_id}".replace("-", "_") if case.schema else case_id.replace("-", "_")
    write_table(pg_url, table, frame, schema=case.schema)
    spec = make_spec(
        algorithm=case.algorithm,
        problem_type=case.problem,
        source_table=f'"{case.schema}"."{table}"' if case.schema else table,
        tuning={"trials": case.trials, "time_budget_minutes": 5, "unknown_future_key": True},
        **case.columns,
    )
    return case, frame, spec, run_trainer(trainer_env(tmp, pg_url, mlflow_uri, spec), tmp)


@pytest.fixture(scope="session")
def trained(
    request: pytest.FixtureRequest, pg_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Trained]]]:
    """Starts the trainer for every selected case at once, TRAINER_TEST_PARALLEL (default 2) at a time: the runs
    are separate processes that mostly wait on imports and MLflow, so two overlap well on two cores."""
    selected = [
        item.callspec.params["case_id"]
        for item in request.session.items
        if getattr(item, "originalname", None) == TEST_NAME and hasattr(item, "callspec")
    ]
    with ThreadPoolExecutor(max_workers=int(os.environ.get("TRAINER_TEST_PARALLEL", "2"))) as pool:
        yield {
            case_id: pool.submit(train_case, case_id, pg_url, mlflow_uri, tmp_path_factory.mktemp(case_id))
            for case_id in selected
        }


@pytest.mark.parametrize("case_id", list(CASES))
def test_algorithm_trains_tracks_and_registers(
    case_id: str, trained: dict[str, Future[Trained]], tmp_path: Path
) -> None:
    case, frame, spec, run = trained[case_id].result()
    assert run.returncode == 0, run.stderr[-3000:]
    result = run.result
    assert result is not None
    assert set(result) == {
        "mlflow_run_id",
        "registered_model_name",
        "model_version",
        "objective",
        "metrics",
        "trials_run",
        "best_params",
        "time_used_seconds",
        "timings",
        "warnings",
    }
    assert result["warnings"] == [], result["warnings"]  # these tables hold nothing to warn about
    assert result["registered_model_name"] == spec["registered_model_name"]
    assert result["model_version"] == "1"
    assert 1 <= result["trials_run"] <= case.trials
    assert result["best_params"]
    assert 0 < result["time_used_seconds"] < 300
    metrics = result["metrics"]
    value, baseline = baseline_and_check(case, frame, metrics)
    assert metrics[result["objective"]] == value

    client = MlflowClient()
    tracked = client.get_run(result["mlflow_run_id"])
    assert tracked.info.status == "FINISHED"
    assert tracked.data.tags["automl.job_id"] == spec["job_id"]
    assert tracked.data.params["algorithm"] == case.algorithm
    assert tracked.data.metrics[result["objective"]] == pytest.approx(value)
    assert tracked.data.metrics["trials_run"] == result["trials_run"]
    assert any(k.startswith("hp.") for k in tracked.data.params)
    version = client.get_model_version(spec["registered_model_name"], result["model_version"])
    assert version.run_id == result["mlflow_run_id"]
    assert version.status == "READY"
    assert version.tags["automl.job_id"] == spec["job_id"]

    model = mlflow.pyfunc.load_model(f"models:/{spec['registered_model_name']}/{result['model_version']}")
    check_new_rows(case, model, frame)
    report = {a.path for a in client.list_artifacts(result["mlflow_run_id"], "report")}
    assert {"report/feature_importance.json", "report/feature_importance.png"} <= report
    assert len([p for p in report if p.endswith(".png")]) >= 2
    # What serving the model costs, on the job's metrics and the run's.
    assert result["metrics"]["model_size_bytes"] > 0
    assert result["metrics"]["predict_ms_per_1000_rows"] > 0
    assert tracked.data.metrics["model_size_bytes"] == result["metrics"]["model_size_bytes"]

    MEASUREMENTS.append(
        {
            "case": case_id,
            "seconds": round(run.seconds, 2),
            "max_rss_mb": round(run.max_rss_mb, 1),
            "trials_run": result["trials_run"],
            "objective": result["objective"],
            "value": value,
            "baseline": baseline,
            "time_used_seconds": result["time_used_seconds"],
            "status": run_status(result["mlflow_run_id"]),
        }
    )

"""Models that hold up on rows they have not seen, and labels a user can act on: the trainer runs as the DAG runs it
on real PostgreSQL tables built to be hostile, and its registered model scores rows through mlflow.pyfunc.

The hostile tables (one per problem type, from tests/data.py's tables): a constant column, an all-NULL column, a
unique identifier column (text) and a row number, sizes recorded as 0 on a few rows, a column that gives the label
away on a third of the rows, a tenth of the rows duplicated, and for regression a heavy-tailed target. Every
algorithm of every problem type trains on it and scores finitely the table's rows and rows whose numbers lie 10×
beyond anything in training; its test and validation figures agree within the gate's rule, or the job says why.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from automl_trainer.evaluate import OBJECTIVES
from automl_trainer.guard import gate

from . import data
from .conftest import TrainerRun, make_spec, run_trainer, trainer_env, write_table

LABELS = {
    "binary_classification": {"label_column": "churned"},
    "multiclass_classification": {"label_column": "segment"},
    "regression": {"label_column": "spend"},
    "ranking": {"label_column": "relevance", "group_column": "query_id"},
    "anomaly_detection": {"label_column": "is_anomaly"},
    "contextual_bandit": {
        "label_column": "clicked",
        "action_column": "shown",
        "reward_column": "clicked",
        "propensity_column": "p_logged",
    },
}
MAKERS: dict[str, Callable[..., pd.DataFrame]] = {
    "binary_classification": data.binary,
    "multiclass_classification": data.multiclass,
    "regression": data.regression,
    "ranking": data.ranking,
    "anomaly_detection": data.anomaly,
    "contextual_bandit": data.bandit,
}
ALGORITHMS = {
    "binary_classification": ["lightgbm_classifier", "xgboost_classifier", "vw_classifier"],
    "multiclass_classification": ["lightgbm_classifier", "xgboost_classifier", "vw_classifier"],
    "regression": ["lightgbm_regressor", "xgboost_regressor", "vw_regressor"],
    "ranking": ["lightgbm_ranker", "xgboost_ranker"],
    "anomaly_detection": ["isolation_forest"],
    "contextual_bandit": ["vw_contextual_bandit"],
}
CASES = [f"{algorithm}-{problem}" for problem, algorithms in ALGORITHMS.items() for algorithm in algorithms]
NUMBERS = ["feature one", "x2", "size"]


def hostile(problem: str, seed: int = 0) -> pd.DataFrame:
    frame = MAKERS[problem](seed=seed)
    rng = np.random.default_rng(seed + 100)
    n = len(frame)
    size = rng.gamma(3.0, 1.0, n) + 0.5
    if problem == "regression":  # heavy-tailed: a few targets tens of times the median
        frame["spend"] = np.exp(frame["spend"] / 2.5 + 0.5 * np.log(size)).round(4)
    frame["size"] = size
    frame.loc[rng.choice(n, max(3, n // 100), replace=False), "size"] = 0.0  # recorded as 0 on a few rows
    frame["constant"] = 7.0
    frame["empty"] = np.nan
    frame["customer id"] = [f"C{i:07d}" for i in rng.permutation(n)]
    frame["row number"] = np.arange(n)
    label = LABELS[problem].get("label_column") or LABELS[problem]["reward_column"]
    leak = frame[label].astype(str).where(rng.random(n) < 0.33)  # gives the label away on a third of the rows
    frame["hint"] = leak
    if problem != "ranking":  # duplicated rows (a ranking query's rows stay one query)
        frame = pd.concat([frame, frame.sample(frac=0.1, random_state=seed)], ignore_index=True)
    return frame


def beyond(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose numbers lie 10× beyond the training range on either side (and the rest as they were)."""
    rows = frame.head(40).copy()
    for column in NUMBERS:
        low, high = float(frame[column].min()), float(frame[column].max())
        rows[column] = np.where(np.arange(len(rows)) % 2 == 0, high + 10 * (high - low), low - 10 * (high - low))
    return rows


@pytest.fixture(scope="module")
def trained(
    pg_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[tuple[dict[str, Any], pd.DataFrame, TrainerRun]]]]:
    tables = {problem: hostile(problem) for problem in ALGORITHMS}
    for problem, frame in tables.items():
        write_table(pg_url, f"hostile_{problem}", frame)

    def train(case: str) -> tuple[dict[str, Any], pd.DataFrame, TrainerRun]:
        algorithm, problem = case.split("-")
        spec = make_spec(
            algorithm=algorithm,
            problem_type=problem,
            source_table=f"hostile_{problem}",
            tuning={"trials": 4, "time_budget_minutes": 2},
            **LABELS[problem],
        )
        tmp = tmp_path_factory.mktemp(case)
        return spec, tables[problem], run_trainer(trainer_env(tmp, pg_url, mlflow_uri, spec), tmp)

    with ThreadPoolExecutor(max_workers=int(os.environ.get("TRAINER_TEST_PARALLEL", "2"))) as pool:
        yield {case: pool.submit(train, case) for case in CASES}


def _numbers(answer: Any) -> np.ndarray:
    if isinstance(answer, pd.DataFrame):
        return answer.to_numpy(dtype=np.float64)
    return np.asarray(answer, dtype=np.float64)


@pytest.mark.parametrize("case", CASES)
def test_hostile_table_trains_scores_finitely_and_generalises_or_says_why(
    case: str, trained: dict[str, Future[tuple[dict[str, Any], pd.DataFrame, TrainerRun]]]
) -> None:
    spec, frame, run = trained[case].result()
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    problem = spec["problem_type"]
    metrics, warnings = run.result["metrics"], run.result["warnings"]
    model = mlflow.pyfunc.load_model(f"models:/{spec['registered_model_name']}/{run.result['model_version']}")
    far = beyond(frame)
    numeric_method = {
        "binary_classification": "predict_proba",
        "multiclass_classification": "predict_proba",
        "anomaly_detection": "score",
        "contextual_bandit": "score",
    }.get(problem, "predict")
    for rows in (frame, far):
        answer = model.predict(rows, params={"predict_method": numeric_method})
        values = _numbers(answer)
        assert len(values) == len(rows)
        assert np.isfinite(values).all(), case
        labels = model.predict(rows)
        assert len(labels) == len(rows)
    if problem == "regression":  # bounded: within the training targets' range and a tenth of it on either side
        values = _numbers(model.predict(far))
        low, high = float(frame["spend"].min()), float(frame["spend"].max())
        assert values.max() <= high + 0.1 * (high - low) + 1e-6
        assert values.min() >= low - 0.1 * (high - low) - 1e-6
    objective = OBJECTIVES[problem][0]
    valid = metrics.get(f"validation_{objective}")
    failed = gate(problem, valid, metrics.get(f"validation_{objective}_std"), metrics.get(objective), 0.0)
    assert not failed or warnings, (case, metrics)
    if failed:
        assert "warning_test_vs_validation" in metrics


def _trained_job(pg_url: str, mlflow_uri: str, tmp: Path, table: str, frame: pd.DataFrame, **spec: Any) -> Any:
    write_table(pg_url, table, frame)
    job = make_spec(source_table=table, **spec)
    run = run_trainer(trainer_env(tmp, pg_url, mlflow_uri, job), tmp)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    uri = f"models:/{job['registered_model_name']}/{run.result['model_version']}"
    return run.result, mlflow.pyfunc.load_model(uri)


@pytest.mark.parametrize("algorithm", ["xgboost_classifier", "lightgbm_classifier"])
def test_binary_labels_beat_the_majority_and_probabilities_match_the_library_defaults(
    algorithm: str, pg_url: str, mlflow_uri: str, tmp_path: Path
) -> None:
    """The defect as a new user met it: credit card applications, 3:1 accepted, a label column with a name that
    needs quoting, the default objective (ROC AUC). Before, the model labelled every row "yes"."""
    label = "Card Accepted?"
    frame = data.cards().rename(columns={"card": label})
    result, model = _trained_job(
        pg_url, mlflow_uri, tmp_path, f"cards_{algorithm}", frame, algorithm=algorithm,
        problem_type="binary_classification", label_column=label, tuning={"trials": 30, "time_budget_minutes": 1},
    )  # fmt: skip
    metrics = result["metrics"]
    assert result["objective"] == "roc_auc"
    fresh = data.cards(seed=1).rename(columns={label: label})
    fresh = fresh.rename(columns={"card": label})
    truth = fresh.pop(label).to_numpy()
    labels = np.asarray(model.predict(fresh))
    majority = max((truth == "yes").mean(), (truth == "no").mean())
    accuracy = float((labels == truth).mean())
    assert accuracy > majority + 0.1, (accuracy, majority, result["best_params"])
    assert metrics["accuracy"] > metrics["majority_rate"] + 0.1
    assert metrics["validation_accuracy"] > metrics["validation_majority_rate"] + 0.1
    p_yes = model.predict(fresh, params={"predict_method": "predict_proba"})["yes"].to_numpy()
    train = frame.drop(columns=[label])
    y = (frame[label] == "yes").to_numpy(dtype=int)
    import lightgbm
    import xgboost

    reference = (
        xgboost.XGBClassifier(n_jobs=1) if algorithm == "xgboost_classifier" else lightgbm.LGBMClassifier(verbose=-1)
    )
    reference.fit(train.astype(float), y)
    default_loss = log_loss(truth == "yes", np.asarray(reference.predict_proba(fresh.astype(float)))[:, 1])
    ours = log_loss(truth == "yes", p_yes)
    assert ours < 1.25 * default_loss + 0.01, (ours, default_loss)


def test_zero_sizes_do_not_explode_linear_trees(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    """The defect: diamonds whose sizes were recorded as 0 on a few rows fell into leaves whose linear fits
    extrapolated (prices of 35,000-58,000 where none exceeds 18,823). The first trials are the defaults and the
    piecewise-linear starting point, which wins on this smooth target."""
    frame = data.diamonds()
    result, model = _trained_job(
        pg_url, mlflow_uri, tmp_path, "diamonds", frame, algorithm="lightgbm_regressor", problem_type="regression",
        label_column="price", tuning={"trials": 6, "time_budget_minutes": 1},
    )  # fmt: skip
    metrics = result["metrics"]
    fresh = data.diamonds(seed=1, zero_sizes=40)
    truth = fresh.pop("price").to_numpy()
    predicted = np.asarray(model.predict(fresh), dtype=float)
    r2 = 1 - np.sum((predicted - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert r2 >= 0.97, (r2, result["best_params"])
    assert metrics["r2"] >= 0.97 or result["warnings"]
    top = float(frame["price"].max())
    for column in ["carat", "depth", "table", "x", "y", "z"]:  # one numeric column recorded as 0 on every row
        zeroed = fresh.assign(**{column: 0.0})
        assert float(np.max(np.asarray(model.predict(zeroed), dtype=float))) <= 1.5 * top, column
    assert metrics["rmse"] <= 1.5 * metrics["validation_rmse"] or result["warnings"]

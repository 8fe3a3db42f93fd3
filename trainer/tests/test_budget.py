"""A job's time budget holds for the whole run: loading, the search, the final model, evaluation, registration and
the report end within `time_budget_minutes` of the trainer's start (plus BUDGET_TOLERANCE), on a table whose trials
are slow (five folds of ten-class models over 64 columns) and whose report would take longer than the budget left."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_digits

from .conftest import make_spec, run_trainer, trainer_env, write_table

BUDGET_MINUTES = 0.5
BUDGET_TOLERANCE = 0.05
PARTS = {"start", "load", "prepare", "search", "evaluate", "register", "report"}


def digits() -> pd.DataFrame:
    frame: pd.DataFrame = load_digits(as_frame=True).frame
    return frame.rename(columns=lambda name: str(name).replace("-", "_"))


def test_the_whole_run_ends_within_its_budget(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "digits_budget", digits())
    spec = make_spec(
        source_table="digits_budget",
        label_column="target",
        problem_type="multiclass_classification",
        tuning={"trials": 1000, "time_budget_minutes": BUDGET_MINUTES},
    )
    run = run_trainer(trainer_env(tmp_path, pg_url, mlflow_uri, spec), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    budget = BUDGET_MINUTES * 60.0
    # The process, from its start to its exit, and the trainer's own account of it.
    assert run.seconds <= budget * (1 + BUDGET_TOLERANCE), run.stderr[-3000:]
    assert run.result["time_used_seconds"] <= budget * (1 + BUDGET_TOLERANCE)
    timings = run.result["timings"]
    assert set(timings) == PARTS
    assert sum(timings.values()) <= run.result["time_used_seconds"]
    assert timings["search"] > 0.5 * budget  # most of the budget went to the search, not to the tail
    client = MlflowClient()
    metrics = client.get_run(run.result["mlflow_run_id"]).data.metrics
    assert {f"time_{part}_seconds" for part in PARTS} | {"time_used_seconds", "time_budget_seconds"} <= set(metrics)
    # The report is there, cut to the time left: the library's gain for every column, permutation importance on
    # the columns its time reached (the most gain first; none when no time was left), the evaluation charts only if
    # their time remained; the JSON says which.
    local = client.download_artifacts(run.result["mlflow_run_id"], "report/feature_importance.json", str(tmp_path))
    importance = json.loads(Path(local).read_text())
    assert len(importance["features"]) == 64
    assert all(row["gain_share"] is not None for row in importance["features"])
    scored = [row for row in importance["features"] if row["permutation_mean"] is not None]
    assert len(scored) == importance["columns_scored"] <= 64
    gains = [row["gain_share"] for row in importance["features"]]
    assert all(row["gain_share"] >= sorted(gains)[-len(scored)] for row in scored) if scored else True
    assert importance["evaluation_charts"] in ("drawn", "left out: the job's time budget was spent")

"""Model quality against FLAML and AutoGluon: the same tables, the same held-out rows, the same wall budget and
threads, several seeds. Runs in the venv of bench/quality/requirements.lock (FLAML, AutoGluon); the trainer runs as
the DAG runs it (`python -m automl_trainer` in the trainer's own venv, on a PostgreSQL table of the training rows,
tracked in a local MLflow), and its registered model scores the held-out rows through MLflow (score_ours.py).

Environment: BENCH_BUDGET_SECONDS (60), BENCH_THREADS (2), BENCH_SEEDS ("0,1,2"), BENCH_TABLES (all),
BENCH_SYSTEMS ("ours,flaml,autogluon"), BENCH_LABEL (the name "ours" is recorded under; e.g. ours_before),
BENCH_TRAINER_SRC (trainer/src: point it at another checkout's to measure before/after), BENCH_TRAINER_PYTHON
(the trainer venv's python), BENCH_PG (admin URL), BENCH_OUT (bench/quality/results.json; entries of the same
system, table and seed are replaced, others kept).
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
from sklearn import datasets
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
BUDGET = float(os.environ.get("BENCH_BUDGET_SECONDS", "60"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SEEDS = [int(s) for s in os.environ.get("BENCH_SEEDS", "0,1,2").split(",")]
SYSTEMS = os.environ.get("BENCH_SYSTEMS", "ours,flaml,autogluon").split(",")
LABEL = os.environ.get("BENCH_LABEL", "ours")
TRAINER_SRC = Path(os.environ.get("BENCH_TRAINER_SRC", ROOT / "trainer" / "src"))
TRAINER_PYTHON = os.environ.get("BENCH_TRAINER_PYTHON", "")
ADMIN_PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "bench" / "quality" / "results.json"))
DATABASE = "automl_quality_bench"
TEST_SIZE = 0.25


def _sk(loader: Callable[..., Any]) -> pd.DataFrame:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={bunch.target.name: "y"})
    return frame


def _generated_binary(rows: int = 20_000) -> pd.DataFrame:
    X, y = datasets.make_classification(rows, 20, n_informative=8, n_redundant=4, flip_y=0.05, random_state=7)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["y"] = y
    return frame


def _generated_regression(rows: int = 20_000) -> pd.DataFrame:
    X, y = datasets.make_friedman1(rows, n_features=10, noise=1.0, random_state=7)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["y"] = y
    return frame


# name → (problem type, our algorithm, how to make the table). Offline tables scikit-learn ships, plus generated.
TABLES: dict[str, tuple[str, str, Callable[[], pd.DataFrame]]] = {
    "breast_cancer": ("binary_classification", "lightgbm_classifier", lambda: _sk(datasets.load_breast_cancer)),
    "wine": ("multiclass_classification", "lightgbm_classifier", lambda: _sk(datasets.load_wine)),
    "digits": ("multiclass_classification", "lightgbm_classifier", lambda: _sk(datasets.load_digits)),
    "diabetes": ("regression", "lightgbm_regressor", lambda: _sk(datasets.load_diabetes)),
    "synthetic_binary_20k": ("binary_classification", "lightgbm_classifier", _generated_binary),
    "friedman1_20k": ("regression", "lightgbm_regressor", _generated_regression),
    # over 100,000 rows: the holdout path, where the goal is no slower than before at the same budget
    "synthetic_binary_200k": ("binary_classification", "lightgbm_classifier", lambda: _generated_binary(200_000)),
    "friedman1_200k": ("regression", "lightgbm_regressor", lambda: _generated_regression(200_000)),
}
METRIC = {"binary_classification": "roc_auc", "multiclass_classification": "log_loss", "regression": "rmse"}


def score(problem: str, y: np.ndarray, predicted: np.ndarray, classes: list[Any]) -> float:
    if problem == "binary_classification":
        return float(roc_auc_score(y, predicted))
    if problem == "multiclass_classification":
        proba = np.clip(predicted, 1e-15, 1.0)
        return float(log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=classes))
    return float(root_mean_squared_error(y, predicted))


def run_flaml(problem: str, train: pd.DataFrame, test: pd.DataFrame, seed: int, classes: list[Any]) -> np.ndarray:
    from flaml import AutoML

    automl = AutoML()
    task = "regression" if problem == "regression" else "classification"
    metric = {"binary_classification": "roc_auc", "multiclass_classification": "log_loss", "regression": "rmse"}
    automl.fit(
        train.drop(columns="y"), train["y"], task=task, metric=metric[problem], time_budget=BUDGET,
        estimator_list=["lgbm"], n_jobs=THREADS, seed=seed, verbose=0,
    )  # fmt: skip
    X = test.drop(columns="y")
    if problem == "regression":
        return np.asarray(automl.predict(X), dtype=float)
    proba = np.asarray(automl.predict_proba(X))
    return proba[:, 1] if problem == "binary_classification" else proba


def run_autogluon(problem: str, train: pd.DataFrame, test: pd.DataFrame, seed: int, classes: list[Any]) -> np.ndarray:
    from autogluon.tabular import TabularPredictor

    metric = {"binary_classification": "roc_auc", "multiclass_classification": "log_loss",
              "regression": "root_mean_squared_error"}  # fmt: skip
    kind = {"binary_classification": "binary", "multiclass_classification": "multiclass", "regression": "regression"}
    with tempfile.TemporaryDirectory() as directory:
        predictor = TabularPredictor(
            label="y", eval_metric=metric[problem], problem_type=kind[problem], path=directory, verbosity=0
        )
        predictor.fit(train, time_limit=BUDGET, presets="medium_quality", num_cpus=THREADS)
        X = test.drop(columns="y")
        if problem == "regression":
            return np.asarray(predictor.predict(X), dtype=float)
        proba = predictor.predict_proba(X)
        if problem == "binary_classification":
            return np.asarray(proba[classes[1]], dtype=float)
        return np.asarray(proba[classes], dtype=float)


def _load_table(name: str, frame: pd.DataFrame) -> None:
    url = ADMIN_PG.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        types = {c: ("bigint" if pd.api.types.is_integer_dtype(frame[c]) else "double precision") for c in frame}
        columns = ", ".join(f'"{c}" {t}' for c, t in types.items())
        cursor.execute(f'DROP TABLE IF EXISTS "{name}"; CREATE TABLE "{name}" ({columns})')
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False)
        buffer.seek(0)
        cursor.copy_expert(f'COPY "{name}" FROM STDIN WITH (FORMAT csv)', buffer)


def _ensure_database() -> None:
    connection = psycopg2.connect(ADMIN_PG)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    connection.close()


def run_ours(
    problem: str, algorithm: str, train: pd.DataFrame, test: pd.DataFrame, seed: int, classes: list[Any], table: str
) -> tuple[np.ndarray, dict[str, Any]]:
    name = f"{table}_{seed}"
    _load_table(name, train)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        job_id = str(uuid.uuid4())
        spec = {
            "job_id": job_id, "name": name, "source_table": name, "label_column": "y", "feature_columns": None,
            "problem_type": problem, "algorithm": algorithm, "preset": "bench",
            "tuning": {"trials": 1000, "time_budget_minutes": BUDGET / 60.0},
            "mlflow_experiment_name": "quality-bench", "registered_model_name": f"bench-{job_id[:8]}",
        }  # fmt: skip
        (tmp / "spec.json").write_text(json.dumps(spec))
        tracking = f"sqlite:///{tmp / 'mlflow.db'}"
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        env.update(
            {
                "PYTHONPATH": str(TRAINER_SRC),
                "AUTOML_JOB_SPEC_PATH": str(tmp / "spec.json"),
                "AUTOML_RESULT_PATH": str(tmp / "result.json"),
                "AUTOML_SOURCE_URL": ADMIN_PG.rsplit("/", 1)[0] + f"/{DATABASE}",
                "MLFLOW_TRACKING_URI": tracking,
                "AUTOML_TRAINER_THREADS": str(THREADS),
            }
        )
        done = subprocess.run(
            [TRAINER_PYTHON, "-m", "automl_trainer"], env=env, cwd=tmp, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"trainer failed: {done.stderr[-2000:]}")
        result = json.loads((tmp / "result.json").read_text())
        test.drop(columns="y").to_json(tmp / "test.json", orient="table", index=False)
        scored = subprocess.run(
            [TRAINER_PYTHON, str(Path(__file__).with_name("score_ours.py")),
             f"models:/{spec['registered_model_name']}/{result['model_version']}", str(tmp / "test.json"),
             str(tmp / "out.json"), problem, json.dumps(classes)],
            env={**env, "PYTHONPATH": ""}, cwd=tmp, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if scored.returncode != 0:
            raise RuntimeError(f"scoring failed: {scored.stderr[-2000:]}")
        predicted = np.asarray(json.loads((tmp / "out.json").read_text()), dtype=float)
        return predicted, result


def main() -> None:
    if "ours" in SYSTEMS:
        if not TRAINER_PYTHON:
            raise SystemExit("BENCH_TRAINER_PYTHON: the trainer venv's python (bench/quality/run.sh sets it)")
        _ensure_database()
    chosen = os.environ.get("BENCH_TABLES")
    tables = {k: v for k, v in TABLES.items() if not chosen or k in chosen.split(",")}
    existing = json.loads(OUT.read_text()) if OUT.exists() else {"runs": []}
    runs: list[dict[str, Any]] = existing.get("runs", [])
    for table, (problem, algorithm, make) in tables.items():
        frame = make()
        classes = sorted(frame["y"].unique().tolist()) if problem != "regression" else []
        for seed in SEEDS:
            stratify = frame["y"] if problem != "regression" else None
            train, test = train_test_split(frame, test_size=TEST_SIZE, random_state=seed, stratify=stratify)
            for system in SYSTEMS:
                label = LABEL if system == "ours" else system
                t0 = time.monotonic()
                extra: dict[str, Any] = {}
                if system == "ours":
                    predicted, result = run_ours(problem, algorithm, train, test, seed, classes, table)
                    extra = {"trials_run": result["trials_run"], "reported": result["metrics"],
                             "time_used_seconds": result["time_used_seconds"]}  # fmt: skip
                elif system == "flaml":
                    predicted = run_flaml(problem, train, test, seed, classes)
                else:
                    predicted = run_autogluon(problem, train, test, seed, classes)
                value = score(problem, test["y"].to_numpy(), predicted, classes)
                entry = {"table": table, "rows": len(frame), "problem": problem, "seed": seed, "system": label,
                         "metric": METRIC[problem], "value": value, "seconds": round(time.monotonic() - t0, 1),
                         **extra}  # fmt: skip
                print(json.dumps(entry), flush=True)
                runs = [r for r in runs if (r["table"], r["seed"], r["system"]) != (table, seed, label)] + [entry]
                OUT.write_text(json.dumps(_document(runs), indent=1))
    summarise(runs)


def _document(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "budget_seconds": BUDGET,
        "threads": THREADS,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": sorted(runs, key=lambda r: (r["table"], r["system"], r["seed"])),
    }


def summarise(runs: list[dict[str, Any]]) -> None:
    """Per table: each system's mean over seeds, and ours ÷ each reference (higher is better for AUC)."""
    frame = pd.DataFrame(runs)
    if frame.empty:
        return
    mean = frame.groupby(["table", "metric", "system"])["value"].mean().unstack("system")
    print(mean.round(4).to_string())
    for system in [c for c in mean.columns if c.startswith("ours")]:
        for reference in ("flaml", "autogluon"):
            if reference in mean.columns:
                print(f"{system} ÷ {reference}: " + ", ".join(
                    f"{table} {mean.loc[(table, metric), system] / mean.loc[(table, metric), reference]:.3f}"
                    for table, metric in mean.index if not np.isnan(mean.loc[(table, metric), reference])
                ))  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "summary":
        summarise(json.loads(OUT.read_text())["runs"])
    else:
        main()

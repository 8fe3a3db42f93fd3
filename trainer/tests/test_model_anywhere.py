"""The registered model is what a user takes away: one algorithm of each family trains on a real table whose
column names every library used to refuse (spaces, `:`, `,`, `[ ]`, `{ }`, `<`, quotes, non-ASCII), with text,
NULLs, booleans, timestamps and NUMERIC; then, in a virtual environment built only from the model's own
requirements.txt (the trainer not importable there), `models:/<name>/<version>` loads and scores the table's raw
rows, and `mlflow models predict` scores a CSV of them."""

from __future__ import annotations

import decimal
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from .conftest import TrainerRun, make_spec, run_trainer, trainer_env
from .model_env import model_venv

TABLE = "awkward names"
TEMP, COUNT, PRICE, RATE = "temp:max", "a,b", "price[usd]", "rate<1"
SHAPE, QUOTE, CITY, FLAG, WHEN, AMOUNT = "{shape}", 'say "hi"', "straße größe", "with space", "when", "amount"
FEATURES = [TEMP, COUNT, PRICE, RATE, SHAPE, QUOTE, CITY, FLAG, WHEN, AMOUNT]


def awkward_table(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            TEMP: rng.normal(size=n) + 0.001,
            COUNT: rng.integers(0, 5, n),
            PRICE: rng.normal(10, 2, n),
            RATE: rng.random(n) + 0.0001,
            SHAPE: rng.choice(["circle", "square", "triangle"], n),
            QUOTE: rng.choice(["it's", 'a "b"', "c, d"], n).astype(object),
            CITY: rng.choice(["Zürich", "Malmö", "東京"], n),
            FLAG: rng.random(n) < 0.5,
            WHEN: pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h"),
            AMOUNT: [decimal.Decimal(f"{v:.2f}") for v in rng.gamma(2.0, 10.0, n)],
        }
    )
    frame.loc[rng.random(n) < 0.1, PRICE] = np.nan
    frame.loc[rng.random(n) < 0.1, QUOTE] = None
    score = 2 * frame[TEMP] + (frame[SHAPE] == "square") * 1.5 - 0.5 * frame[COUNT] + frame[FLAG] * 0.5
    frame["segment"] = np.where(score > 0.5, "high", np.where(score < -1.0, "low", "mid"))
    frame["bought"] = (score + rng.normal(0, 0.5, n) > 0).astype(int)
    frame["spend"] = 3 * frame[TEMP] + 2 * (frame[SHAPE] == "triangle") + rng.normal(0, 0.3, n)
    return frame


SIZES: list[dict[str, Any]] = []  # written to test-artifacts/model-sizes.json

CASES: dict[str, dict[str, Any]] = {
    "lightgbm_classifier": {"problem_type": "multiclass_classification", "label_column": "segment"},
    "xgboost_classifier": {"problem_type": "binary_classification", "label_column": "bought"},
    "vw_regressor": {"problem_type": "regression", "label_column": "spend"},
    "isolation_forest": {"problem_type": "anomaly_detection", "label_column": None},
}


@pytest.fixture(scope="module")
def table(pg_url: str) -> pd.DataFrame:
    frame = awkward_table()
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as connection:
            frame.to_sql(TABLE, connection, index=False, if_exists="replace", dtype={AMOUNT: sa.Numeric(10, 2)})
    finally:
        engine.dispose()
    return frame


@pytest.fixture(scope="module", autouse=True)
def sizes_file() -> Iterator[None]:
    yield
    target = Path(__file__).resolve().parents[2] / "test-artifacts" / "model-sizes.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(SIZES, indent=1))


@pytest.fixture(scope="module")
def trained(
    table: pd.DataFrame, pg_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[tuple[dict[str, Any], TrainerRun]]]]:
    def train(algorithm: str) -> tuple[dict[str, Any], TrainerRun]:
        tmp = tmp_path_factory.mktemp(algorithm)
        spec = make_spec(
            algorithm=algorithm,
            source_table=f'"{TABLE}"',
            feature_columns=FEATURES,
            tuning={"trials": 2, "time_budget_minutes": 5},
            **CASES[algorithm],
        )
        return spec, run_trainer(trainer_env(tmp, pg_url, mlflow_uri, spec), tmp)

    with ThreadPoolExecutor(max_workers=int(os.environ.get("TRAINER_TEST_PARALLEL", "2"))) as pool:
        yield {algorithm: pool.submit(train, algorithm) for algorithm in CASES}


def raw_rows(pg_url: str, limit: int = 40) -> pd.DataFrame:
    """Rows as a user reads them from the table: pandas through SQLAlchemy, the label columns too."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as connection:
            return pd.read_sql(sa.text(f'SELECT * FROM "{TABLE}" ORDER BY 1 LIMIT {limit}'), connection)
    finally:
        engine.dispose()


@pytest.mark.parametrize("algorithm", list(CASES))
def test_registered_model_scores_raw_rows_in_its_own_environment(
    algorithm: str,
    trained: dict[str, Future[tuple[dict[str, Any], TrainerRun]]],
    pg_url: str,
    mlflow_uri: str,
    table: pd.DataFrame,
    tmp_path: Path,
) -> None:
    spec, run = trained[algorithm].result()
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    uri = f"models:/{spec['registered_model_name']}/{run.result['model_version']}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "model")))
    requirements = (local / "requirements.txt").read_text().split()
    assert not any("automl" in r for r in requirements)
    assert any(r.startswith("mlflow-skinny==") for r in requirements)
    mlmodel = (local / "MLmodel").read_text()
    assert "python_function" in mlmodel
    venv = model_venv(local / "requirements.txt")

    rows = raw_rows(pg_url)
    rows_path = tmp_path / "rows.json"
    rows.to_json(rows_path, orient="table", index=False)  # keeps the dtypes; a pickle would need pyarrow there
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PYTHONPATH": ""}
    answer = subprocess.run(
        [str(venv / "bin" / "python"), str(Path(__file__).with_name("score_anywhere.py")), uri, str(rows_path),
         TEMP, PRICE, SHAPE],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr[-3000:]
    seen = json.loads(answer.stdout.strip().splitlines()[-1])

    assert seen["trainer_importable"] is False
    size = sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
    SIZES.append({"algorithm": algorithm, "model_bytes": size, "load_seconds": round(seen["load_seconds"], 2)})
    print(f"{algorithm}: model {size / 1024:.0f} KiB, import mlflow + load {seen['load_seconds']:.2f} s")
    inputs = {c["name"]: c for c in seen["signature_inputs"]}
    assert list(inputs) == FEATURES  # the table's own names, in its order
    assert inputs[COUNT]["type"] == "long" and inputs[COUNT]["required"] is True
    assert inputs[TEMP]["type"] == "double"
    assert inputs[PRICE]["type"] == "double" and inputs[PRICE]["required"] is False  # it held NULLs
    assert inputs[SHAPE]["type"] == "string" and inputs[QUOTE]["required"] is False
    assert inputs[FLAG]["type"] == "boolean"
    assert inputs[WHEN]["type"] == "Any"  # MLflow's datetime refuses the text CSV and JSON callers send
    assert inputs[AMOUNT]["type"] == "double"  # NUMERIC
    automl = seen["metadata"]["automl"]
    assert (
        automl["model_format"]
        == {
            "lightgbm_classifier": "lightgbm-text",
            "xgboost_classifier": "xgboost-ubjson",
            "vw_regressor": "vowpalwabbit",
            "isolation_forest": "skops",
        }[algorithm]
    )
    assert (local / "artifacts" / automl["model_file"]).exists()

    predicted = seen["predict"]
    assert "values" in predicted, predicted
    assert len(predicted["values"]) == len(rows)
    assert seen["extra_column"] == predicted
    assert "values" in seen["unseen_category"], seen["unseen_category"]
    assert "values" in seen["missing_optional"], seen["missing_optional"]
    assert TEMP in seen["missing_required"]["error"]
    assert "explain" in seen["bad_method"]["error"] and "predict" in seen["bad_method"]["error"]

    problem = CASES[algorithm]["problem_type"]
    label = CASES[algorithm]["label_column"]
    if problem.endswith("classification"):
        classes = sorted(table[label].unique().tolist())
        assert set(predicted["values"]) <= set(classes)
        assert (np.array(predicted["values"]) == rows[label].to_numpy()).mean() > 0.7
        if problem == "binary_classification":
            assert predicted["dtype"] == "int64"  # the table's integer labels, not class indices by accident
            # The decision threshold the trainer chose is stored in the model and applied; a caller may override it.
            params = {p["name"]: p for p in seen["params_schema"]}
            threshold = float(params["decision_threshold"]["default"])
            assert 0.0 < threshold < 1.0
            guard = json.loads((local / "artifacts" / "features.json").read_text())["extra"]["guard"]
            assert guard["threshold"] == pytest.approx(threshold)
            second = seen["predict_proba"]["by_column"][str(classes[1])]
            expected = [classes[1] if p >= threshold else classes[0] for p in second]
            assert predicted["values"] == expected
            assert set(seen["threshold_zero"]["values"]) == {classes[1]}
            assert "decision_threshold" in seen["threshold_bad"]["error"]
        proba = seen["predict_proba"]
        assert sorted(proba["columns"]) == sorted(str(c) for c in classes)
        np.testing.assert_allclose(proba["row_sums"], 1.0, atol=1e-6)
        assert "error" in seen["score"]
    elif problem == "regression":
        assert predicted["dtype"] == "float64"
        rmse = float(np.sqrt(np.mean((np.array(predicted["values"]) - rows["spend"].to_numpy()) ** 2)))
        assert rmse < 0.6 * float(table["spend"].std())
        assert "error" in seen["predict_proba"]
    else:
        assert set(predicted["values"]) <= {"anomaly", "normal"}
        assert seen["score"]["dtype"] == "float64"

    # The MLflow CLI on a CSV of raw rows, in the model's own environment.
    csv = tmp_path / "rows.csv"
    rows[FEATURES].head(8).to_csv(csv, index=False)
    out = tmp_path / "predictions.json"
    cli = subprocess.run(
        [str(venv / "bin" / "mlflow"), "models", "predict", "-m", uri, "-i", str(csv), "-t", "csv",
         "--env-manager", "local", "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    printed = json.loads(out.read_text())["predictions"]
    assert printed == predicted["values"][:8]


def test_an_ensembles_weighted_bag_scores_raw_rows_in_its_own_environment(
    trained: dict[str, Future[tuple[dict[str, Any], TrainerRun]]], pg_url: str, tmp_path: Path
) -> None:
    """An ensemble of trials is registered as a bag of fold models with `bag_weights` in features.json: here the
    multiclass LightGBM job's own bag of five, weighted as the ensemble selection would weight it. In the model's
    own venv it loads and scores raw rows as the trainer's serving code does in-process, and the weights count."""
    spec, run = trained["lightgbm_classifier"].result()
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result is not None
    uri = f"models:/{spec['registered_model_name']}/{run.result['model_version']}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "model")))
    weighted = tmp_path / "weighted"
    shutil.copytree(local, weighted)
    features_path = weighted / "artifacts" / "features.json"
    features = json.loads(features_path.read_text())
    members = features["extra"]["bag"]
    assert len(members) == 5 and "bag_weights" not in features["extra"]  # the CV search's fold models
    features["extra"]["bag_weights"] = [0.6] + [0.4 / (len(members) - 1)] * (len(members) - 1)
    features_path.write_text(json.dumps(features))

    rows = raw_rows(pg_url)
    here = {
        name: mlflow.pyfunc.load_model(str(path)).predict(rows, params={"predict_method": "predict_proba"})
        for name, path in (("plain", local), ("weighted", weighted))
    }
    assert not np.allclose(here["plain"].to_numpy(), here["weighted"].to_numpy())  # the weights count
    rows_path = tmp_path / "rows.json"
    rows.to_json(rows_path, orient="table", index=False)
    venv = model_venv(local / "requirements.txt")
    answer = subprocess.run(
        [str(venv / "bin" / "python"), str(Path(__file__).with_name("score_anywhere.py")), str(weighted),
         str(rows_path), TEMP, PRICE, SHAPE],
        env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr[-3000:]
    seen = json.loads(answer.stdout.strip().splitlines()[-1])
    assert seen["trainer_importable"] is False
    proba = seen["predict_proba"]["by_column"]
    there = np.array([proba[str(c)] for c in here["weighted"].columns]).T
    np.testing.assert_allclose(there, here["weighted"].to_numpy(), rtol=1e-6, atol=1e-9)
    labels = seen["predict"]["values"]
    assert labels == [str(c) for c in here["weighted"].columns[here["weighted"].to_numpy().argmax(axis=1)]]

"""Scores held-out rows with a registered model the way a user does (mlflow.pyfunc on raw rows), in the trainer's
venv without the trainer on the path. Writes a JSON object {"scores": ..., "labels": ...}: scores are P(class 1)
(binary), class probabilities in sorted class order (multiclass) or values (regression); labels are the model's
own answer to the default `predict` (predict_method "predict": the original label values, a binary classifier's
with the decision threshold stored in the model, which is deliberately not overridden), null for regression.
bench/quality/run.py also reads the plain list of scores this script wrote before labels were recorded.

A model from before the raw-rows pyfunc (BENCH_TRAINER_SRC of an older checkout) took the numeric columns as
float64 and returned probabilities or values directly; both kinds are read. Such a model has no labels of its own
(its predict gave probabilities): labels are null for it.

argv: model URI, rows (JSON, orient 'table'), output path, problem type, classes (JSON list).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd


def _labels(answer: Any) -> list[Any]:
    """The default predict's answer as a JSON-ready list (numpy scalars become Python ones)."""
    if isinstance(answer, pd.DataFrame):
        answer = answer.iloc[:, 0]
    return np.asarray(answer).ravel().tolist()


def main() -> None:
    uri, rows_path, out_path, problem, classes_json = sys.argv[1:6]
    classes = json.loads(classes_json)
    model = mlflow.pyfunc.load_model(uri)
    rows = pd.read_json(rows_path, orient="table")
    raw_rows = model.metadata.get_params_schema() is not None  # the self-contained pyfunc declares predict_method
    labels: list[Any] | None = None
    if problem == "regression":
        predicted = np.asarray(model.predict(rows if raw_rows else rows.astype("float64")), dtype=float)
    elif raw_rows:
        proba = model.predict(rows, params={"predict_method": "predict_proba"})
        matrix = np.asarray(proba[[str(c) for c in classes]], dtype=float)
        predicted = matrix[:, 1] if problem == "binary_classification" else matrix
        labels = _labels(model.predict(rows))  # the default predict_method, "predict"
    else:
        predicted = np.asarray(model.predict(rows.astype("float64")), dtype=float)
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump({"scores": predicted.tolist(), "labels": labels}, handle)


if __name__ == "__main__":
    main()

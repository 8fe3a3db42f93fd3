"""Scores held-out rows with a registered model the way a user does (mlflow.pyfunc on raw rows), in the trainer's
venv without the trainer on the path. Writes P(class 1) (binary), class probabilities in sorted class order
(multiclass) or values (regression) as JSON.

A model from before the raw-rows pyfunc (BENCH_TRAINER_SRC of an older checkout) took the numeric columns as
float64 and returned probabilities or values directly; both kinds are read.

argv: model URI, rows (JSON, orient 'table'), output path, problem type, classes (JSON list).
"""

from __future__ import annotations

import json
import sys

import mlflow.pyfunc
import numpy as np
import pandas as pd


def main() -> None:
    uri, rows_path, out_path, problem, classes_json = sys.argv[1:6]
    classes = json.loads(classes_json)
    model = mlflow.pyfunc.load_model(uri)
    rows = pd.read_json(rows_path, orient="table")
    raw_rows = model.metadata.get_params_schema() is not None  # the self-contained pyfunc declares predict_method
    if problem == "regression":
        predicted = np.asarray(model.predict(rows if raw_rows else rows.astype("float64")), dtype=float)
    elif raw_rows:
        proba = model.predict(rows, params={"predict_method": "predict_proba"})
        matrix = np.asarray(proba[[str(c) for c in classes]], dtype=float)
        predicted = matrix[:, 1] if problem == "binary_classification" else matrix
    else:
        predicted = np.asarray(model.predict(rows.astype("float64")), dtype=float)
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(predicted.tolist(), handle)


if __name__ == "__main__":
    main()

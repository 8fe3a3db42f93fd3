"""Run by the interpreter of a model's own venv (tests/model_env.py), never the trainer's: loads a registered model
by its models:/ URI and scores raw rows the way a user would, printing what happened as one JSON object.

argv: model URI, path of the raw rows (read from the source table; JSON, orient 'table', which keeps dtypes), a
required column, an optional column (may be ""), a text column.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd


def attempt(call: Any) -> dict[str, Any]:
    try:
        out = call()
    except Exception as error:  # what the user sees is the point
        return {"error": f"{type(error).__name__}: {error}"}
    if isinstance(out, pd.DataFrame):
        return {
            "columns": [str(c) for c in out.columns],
            "row_sums": out.sum(axis=1).tolist(),
            "rows": len(out),
            "by_column": {str(c): out[c].tolist() for c in out.columns},
        }
    series = pd.Series(out)
    return {"values": series.tolist(), "dtype": str(series.dtype)}


def main() -> None:
    uri, rows_path, required, optional, text = sys.argv[1:6]
    try:
        import automl_trainer  # noqa: F401

        trainer_importable = True
    except ImportError:
        trainer_importable = False
    import time

    t0 = time.monotonic()
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(uri)
    load_seconds = time.monotonic() - t0
    rows: pd.DataFrame = pd.read_json(rows_path, orient="table")
    extra = rows.assign(not_a_feature=1)
    unseen = rows.copy()
    unseen[text] = "a value never seen in training"
    report: dict[str, Any] = {
        "trainer_importable": trainer_importable,
        "load_seconds": load_seconds,
        "predict": attempt(lambda: model.predict(rows)),
        "predict_proba": attempt(lambda: model.predict(rows, params={"predict_method": "predict_proba"})),
        "score": attempt(lambda: model.predict(rows, params={"predict_method": "score"})),
        "bad_method": attempt(lambda: model.predict(rows, params={"predict_method": "explain"})),
        "extra_column": attempt(lambda: model.predict(extra)),
        "unseen_category": attempt(lambda: model.predict(unseen)),
        "missing_required": attempt(lambda: model.predict(rows.drop(columns=[required]))),
        "signature_inputs": [
            {"name": c.name, "type": getattr(c.type, "name", str(c.type)), "required": c.required}
            for c in model.metadata.get_input_schema()
        ],
        "metadata": model.metadata.metadata,
        "params_schema": schema.to_dict() if (schema := model.metadata.get_params_schema()) is not None else None,
        "threshold_zero": attempt(lambda: model.predict(rows, params={"decision_threshold": 0.0})),
        "threshold_one": attempt(lambda: model.predict(rows, params={"decision_threshold": 1.0})),
        "threshold_bad": attempt(lambda: model.predict(rows, params={"decision_threshold": 2.0})),
    }
    if optional:
        report["missing_optional"] = attempt(lambda: model.predict(rows.drop(columns=[optional])))
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()

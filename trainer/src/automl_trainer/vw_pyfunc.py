"""Vowpal Wabbit as an MLflow pyfunc (MLflow has no VW flavour), logged as a model from code.

This file is self-contained (vowpalwabbit, numpy, pandas, mlflow only): MLflow copies it into the model and
runs it at load time, so a consumer needs no automl_trainer package. The trainer imports the same example
formatting from here, so training and serving cannot drift apart.

Input: the prepared feature frame (see preprocessing.json: numeric columns as numbers, categorical columns as
category codes). Output, as the native LightGBM/XGBoost flavours give it: the predicted class index (into
preprocessing.json's "classes") for classifiers, the value for regression, the chosen action index (into
"actions") for the contextual bandit.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

_UNSAFE = re.compile(r"[\s|:]")


def feature_name(column: str) -> str:
    """VW feature names cannot hold whitespace, '|' or ':'."""
    return _UNSAFE.sub("_", column) or "_"


def feature_strings(X: pd.DataFrame, categorical: set[str]) -> list[str]:
    """One VW feature list per row: 'name:value' for numbers, 'name=code' for categories; missing left out."""
    parts: list[np.ndarray] = []
    for column in X.columns:
        name = feature_name(str(column))
        values = X[column].to_numpy(dtype=np.float64)
        present = ~np.isnan(values)
        if column in categorical:
            text = np.array([f"{name}={int(v)}" if ok else "" for v, ok in zip(values, present, strict=True)])
        else:
            text = np.array([f"{name}:{v:.9g}" if ok else "" for v, ok in zip(values, present, strict=True)])
        parts.append(text)
    if not parts:
        return [""] * len(X)
    rows = np.stack(parts, axis=1)
    return [" ".join(t for t in row if t) for row in rows]


def bandit_example(context: str, n_actions: int, label: tuple[int, float, float] | None = None) -> list[str]:
    """A cb_adf multi-line example: shared context, one line per action; label = (action, cost, probability)."""
    lines = [f"shared |s {context}"]
    for a in range(n_actions):
        prefix = f"0:{label[1]:.9g}:{label[2]:.9g} " if label is not None and label[0] == a else ""
        lines.append(f"{prefix}|a action={a}")
    return lines


def predict_raw(workspace: Any, mode: str, rows: list[str], n: int) -> np.ndarray:
    """Binary: P(class 1); multiclass: probabilities (rows x K); regression: values; bandit: cost per action."""
    if mode == "bandit":
        return np.array([workspace.predict(bandit_example(r, n)) for r in rows], dtype=np.float64)
    out = [workspace.predict(f"|f {r}") for r in rows]
    return np.array(out, dtype=np.float64)


try:
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel

    class VowpalWabbitModel(PythonModel):
        def load_context(self, context: Any) -> None:
            import vowpalwabbit

            with open(context.artifacts["meta"], encoding="utf-8") as handle:
                self.meta = json.load(handle)
            args = ["-i", context.artifacts["model"], "--quiet", "-t", *self.meta["predict_args"]]
            self.workspace = vowpalwabbit.Workspace(arg_list=args)

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
            meta = self.meta
            frame = model_input[meta["features"]]
            rows = feature_strings(frame, set(meta["categorical"]))
            mode = meta["mode"]
            raw = predict_raw(self.workspace, mode, rows, len(meta.get("actions") or []))
            if mode == "binary":
                return (raw >= 0.5).astype(np.int64)
            if mode == "multiclass":
                return raw.argmax(axis=1)
            if mode == "bandit":
                return raw.argmin(axis=1)  # VW estimates costs
            return raw

    set_model(VowpalWabbitModel())
except ImportError:  # pragma: no cover  (formatting helpers stay usable without mlflow)
    pass

"""The registered model of a job: the table's raw rows in, the job's answer out (an MLflow pyfunc model from code).

MLflow copies this file into the model and runs it when the model loads, so it is self-contained: numpy, pandas,
mlflow and the one library the model needs (LightGBM, XGBoost, Vowpal Wabbit or scikit-learn with skops), imported
only when a model of that kind loads. The trainer imports the same code (`Features.transform`, the VW example
format, `answer`), so training and serving cannot drift apart.

The model's artifacts: `features` (features.json: every input column with its type, its internal name f0, f1, …,
its categories; the classes or actions; the problem type; what the output means) and `model` (the fitted model
in its library's own format: LightGBM text, XGBoost UBJSON, VW's model file, skops for the isolation forest).

predict(rows, params={"predict_method": m}), m one of:
- "predict" (default): classifiers the original labels; regression values (float64); ranking scores (higher
  ranks first); anomaly detection "anomaly" / "normal"; contextual bandit the chosen action's original value.
- "predict_proba": classifiers, one column per class named by the class (str of the label), rows sum to 1.
- "score": anomaly detection the anomaly score (higher = more abnormal); contextual bandit the estimated reward
  of each action, one column per action named by the action.
A binary classifier also takes params={"decision_threshold": t}: "predict" labels a row with the second class when
its probability is at least t (default: the threshold the trainer chose, stored in the model).

What the trainer fitted after the search (`Guard`, features.json's extra["guard"]) applies to every answer, here as
in the trainer: numeric inputs clipped to the range each had in training; regression values bounded to a margin
around the training targets; class probabilities calibrated; a binary classifier's decision threshold.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

FORMAT = "automl-pyfunc/1"
KINDS = ("number", "boolean", "datetime", "category")
METHODS = {
    "binary_classification": ("predict", "predict_proba"),
    "multiclass_classification": ("predict", "predict_proba"),
    "regression": ("predict",),
    "ranking": ("predict",),
    "anomaly_detection": ("predict", "score"),
    "contextual_bandit": ("predict", "score"),
}
ANOMALY, NORMAL = "anomaly", "normal"
# The one type of a fitted IsolationForest that skops does not trust by default; anything else in the file is refused.
SKOPS_TRUSTED = ["sklearn.tree._tree.Tree"]
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


OUTPUT_MARGIN = 0.1  # regression values stay within the training targets' range widened by this share of it


class InputError(ValueError):
    """Rows the model cannot score; the message names the user's column."""


@dataclass
class Column:
    """One input column: the table's name for it, the internal name the libraries see, how it is encoded."""

    name: str  # the table's column name, as the user wrote it
    key: str  # internal name (f0, f1, …): every library accepts it
    kind: str  # number | boolean | datetime | category
    required: bool = True  # False where the training rows held NULLs: the column may be left out
    categories: list[str] | None = None  # category: the known values (as str); code = index


@dataclass
class Features:
    """How raw rows become the model's numeric input; unseen categories and missing values become NaN."""

    columns: list[Column]

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.columns]

    @property
    def categorical_keys(self) -> list[str]:
        return [c.key for c in self.columns if c.kind == "category"]

    def name_of(self, key: str) -> str:
        return next(c.name for c in self.columns if c.key == key)

    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        absent = [c.name for c in self.columns if c.required and c.name not in raw.columns]
        if absent:
            raise InputError(f"missing input column(s): {', '.join(repr(a) for a in absent)}")
        # float32: half the memory of float64 for the trainer's copies of a big table, and what the libraries
        # bin or store anyway (XGBoost keeps float32); the model rounds its input the same way, so it sees what
        # training saw (a datetime as epoch seconds keeps 2-minute resolution, a number 7 significant digits).
        # One float32 block, written column by column: pandas keeps it as it is (a dict of columns would be
        # copied into a block once more, a second copy of the table at its peak).
        out = np.empty((len(raw), len(self.columns)), dtype=np.float32, order="F")
        for j, column in enumerate(self.columns):
            out[:, j] = encode(raw[column.name], column) if column.name in raw.columns else np.nan
        return pd.DataFrame(out, index=raw.index, columns=self.keys, copy=False)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_json(cls, raw: list[dict[str, Any]]) -> Features:
        return cls([Column(**c) for c in raw])


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def encode(values: pd.Series, column: Column) -> np.ndarray:
    """One raw column as float64 (NaN = missing or unknown)."""
    kind = column.kind
    if kind == "number":
        return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(values.dtype):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)

        def flag(v: Any) -> float:
            if _is_missing(v):
                return np.nan
            text = str(v).strip().lower()
            return 1.0 if text in _TRUE else 0.0 if text in _FALSE else np.nan

        return np.fromiter((flag(v) for v in values), dtype=np.float64, count=len(values))
    if kind == "datetime":
        return datetime_seconds(values)
    # Each distinct value is looked up once (pd.factorize: missing values → -1), then the codes are indexed.
    codes = {v: float(i) for i, v in enumerate(column.categories or [])}
    positions, distinct = pd.factorize(values, use_na_sentinel=True)
    table = np.fromiter((codes.get(category_text(v), np.nan) for v in distinct), dtype=np.float64, count=len(distinct))
    return np.append(table, np.nan)[positions]  # -1 (missing) → the appended NaN


def category_text(value: Any) -> str:
    """The text a category value is known by: integral floats as integers (a NULL-holding int column reads
    as float), everything else as str()."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def datetime_seconds(values: pd.Series) -> np.ndarray:
    """Seconds since the epoch; timezone-aware values in UTC, naive ones taken as UTC; unparseable → NaN."""
    stamps = pd.to_datetime(values, errors="coerce", utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.asarray(seconds, dtype=np.float64)


# Vowpal Wabbit's text format, shared by the trainer and the model.

_VW_UNSAFE = re.compile(r"[\s|:]")


def vw_feature_strings(X: pd.DataFrame, categorical: set[str]) -> list[str]:
    """One VW feature list per row: 'name:value' for numbers, 'name=code' for categories; missing left out."""
    parts: list[np.ndarray] = []
    for column in X.columns:
        name = _VW_UNSAFE.sub("_", str(column)) or "_"
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


def vw_bandit_example(context: str, n_actions: int, label: tuple[int, float, float] | None = None) -> list[str]:
    """A cb_adf multi-line example: shared context, one line per action; label = (action, cost, probability)."""
    lines = [f"shared |s {context}"]
    for a in range(n_actions):
        prefix = f"0:{label[1]:.9g}:{label[2]:.9g} " if label is not None and label[0] == a else ""
        lines.append(f"{prefix}|a action={a}")
    return lines


def vw_predict(workspace: Any, mode: str, rows: list[str], n_actions: int) -> np.ndarray:
    """Binary: P(class 1); multiclass: probabilities (rows × K); regression: values; bandit: cost per action."""
    if mode == "bandit":
        return np.array([workspace.predict(vw_bandit_example(r, n_actions)) for r in rows], dtype=np.float64)
    return np.array([workspace.predict(f"|f {r}") for r in rows], dtype=np.float64)


@dataclass
class Meta:
    """features.json: everything besides the fitted model that turns rows into answers."""

    problem: str
    algorithm: str
    library: str  # lightgbm | xgboost | vowpalwabbit | sklearn
    model_format: str  # lightgbm-text | xgboost-ubjson | vowpalwabbit | skops
    features: Features
    classes: list[Any] | None = None  # classifiers: label values; class index i = classes[i]
    actions: list[Any] | None = None  # bandit: action values; action index i = actions[i]
    label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # VW args/mode, isolation forest medians, a bag's files
    format: str = FORMAT

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = self.features.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Meta:
        return cls(**{**raw, "features": Features.from_json(raw["features"])})


@dataclass
class Guard:
    """What the trainer fitted after the search and every answer goes through (trainer and registered model alike).

    - input_range: internal name → [min, max] of a number or datetime feature on the training rows; inputs beyond
      it are clipped to it (no model extrapolates past what it saw; trees with constant leaves answer the same).
    - output_range: regression, [low, high]: values are bounded to it (the training targets' range widened by
      OUTPUT_MARGIN of it on each side), so a model that extrapolates inside the inputs' range still cannot give
      an answer far from anything it learned.
    - calibration: classifiers, {"method": "platt" | "temperature", "a", "b"}: P(class 1) becomes
      sigmoid(a·logit(p) + b) (binary; temperature: b = 0), class probabilities softmax(a·log p) (multiclass).
    - threshold: binary, the decision threshold on the calibrated P(class 1).
    """

    input_range: dict[str, list[float]] = field(default_factory=dict)
    output_range: list[float] | None = None
    calibration: dict[str, Any] | None = None
    threshold: float | None = None

    def inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        bounded = [k for k in X.columns if k in self.input_range]
        if not bounded:
            return X
        out = X.copy()
        for key in bounded:
            low, high = self.input_range[key]
            out[key] = np.clip(out[key].to_numpy(), low, high)  # NaN stays NaN (missing)
        return out

    def scores(self, scores: np.ndarray) -> np.ndarray:
        """Library scores as the model answers them: bounded values, calibrated probabilities."""
        if self.output_range is not None:
            return np.clip(np.asarray(scores, dtype=np.float64), self.output_range[0], self.output_range[1])
        if self.calibration is not None:
            return calibrate(scores, self.calibration)
        return scores

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Guard:
        return cls(**(raw or {}))


def calibrate(scores: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """P(class 1) (one dimension) or class probabilities (rows × K) through the fitted calibration."""
    a, b = float(calibration["a"]), float(calibration.get("b", 0.0))
    if scores.ndim == 1:
        p = np.clip(np.asarray(scores, dtype=np.float64), 1e-15, 1 - 1e-15)
        return 1.0 / (1.0 + np.exp(-(a * np.log(p / (1.0 - p)) + b)))
    logits = a * np.log(np.clip(np.asarray(scores, dtype=np.float64), 1e-15, 1.0))
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def class_columns(scores: np.ndarray) -> np.ndarray:
    """Classifier scores as one column per class: P(class 1) becomes [P(class 0), P(class 1)]."""
    return np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores


def fill_missing(values: np.ndarray, medians: np.ndarray) -> np.ndarray:
    """NaN cells take their column's training median (the isolation forest's imputation)."""
    holes = np.isnan(values)
    if holes.any():
        values = values.copy()
        values[holes] = np.take(medians, np.nonzero(holes)[1])
    return values


def scores_to_answer(
    meta: Meta, scores: np.ndarray, method: str, index: pd.Index | None = None, threshold: float | None = None
) -> Any:
    """The library-neutral scores of a model kind (P(class 1), class probabilities, values, anomaly scores,
    estimated rewards per action) as the documented answer for `method`. `threshold`: a binary classifier's
    decision threshold on P(class 1) (default 0.5)."""
    allowed = METHODS[meta.problem]
    if method not in allowed:
        raise InputError(
            f"predict_method '{method}' is not offered for {meta.problem}; use one of: {', '.join(allowed)}"
        )
    problem = meta.problem
    if problem in ("binary_classification", "multiclass_classification"):
        classes = list(meta.classes or [])
        proba = np.clip(class_columns(scores), 0.0, None)
        total = proba.sum(axis=1, keepdims=True)
        proba = np.divide(proba, total, out=np.full_like(proba, 1.0 / proba.shape[1]), where=total > 0)
        if method == "predict_proba":
            return pd.DataFrame(proba, columns=[str(c) for c in classes], index=index)
        if problem == "binary_classification":
            return _values(classes)[(proba[:, 1] >= (0.5 if threshold is None else threshold)).astype(np.int64)]
        return _values(classes)[proba.argmax(axis=1)]
    if problem in ("regression", "ranking"):
        return np.asarray(scores, dtype=np.float64)
    if problem == "anomaly_detection":
        if method == "score":
            return np.asarray(scores, dtype=np.float64)
        threshold = float(meta.extra["threshold"])
        return np.where(scores > threshold, ANOMALY, NORMAL).astype(object)
    # contextual bandit: estimated reward per action
    actions = list(meta.actions or [])
    if method == "score":
        return pd.DataFrame(scores, columns=[str(a) for a in actions], index=index)
    return _values(actions)[np.asarray(scores).argmax(axis=1)]


def _values(values: list[Any]) -> np.ndarray:
    """Labels as an array of their own type (int64, float64, bool, or object for text)."""
    array = np.asarray(values)
    if array.dtype.kind in "US":
        array = np.asarray(values, dtype=object)
    return array


class Scorer:
    """A fitted model file of one library; scores() takes the encoded frame (internal names, float32).

    A bag (meta.extra["bag"]: the member files in `path`, a folder) scores the mean of its members' scores, weighted
    by meta.extra["bag_weights"] when there (an ensemble of trials)."""

    def __init__(self, meta: Meta, path: str) -> None:
        self.meta = meta
        self.members = [Scorer(_member_meta(meta), os.path.join(path, name)) for name in meta.extra.get("bag") or []]
        self.weights = meta.extra.get("bag_weights")
        if self.members:
            return
        library = meta.library
        if library == "lightgbm":
            import lightgbm

            self.model: Any = lightgbm.Booster(model_file=path)
        elif library == "xgboost":
            import xgboost

            self.model = xgboost.Booster()
            self.model.load_model(path)
        elif library == "vowpalwabbit":
            import vowpalwabbit

            args = ["-i", path, "--quiet", "-t", *meta.extra["predict_args"]]
            self.model = vowpalwabbit.Workspace(arg_list=args)
        elif library == "sklearn":
            import skops.io

            self.model = skops.io.load(path, trusted=SKOPS_TRUSTED)
        else:
            raise ValueError(f"unknown model library {library}")

    def scores(self, X: pd.DataFrame) -> np.ndarray:
        if self.members:
            return np.average([member.scores(X) for member in self.members], axis=0, weights=self.weights)
        meta, library = self.meta, self.meta.library
        if library == "lightgbm":
            return np.asarray(self.model.predict(X.to_numpy(dtype=np.float64)), dtype=np.float64)
        if library == "xgboost":
            import xgboost

            categorical = set(meta.features.categorical_keys)
            matrix = xgboost.DMatrix(
                X.to_numpy(dtype=np.float64),
                feature_names=list(X.columns),
                feature_types=["c" if k in categorical else "q" for k in X.columns],
                enable_categorical=bool(categorical),
            )
            return np.asarray(self.model.predict(matrix), dtype=np.float64)
        if library == "vowpalwabbit":
            mode = meta.extra["mode"]
            rows = vw_feature_strings(X, set(meta.features.categorical_keys))
            raw = vw_predict(self.model, mode, rows, len(meta.actions or []))
            return -raw if mode == "bandit" else raw  # VW estimates costs; rewards are their negation
        values = fill_missing(X.to_numpy(dtype=np.float64), np.asarray(meta.extra["medians"], dtype=np.float64))
        return -np.asarray(self.model.score_samples(values), dtype=np.float64)  # higher = more abnormal


def _member_meta(meta: Meta) -> Meta:
    return replace(meta, extra={k: v for k, v in meta.extra.items() if k not in ("bag", "bag_weights")})


def predict_frame(
    meta: Meta, scorer: Scorer, rows: pd.DataFrame, method: str = "predict", threshold: float | None = None
) -> Any:
    if not isinstance(rows, pd.DataFrame):
        rows = pd.DataFrame(rows)
    guard = Guard.from_json(meta.extra.get("guard"))
    scores = guard.scores(scorer.scores(guard.inputs(meta.features.transform(rows))))
    chosen = guard.threshold if threshold is None else threshold
    return scores_to_answer(meta, scores, method, index=rows.index, threshold=chosen)


def threshold_param(params: dict[str, Any] | None) -> float | None:
    """The caller's decision_threshold, if any: a number in [0, 1]."""
    value = (params or {}).get("decision_threshold")
    if value is None:
        return None
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise InputError(f"decision_threshold must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"decision_threshold must be between 0 and 1, not {threshold}")
    return threshold


try:
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel

    class AutoMLModel(PythonModel):
        """The pyfunc: load_context reads features.json and the model file; predict answers raw rows."""

        def load_context(self, context: Any) -> None:
            with open(context.artifacts["features"], encoding="utf-8") as handle:
                self.meta = Meta.from_json(json.load(handle))
            self.scorer = Scorer(self.meta, context.artifacts["model"])

        # model_input's hint must be one MLflow 3 knows (pd.DataFrame): it warns on Any and on none.
        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
            method = str((params or {}).get("predict_method") or "predict")
            return predict_frame(self.meta, self.scorer, model_input, method, threshold_param(params))

    set_model(AutoMLModel())
except ImportError:  # pragma: no cover  (the encoding helpers stay usable without mlflow)
    pass

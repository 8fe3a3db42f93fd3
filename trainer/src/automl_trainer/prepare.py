"""Stage 2: turn the loaded table into model inputs, and split it in a way that fits the problem.

Every model takes the same encoded input, made by `serving.Features.transform` (the code the registered model
runs too): one float32 column per feature under an internal name (f0, f1, …: every library accepts it, whatever
the table calls the column), numbers as numbers, booleans as 0/1, datetimes as epoch seconds, text as the index
of the value in the column's category list (unknown or missing → NaN). Missing values stay NaN: LightGBM,
XGBoost and VW handle them natively, the isolation forest imputes the training medians.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

from automl_trainer.errors import TrainerError
from automl_trainer.serving import Column, Features, category_text
from automl_trainer.spec import JobSpec

MAX_CATEGORIES = 1000  # rarer values of a wider categorical column fall into "unknown" (NaN)


@dataclass
class Preprocessing:
    """What turns raw rows into model input, and model output back into the table's values."""

    features: Features
    classes: list[Any] | None = None  # classification: original label values; model output i = classes[i]
    actions: list[Any] | None = None  # bandit: original action values; action index i = actions[i]

    @property
    def keys(self) -> list[str]:
        return self.features.keys

    @property
    def categorical(self) -> list[str]:
        """Internal names of the categorical columns."""
        return self.features.categorical_keys

    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        return self.features.transform(raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": self.features.to_json(),
            "classes": _jsonable(self.classes),
            "actions": _jsonable(self.actions),
            "encoding": "each column under its internal name (key): numbers as float, booleans 0/1, datetimes as "
            "epoch seconds (UTC), categories as the index of the value in 'categories' (unknown or missing: NaN)",
        }


def _jsonable(values: list[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def column_kind(series: pd.Series) -> str:
    """number | boolean | datetime | category, from the values the database driver gave."""
    if isinstance(series.dtype, pd.CategoricalDtype):  # text as the columnar load gives a feature
        return "category"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number"
    present = series.dropna()
    if len(present) == 0:
        return "category"
    if pd.api.types.infer_dtype(present, skipna=True) == "string":  # every value a str: text (checked in C)
        return "category"
    if all(isinstance(v, bool | np.bool_) for v in present):
        return "boolean"
    if all(isinstance(v, dt.date) for v in present):  # date / datetime objects (timestamptz, date columns)
        return "datetime"
    if all(isinstance(v, decimal.Decimal | int | float) and not isinstance(v, bool) for v in present):
        return "number"  # NUMERIC columns come as Decimal
    return "category"


def describe_features(frame: pd.DataFrame, names: list[str]) -> Features:
    columns: list[Column] = []
    for i, name in enumerate(names):
        series = frame[name]
        kind = column_kind(series)
        categories = None
        if kind == "category":
            distinct = series.value_counts(dropna=True)  # each distinct value's text made once, not once per row
            distinct = distinct[distinct > 0]  # a Categorical counts its unused categories too
            counts = distinct.groupby(distinct.index.map(category_text).astype(object)).sum()
            # The most frequent first, ties by text: the same list whatever order the reader met the values in.
            counts = counts.sort_index().sort_values(ascending=False, kind="stable")
            categories = sorted(counts.index[:MAX_CATEGORIES].tolist())
        columns.append(
            Column(name=name, key=f"f{i}", kind=kind, required=not series.isna().any(), categories=categories)
        )
    return Features(columns)


def signature_type(series: pd.Series, column: Column) -> str:
    """The MLflow column type the model's signature gives this raw column."""
    if column.kind == "number":
        return "long" if pd.api.types.is_integer_dtype(series.dtype) else "double"
    return {"boolean": "boolean", "datetime": "datetime", "category": "string"}[column.kind]


@dataclass
class Data:
    """Model-ready rows. Ranking rows are kept sorted by group (contiguous queries)."""

    X: pd.DataFrame
    y: np.ndarray | None = None
    group: np.ndarray | None = None
    action: np.ndarray | None = None  # bandit: index into Preprocessing.actions
    reward: np.ndarray | None = None  # bandit: reward (cost negated)
    propensity: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.X)

    def take(self, index: np.ndarray) -> Data:
        index = np.asarray(index)
        if self.group is not None:
            index = index[np.argsort(self.group[index], kind="stable")]

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[index]

        return Data(
            X=self.X.iloc[index].reset_index(drop=True),
            y=pick(self.y),
            group=pick(self.group),
            action=pick(self.action),
            reward=pick(self.reward),
            propensity=pick(self.propensity),
        )

    def group_sizes(self) -> np.ndarray:
        assert self.group is not None
        _, starts, counts = np.unique(self.group, return_index=True, return_counts=True)
        return counts[np.argsort(starts)]


def _is_numeric(series: pd.Series) -> bool:
    return column_kind(series) in ("number", "boolean")


def prepare(frame: pd.DataFrame, features: list[str], spec: JobSpec) -> tuple[Data, Preprocessing]:
    pre = Preprocessing(features=describe_features(frame, features))
    X = pre.transform(frame)
    data = Data(X=X)
    problem = spec.problem_type
    label = spec.label_column

    if problem in ("binary_classification", "multiclass_classification"):
        assert label is not None
        y_raw = _non_null(frame, label, spec)
        classes = sorted(pd.unique(y_raw).tolist(), key=lambda v: (str(type(v)), v))
        if problem == "binary_classification" and len(classes) != 2:
            raise TrainerError(f"label column '{label}' has {len(classes)} distinct values; binary needs exactly 2")
        if problem == "multiclass_classification" and len(classes) < 2:
            raise TrainerError(f"label column '{label}' has fewer than 2 distinct values")
        pre.classes = classes
        data.y = y_raw.map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
    elif problem == "regression":
        assert label is not None
        data.y = _numeric(frame, label, spec).to_numpy(dtype=np.float64)
    elif problem == "ranking":
        assert label is not None and spec.group_column
        relevance = _numeric(frame, label, spec)
        if (relevance < 0).any() or (relevance != relevance.round()).any() or (relevance > 30).any():
            raise TrainerError(f"ranking label column '{label}' must hold integer relevance grades 0..30")
        data.y = relevance.to_numpy(dtype=np.int64)
        group = _non_null(frame, spec.group_column, spec)
        data.group = pd.factorize(group)[0].astype(np.int64)
    elif problem == "anomaly_detection":
        if label:
            data.y = _anomaly_label(frame[label], label)
    elif problem == "contextual_bandit":
        assert spec.action_column and spec.propensity_column
        actions_raw = _non_null(frame, spec.action_column, spec)
        actions = sorted(pd.unique(actions_raw).tolist(), key=lambda v: (str(type(v)), v))
        if len(actions) < 2:
            raise TrainerError(f"action column '{spec.action_column}' has fewer than 2 distinct actions")
        pre.actions = actions
        data.action = actions_raw.map({a: i for i, a in enumerate(actions)}).to_numpy(dtype=np.int64)
        if spec.reward_column:
            data.reward = _numeric(frame, spec.reward_column, spec).to_numpy(dtype=np.float64)
        else:
            assert spec.cost_column
            data.reward = -_numeric(frame, spec.cost_column, spec).to_numpy(dtype=np.float64)
        propensity = _numeric(frame, spec.propensity_column, spec).to_numpy(dtype=np.float64)
        if ((propensity <= 0) | (propensity > 1)).any():
            raise TrainerError(f"propensity column '{spec.propensity_column}' must hold probabilities in (0, 1]")
        data.propensity = propensity
    if data.group is not None:
        data = data.take(np.arange(len(data)))
    return data, pre


def _non_null(frame: pd.DataFrame, column: str, spec: JobSpec) -> pd.Series:
    series = frame[column]
    if series.isna().any():
        raise TrainerError(f"column '{column}' of table {spec.source_table} has missing values")
    return series


def _numeric(frame: pd.DataFrame, column: str, spec: JobSpec) -> pd.Series:
    series = _non_null(frame, column, spec)
    if not _is_numeric(series):
        raise TrainerError(f"column '{column}' of table {spec.source_table} must be numeric")
    return series.astype("float64")


def _anomaly_label(series: pd.Series, column: str) -> np.ndarray | None:
    """1 = anomaly. Accepts booleans/0-1 numbers, or -1 (outlier) / 1 (inlier) as scikit-learn writes them."""
    values = series.dropna()
    distinct = set(pd.unique(values).tolist())
    if distinct <= {0, 1}:
        return series.fillna(0).astype(np.int64).to_numpy()
    if distinct <= {-1, 1}:
        return (series.fillna(1) == -1).astype(np.int64).to_numpy()
    raise TrainerError(f"anomaly label column '{column}' must hold 0/1 (1 = anomaly) or -1/1 (-1 = anomaly)")


def split(data: Data, problem: str, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, holdout): stratified for classification, by group for ranking, random otherwise."""
    n = len(data)
    if n < 10:
        raise TrainerError(f"only {n} rows: too few to train and evaluate")
    rows = np.arange(n)
    if problem == "ranking":
        assert data.group is not None
        if len(np.unique(data.group)) < 4:
            raise TrainerError("ranking needs at least 4 groups to hold some out for evaluation")
        splitter: Any = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        train, test = next(splitter.split(rows, groups=data.group))
        return train, test
    if problem in ("binary_classification", "multiclass_classification") or (
        problem == "anomaly_detection" and data.y is not None
    ):
        assert data.y is not None
        counts = np.bincount(data.y)
        if counts[counts > 0].min() >= 2:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
            train, test = next(splitter.split(rows, data.y))
            return train, test
    splitter = ShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train, test = next(splitter.split(rows))
    return train, test


def folds(data: Data, problem: str, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """k (fit rows, validation rows) pairs: grouped for ranking, stratified for classification and labelled
    anomalies, shuffled otherwise. None when the data cannot make k folds (too few groups or rows of a class)."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    n = len(data)
    rows = np.arange(n)
    if n < 2 * k:
        return None
    if problem == "ranking":
        assert data.group is not None
        if len(np.unique(data.group)) < k:
            return None
        return list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, groups=data.group))
    if problem in ("binary_classification", "multiclass_classification") or (
        problem == "anomaly_detection" and data.y is not None
    ):
        assert data.y is not None
        counts = np.bincount(data.y)
        if counts[counts > 0].min() < k:
            return None
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, data.y))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(rows))

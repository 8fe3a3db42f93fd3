"""Stage 0: the job spec (docs/trainer-contract.md), read from AUTOML_JOB_SPEC_PATH or AUTOML_JOB_SPEC_GZ_B64."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automl_trainer.errors import TrainerError

PROBLEM_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("lightgbm_classifier", "xgboost_classifier", "vw_classifier"),
    "multiclass_classification": ("lightgbm_classifier", "xgboost_classifier", "vw_classifier"),
    "regression": ("lightgbm_regressor", "xgboost_regressor", "vw_regressor"),
    "ranking": ("lightgbm_ranker", "xgboost_ranker"),
    "anomaly_detection": ("isolation_forest",),
    "contextual_bandit": ("vw_contextual_bandit",),
}


@dataclass(frozen=True)
class Tuning:
    trials: int
    time_budget_minutes: float


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    name: str
    source_table: str
    label_column: str | None
    feature_columns: list[str] | None
    problem_type: str
    algorithm: str
    preset: str
    tuning: Tuning
    mlflow_experiment_name: str
    registered_model_name: str
    group_column: str | None = None
    action_column: str | None = None
    reward_column: str | None = None
    cost_column: str | None = None
    propensity_column: str | None = None
    domain: str | None = None
    owner: str | None = None

    def special_columns(self) -> list[str]:
        """The problem's own columns besides the label: never features."""
        names = [self.group_column, self.action_column, self.reward_column, self.cost_column, self.propensity_column]
        return [n for n in names if n]


def read_spec_text(env: Mapping[str, str]) -> str:
    path = env.get("AUTOML_JOB_SPEC_PATH")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as error:
            raise TrainerError(f"cannot read AUTOML_JOB_SPEC_PATH {path}: {error.strerror}") from error
    packed = env.get("AUTOML_JOB_SPEC_GZ_B64")
    if packed:
        try:
            return gzip.decompress(base64.b64decode(packed, validate=True)).decode("utf-8")
        except (binascii.Error, OSError, EOFError, UnicodeDecodeError) as error:
            raise TrainerError(f"AUTOML_JOB_SPEC_GZ_B64 is not base64 of gzipped UTF-8 JSON: {error}") from error
    raise TrainerError("no job spec: set AUTOML_JOB_SPEC_PATH or AUTOML_JOB_SPEC_GZ_B64")


def _str(raw: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise TrainerError(f"job spec: '{key}' is required")
        return None
    if not isinstance(value, str):
        raise TrainerError(f"job spec: '{key}' must be a string")
    return value


def _req(raw: Mapping[str, Any], key: str) -> str:
    value = _str(raw, key)
    assert value is not None
    return value


def parse_spec(text: str) -> JobSpec:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise TrainerError(f"job spec is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise TrainerError("job spec must be a JSON object")
    problem = _req(raw, "problem_type")
    algorithm = _req(raw, "algorithm")
    if problem not in PROBLEM_ALGORITHMS:
        raise TrainerError(f"job spec: unknown problem_type '{problem}'")
    if algorithm not in PROBLEM_ALGORITHMS[problem]:
        raise TrainerError(f"job spec: algorithm '{algorithm}' does not solve problem_type '{problem}'")
    features = raw.get("feature_columns")
    if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) and f for f in features)):
        raise TrainerError("job spec: 'feature_columns' must be null or a list of column names")
    if features is not None and len(set(features)) != len(features):
        raise TrainerError("job spec: 'feature_columns' names a column twice")
    tuning_raw = raw.get("tuning") or {}
    if not isinstance(tuning_raw, dict):
        raise TrainerError("job spec: 'tuning' must be an object")
    trials = tuning_raw.get("trials", 10)
    minutes = tuning_raw.get("time_budget_minutes", 15)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise TrainerError("job spec: 'tuning.trials' must be a positive integer")
    if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes <= 0:
        raise TrainerError("job spec: 'tuning.time_budget_minutes' must be a positive number")
    spec = JobSpec(
        job_id=_req(raw, "job_id"),
        name=_str(raw, "name", required=False) or _req(raw, "job_id"),
        source_table=_req(raw, "source_table"),
        label_column=_str(raw, "label_column", required=False),
        feature_columns=list(features) if features is not None else None,
        problem_type=problem,
        algorithm=algorithm,
        preset=_str(raw, "preset", required=False) or "balanced",
        tuning=Tuning(trials=trials, time_budget_minutes=float(minutes)),
        mlflow_experiment_name=_req(raw, "mlflow_experiment_name"),
        registered_model_name=_req(raw, "registered_model_name"),
        group_column=_str(raw, "group_column", required=False),
        action_column=_str(raw, "action_column", required=False),
        reward_column=_str(raw, "reward_column", required=False),
        cost_column=_str(raw, "cost_column", required=False),
        propensity_column=_str(raw, "propensity_column", required=False),
        domain=_str(raw, "domain", required=False),
        owner=_str(raw, "owner", required=False),
    )
    _check_problem_columns(spec)
    return spec


def _check_problem_columns(spec: JobSpec) -> None:
    problem = spec.problem_type
    supervised = ("binary_classification", "multiclass_classification", "regression", "ranking")
    if problem in supervised and not spec.label_column:
        raise TrainerError(f"job spec: 'label_column' is required for {problem}")
    if problem == "ranking" and not spec.group_column:
        raise TrainerError("job spec: 'group_column' is required for ranking")
    if problem == "contextual_bandit":
        if not spec.action_column:
            raise TrainerError("job spec: 'action_column' is required for contextual_bandit")
        if not spec.propensity_column:
            raise TrainerError("job spec: 'propensity_column' is required for contextual_bandit")
        if bool(spec.reward_column) == bool(spec.cost_column):
            raise TrainerError(
                "job spec: exactly one of 'reward_column' and 'cost_column' is required for contextual_bandit"
            )
    if spec.feature_columns is not None:
        taken = {c for c in [spec.label_column, *spec.special_columns()] if c}
        clash = [f for f in spec.feature_columns if f in taken]
        if clash:
            raise TrainerError(f"job spec: feature column '{clash[0]}' is also the label or a special column")
        if not spec.feature_columns:
            raise TrainerError("job spec: 'feature_columns' is empty")


def load_spec(env: Mapping[str, str] | None = None) -> JobSpec:
    return parse_spec(read_spec_text(os.environ if env is None else env))

"""The ten algorithms of the service, by the names the API uses."""

from __future__ import annotations

from automl_trainer.algorithms.base import Algorithm


def get_algorithm(name: str) -> Algorithm:
    if name.startswith("lightgbm_"):
        from automl_trainer.algorithms.gbm import LightGBM

        return LightGBM(name)
    if name.startswith("xgboost_"):
        from automl_trainer.algorithms.gbm import XGBoost

        return XGBoost(name)
    if name == "isolation_forest":
        from automl_trainer.algorithms.isolation_forest import IsolationForestAlgorithm

        return IsolationForestAlgorithm(name)
    if name in ("vw_classifier", "vw_regressor", "vw_contextual_bandit"):
        from automl_trainer.algorithms.vw import VowpalWabbit

        return VowpalWabbit(name)
    raise ValueError(f"unknown algorithm {name}")

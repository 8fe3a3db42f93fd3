"""scikit-learn IsolationForest; missing values take the training medians (kept with the model).

Without a label there is nothing to score a trial against: one fit with the defaults (trials_run 0). With a
label, the search maximises ROC AUC of the anomaly score on the validation rows.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import optuna

from automl_trainer.algorithms.base import Algorithm, Context, Exported, Fitted, Monitor
from automl_trainer.prepare import Data
from automl_trainer.serving import fill_missing
from automl_trainer.track import pins


class IsolationForestAlgorithm(Algorithm):
    def default_params(self, ctx: Context) -> dict[str, Any]:
        return {"n_estimators": 100, "max_samples": 256, "max_features": 1.0, "bootstrap": False}

    def starting_points(self, ctx: Context) -> list[dict[str, Any]]:
        base = self.default_params(ctx)
        return [base, {**base, "n_estimators": 200, "max_samples": 512}, {**base, "max_features": 0.5}]

    def suggest(self, trial: optuna.Trial, ctx: Context) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
            "max_samples": trial.suggest_int("max_samples", 32, 4096, log=True),
            "max_features": trial.suggest_float("max_features", 0.3, 1.0),
            "bootstrap": trial.suggest_categorical("bootstrap", [False, True]),
        }

    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(
            n_estimators=int(params["n_estimators"]),
            max_samples=min(int(params["max_samples"]), len(train)),
            max_features=float(params["max_features"]),
            bootstrap=bool(params["bootstrap"]),
            n_jobs=ctx.threads,
            random_state=ctx.seed,
        )
        values = train.X.to_numpy(dtype=np.float64)
        medians = np.zeros(values.shape[1])
        for j in range(values.shape[1]):
            present = values[~np.isnan(values[:, j]), j]
            medians[j] = float(np.median(present)) if len(present) else 0.0
        forest.fit(fill_missing(values, medians))
        return Fitted(model=ImputedForest(forest, medians))

    def predict(self, model: Any, data: Data, ctx: Context) -> np.ndarray:
        values = fill_missing(data.X.to_numpy(dtype=np.float64), model.medians)
        return -np.asarray(model.forest.score_samples(values), dtype=np.float64)  # higher = more abnormal

    def export(self, model: Any, ctx: Context, directory: str) -> Exported:
        import skops.io

        # skops, not pickle: loading refuses any type beyond sklearn's defaults and serving.SKOPS_TRUSTED.
        path = os.path.join(directory, "model.skops")
        skops.io.dump(model.forest, path)
        extra = {
            "medians": [float(m) for m in model.medians],
            # IsolationForest.predict's own rule: an anomaly where score_samples < offset_.
            "threshold": float(-model.forest.offset_),
        }
        return Exported(path, "sklearn", "skops", pins("scikit-learn", "skops", "numpy", "pandas", "scipy"), extra)


class ImputedForest:
    """The forest and the training medians that stand in for missing values."""

    def __init__(self, forest: Any, medians: np.ndarray) -> None:
        self.forest = forest
        self.medians = medians

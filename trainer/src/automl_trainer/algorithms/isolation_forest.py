"""scikit-learn IsolationForest behind a median imputer, logged as one sklearn Pipeline.

Without a label there is nothing to score a trial against: one fit with the defaults (trials_run 0). With a
label, the search maximises ROC AUC of the anomaly score on the validation rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from automl_trainer.algorithms.base import Algorithm, Context, Fitted, Monitor
from automl_trainer.prepare import Data
from automl_trainer.track import pins


class IsolationForestAlgorithm(Algorithm):
    flavour = "sklearn"

    def default_params(self, ctx: Context) -> dict[str, Any]:
        return {"n_estimators": 100, "max_samples": 256, "max_features": 1.0, "bootstrap": False}

    def suggest(self, trial: optuna.Trial, ctx: Context) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
            "max_samples": trial.suggest_int("max_samples", 32, 4096, log=True),
            "max_features": trial.suggest_float("max_features", 0.3, 1.0),
            "bootstrap": trial.suggest_categorical("bootstrap", [False, True]),
        }

    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        from sklearn.ensemble import IsolationForest
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        forest = IsolationForest(
            n_estimators=int(params["n_estimators"]),
            max_samples=min(int(params["max_samples"]), len(train)),
            max_features=float(params["max_features"]),
            bootstrap=bool(params["bootstrap"]),
            n_jobs=ctx.threads,
            random_state=ctx.seed,
        )
        impute = SimpleImputer(strategy="median", keep_empty_features=True)
        pipeline = Pipeline([("impute", impute), ("forest", forest)])
        pipeline.fit(train.X)
        return Fitted(model=pipeline)

    def predict(self, model: Any, data: Data, ctx: Context) -> np.ndarray:
        return -np.asarray(model.score_samples(data.X), dtype=np.float64)  # higher = more abnormal

    def log_model(self, model: Any, ctx: Context, registered_model_name: str, example: Data) -> Any:
        import mlflow.sklearn

        return mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=registered_model_name,
            input_example=example.X.head(5),
            serialization_format="cloudpickle",
            pip_requirements=pins("scikit-learn", "cloudpickle", "pandas", "numpy", "scipy"),
        )

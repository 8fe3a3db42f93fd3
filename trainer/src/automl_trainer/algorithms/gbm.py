"""LightGBM and XGBoost: classifier (binary, multiclass), regressor and ranker, with early stopping per trial.

Search spaces follow the ranges FLAML and AutoGluon search for these libraries: learning rate, tree size,
leaf minimum, row/column subsampling and L1/L2 regularisation, log-scaled where the effect is multiplicative;
LightGBM's regressor also searches piecewise-linear trees (`linear_tree`, a ridge model in each leaf).
The number of rounds is not searched: early stopping on the validation rows picks it (cap MAX_ROUNDS), on a proper
scoring rule for classifiers (log loss) whatever the objective the search ranks trials by: early stopping on ROC AUC
ends once the ranking is good, long before the probabilities leave the class prior (a model that ranks well and
labels every row alike). The trial still reports the objective (ROC AUC) each round to the pruner.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import optuna

from automl_trainer.algorithms.base import Algorithm, Bag, Context, Exported, Fitted, Monitor, scaled_rounds
from automl_trainer.prepare import Data
from automl_trainer.track import pins

MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50
DEFAULT_ROUNDS = 100  # both libraries' default n_estimators


class Boosting(Algorithm):
    """What LightGBM and XGBoost share: rounds from early stopping, predictions through the sklearn API, and a
    cross-validated search's final model as the bag of its best trial's fold models (each early-stopped on its own
    fold), which beat a refit on every training row on the quality benchmark (docs/benchmarks.md, "Model quality")."""

    bags = True
    library = ""  # serving.Scorer's name of the library
    package = ""  # the pip distribution that loads the model
    model_format = ""
    suffix = ""

    def default_rounds(self, params: dict[str, Any]) -> int:
        return DEFAULT_ROUNDS

    def refit_params(self, params: dict[str, Any], fitted: Fitted, train_fraction: float) -> dict[str, Any]:
        return {**params, "n_estimators": scaled_rounds(fitted.rounds, train_fraction, 100)}

    def predict(self, model: Any, data: Data, ctx: Context) -> np.ndarray:
        if isinstance(model, Bag):  # the (weighted) mean of the members' probabilities / values / ranking scores
            each = [self.predict(member, data, ctx) for member in model.members]
            return np.average(each, axis=0, weights=model.weights)
        if ctx.problem == "binary_classification":
            return np.asarray(model.predict_proba(data.X))[:, 1]
        if ctx.problem == "multiclass_classification":
            return np.asarray(model.predict_proba(data.X))
        return np.asarray(model.predict(data.X), dtype=np.float64)

    def export(self, model: Any, ctx: Context, directory: str) -> Exported:
        """The Booster(s) in the library's own format (no pickle): one file, or a folder of a bag's members."""
        requirements = pins(self.package, "numpy", "pandas", "scipy")
        if not isinstance(model, Bag):
            path = os.path.join(directory, f"model.{self.suffix}")
            self._save(model, path)
            return Exported(path, self.library, self.model_format, requirements, {})
        folder = os.path.join(directory, "bag")
        os.makedirs(folder)
        files = [f"member_{i}.{self.suffix}" for i in range(len(model.members))]
        for member, name in zip(model.members, files, strict=True):
            self._save(member, os.path.join(folder, name))
        extra: dict[str, Any] = {"bag": files}
        if model.weights is not None:
            extra["bag_weights"] = [float(w) for w in model.weights]
        return Exported(folder, self.library, self.model_format, requirements, extra)

    def native_importance(self, model: Any, ctx: Context) -> dict[str, float] | None:
        if not isinstance(model, Bag):
            return self._gains(model, ctx)
        each = [self._gains(member, ctx) for member in model.members]
        return {
            key: float(np.average([gains.get(key, 0.0) for gains in each], weights=model.weights)) for key in ctx.keys
        }

    def _save(self, model: Any, path: str) -> None:
        raise NotImplementedError

    def _gains(self, model: Any, ctx: Context) -> dict[str, float]:
        raise NotImplementedError


class LightGBM(Boosting):
    library, package, model_format, suffix = "lightgbm", "lightgbm", "lightgbm-text", "txt"

    def _metrics(self, ctx: Context) -> list[str]:
        """The metric early stopping follows first, then the one each round reports to the pruner (if another)."""
        return {
            "binary_classification": ["binary_logloss", "auc"],
            "multiclass_classification": ["multi_logloss"],
            "regression": ["rmse"],
            "ranking": ["ndcg"],
        }[ctx.problem]

    def default_params(self, ctx: Context) -> dict[str, Any]:
        params: dict[str, Any] = {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_alpha": 1e-8,
            "reg_lambda": 1e-8,
        }
        if ctx.problem == "regression":
            params.update(linear_tree=False, linear_lambda=1e-8)
        return params

    def starting_points(self, ctx: Context) -> list[dict[str, Any]]:
        base = self.default_params(ctx)
        points = [
            base,
            # row/column subsampling with a slower rate
            {**base, "learning_rate": 0.05, "num_leaves": 31, "subsample": 0.8, "colsample_bytree": 0.8},
            # small tables: few, shallow leaves with small minimum counts and some L2 (FLAML starts this small)
            {**base, "learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 5, "reg_lambda": 1.0},
            # AutoGluon's larger LightGBM configuration, for tables with more signal than a default tree holds
            {**base, "learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 3, "colsample_bytree": 0.9},
        ]
        if ctx.problem == "regression":
            # piecewise-linear trees (a ridge fit in each leaf): smooth targets need far fewer, smaller trees
            # (friedman1: RMSE 1.049 against 1.128 for the defaults on the same holdout)
            linear = {"learning_rate": 0.05, "num_leaves": 7, "linear_tree": True, "linear_lambda": 1.0}
            points.insert(1, {**base, **linear})
        return points

    def extrapolates(self, params: dict[str, Any], ctx: Context) -> bool:
        return bool(params.get("linear_tree"))

    def suggest(self, trial: optuna.Trial, ctx: Context) -> dict[str, Any]:
        params: dict[str, Any] = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
        }
        if ctx.problem == "regression":
            params["linear_tree"] = trial.suggest_categorical("linear_tree", [False, True])
            params["linear_lambda"] = trial.suggest_float("linear_lambda", 1e-8, 10.0, log=True)  # unused without
        return params

    def _estimator(self, params: dict[str, Any], ctx: Context) -> Any:
        import lightgbm as lgb

        common: dict[str, Any] = {
            "n_estimators": MAX_ROUNDS,
            "subsample_freq": 1,
            "n_jobs": ctx.threads,
            "random_state": ctx.seed,
            "verbose": -1,
            "metric": self._metrics(ctx),
        }
        common.update(params)
        if ctx.problem == "ranking":
            return lgb.LGBMRanker(objective="lambdarank", **common)
        if ctx.problem == "regression":
            return lgb.LGBMRegressor(objective="regression", **common)
        return lgb.LGBMClassifier(**common)

    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        import lightgbm as lgb

        model = self._estimator(params, ctx)
        kwargs: dict[str, Any] = {"categorical_feature": ctx.categorical or "auto"}
        if ctx.problem == "ranking":
            kwargs["group"] = train.group_sizes()
        if valid is not None:
            kwargs["eval_X"] = (valid.X,)
            kwargs["eval_y"] = (valid.y,)
            if ctx.problem == "ranking":
                kwargs["eval_group"] = [valid.group_sizes()]
                kwargs["eval_at"] = [10]

            reported = self._metrics(ctx)[-1]

            def watch(env: Any) -> None:
                value = next(r[2] for r in env.evaluation_result_list if r[1].split("@")[0] == reported)
                if monitor.step(env.iteration, value):
                    raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

            stop = lgb.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False)
            kwargs["callbacks"] = [stop, watch]
        model.fit(train.X, train.y, **kwargs)
        rounds = model.best_iteration_ if valid is not None and model.best_iteration_ else None
        return Fitted(model=model, rounds=rounds)

    def on_cluster(self, client: Any, params: dict[str, Any], ctx: Context, x: Any, y: Any, minutes: int) -> Any:
        """The model trained by `lightgbm.dask` on the Dask collections x, y (every worker holding partitions trains
        on its own; `minutes`: the workers' socket time-out), as the local LGBM model `fit` gives."""
        import warnings

        import lightgbm as lgb

        # Each Dask worker trains on its own threads (its nthreads), which lightgbm.dask says of n_jobs every time.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored", category=UserWarning)
        common: dict[str, Any] = {
            "n_estimators": MAX_ROUNDS,
            "subsample_freq": 1,
            "random_state": ctx.seed,
            "verbose": -1,
            "time_out": minutes,
        }
        common.update(params)
        if ctx.problem == "regression":
            model: Any = lgb.DaskLGBMRegressor(client=client, objective="regression", **common)
        else:
            model = lgb.DaskLGBMClassifier(client=client, **common)
        model.fit(x, y, categorical_feature=ctx.categorical or "auto")
        return model.to_local()

    def _save(self, model: Any, path: str) -> None:
        model.booster_.save_model(path)  # up to the early-stopped best iteration, when there is one

    def _gains(self, model: Any, ctx: Context) -> dict[str, float]:
        booster = model.booster_
        gains = booster.feature_importance(importance_type="gain")
        return {str(k): float(v) for k, v in zip(booster.feature_name(), gains, strict=True)}


class XGBoost(Boosting):
    library, package, model_format, suffix = "xgboost", "xgboost-cpu", "xgboost-ubjson", "ubj"

    def _metrics(self, ctx: Context) -> list[str]:
        """The metric each round reports to the pruner, then (if another) the one early stopping follows: XGBoost
        stops on the last of its eval_metric list."""
        return {
            "binary_classification": ["auc", "logloss"],
            "multiclass_classification": ["mlogloss"],
            "regression": ["rmse"],
            "ranking": ["ndcg@10"],
        }[ctx.problem]

    def default_params(self, ctx: Context) -> dict[str, Any]:
        return {
            "learning_rate": 0.3,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_alpha": 1e-8,
            "reg_lambda": 1.0,
        }

    def starting_points(self, ctx: Context) -> list[dict[str, Any]]:
        base = self.default_params(ctx)
        return [
            base,
            {**base, "learning_rate": 0.1},  # AutoGluon's XGBoost default: the library's trees, a slower rate
            # shallow, subsampled, slower: what small and noisy tables want
            {**base, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8},
            {**base, "learning_rate": 0.05, "max_depth": 8, "min_child_weight": 3.0, "subsample": 0.8,
             "colsample_bytree": 0.8, "reg_lambda": 5.0},
        ]  # fmt: skip

    def suggest(self, trial: optuna.Trial, ctx: Context) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.1, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }

    @staticmethod
    def _trees(ctx: Context) -> dict[str, Any]:
        """What every XGBoost model here is given, locally or on a Dask cluster: hist trees, categories as such."""
        categorical = set(ctx.categorical)
        return {
            "n_estimators": MAX_ROUNDS,
            "tree_method": "hist",
            "enable_categorical": bool(categorical),
            "feature_types": ["c" if f in categorical else "q" for f in ctx.keys],
            "random_state": ctx.seed,
        }

    def _estimator(self, params: dict[str, Any], ctx: Context, extra: dict[str, Any]) -> Any:
        import xgboost as xgb

        common: dict[str, Any] = {**self._trees(ctx), "n_jobs": ctx.threads, "eval_metric": self._metrics(ctx)}
        common.update(params)
        common.update(extra)
        if ctx.problem == "ranking":
            return xgb.XGBRanker(objective="rank:ndcg", **common)
        if ctx.problem == "regression":
            return xgb.XGBRegressor(objective="reg:squarederror", **common)
        if ctx.problem == "multiclass_classification":
            return xgb.XGBClassifier(objective="multi:softprob", **common)
        return xgb.XGBClassifier(objective="binary:logistic", **common)

    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        import xgboost as xgb

        metric = self._metrics(ctx)[0]

        class Watch(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                history = evals_log.get("validation_0", {}).get(metric)
                return bool(history) and monitor.step(epoch, float(history[-1]))

        extra: dict[str, Any] = {}
        fit_kwargs: dict[str, Any] = {"verbose": False}
        if valid is not None:
            extra = {"early_stopping_rounds": EARLY_STOPPING_ROUNDS, "callbacks": [Watch()]}
            fit_kwargs["eval_set"] = [(valid.X, valid.y)]
            if ctx.problem == "ranking":
                fit_kwargs["eval_qid"] = [valid.group]
        if ctx.problem == "ranking":
            fit_kwargs["qid"] = train.group
        model = self._estimator(params, ctx, extra)
        model.fit(train.X, train.y, **fit_kwargs)
        rounds = None
        if valid is not None:
            best = getattr(model, "best_iteration", None)
            rounds = int(best) + 1 if best is not None else None
            # eval_metric too: a list of them reaches the Booster's predict-time configuration as one string
            # ("Unknown metric function ['auc', 'logloss']")
            model.set_params(callbacks=None, early_stopping_rounds=None, eval_metric=None)
        return Fitted(model=model, rounds=rounds)

    def on_cluster(self, client: Any, params: dict[str, Any], ctx: Context, x: Any, y: Any, minutes: int) -> Any:
        """The model trained by `xgboost.dask` on the Dask collections x, y, as the local XGB model `fit` gives."""
        import tempfile

        import xgboost as xgb
        import xgboost.dask

        common: dict[str, Any] = {**self._trees(ctx), **params}
        if ctx.problem == "regression":
            model: Any = xgb.dask.DaskXGBRegressor(objective="reg:squarederror", **common)
            local: Any = xgb.XGBRegressor()
        else:
            objective = "multi:softprob" if ctx.problem == "multiclass_classification" else "binary:logistic"
            model = xgb.dask.DaskXGBClassifier(objective=objective, **common)
            local = xgb.XGBClassifier()
        model.client = client
        model.fit(x, y, verbose=False)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.ubj")
            model.save_model(path)
            local.load_model(path)
        return local

    def _booster(self, model: Any) -> Any:
        """The Booster up to the early-stopped best round (a fold model keeps the rounds after it, which the
        sklearn wrapper skips when predicting but a saved Booster would not)."""
        booster = model.get_booster()
        best = booster.attr("best_iteration")
        return booster[: int(best) + 1] if best is not None else booster

    def _save(self, model: Any, path: str) -> None:
        self._booster(model).save_model(path)

    def _gains(self, model: Any, ctx: Context) -> dict[str, float]:
        gains = self._booster(model).get_score(importance_type="total_gain")
        return {key: float(gains.get(key, 0.0)) for key in ctx.keys}

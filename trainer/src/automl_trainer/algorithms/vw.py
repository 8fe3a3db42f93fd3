"""Vowpal Wabbit: online learning in passes over the rows; early stopping on the validation rows per pass.

Classifier: logistic loss (binary with a logistic link, multiclass as one-against-all with probabilities).
Regressor: squared loss. Contextual bandit: cb_adf over the logged actions with the context as the shared
namespace and a context×action interaction, learning from (action, cost = −reward, propensity).
Searched: learning rate, power_t, L2, quadratic interactions (bandit: the cost estimator ips/dr/mtr).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import optuna

from automl_trainer.algorithms.base import Algorithm, Context, Exported, Fitted, Monitor
from automl_trainer.evaluate import OBJECTIVES, evaluate
from automl_trainer.prepare import Data
from automl_trainer.serving import vw_bandit_example, vw_feature_strings, vw_predict
from automl_trainer.track import pins

MAX_PASSES = 20
PATIENCE = 2
BITS = 18


class VWModel:
    """A trained workspace plus what it takes to feed it."""

    def __init__(self, workspace: Any, mode: str, args: list[str], predict_args: list[str]) -> None:
        self.workspace = workspace
        self.mode = mode
        self.args = args
        self.predict_args = predict_args


class VowpalWabbit(Algorithm):
    def _mode(self, ctx: Context) -> str:
        return {
            "binary_classification": "binary",
            "multiclass_classification": "multiclass",
            "regression": "regression",
            "contextual_bandit": "bandit",
        }[ctx.problem]

    def default_params(self, ctx: Context) -> dict[str, Any]:
        params: dict[str, Any] = {"learning_rate": 0.5, "power_t": 0.5, "l2": 1e-10, "interactions": False}
        if ctx.problem == "contextual_bandit":
            params["cb_type"] = "mtr"
        return params

    def starting_points(self, ctx: Context) -> list[dict[str, Any]]:
        base = self.default_params(ctx)
        return [
            base,
            {**base, "interactions": True},
            {**base, "learning_rate": 0.1, "l2": 1e-8},
            {**base, "learning_rate": 2.0, "power_t": 0.3},
        ]

    def extrapolates(self, params: dict[str, Any], ctx: Context) -> bool:
        return ctx.problem in ("regression", "contextual_bandit")  # linear in the features: unbounded

    def default_rounds(self, params: dict[str, Any]) -> int:
        return 5  # passes

    def suggest(self, trial: optuna.Trial, ctx: Context) -> dict[str, Any]:
        params: dict[str, Any] = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 4.0, log=True),
            "power_t": trial.suggest_float("power_t", 0.0, 1.0),
            "l2": trial.suggest_float("l2", 1e-10, 1e-3, log=True),
            "interactions": trial.suggest_categorical("interactions", [False, True]),
        }
        if ctx.problem == "contextual_bandit":
            params["cb_type"] = trial.suggest_categorical("cb_type", ["ips", "dr", "mtr"])
        return params

    def _args(self, params: dict[str, Any], ctx: Context) -> tuple[list[str], list[str]]:
        mode = self._mode(ctx)
        args = [
            "--quiet",
            "-b",
            str(BITS),
            "--random_seed",
            str(ctx.seed),
            "--learning_rate",
            f"{params['learning_rate']:.9g}",
            "--power_t",
            f"{params['power_t']:.9g}",
            "--l2",
            f"{params['l2']:.9g}",
        ]
        predict_args: list[str] = []
        if mode == "binary":
            args += ["--loss_function", "logistic", "--link", "logistic"]
        elif mode == "multiclass":
            args += ["--oaa", str(ctx.n_classes), "--loss_function", "logistic", "--probabilities"]
            predict_args = ["--probabilities"]
        elif mode == "regression":
            args += ["--loss_function", "squared"]
        else:
            args += ["--cb_adf", "--cb_type", str(params["cb_type"]), "-q", "sa"]
            if params["interactions"]:
                args += ["-q", "ss"]
        if mode != "bandit" and params["interactions"]:
            args += ["-q", "ff"]
        return args, predict_args

    def _examples(self, data: Data, ctx: Context) -> list[Any]:
        rows = vw_feature_strings(data.X, set(ctx.categorical))
        mode = self._mode(ctx)
        if mode == "bandit":
            assert data.action is not None and data.reward is not None and data.propensity is not None
            return [
                vw_bandit_example(r, ctx.n_actions, (int(a), -float(w), float(p)))
                for r, a, w, p in zip(rows, data.action, data.reward, data.propensity, strict=True)
            ]
        assert data.y is not None
        if mode == "binary":
            labels = ["1" if y == 1 else "-1" for y in data.y]
        elif mode == "multiclass":
            labels = [str(int(y) + 1) for y in data.y]
        else:
            labels = [f"{y:.9g}" for y in data.y]
        return [f"{label} |f {r}" for label, r in zip(labels, rows, strict=True)]

    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        import vowpalwabbit

        args, predict_args = self._args(params, ctx)
        workspace = vowpalwabbit.Workspace(arg_list=args)
        model = VWModel(workspace, self._mode(ctx), args, predict_args)
        examples = self._examples(train, ctx)
        rng = np.random.default_rng(ctx.seed)
        passes = int(params.get("passes", MAX_PASSES if valid is not None else 1))
        objective = OBJECTIVES[ctx.problem][0]
        # Passes stop on a proper scoring rule for binary classifiers (log loss), as the boosters' rounds do; the
        # monitor still gets the objective.
        binary = ctx.problem == "binary_classification"
        stop_on, stop_direction = ("log_loss", "minimize") if binary else OBJECTIVES[ctx.problem]
        best: float | None = None
        best_pass = 1
        try:
            for p in range(passes):
                for i in rng.permutation(len(examples)):
                    workspace.learn(examples[i])
                if valid is None:
                    if monitor.step(p, float("nan")):
                        break
                    continue
                metrics = evaluate(ctx.problem, valid, self.predict(model, valid, ctx))
                value, stop_value = metrics.get(objective, float("nan")), metrics.get(stop_on, float("nan"))
                improved = best is None or (stop_value > best if stop_direction == "maximize" else stop_value < best)
                if improved and np.isfinite(stop_value):
                    best, best_pass = stop_value, p + 1
                if monitor.step(p, value) or p + 1 - best_pass >= PATIENCE:
                    break
        except BaseException:  # pruned or failed: this workspace is not returned
            workspace.finish()
            raise
        return Fitted(model=model, rounds=best_pass if valid is not None else passes)

    def refit_params(self, params: dict[str, Any], fitted: Fitted, train_fraction: float) -> dict[str, Any]:
        return {**params, "passes": fitted.rounds or 1}

    def predict(self, model: Any, data: Data, ctx: Context) -> np.ndarray:
        rows = vw_feature_strings(data.X, set(ctx.categorical))
        raw = vw_predict(model.workspace, model.mode, rows, ctx.n_actions)
        if model.mode == "bandit":
            return -raw  # VW estimates costs; evaluate() wants rewards
        return raw

    def release(self, model: Any) -> None:
        # Finish workspaces explicitly: VW's __del__ at interpreter shutdown prints an AttributeError after the
        # process's last line, which must stay the error line.
        model.workspace.finish()

    def export(self, model: Any, ctx: Context, directory: str) -> Exported:
        path = os.path.join(directory, "model.vw")
        model.workspace.save(path)
        extra = {"mode": model.mode, "args": model.args, "predict_args": model.predict_args}
        return Exported(path, "vowpalwabbit", "vowpalwabbit", pins("vowpalwabbit", "numpy", "pandas"), extra)

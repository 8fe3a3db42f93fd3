"""Stage 5: what makes the final model's answers safe to act on, and the gate before registration.

After the search, on the best trial's validation rows (out-of-fold under cross-validation), the trainer fits a
`serving.Guard`, which the registered model applies as the trainer does:
- inputs: every number and datetime feature clipped to the range it had in the training rows (not for anomaly
  detection, whose answer is about values beyond that range);
- regression: values bounded to the training targets' range widened by serving.OUTPUT_MARGIN of it;
- classifiers: probabilities calibrated (Platt scaling or a temperature on the log-odds; multiclass a temperature)
  when that lowers the validation rows' log loss by at least MIN_CALIBRATION_GAIN, measured by cross-fitting
  (fitted on four fifths of the rows, scored on the fifth); isotonic regression is not offered: its steps tie
  probabilities and overfit the few hundred validation rows of a small table;
- binary classifiers: 0.5 on the calibrated validation probabilities, or the threshold that maximises their
  accuracy when it labels clearly more of the rows between the two right than wrong (by SIGN_TEST_SIGMAS standard
  deviations of a fair coin over those rows); where those labels would all be one class although the
  ranking is good (validation ROC AUC above MIN_AUC_FOR_LABELS), the threshold that maximises balanced accuracy.

The gate: the test rows (never seen by the search) against the validation estimate. A model whose test loss (RMSE,
log loss, 1 − ROC AUC, 1 − NDCG) is more than GATE_RATIO times its validation loss and beyond GATE_SPREAD standard
deviations of it (the folds' spread, or a bootstrap of the test rows, whichever is larger) fails. The trainer then
refits the best trial whose model cannot extrapolate (LightGBM without linear trees), when the budget allows, and
keeps it if it passes; otherwise the model is registered with a warning: `warnings` in the result, the tag
`automl.warnings` on the run and the metric `warning_test_vs_validation` (the test ÷ validation loss) on the job.
A classifier whose validation labels do not beat the majority-class rate while its ranking does carries the
warning `warning_labels_vs_majority` (validation accuracy − majority rate).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar
from sklearn import metrics as skm
from sklearn.model_selection import StratifiedKFold

from automl_trainer.algorithms.base import Algorithm, Context, Exported, Fitted, Monitor
from automl_trainer.evaluate import OBJECTIVES, evaluate
from automl_trainer.prepare import Data
from automl_trainer.serving import OUTPUT_MARGIN, Guard, calibrate
from automl_trainer.tune import TuneResult

CALIBRATION_FOLDS = 5
MIN_CALIBRATION_GAIN = 0.005  # relative: a calibration must lower the cross-fitted log loss by this much
MIN_CALIBRATION_ROWS = 50
MIN_AUC_FOR_LABELS = 0.7
SIGN_TEST_SIGMAS = 2.0
GATE_RATIO = 1.5
GATE_SPREAD = 3.0
BOOTSTRAPS = 50
BOOTSTRAP_ROWS = 20_000
LOSSES = {"rmse", "log_loss"}  # objectives that are losses already
SCORES = {"roc_auc", "ndcg_at_10"}  # objectives of at most 1 whose loss is 1 − value


def loss_of(objective: str, value: float) -> float:
    """The objective as a loss (lower is better, 0 is perfect)."""
    return 1.0 - value if objective in SCORES else value


class Guarded(Algorithm):
    """An algorithm's final model behind its Guard: predictions as the registered model gives them."""

    def __init__(self, algo: Algorithm, guard: Guard) -> None:
        super().__init__(algo.name)
        self.algo, self.guard = algo, guard
        self.bags = algo.bags

    def default_params(self, ctx: Context) -> dict[str, Any]:
        return self.algo.default_params(ctx)

    def suggest(self, trial: Any, ctx: Context) -> dict[str, Any]:
        return self.algo.suggest(trial, ctx)

    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        return self.algo.fit(params, train, valid, ctx, monitor)

    def predict(self, model: Any, data: Data, ctx: Context) -> np.ndarray:
        bounded = replace(data, X=self.guard.inputs(data.X))
        return self.guard.scores(self.algo.predict(model, bounded, ctx))

    def release(self, model: Any) -> None:
        self.algo.release(model)

    def export(self, model: Any, ctx: Context, directory: str) -> Exported:
        exported = self.algo.export(model, ctx, directory)
        return replace(exported, extra={**exported.extra, "guard": self.guard.to_json()})

    def native_importance(self, model: Any, ctx: Context) -> dict[str, float] | None:
        return self.algo.native_importance(model, ctx)


@dataclass
class Finished:
    """The model to register, its answers on the test rows and what the job shows about it."""

    algo: Guarded
    model: Any
    test_scores: np.ndarray
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)  # run params: calibration, threshold, gate
    warnings: list[str] = field(default_factory=list)


def input_range(train: Data, ctx: Context) -> dict[str, list[float]]:
    if ctx.problem == "anomaly_detection":
        return {}
    ranges: dict[str, list[float]] = {}
    for column in ctx.preprocessing.features.columns:
        if column.kind not in ("number", "datetime"):
            continue
        values = train.X[column.key].to_numpy()
        if np.isfinite(values).any():
            ranges[column.key] = [float(np.nanmin(values)), float(np.nanmax(values))]
    return ranges


def output_range(y: np.ndarray) -> list[float]:
    low, high = float(np.min(y)), float(np.max(y))
    margin = OUTPUT_MARGIN * (high - low)
    return [low - margin, high + margin]


def _log_loss(y: np.ndarray, scores: np.ndarray) -> float:
    if scores.ndim == 1:
        p = np.clip(scores, 1e-15, 1 - 1e-15)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p = np.clip(scores, 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _fit(method: str, y: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Calibration parameters minimising the log loss of `scores` on `y`."""
    if method == "temperature":
        found = minimize_scalar(
            lambda log_a: _log_loss(y, calibrate(scores, {"a": math.exp(log_a), "b": 0.0})),
            bounds=(-3.0, 3.0),
            method="bounded",
        )
        return {"method": method, "a": math.exp(float(found.x)), "b": 0.0}
    found = minimize(
        lambda ab: _log_loss(y, calibrate(scores, {"a": ab[0], "b": ab[1]})),
        x0=np.array([1.0, 0.0]),
        method="Nelder-Mead",
    )
    return {"method": method, "a": float(found.x[0]), "b": float(found.x[1])}


def fit_calibration(y: np.ndarray, scores: np.ndarray, seed: int) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """The calibration that lowers the cross-fitted log loss most (or none) and each candidate's log loss."""
    losses = {"none": _log_loss(y, scores)}
    counts = np.bincount(y)
    if len(y) < MIN_CALIBRATION_ROWS or (counts > 0).sum() < 2 or counts[counts > 0].min() < CALIBRATION_FOLDS:
        return None, losses
    methods = ["temperature", "platt"] if scores.ndim == 1 else ["temperature"]
    folds = list(StratifiedKFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed).split(scores, y))
    for method in methods:
        crossed = np.empty_like(scores, dtype=np.float64)
        for fit_rows, score_rows in folds:
            crossed[score_rows] = calibrate(scores[score_rows], _fit(method, y[fit_rows], scores[fit_rows]))
        losses[method] = _log_loss(y, crossed)
    best = min(losses, key=lambda m: losses[m])
    if best == "none" or losses[best] > losses["none"] * (1.0 - MIN_CALIBRATION_GAIN):
        return None, losses
    return _fit(best, y, scores), losses


def _accuracies(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds (midpoints between distinct probabilities) with the accuracy and balanced accuracy of
    labelling rows at or above each as class 1."""
    distinct = np.unique(p)
    cuts = np.concatenate([[0.0], (distinct[:-1] + distinct[1:]) / 2.0, [1.0 + 1e-12]])
    positives, negatives = max(int(y.sum()), 1), max(int(len(y) - y.sum()), 1)
    pos_sorted, neg_sorted = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, cuts, side="left")
    tn = np.searchsorted(neg_sorted, cuts, side="left")
    accuracy = (tp + tn) / len(y)
    balanced = (tp / positives + tn / negatives) / 2.0
    return np.minimum(cuts, 1.0), accuracy, balanced


def choose_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, str]:
    """(threshold, rule): see the module docstring."""
    cuts, accuracy, balanced = _accuracies(y, p)
    at_half = float(np.mean((p >= 0.5) == (y == 1)))
    best = int(np.argmax(accuracy))
    # Only the rows between the two thresholds change label: moving off 0.5 must win clearly more of them than it
    # loses (a sign test at two standard deviations), else it only fits the validation rows' noise.
    between = int(np.sum((p >= min(cuts[best], 0.5)) & (p < max(cuts[best], 0.5))))
    gain = (accuracy[best] - at_half) * len(y)
    clear = gain > SIGN_TEST_SIGMAS * math.sqrt(max(between, 1))
    threshold, rule = (float(cuts[best]), "accuracy") if clear else (0.5, "0.5")
    labels = p >= threshold
    auc = skm.roc_auc_score(y, p) if 0 < y.sum() < len(y) else 0.5
    if (labels.all() or not labels.any()) and auc > MIN_AUC_FOR_LABELS:
        threshold, rule = float(cuts[int(np.argmax(balanced))]), "balanced accuracy"
    return threshold, rule


def _valid_data(y: np.ndarray) -> Data:
    return Data(X=pd.DataFrame(index=pd.RangeIndex(len(y))), y=y)


def fit_guard(
    train: Data, result: TuneResult, ctx: Context
) -> tuple[Guard, dict[str, float], dict[str, Any], list[str]]:
    """The Guard, the validation metrics of the guarded model, run params and warnings."""
    guard = Guard(input_range=input_range(train, ctx))
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}
    warnings: list[str] = []
    if ctx.problem == "regression" and train.y is not None:
        guard.output_range = output_range(train.y)
    y, scores = result.valid_y, result.valid_scores
    if y is None or scores is None:
        return guard, metrics, params, warnings
    if ctx.problem in ("binary_classification", "multiclass_classification"):
        guard.calibration, losses = fit_calibration(y, scores, ctx.seed)
        params["calibration"] = guard.calibration["method"] if guard.calibration else "none"
        params.update({f"calibration_log_loss_{k}": round(v, 6) for k, v in losses.items()})
    scores = guard.scores(scores)
    if ctx.problem == "binary_classification":
        guard.threshold, params["decision_threshold_rule"] = choose_threshold(y, scores)
    metrics = evaluate(ctx.problem, _valid_data(y), scores, guard.threshold if guard.threshold is not None else 0.5)
    if ctx.problem in ("binary_classification", "multiclass_classification"):
        ranking = metrics.get("roc_auc", MIN_AUC_FOR_LABELS + 1.0)  # multiclass: labels alone decide
        if ranking > MIN_AUC_FOR_LABELS and metrics["accuracy"] <= metrics["majority_rate"]:
            warnings.append(
                f"the labels do not beat the majority class on the validation rows (accuracy "
                f"{metrics['accuracy']:.4f}, majority rate {metrics['majority_rate']:.4f}) although the ranking does"
            )
            metrics["warning_labels_vs_majority"] = metrics["accuracy"] - metrics["majority_rate"]
    return guard, metrics, params, warnings


def bootstrap_std(problem: str, objective: str, test: Data, scores: np.ndarray, seed: int) -> float:
    """The spread of the objective over bootstrap resamples of the test rows (at most BOOTSTRAP_ROWS of them)."""
    if problem == "ranking" or test.y is None or len(test) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    rows = np.arange(len(test)) if len(test) <= BOOTSTRAP_ROWS else rng.choice(len(test), BOOTSTRAP_ROWS, False)
    values = []
    for _ in range(BOOTSTRAPS):
        pick = rng.choice(rows, len(rows), replace=True)
        value = evaluate(problem, _valid_data(test.y[pick]), scores[pick]).get(objective)
        if value is not None and math.isfinite(value):
            values.append(value)
    return float(np.std(values)) if len(values) > 1 else 0.0


def gate(problem: str, valid: float | None, valid_std: float | None, test: float | None, test_std: float) -> float:
    """Test loss ÷ validation loss when the test rows fail the model (see the module docstring), else 0."""
    objective = OBJECTIVES[problem][0]
    if objective not in LOSSES | SCORES or valid is None or test is None or not math.isfinite(test):
        return 0.0
    v, t = loss_of(objective, valid), loss_of(objective, test)
    spread = GATE_SPREAD * max(valid_std or 0.0, test_std)
    if t > GATE_RATIO * v and t > v + spread:
        return t / v if v > 0 else math.inf
    return 0.0


def add_validation_metrics(
    metrics: dict[str, float], valid_metrics: dict[str, float], result: TuneResult, guard: Guard, objective: str
) -> None:
    """The guarded model's validation metrics (as validation_<name>, warnings as they are), the search's own
    estimate of the objective (the folds' mean and spread) and the decision threshold, added to the test `metrics`."""
    for name, value in valid_metrics.items():
        if name != objective:  # validation_<objective> is the search's own estimate
            metrics[name if name.startswith("warning_") else f"validation_{name}"] = value
    if result.best_valid is not None:
        metrics[f"validation_{objective}"] = float(result.best_valid)
        if result.valid_std is not None:
            metrics[f"validation_{objective}_std"] = float(result.valid_std)
    if guard.threshold is not None:
        metrics["decision_threshold"] = guard.threshold


def finish(
    algo: Algorithm, result: TuneResult, final: Fitted, train: Data, test: Data, ctx: Context, budget_end: float
) -> Finished:
    """Guard the final model, score the test rows, and gate it (falling back to a model that cannot extrapolate
    when it fails them and the budget allows)."""
    guard, valid_metrics, params, warnings = fit_guard(train, result, ctx)
    guarded = Guarded(algo, guard)
    threshold = guard.threshold if guard.threshold is not None else 0.5
    scores = guarded.predict(final.model, test, ctx)
    metrics = evaluate(ctx.problem, test, scores, threshold)
    objective = OBJECTIVES[ctx.problem][0]
    add_validation_metrics(metrics, valid_metrics, result, guard, objective)
    finished = Finished(guarded, final.model, scores, metrics, params, warnings)
    if ctx.problem not in ("binary_classification", "multiclass_classification", "regression", "ranking"):
        return finished
    spread = bootstrap_std(ctx.problem, objective, test, scores, ctx.seed)
    ratio = gate(ctx.problem, result.best_valid, result.valid_std, metrics.get(objective), spread)
    if not ratio:
        params["gate"] = "passed"
        return finished
    test_value = metrics[objective]
    fallback = _fallback(algo, result, train, test, ctx, guard, budget_end)
    if fallback is not None:
        plain, model, fallback_scores, number, fallback_valid = fallback
        fallback_metrics = evaluate(ctx.problem, test, fallback_scores)
        fallback_value = fallback_metrics.get(objective)
        fallback_std = bootstrap_std(ctx.problem, objective, test, fallback_scores, ctx.seed)
        if fallback_value is not None and not gate(ctx.problem, fallback_valid, None, fallback_value, fallback_std):
            algo.release(final.model)
            warnings.append(
                f"the searched model failed its test rows ({objective} {test_value:.6g} against {result.best_valid:.6g}"
                f" on validation); registered trial {number}'s model instead, which cannot extrapolate"
            )
            params.update(gate=f"fell back to trial {number}", gate_failed_test_objective=test_value)
            metrics = {**fallback_metrics, f"validation_{objective}": fallback_valid}
            return Finished(plain, model, fallback_scores, metrics, params, warnings)
        algo.release(model)
    warnings.append(
        f"the model's {objective} on the test rows ({test_value:.6g}) is far worse than its validation estimate "
        f"({result.best_valid:.6g}{f' ± {result.valid_std:.3g}' if result.valid_std else ''}); no sounder model passed"
    )
    params["gate"] = "warned"
    metrics["warning_test_vs_validation"] = ratio if math.isfinite(ratio) else 1e308
    return finished


def _fallback(
    algo: Algorithm, result: TuneResult, train: Data, test: Data, ctx: Context, guard: Guard, budget_end: float
) -> tuple[Guarded, Any, np.ndarray, int, float] | None:
    """The best complete trial whose model cannot extrapolate, refit on every training row, behind the guard's
    bounds (its own calibration and threshold were never fitted), with its test scores and validation value;
    None when there is none or its refit would not end within the budget."""
    direction = OBJECTIVES[ctx.problem][1]
    sound = [
        t
        for t in result.history
        if t["state"] == "COMPLETE" and not t.get("cut_by_deadline") and t["value"] is not None
        and not algo.extrapolates(t["params"], ctx)
    ]  # fmt: skip
    if not sound:
        return None
    best = (max if direction == "maximize" else min)(sound, key=lambda t: float(t["value"]))
    if time.monotonic() + float(best.get("refit_seconds") or 0.0) > budget_end:
        return None
    params = algo.refit_params(dict(best["params"]), Fitted(model=None, rounds=best["rounds"]), result.fit_fraction)
    fitted = algo.fit(params, train, None, ctx, Monitor(None, math.inf))
    plain = Guarded(algo, Guard(input_range=guard.input_range, output_range=guard.output_range))
    return plain, fitted.model, plain.predict(fitted.model, test, ctx), int(best["number"]), float(best["value"])

"""What makes answers safe to act on (guard.py, serving.Guard): early stopping on log loss, calibration, the decision
threshold, bounded inputs and outputs, and the gate before registration, on the libraries' real models."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from automl_trainer.algorithms import get_algorithm
from automl_trainer.algorithms.base import Context, Monitor
from automl_trainer.guard import choose_threshold, finish, fit_calibration, gate, output_range
from automl_trainer.prepare import Data, Preprocessing, split
from automl_trainer.serving import Column, Features, Guard, Meta, predict_frame, scores_to_answer
from automl_trainer.tune import TuneResult

from . import data


def _context(problem: str, frame: pd.DataFrame, classes: list[Any] | None = None) -> tuple[Context, Data]:
    keys = [f"f{i}" for i in range(frame.shape[1])]
    columns = [Column(name=str(c), key=k, kind="number") for c, k in zip(frame.columns, keys, strict=True)]
    pre = Preprocessing(features=Features(columns), classes=classes)
    X = frame.set_axis(keys, axis=1).astype(np.float32)
    return Context(problem, pre, threads=1, seed=0), Data(X=X)


def _cards(seed: int = 0) -> tuple[Context, Data, Data]:
    """The defect's table: credit card applications, a strong signal, about 3:1 accepted."""
    frame = data.cards(seed=seed)
    y = (frame.pop("card") == "yes").to_numpy(dtype=np.int64)
    ctx, table = _context("binary_classification", frame, ["no", "yes"])
    table.y = y
    fit_rows, valid_rows = split(table, "binary_classification", 0.25, 0)
    return ctx, table.take(fit_rows), table.take(valid_rows)


@pytest.mark.parametrize("algorithm", ["xgboost_classifier", "lightgbm_classifier"])
def test_a_slow_learning_rate_still_gives_probabilities_and_labels(algorithm: str) -> None:
    """The search's pick in the defect: learning rate 0.014. Early stopping on ROC AUC kept 19 trees and every
    probability near the class prior (all rows labelled "yes"); on log loss the model trains until its
    probabilities are as good as the library's defaults."""
    ctx, fit_part, valid = _cards()
    algo = get_algorithm(algorithm)
    slow = {**algo.default_params(ctx), "learning_rate": 0.014}
    fitted = algo.fit(slow, fit_part, valid, ctx, Monitor(None, math.inf))
    p = algo.predict(fitted.model, valid, ctx)
    assert valid.y is not None
    majority = max(valid.y.mean(), 1 - valid.y.mean())
    accuracy = float(((p >= 0.5) == (valid.y == 1)).mean())
    defaults = algo.fit(algo.default_params(ctx), fit_part, None, ctx, Monitor(None, math.inf))
    default_p = algo.predict(defaults.model, valid, ctx)
    default_accuracy = float(((default_p >= 0.5) == (valid.y == 1)).mean())
    assert accuracy > majority + 0.1, (accuracy, majority, fitted.rounds)
    assert accuracy >= default_accuracy - 0.02, (accuracy, default_accuracy, fitted.rounds)
    default_loss = log_loss(valid.y, default_p)
    assert log_loss(valid.y, p) < 1.2 * default_loss, (log_loss(valid.y, p), default_loss, fitted.rounds)


def test_calibration_fixes_squashed_probabilities_and_leaves_good_ones() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    truth_p = 1 / (1 + np.exp(-rng.normal(0, 3, n)))
    y = (rng.random(n) < truth_p).astype(np.int64)
    squashed = 0.5 + (truth_p - 0.5) * 0.3 + 0.2  # near the prior, shifted: the ranking intact, the labels not
    calibration, losses = fit_calibration(y, squashed, seed=0)
    assert calibration is not None and calibration["method"] == "platt"
    assert losses["platt"] < 0.8 * losses["none"]
    guard = Guard(calibration=calibration)
    assert log_loss(y, guard.scores(squashed)) < 0.8 * log_loss(y, squashed)
    assert fit_calibration(y, truth_p, seed=0)[0] is None  # calibrated already: nothing measurably better


def test_threshold_is_half_on_calibrated_probabilities_and_never_one_class_when_ranking_is_good() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(3000)
    y = (rng.random(3000) < p).astype(np.int64)
    threshold, rule = choose_threshold(y, p)
    assert (threshold, rule) == (0.5, "0.5")
    # Every probability above 0.5 although the ranking is good: labels from 0.5 would all be one class.
    y = (rng.random(3000) < 0.8).astype(np.int64)
    p = np.where(y == 1, rng.uniform(0.7, 0.95, 3000), rng.uniform(0.55, 0.8, 3000))
    threshold, rule = choose_threshold(y, p)
    labels = p >= threshold
    assert 0 < labels.mean() < 1
    assert ((labels == (y == 1)).mean()) > 0.85


def test_registered_answer_applies_the_threshold_and_the_callers_override() -> None:
    meta = Meta(
        problem="binary_classification", algorithm="x", library="lightgbm", model_format="lightgbm-text",
        features=Features([]), classes=["no", "yes"],
    )  # fmt: skip
    p = np.array([0.2, 0.4, 0.6, 0.9])
    assert list(scores_to_answer(meta, p, "predict")) == ["no", "no", "yes", "yes"]
    assert list(scores_to_answer(meta, p, "predict", threshold=0.3)) == ["no", "yes", "yes", "yes"]

    class Constant:
        def scores(self, X: pd.DataFrame) -> np.ndarray:
            return p

    meta.extra = {"guard": Guard(threshold=0.7).to_json()}
    rows = pd.DataFrame(index=range(4))
    assert list(predict_frame(meta, Constant(), rows)) == ["no", "no", "no", "yes"]  # type: ignore[arg-type]
    assert list(predict_frame(meta, Constant(), rows, threshold=0.1)) == ["yes"] * 4  # type: ignore[arg-type]


def test_inputs_are_clipped_to_the_training_range_and_values_bounded() -> None:
    guard = Guard(input_range={"f0": [0.0, 10.0]}, output_range=output_range(np.array([100.0, 200.0])))
    X = pd.DataFrame({"f0": np.array([-5.0, 5.0, 50.0, np.nan], dtype=np.float32), "f1": np.float32(99.0)})
    clipped = guard.inputs(X)
    assert clipped["f0"].tolist()[:3] == [0.0, 5.0, 10.0] and math.isnan(clipped["f0"].iloc[3])
    assert clipped["f1"].tolist() == [99.0] * 4  # not a bounded feature
    assert X["f0"].iloc[0] == -5.0  # the caller's frame is left alone
    assert guard.scores(np.array([0.0, 150.0, 1e9])).tolist() == [90.0, 150.0, 210.0]


def _regression(n: int, seed: int) -> tuple[Context, Data]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    ctx, table = _context("regression", frame)
    table.y = 3 * frame["a"].to_numpy() + rng.normal(0, 0.3, n)
    return ctx, table


def _broken_final(ctx: Context, train: Data) -> tuple[Any, TuneResult]:
    """A final model that learned noise (the targets shuffled) while its search reported a good RMSE."""
    algo = get_algorithm("lightgbm_regressor")
    assert train.y is not None
    noise = Data(X=train.X, y=np.random.default_rng(5).permutation(train.y))
    params = {**algo.default_params(ctx), "n_estimators": 200}
    broken = algo.fit(params, noise, None, ctx, Monitor(None, math.inf))
    result = TuneResult(params=params, trials_run=1, trials_pruned=0, best_valid=0.3, seconds=1.0, valid_std=0.02)
    return broken, result


def test_gate_falls_back_to_a_sound_trial_that_passes() -> None:
    ctx, train = _regression(1500, 0)
    _, test = _regression(500, 1)
    algo = get_algorithm("lightgbm_regressor")
    broken, result = _broken_final(ctx, train)
    sound = {**algo.default_params(ctx), "learning_rate": 0.1}
    linear = {**sound, "linear_tree": True, "linear_lambda": 1e-4}
    result.history = [
        {"number": 0, "state": "COMPLETE", "value": 0.3, "params": linear, "rounds": 80, "refit_seconds": 0.1},
        {"number": 1, "state": "COMPLETE", "value": 0.32, "params": sound, "rounds": 80, "refit_seconds": 0.1},
    ]
    done = finish(algo, result, broken, train, test, ctx, time.monotonic() + 60)
    assert done.params["gate"] == "fell back to trial 1"
    assert done.warnings and "trial 1" in done.warnings[0]
    assert done.metrics["rmse"] < 0.45
    assert done.metrics["validation_rmse"] == 0.32


def test_gate_warns_on_the_job_when_nothing_sounder_passes() -> None:
    ctx, train = _regression(1500, 0)
    _, test = _regression(500, 1)
    broken, result = _broken_final(ctx, train)
    done = finish(get_algorithm("lightgbm_regressor"), result, broken, train, test, ctx, time.monotonic() + 60)
    assert done.params["gate"] == "warned"
    assert done.metrics["warning_test_vs_validation"] > 1.5
    assert "far worse than its validation estimate" in done.warnings[0]


def test_gate_rule() -> None:
    assert gate("regression", 1.0, 0.1, 1.4, 0.0) == 0.0  # within 1.5×
    assert gate("regression", 1.0, 0.3, 1.8, 0.0) == 0.0  # beyond 1.5× but within 3 standard deviations
    assert gate("regression", 1.0, 0.1, 2.0, 0.1) == pytest.approx(2.0)
    assert gate("binary_classification", 0.99, 0.002, 0.97, 0.003) == pytest.approx(3.0)  # 1 − AUC: 0.03 vs 0.01
    assert gate("binary_classification", 0.99, 0.002, 0.985, 0.003) == 0.0
    assert gate("contextual_bandit", 0.5, None, 0.1, 0.0) == 0.0  # no rule for policy values


def test_the_registered_model_answers_as_the_trainer_does(tmp_path: Any) -> None:
    """Serving (features.json's guard, the exported Booster) and the trainer (Guarded) give the same calibrated
    probabilities and the same labels at the stored threshold."""
    from automl_trainer.guard import Guarded
    from automl_trainer.package import meta_of
    from automl_trainer.serving import Scorer

    ctx, fit_part, valid = _cards()
    algo = get_algorithm("lightgbm_classifier")
    fitted = algo.fit(algo.default_params(ctx), fit_part, None, ctx, Monitor(None, math.inf))
    guard = Guard(input_range={"f0": [0.0, 1.0]}, calibration={"method": "platt", "a": 0.7, "b": -0.4}, threshold=0.3)
    guarded = Guarded(algo, guard)
    exported = guarded.export(fitted.model, ctx, str(tmp_path))
    spec = type("Spec", (), {"problem_type": ctx.problem, "algorithm": algo.name, "label_column": "card"})()
    meta = meta_of(spec, ctx, exported.library, exported.model_format, exported.extra)
    raw = valid.X.set_axis([c.name for c in ctx.preprocessing.features.columns], axis=1)
    proba = predict_frame(meta, Scorer(meta, exported.path), raw, "predict_proba")
    trainer_side = guarded.predict(fitted.model, valid, ctx)
    np.testing.assert_allclose(proba["yes"].to_numpy(), trainer_side, rtol=1e-6)
    assert not np.allclose(trainer_side, algo.predict(fitted.model, valid, ctx))  # the calibration did something
    labels = predict_frame(meta, Scorer(meta, exported.path), raw)
    assert (labels == np.where(trainer_side >= 0.3, "yes", "no")).all()

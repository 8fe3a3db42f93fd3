"""The budget is honoured exactly (trial count and time), and the metrics compute what they claim."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import automl_trainer.tune as tune_module
from automl_trainer.algorithms import get_algorithm
from automl_trainer.algorithms.base import Bag, Context
from automl_trainer.evaluate import mean_ndcg, off_policy, random_order_ndcg
from automl_trainer.prepare import Data, Preprocessing
from automl_trainer.serving import Column, Features, Meta, Scorer
from automl_trainer.spec import Tuning
from automl_trainer.tune import (
    CV_BELOW_ROWS,
    CV_FOLDS,
    PATIENCE,
    TAIL_SECONDS,
    TUNE_SHARE,
    search_deadlines,
    tune,
    validation_for,
)


def _binary(n: int, seed: int = 0) -> tuple[Data, Context]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"f0": rng.normal(size=n), "f1": rng.normal(size=n)})
    y = (X["f0"] + rng.normal(0, 0.5, n) > 0).astype(np.int64).to_numpy()
    columns = [Column(name="a", key="f0", kind="number"), Column(name="b", key="f1", kind="number")]
    pre = Preprocessing(features=Features(columns), classes=[0, 1])
    return Data(X=X, y=y), Context("binary_classification", pre, threads=1, seed=0)


def test_trial_count_is_the_budget() -> None:
    data, ctx = _binary(400)
    result, final = tune(get_algorithm("lightgbm_classifier"), data, ctx, Tuning(2, 5), time.monotonic())
    assert result.trials_run == 2
    assert [t["number"] for t in result.history] == [0, 1]
    assert result.history[0]["params"]["learning_rate"] == 0.1  # trial 0: the library's defaults
    assert result.best_valid is not None
    assert result.best_valid > 0.8
    assert final.model is not None


def test_time_budget_stops_the_search() -> None:
    data, ctx = _binary(2000)
    budget_minutes = 0.25  # 15 s: the search may start trials for 7 s (TAIL_SECONDS are kept after it)
    algo = get_algorithm("vw_classifier")
    started = time.monotonic()
    result, _ = tune(algo, data, ctx, Tuning(100_000, budget_minutes), started)
    elapsed = time.monotonic() - started
    assert 1 <= result.trials_run < 100_000
    # No trial starts after the search's deadline (TUNE_SHARE of the budget, at the latest TAIL_SECONDS before its
    # end); the running one stops at its next pass, so the search and refit end well inside the budget.
    deadline = search_deadlines(started, budget_minutes * 60)[0] - started
    assert deadline == pytest.approx(min(budget_minutes * 60 * TUNE_SHARE, budget_minutes * 60 - TAIL_SECONDS))
    assert all(t["started_at_seconds"] < deadline for t in result.history)
    assert result.stopped_by == "deadline"  # the budget ended the search (its deadline, or the refit's)
    assert elapsed < budget_minutes * 60 + 5
    assert "passes" in result.params


def test_validation_fits_the_data_size() -> None:
    """k-fold CV below CV_BELOW_ROWS training rows (stratified for classification, grouped for ranking), one
    holdout above."""
    small, _ = _binary(600)
    cv = validation_for(small, "binary_classification", 0)
    assert cv.method == "cv" and len(cv.pairs) == CV_FOLDS
    assert cv.rows == len(small)  # every row validates once
    share = small.y.mean()  # type: ignore[union-attr]
    for _fit, valid in cv.pairs:
        assert abs(valid.y.mean() - share) < 0.02  # type: ignore[union-attr]  # stratified
    large, _ = _binary(CV_BELOW_ROWS + 100)
    holdout = validation_for(large, "binary_classification", 0)
    assert holdout.method == "holdout" and len(holdout.pairs) == 1
    rng = np.random.default_rng(1)
    n = 400
    ranked = Data(
        X=pd.DataFrame({"f0": rng.normal(size=n)}), y=rng.integers(0, 3, n), group=np.repeat(np.arange(40), 10)
    )
    for fit, valid in validation_for(ranked, "ranking", 0).pairs:
        assert not set(fit.group.tolist()) & set(valid.group.tolist())  # type: ignore[union-attr]  # grouped


def _test_auc(model_params: dict[str, object], n: int = 2000) -> float:
    from sklearn.metrics import roc_auc_score

    algo = get_algorithm("lightgbm_classifier")
    data, ctx = _binary(n)
    held, _ = _binary(n)
    _, final = tune(algo, data, ctx, Tuning(**model_params), time.monotonic())  # type: ignore[arg-type]
    return float(roc_auc_score(held.y, algo.predict(final.model, held, ctx)))


def test_one_trial_budget_gives_a_sound_model() -> None:
    algo = get_algorithm("lightgbm_classifier")
    data, ctx = _binary(2000)
    result, _ = tune(algo, data, ctx, Tuning(1, 5), time.monotonic())
    assert result.trials_run == 1
    assert result.params["n_estimators"] >= 10
    assert _test_auc({"trials": 1, "time_budget_minutes": 5}) > 0.9


def test_a_first_trial_cut_by_the_deadline_still_gives_a_sound_model() -> None:
    """The budget ends inside the first trial: its round count is not the refit's (it was 1 before the fix)."""
    algo = get_algorithm("lightgbm_classifier")
    data, ctx = _binary(2000)
    tiny = Tuning(5, 0.0001)  # 6 ms: the first boosting round already passes the deadline
    result, _ = tune(algo, data, ctx, tiny, time.monotonic())
    assert result.trials_run == 1
    assert result.history[0]["cut_by_deadline"] is True
    assert result.params["n_estimators"] >= 100  # the library's default, not the cut trial's one round
    assert _test_auc({"trials": 5, "time_budget_minutes": 0.0001}) > 0.9


def test_a_cv_search_ends_in_the_bag_of_its_best_trials_fold_models(tmp_path: Path) -> None:
    """Below CV_BELOW_ROWS the boosters' final model is the best trial's fold models (trained two at a time),
    averaged; the exported bag scores the same through the registered model's Scorer (XGBoost's members saved up
    to their early-stopped best round, as the trainer's own predictions use them). Above it: one refit."""
    held, _ = _binary(500, seed=1)
    for name in ("lightgbm_classifier", "xgboost_classifier"):
        algo = get_algorithm(name)
        data, ctx = _binary(600)
        ctx = replace(ctx, folds_at_once=2)
        result, final = tune(algo, data, ctx, Tuning(4, 5), time.monotonic())
        assert isinstance(final.model, Bag) and len(final.model.members) == CV_FOLDS
        assert result.final_model == f"bag of {CV_FOLDS} fold models"
        assert result.valid_method == "cv" and result.valid_folds == CV_FOLDS
        expected = np.mean([algo.predict(member, held, ctx) for member in final.model.members], axis=0)
        np.testing.assert_allclose(algo.predict(final.model, held, ctx), expected)
        assert float(roc_auc_score(held.y, expected)) > 0.85  # f0 itself scores about 0.94
        directory = tmp_path / name
        directory.mkdir()
        exported = algo.export(final.model, ctx, str(directory))
        assert exported.extra["bag"] == sorted(p.name for p in Path(exported.path).iterdir())
        meta = Meta(
            problem=ctx.problem,
            algorithm=name,
            library=exported.library,
            model_format=exported.model_format,
            features=ctx.preprocessing.features,
            classes=[0, 1],
            extra=exported.extra,
        )
        np.testing.assert_allclose(Scorer(meta, exported.path).scores(held.X), expected, rtol=1e-5, atol=1e-7)
    large, ctx = _binary(CV_BELOW_ROWS + 100)
    result, final = tune(get_algorithm("lightgbm_classifier"), large, ctx, Tuning(1, 5), time.monotonic())
    assert result.final_model == "refit on every training row" and not isinstance(final.model, Bag)


def test_the_search_stops_when_it_stops_improving() -> None:
    algo = get_algorithm("vw_classifier")
    data, ctx = _binary(300)
    result, _ = tune(algo, data, ctx, Tuning(10_000, 5), time.monotonic())
    assert result.stopped_by == "patience"
    assert PATIENCE <= result.trials_run < 10_000


def test_ndcg_perfect_random_and_reversed() -> None:
    y = np.array([3, 2, 1, 0, 0, 2, 1, 0])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert mean_ndcg(y, y.astype(float), group, 10) == 1.0
    assert mean_ndcg(y, -y.astype(float), group, 10) < random_order_ndcg(y, group, 10) < 1.0


def test_off_policy_estimates_against_a_known_policy() -> None:
    # Two actions logged uniformly; action 1 always pays 1, action 0 pays 0. A policy always choosing 1 is worth
    # 1, the logging policy 0.5; every estimator must see that.
    rng = np.random.default_rng(0)
    n = 4000
    action = rng.integers(0, 2, n)
    data = Data(X=pd.DataFrame(index=range(n)), action=action, reward=action.astype(float), propensity=np.full(n, 0.5))
    estimates = np.tile([0.0, 1.0], (n, 1))
    values = off_policy(data, estimates)
    assert values["policy_value_snips"] == 1.0
    assert abs(values["policy_value_ips"] - 1.0) < 0.05
    assert values["policy_value_dr"] == 1.0
    assert abs(values["logged_policy_value"] - 0.5) < 0.03


def test_a_big_table_is_searched_on_a_sample_and_trained_on_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above SEARCH_ROWS training rows the trials see a stratified sample of about that many; the final model is
    refit on every row (its rounds scaled from the sample's fit rows, at most doubled)."""
    monkeypatch.setattr(tune_module, "SEARCH_ROWS", 1000)
    monkeypatch.setattr(tune_module, "CV_BELOW_ROWS", 500)  # the sample is searched on a holdout
    data, ctx = _binary(4000)
    sample = tune_module.search_sample(data, "binary_classification", 0)
    assert abs(len(sample) - 1000) <= 1
    assert abs(sample.y.mean() - data.y.mean()) < 0.01  # type: ignore[union-attr]  # stratified
    algo = get_algorithm("lightgbm_classifier")
    fitted_rows: list[int] = []
    fit = algo.fit

    def counted(params: dict[str, object], train: Data, *rest: object) -> object:
        fitted_rows.append(len(train))
        return fit(params, train, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(algo, "fit", counted)
    result, final = tune(algo, data, ctx, Tuning(3, 5), time.monotonic())
    assert result.search_rows == len(sample) and result.valid_rows == 200
    assert result.final_model == "refit on every training row"
    assert fitted_rows == [800, 800, 800, len(data)]  # three trials on the sample's fit rows, then every row
    held, _ = _binary(2000, seed=1)
    assert float(roc_auc_score(held.y, algo.predict(final.model, held, ctx))) > 0.9
    small, _ = _binary(800)
    assert tune_module.search_sample(small, "binary_classification", 0) is small


def test_no_trial_starts_once_the_best_trials_refit_would_overrun_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refit on every training row is never cut, so the search stops starting trials once the best one's refit
    (its fit time scaled by rows) would end past REFIT_BY of the budget. With REFIT_BY 0 that is after trial 0, and
    the refit itself would end past it: the best trial's own model (trained on its fit rows) is the final one."""
    monkeypatch.setattr(tune_module, "CV_BELOW_ROWS", 500)  # a holdout search: its final model is a refit
    monkeypatch.setattr(tune_module, "REFIT_BY", 0.0)
    data, ctx = _binary(2000)
    started = time.monotonic()
    result, final = tune(get_algorithm("lightgbm_classifier"), data, ctx, Tuning(50, 1), started)
    assert result.trials_run == 1 and result.stopped_by == "deadline"
    assert result.final_model == (
        "the best trial's model, trained on 80% of the training rows (a refit on every row would end past the budget)"
    )
    assert result.valid_scores is not None and len(result.valid_scores) == result.valid_rows
    assert time.monotonic() - started < 0.5 * 60 * TUNE_SHARE  # it did not wait for the search's deadline
    held, _ = _binary(2000, seed=1)
    assert float(roc_auc_score(held.y, get_algorithm("lightgbm_classifier").predict(final.model, held, ctx))) > 0.9
    monkeypatch.setattr(tune_module, "CV_BELOW_ROWS", 20_000)  # a CV search ends in a bag: no refit, no early stop
    result, _ = tune(get_algorithm("lightgbm_classifier"), _binary(600)[0], ctx, Tuning(3, 1), time.monotonic())
    assert result.trials_run == 3 and result.final_model.startswith("bag")


def test_the_documented_shares_are_the_trainers() -> None:
    """The presets table (generated from training-presets.ts) states the trainer's own TUNE_SHARE and REFIT_BY."""
    source = (Path(__file__).resolve().parents[2] / "src/automl-training/dag/training-presets.ts").read_text()
    shares = dict(re.findall(r"export const (NO_NEW_TRIAL_AFTER|REFIT_ENDS_BY) = ([0-9.]+);", source))
    assert float(shares["NO_NEW_TRIAL_AFTER"]) == TUNE_SHARE
    assert float(shares["REFIT_ENDS_BY"]) == tune_module.REFIT_BY

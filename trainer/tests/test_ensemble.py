"""The ensemble of the search's best trials: never worse than the single best on the rows it was chosen on, kept
only when its gain is more than those rows' noise, and served as the weighted mean the trainer scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_trainer import ensemble
from automl_trainer.algorithms import get_algorithm
from automl_trainer.algorithms.base import Bag, Context, Monitor
from automl_trainer.ensemble import Candidate, objective_value, select
from automl_trainer.prepare import Data, Preprocessing
from automl_trainer.serving import Column, Features

FOLDS = 5


def _bounds(n: int) -> list[int]:
    return [round(n * (i + 1) / FOLDS) for i in range(FOLDS)]


def _candidates(problem: str, y: np.ndarray, noise: list[float], seed: int, shared: float = 0.0) -> list[Candidate]:
    """Predictions of y with independent noise of each level (plus `shared` noise common to all), best first."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 1.0, len(y))
    made = []
    for number, level in enumerate(noise):
        error = shared * common + level * rng.normal(0.0, 1.0, len(y))
        if problem == "regression":
            scores = y + error
        elif problem == "binary_classification":
            scores = 1.0 / (1.0 + np.exp(-(4.0 * (y - 0.5) + 3.0 * error)))
        else:
            logits = np.eye(3)[y] * 3.0 + 2.0 * error[:, None] * rng.normal(0.0, 1.0, (len(y), 3))
            scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        made.append(Candidate(number, objective_value(problem, y, scores, _bounds(len(y))), scores, 100))
    maximize = problem == "binary_classification"
    return sorted(made, key=lambda c: c.value, reverse=maximize)


def _truth(problem: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if problem == "regression":
        return rng.normal(0.0, 1.0, n)
    return rng.integers(0, 2 if problem == "binary_classification" else 3, n)


@pytest.mark.parametrize("problem", ensemble.PROBLEMS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_ensemble_is_never_worse_than_the_single_best_on_its_rows(problem: str, seed: int) -> None:
    y = _truth(problem, 400, seed)
    candidates = _candidates(problem, y, [0.8, 0.9, 1.0, 1.1, 1.2, 1.5], seed)
    chosen = select(problem, y, _bounds(len(y)), candidates, seed)
    assert chosen.single_value == pytest.approx(candidates[0].value)
    assert chosen.gain >= 0.0
    assert chosen.value == pytest.approx(objective_value(problem, y, chosen.scores, _bounds(len(y))))
    assert sum(chosen.weights.values()) >= 1


@pytest.mark.parametrize("problem", ensemble.PROBLEMS)
def test_trials_with_independent_errors_make_an_ensemble_that_is_kept(problem: str) -> None:
    y = _truth(problem, 3000, 7)
    candidates = _candidates(problem, y, [1.0, 1.0, 1.0, 1.0, 1.0], 7)
    chosen = select(problem, y, _bounds(len(y)), candidates, 7)
    assert chosen.kept, chosen.describe()
    assert len(chosen.weights) >= 3
    assert chosen.gain > chosen.noise > 0.0


@pytest.mark.parametrize("problem", ensemble.PROBLEMS)
def test_a_small_table_keeps_the_single_best_when_the_gain_is_noise(problem: str) -> None:
    # The trials share almost all of their error (as configurations near the best one do): whatever averaging
    # them gains on 60 rows is chance.
    y = _truth(problem, 60, 3)
    candidates = _candidates(problem, y, [0.05, 0.05, 0.05, 0.05, 0.05, 0.05], 3, shared=1.0)
    chosen = select(problem, y, _bounds(len(y)), candidates, 3)
    assert not chosen.kept, chosen.describe()


def test_the_cost_cap_bounds_the_members_rounds() -> None:
    y = _truth("regression", 2000, 5)
    candidates = _candidates("regression", y, [1.0] * 8, 5)
    candidates = [Candidate(c.number, c.value, c.scores, 100 if i == 0 else 250) for i, c in enumerate(candidates)]
    chosen = select("regression", y, _bounds(len(y)), candidates, 5)
    rounds = {c.number: c.rounds or 0 for c in candidates}
    assert sum(rounds[n] for n in chosen.weights) <= ensemble.MAX_COST * 100


def test_a_weighted_bag_predicts_the_weighted_mean_of_its_members() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"f0": rng.normal(size=300), "f1": rng.normal(size=300)})
    y = X["f0"].to_numpy() * 2.0 + rng.normal(0.0, 0.1, 300)
    columns = [Column(name="a", key="f0", kind="number"), Column(name="b", key="f1", kind="number")]
    ctx = Context(problem="regression", preprocessing=Preprocessing(features=Features(columns)), threads=1, seed=0)
    algo = get_algorithm("lightgbm_regressor")
    data = Data(X=X, y=y)
    members = [
        algo.fit({**algo.default_params(ctx), "n_estimators": n}, data, None, ctx, Monitor(None, np.inf)).model
        for n in (5, 50)
    ]
    each = [algo.predict(m, data, ctx) for m in members]
    weighted = algo.predict(Bag(members, [0.25, 0.75]), data, ctx)
    np.testing.assert_allclose(weighted, 0.25 * each[0] + 0.75 * each[1])
    np.testing.assert_allclose(algo.predict(Bag(members), data, ctx), (each[0] + each[1]) / 2)


def test_the_rank_auc_is_sklearns() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(size=500) + y, 1)  # with ties
    assert ensemble._auc(y, scores) == pytest.approx(roc_auc_score(y, scores))

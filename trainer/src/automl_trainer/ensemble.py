"""An ensemble of the search's best trials, within the chosen family: forward selection with replacement over their
out-of-fold predictions (Caruana et al. 2004), kept only when it beats the single best trial on those rows by more
than their noise.

The candidates are the best CANDIDATES whole trials of a cross-validated search (their fold models are kept, so the
ensemble needs no refit). Selection starts from the best single trial and adds, STEPS times, the candidate whose
addition gives the best objective (the mean over folds, as a trial is scored); a trial may be added again, which
raises its weight. The prefix of those steps with the best objective is the ensemble. It is kept when its objective
beats the best single trial's by more than NOISE standard errors of their difference on the same rows (paired:
per-row losses for log loss and RMSE, a bootstrap for ROC AUC), so a small table, whose differences are mostly
noise, keeps its single best. The members' summed boosting rounds stay within MAX_COST times the best trial's (what
predicting costs grows with them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

CANDIDATES = 8  # best whole trials whose fold models and out-of-fold predictions are kept
STEPS = 25  # forward-selection steps (with replacement)
NOISE = 2.0  # the ensemble must beat the single best by this many standard errors of their difference
MAX_COST = 5.0  # the members' summed rounds ≤ this × the best trial's
BOOTSTRAP = 100  # resamples for ROC AUC's standard error
EPS = 1e-15
PROBLEMS = ("binary_classification", "multiclass_classification", "regression")


@dataclass
class Candidate:
    number: int
    value: float  # the trial's own objective (mean over folds)
    scores: np.ndarray  # out-of-fold predictions, rows in fold order
    rounds: int | None


@dataclass
class Selection:
    weights: dict[int, int]  # trial number → times chosen
    value: float  # the ensemble's objective, mean over folds
    scores: np.ndarray  # its out-of-fold predictions
    single_value: float  # the best single trial's objective on the same rows
    gain: float  # how much better than the single best (in the objective's direction)
    noise: float  # NOISE × the standard error of that difference
    kept: bool  # the ensemble beats the single best by more than the noise

    def describe(self) -> str:
        members = ", ".join(f"trial {n} ×{w}" for n, w in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        return f"{members} (gain {self.gain:.4g} against noise {self.noise:.4g}: {'kept' if self.kept else 'not kept'})"


def objective_value(problem: str, y: np.ndarray, scores: np.ndarray, bounds: list[int]) -> float:
    """The objective as a trial is scored: ROC AUC (binary), log loss (multiclass), RMSE (regression), the mean
    over folds (`bounds`: where each fold's rows end)."""
    values = []
    start = 0
    for end in bounds:
        values.append(_metric(problem, y[start:end], scores[start:end]))
        start = end
    return float(np.mean(values))


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U, ties averaged): sklearn's value, without its input checks."""
    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _metric(problem: str, y: np.ndarray, scores: np.ndarray) -> float:
    if problem == "binary_classification":
        return _auc(y, scores)
    if problem == "multiclass_classification":
        p = np.clip(scores, EPS, 1.0)
        return float(skm.log_loss(y, p / p.sum(axis=1, keepdims=True), labels=list(range(scores.shape[1]))))
    return float(np.sqrt(np.mean((scores - y) ** 2)))


def _better(problem: str, a: float, b: float) -> bool:
    return a > b if problem == "binary_classification" else a < b


def _noise(problem: str, y: np.ndarray, ensemble: np.ndarray, single: np.ndarray, seed: int) -> float:
    """NOISE standard errors of the difference between the two predictions' objective on the same rows."""
    if problem == "binary_classification":
        rng = np.random.default_rng(seed)
        differences = []
        for _ in range(BOOTSTRAP):
            rows = rng.integers(0, len(y), len(y))
            if y[rows].min() == y[rows].max():
                continue
            differences.append(_metric(problem, y[rows], ensemble[rows]) - _metric(problem, y[rows], single[rows]))
        return NOISE * float(np.std(differences)) if len(differences) > 1 else float("inf")
    if problem == "multiclass_classification":

        def row_loss(scores: np.ndarray) -> np.ndarray:
            p = np.clip(scores, EPS, 1.0)
            p = p / p.sum(axis=1, keepdims=True)
            return -np.log(p[np.arange(len(y)), y.astype(np.int64)])

        d = row_loss(ensemble) - row_loss(single)
        return NOISE * float(np.std(d) / np.sqrt(len(d)))
    # RMSE: the standard error of the mean squared error's difference, carried to the RMSE (delta method)
    d = (ensemble - y) ** 2 - (single - y) ** 2
    rmse = max(float(np.sqrt(np.mean((single - y) ** 2))), EPS)
    return NOISE * float(np.std(d) / np.sqrt(len(d))) / (2.0 * rmse)


def select(problem: str, y: np.ndarray, bounds: list[int], candidates: list[Candidate], seed: int) -> Selection:
    """Forward selection with replacement from the best candidate (candidates: best first)."""
    best = candidates[0]
    single_value = objective_value(problem, y, best.scores, bounds)
    budget = MAX_COST * float(best.rounds or 1)
    chosen = [0]
    total = best.scores.astype(np.float64).copy()
    best_prefix, best_value = [0], single_value
    for _ in range(STEPS - 1):
        pick, pick_value = None, None
        used = {candidates[i].number for i in chosen}
        cost = sum(float(candidates[i].rounds or 1) for i in {*chosen})
        for i, candidate in enumerate(candidates):
            if candidate.number not in used and cost + float(candidate.rounds or 1) > budget:
                continue
            value = objective_value(problem, y, (total + candidate.scores) / (len(chosen) + 1), bounds)
            if pick_value is None or _better(problem, value, pick_value):
                pick, pick_value = i, value
        if pick is None or pick_value is None:
            break
        chosen.append(pick)
        total += candidates[pick].scores
        if _better(problem, pick_value, best_value):
            best_prefix, best_value = list(chosen), pick_value
    weights: dict[int, int] = {}
    for i in best_prefix:
        weights[candidates[i].number] = weights.get(candidates[i].number, 0) + 1
    scores = np.mean([candidates[i].scores for i in best_prefix], axis=0)
    gain = best_value - single_value if problem == "binary_classification" else single_value - best_value
    noise = _noise(problem, y, scores, best.scores, seed) if len(weights) > 1 else float("inf")
    kept = len(weights) > 1 and gain > noise
    return Selection(weights, best_value, scores, single_value, gain, noise, kept)

"""What every algorithm provides to the tuner, the evaluator and the tracker."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from automl_trainer.prepare import Data, Preprocessing


@dataclass(frozen=True)
class Context:
    problem: str
    preprocessing: Preprocessing
    threads: int
    seed: int
    folds_at_once: int = 1  # cross-validation folds trained side by side (each on `threads` threads)

    @property
    def n_classes(self) -> int:
        return len(self.preprocessing.classes or [])

    @property
    def n_actions(self) -> int:
        return len(self.preprocessing.actions or [])

    @property
    def categorical(self) -> list[str]:
        """Internal names (f0, f1, …) of the categorical features."""
        return list(self.preprocessing.categorical)

    @property
    def keys(self) -> list[str]:
        """Internal names of every feature, in order: what the libraries see."""
        return self.preprocessing.keys


class Monitor:
    """Per-iteration hook of one trial: reports the validation metric to Optuna, prunes, and stops at the deadline.

    step() returns True when training must stop now (deadline reached); it raises optuna.TrialPruned when the
    pruner says so. Without a trial (the final refit) it only watches the deadline.
    """

    def __init__(self, trial: optuna.Trial | None, deadline: float) -> None:
        self.trial = trial
        self.deadline = deadline
        self.steps = 0
        self.cut = False  # True once training was stopped by the deadline rather than by its own rule

    def step(self, iteration: int, value: float) -> bool:
        self.steps = iteration + 1
        if self.trial is not None and math.isfinite(value):
            self.trial.report(float(value), iteration)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at iteration {iteration}")
        if time.monotonic() >= self.deadline:
            self.cut = True
        return self.cut


@dataclass(frozen=True)
class Exported:
    """A fitted model written in its library's own format, and what loading it takes."""

    path: str
    library: str  # lightgbm | xgboost | vowpalwabbit | sklearn (serving.Scorer)
    model_format: str  # lightgbm-text | xgboost-ubjson | vowpalwabbit | skops
    requirements: list[str]  # pip requirements of the library, pinned to what trained it
    extra: dict[str, Any]


@dataclass
class Fitted:
    model: Any
    rounds: int | None = None  # boosting rounds / VW passes that early stopping kept


@dataclass
class Bag:
    """The fold models of the best cross-validated trial, or of an ensemble of trials: the final model averages
    their scores, weighted by `weights` when given (they sum to 1)."""

    members: list[Any]
    weights: list[float] | None = None


class Algorithm(ABC):
    # After a cross-validated search: True = the final model is the best trial's fold models (a Bag), False = a
    # refit on every training row (the benchmark decides per family).
    bags = False

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def default_params(self, ctx: Context) -> dict[str, Any]:
        """The library's sensible defaults: the first trial, and the model when nothing else completes."""

    @abstractmethod
    def suggest(self, trial: optuna.Trial, ctx: Context) -> dict[str, Any]:
        """One point of the search space."""

    def starting_points(self, ctx: Context) -> list[dict[str, Any]]:
        """The first trials, before the sampler proposes: the defaults, then known strong configurations."""
        return [self.default_params(ctx)]

    def extrapolates(self, params: dict[str, Any], ctx: Context) -> bool:
        """True where these parameters fit a model whose answer can run far beyond anything seen in training
        (linear models, linear trees): what the gate falls back from when such a model fails its test rows."""
        return False

    def default_rounds(self, params: dict[str, Any]) -> int:
        """Boosting rounds / passes the library would train without early stopping (the floor of a refit whose
        trial was cut by the deadline)."""
        return 0

    @abstractmethod
    def fit(self, params: dict[str, Any], train: Data, valid: Data | None, ctx: Context, monitor: Monitor) -> Fitted:
        """Train; with a validation set, stop early on it and report each iteration to the monitor."""

    def refit_params(self, params: dict[str, Any], fitted: Fitted, train_fraction: float) -> dict[str, Any]:
        """Parameters of the final model trained on all training rows (fixes the early-stopped round count)."""
        return dict(params)

    @abstractmethod
    def predict(self, model: Any, data: Data, ctx: Context) -> np.ndarray:
        """Scores evaluate() understands: P(class 1), class probabilities, values, ranking scores,
        anomaly scores (higher = more abnormal) or, for the bandit, estimated reward per action."""

    def release(self, model: Any) -> None:  # noqa: B027  optional hook, a no-op for most libraries
        """Free native resources of a model that is no longer needed."""

    @abstractmethod
    def export(self, model: Any, ctx: Context, directory: str) -> Exported:
        """Write the model in its library's own format (no pickle where a format exists) into directory."""

    def native_importance(self, model: Any, ctx: Context) -> dict[str, float] | None:
        """The library's own importance per internal feature name (gain), where it has one."""
        return None


def scaled_rounds(rounds: int | None, train_fraction: float, default: int) -> int:
    """Rounds found on a train_fraction share of the rows, scaled up a little for the full training set."""
    if not rounds:
        return default
    return max(1, round(rounds / max(train_fraction, 0.5)))

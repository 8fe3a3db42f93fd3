"""Stage 3: search the algorithm's space with Optuna within the job's budget, then fit the final model.

Budget (spec.tuning): the clock starts when the trainer starts (loading the table counts). No trial starts after
TUNE_SHARE of `time_budget_minutes` (the rest is for the final fit, evaluation, logging and the report), nor once
the best trial's refit on every training row (its time scaled by rows) would end after REFIT_BY of it (both at the
latest TAIL_SECONDS before the budget's end); a trial
running at TUNE_SHARE stops its boosting/passes there (it is marked `cut`). `trials` is an upper bound: the search
also ends once PATIENCE finished trials in a row have not improved the best validation score and PATIENCE_SHARE of
the search's time has passed since it last improved (a long budget is used while it may pay).

Validation fits the data size: below CV_BELOW_ROWS training rows each trial is scored by k-fold cross-validation
(stratified for classification and labelled anomalies, grouped for ranking), above it on one holdout (20 %). Above
SEARCH_ROWS the search runs on a sample of that many rows; the final model trains on every row.

Trial 0 is the library's defaults, then a few known strong configurations (the algorithm's starting points),
then TPE (multivariate, seeded); a holdout trial reports its metric every boosting round / pass to a median pruner,
a CV trial after every fold. On a table small enough to train on fewer threads than the job has, the folds of a CV
trial train side by side (Context.folds_at_once).

The final model: for a CV search of an algorithm that bags (LightGBM, XGBoost), the best trial's fold models,
averaged, or an ensemble of the best trials' (ensemble.py); otherwise a refit on every training row with the best
trial's parameters and its boosting rounds / passes (the folds' mean, scaled to the larger set); a trial cut by the
deadline never sets them below the library's default, and the final fit itself is never cut. After a holdout search
whose best trial's refit would end past the budget (REFIT_BY), that trial's own model is the final one (trained on
the fit rows, early-stopped on the validation rows).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from automl_trainer import ensemble
from automl_trainer.algorithms.base import Algorithm, Bag, Context, Fitted, Monitor
from automl_trainer.evaluate import OBJECTIVES, evaluate
from automl_trainer.prepare import Data, folds, split

VALID_FRACTION = 0.2
TUNE_SHARE = 0.8
REFIT_BY = 0.95  # the refit must be expected to end by this share of the budget (the rest: evaluation, logging)
TAIL_SECONDS = 8.0  # at least this much of the budget is kept after the search and the refit: evaluation,
# registration (a model upload and a registry round trip) and the report's minimum
CV_BELOW_ROWS = 20_000
CV_FOLDS = 5
PATIENCE = 30
PATIENCE_SHARE = 0.25  # of the search's time (budget × TUNE_SHARE) without improvement, besides PATIENCE trials
SEARCH_ROWS = 500_000  # above this many training rows the search runs on a sample of them (stratified / grouped)
MIN_IMPROVEMENT = 1e-4  # relative: smaller gains do not reset the patience count


@dataclass
class Validation:
    """How a trial is scored: k folds, or one holdout (one (fit, valid) pair)."""

    method: str  # "cv" | "holdout"
    pairs: list[tuple[Data, Data]]

    @property
    def rows(self) -> int:
        return sum(len(valid) for _, valid in self.pairs)


@dataclass
class TuneResult:
    params: dict[str, Any]
    trials_run: int
    trials_pruned: int
    best_valid: float | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    valid_std: float | None = None  # spread of the best trial's fold scores (CV only)
    valid_method: str = "none"
    valid_rows: int = 0
    valid_folds: int = 0
    search_rows: int = 0  # training rows the search saw (a sample of them on a big table); the final model sees all
    stopped_by: str = "trials"  # trials | deadline | patience | no search
    final_model: str = "refit on every training row"  # or "bag of k fold models"
    # The best trial's predictions on its validation rows (out-of-fold under CV) and their labels / targets:
    # what calibration, the decision threshold and the validation metrics are fitted on (None: no such trial).
    valid_y: np.ndarray | None = None
    valid_scores: np.ndarray | None = None
    fit_fraction: float = 1.0  # a trial's fit rows ÷ the final model's training rows (scales a refit's rounds)
    ensemble: dict[int, int] | None = None  # the final model's trials and their weights, when it is an ensemble
    ensemble_selection: str | None = None  # what the ensemble selection chose and whether it was kept


def validation_for(train: Data, problem: str, seed: int) -> Validation:
    if len(train) < CV_BELOW_ROWS:
        pairs = folds(train, problem, CV_FOLDS, seed)
        if pairs is not None:
            return Validation("cv", [(train.take(a), train.take(b)) for a, b in pairs])
    fit_rows, valid_rows = split(train, problem, VALID_FRACTION, seed)
    return Validation("holdout", [(train.take(fit_rows), train.take(valid_rows))])


def search_sample(train: Data, problem: str, seed: int) -> Data:
    """The rows the search runs on: all of them up to SEARCH_ROWS, else a sample of about that many, drawn the way
    the test rows were (stratified for classification, whole groups for ranking)."""
    if len(train) <= SEARCH_ROWS:
        return train
    rows, _ = split(train, problem, 1.0 - SEARCH_ROWS / len(train), seed)
    return train.take(np.sort(rows))


def search_deadlines(started: float, budget: float) -> tuple[float, float]:
    """When the last trial may start, and by when the final model's refit must be expected to end: TUNE_SHARE and
    REFIT_BY of the budget, and in any case TAIL_SECONDS before its end."""
    tail = started + budget - TAIL_SECONDS
    return min(started + budget * TUNE_SHARE, tail), min(started + budget * REFIT_BY, tail)


def tune(
    algo: Algorithm,
    train: Data,
    ctx: Context,
    tuning: Any,
    started: float,
    train_rows: int | None = None,
    final_fit: Callable[[dict[str, Any]], Fitted] | None = None,
) -> tuple[TuneResult, Fitted]:
    """Search, then refit the best parameters on all of `train`. `started`: when the trainer started (the budget's
    clock). Returns the search summary and the final model.

    With `final_fit` (a table trained on a Dask cluster), `train` is a sample of `train_rows` training rows held
    elsewhere and the final model is always `final_fit(params)` with the best trial's parameters and rounds, scaled
    to `train_rows`."""
    rows = train_rows or len(train)
    t0 = time.monotonic()
    budget = tuning.time_budget_minutes * 60.0
    deadline, refit_by = search_deadlines(started, budget)
    objective_name, direction = OBJECTIVES[ctx.problem]
    unsupervised = ctx.problem == "anomaly_detection" and train.y is None

    if unsupervised:
        # Nothing to score a trial against without a label: the defaults, no search (trials_run 0).
        result = TuneResult(dict(algo.default_params(ctx)), 0, 0, None, 0.0, stopped_by="no search")
        final = algo.fit(result.params, train, None, ctx, Monitor(None, math.inf))
        result.seconds = time.monotonic() - t0
        return result, final

    searched = search_sample(train, ctx.problem, ctx.seed)
    validation = validation_for(searched, ctx.problem, ctx.seed)
    fit_fraction = len(validation.pairs[0][0]) / rows  # of the rows the final model trains on
    cv = validation.method == "cv"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0 if cv else 20),
    )
    for point in algo.starting_points(ctx):
        study.enqueue_trial(point, skip_if_exists=True)

    # The final model will be the best trial's fold models (or an ensemble's): no refit. Not when it trains elsewhere.
    bags = cv and algo.bags and final_fit is None
    at_once = max(1, min(ctx.folds_at_once, len(validation.pairs))) if cv else 1
    pool = ThreadPoolExecutor(max_workers=at_once) if at_once > 1 else None  # the libraries release the GIL
    # The best whole trials so far, best first (ensemble.CANDIDATES of them when the final model bags, to ensemble;
    # else the best one): their fold models when it bags, their validation scores (classification and regression;
    # out-of-fold under CV). The validation labels are the same rows for every trial.
    keep_scores = ctx.problem in ensemble.PROBLEMS
    keep = ensemble.CANDIDATES if bags and keep_scores else 1
    kept: list[dict[str, Any]] = []
    truth_kept: dict[str, Any] = {"y": None, "bounds": None}

    def release(models: list[Any]) -> None:
        for model in models:
            algo.release(model)

    def objective(trial: optuna.Trial) -> float:
        params = algo.suggest(trial, ctx)
        values: list[float] = []
        rounds: list[int] = []
        models: list[Any] = []
        truth: list[np.ndarray] = []
        predicted: list[np.ndarray] = []
        cut = False
        trial_started = time.monotonic()

        def fold(pair: tuple[Data, Data]) -> tuple[Fitted, float | None, bool, np.ndarray]:
            fit_part, valid_part = pair
            monitor = Monitor(None if cv else trial, deadline)
            fitted = algo.fit(params, fit_part, valid_part, ctx, monitor)
            try:
                scores = algo.predict(fitted.model, valid_part, ctx)
                value = evaluate(ctx.problem, valid_part, scores).get(objective_name)
            except BaseException:
                algo.release(fitted.model)
                raise
            return fitted, value, monitor.cut, scores

        try:
            for start in range(0, len(validation.pairs), at_once):
                batch = validation.pairs[start : start + at_once]
                done = list(pool.map(fold, batch)) if pool is not None else [fold(batch[0])]
                for (_, valid_part), (fitted, value, fold_cut, scores) in zip(batch, done, strict=True):
                    models.append(fitted.model)
                    if keep_scores and valid_part.y is not None:
                        truth.append(valid_part.y)
                        predicted.append(scores)
                    if value is None or not math.isfinite(value):
                        raise optuna.TrialPruned(f"{objective_name} undefined on the validation rows")
                    values.append(float(value))
                    if fitted.rounds:
                        rounds.append(int(fitted.rounds))
                    cut = cut or fold_cut
                if cut:
                    break
                if cv:
                    trial.report(float(np.mean(values)), len(values) - 1)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after fold {len(values)}")
        except BaseException:
            release(models)
            raise
        value = float(np.mean(values))
        # What refitting these parameters on every training row would take: one fold's time, scaled by rows.
        one_fit = (time.monotonic() - trial_started) * at_once / len(values)
        trial.set_user_attr("refit_seconds", one_fit * rows / len(validation.pairs[0][0]))
        trial.set_user_attr("rounds", round(float(np.mean(rounds))) if rounds else None)
        trial.set_user_attr("cut", cut)
        trial.set_user_attr("folds", len(values))
        trial.set_user_attr("std", float(np.std(values)) if len(values) > 1 else None)
        worst = kept[-1]["value"] if len(kept) >= keep else None
        if not cut and _improves(value, worst, direction, margin=0.0):
            if truth and truth_kept["y"] is None:
                truth_kept.update(y=np.concatenate(truth), bounds=list(np.cumsum([len(t) for t in truth])))
            kept.append(
                {
                    "number": trial.number,
                    "value": value,
                    "models": models if bags or not cv else [],  # a holdout trial's model: the final one if
                    # its refit would not fit the budget
                    "scores": np.concatenate(predicted) if truth else None,
                    "rounds": int(np.mean(rounds)) if rounds else None,
                }
            )
            kept.sort(key=lambda k: k["value"], reverse=direction == "maximize")
            for dropped in kept[keep:]:
                release(dropped["models"])
            del kept[keep:]
            if not bags and cv:
                release(models)
        else:
            release(models)
        return value

    stop = {"by": "trials"}
    best_seen: dict[str, Any] = {"value": None, "since": 0, "at": time.monotonic()}
    patience_seconds = PATIENCE_SHARE * max(0.0, deadline - started)
    refit: dict[str, Any] = {"value": None, "seconds": 0.0}  # the best whole trial so far, and its refit's cost

    def callbacks(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        value = frozen.value if frozen.state == optuna.trial.TrialState.COMPLETE else None
        if value is not None and not frozen.user_attrs.get("cut") and _improves(value, refit["value"], direction, 0.0):
            refit.update(value=frozen.value, seconds=0.0 if bags else float(frozen.user_attrs["refit_seconds"]))
        # No trial starts after the search's deadline, nor once the best trial's refit would end past refit_by.
        now = time.monotonic()
        if now >= deadline or (refit["seconds"] > 0 and now + refit["seconds"] >= refit_by):
            stop["by"] = "deadline"
            study.stop()
            return
        if frozen.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            return
        value, best = frozen.value, best_seen["value"]
        if frozen.state == optuna.trial.TrialState.COMPLETE and value is not None and _improves(value, best, direction):
            best_seen.update(value=value, since=0, at=now)
        else:
            best_seen["since"] += 1
        if best_seen["since"] >= PATIENCE and now - best_seen["at"] >= patience_seconds:
            stop["by"] = "patience"
            study.stop()

    remaining = max(1.0, deadline - time.monotonic())
    try:
        study.optimize(objective, n_trials=tuning.trials, timeout=remaining, callbacks=[callbacks])
    finally:
        if pool is not None:
            pool.shutdown()

    ran = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]  # not the unused enqueued ones
    complete = [t for t in ran if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in ran if t.state == optuna.trial.TrialState.PRUNED]
    whole = [t for t in complete if not t.user_attrs.get("cut")] or complete  # a cut trial only if nothing else
    best = None
    if whole:
        best = (max if direction == "maximize" else min)(whole, key=lambda t: float(t.value))  # type: ignore[arg-type]
        params, rounds, best_valid = dict(best.params), best.user_attrs.get("rounds"), best.value
        if best.user_attrs.get("cut"):
            rounds = max(rounds or 0, algo.default_rounds(best.params)) or None
        std = best.user_attrs.get("std")
    else:
        params, rounds, best_valid, std = dict(algo.default_params(ctx)), None, None, None
    job_start_wall = time.time() - (time.monotonic() - started)
    history = [
        {
            "number": t.number,
            "started_at_seconds": t.datetime_start.timestamp() - job_start_wall if t.datetime_start else None,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "rounds": t.user_attrs.get("rounds"),
            "cut_by_deadline": t.user_attrs.get("cut"),
            "folds": t.user_attrs.get("folds"),
            "refit_seconds": t.user_attrs.get("refit_seconds"),
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None,
        }
        for t in ran
    ]
    top = kept[0] if kept and best is not None and kept[0]["number"] == best.number else None
    chosen = None
    if bags and top is not None and len(kept) > 1 and all(k["scores"] is not None for k in kept):
        candidates = [ensemble.Candidate(k["number"], k["value"], k["scores"], k["rounds"]) for k in kept]
        chosen = ensemble.select(ctx.problem, truth_kept["y"], truth_kept["bounds"], candidates, ctx.seed)
    if chosen is not None and chosen.kept:
        members = [k for k in kept if k["number"] in chosen.weights]
        total = sum(chosen.weights.values())
        weights = [chosen.weights[k["number"]] / total / len(k["models"]) for k in members for _ in k["models"]]
        for k in kept:
            if k["number"] not in chosen.weights:
                release(k["models"])
        final_model = f"ensemble of {len(members)} trials' fold models"
        final_params = {**params, "n_estimators": rounds} if rounds else params
        final = Fitted(model=Bag([m for k in members for m in k["models"]], weights), rounds=rounds)
    elif bags and top is not None:
        for k in kept[1:]:
            release(k["models"])
        final_model = f"bag of {len(top['models'])} fold models"
        final_params = {**params, "n_estimators": rounds} if rounds else params
        final = Fitted(model=Bag(top["models"]), rounds=rounds)
    elif (
        not cv
        and final_fit is None
        and top is not None
        and best is not None
        and time.monotonic() + float(best.user_attrs.get("refit_seconds") or 0.0) > refit_by
    ):
        # Refitting on every row would end past the budget: the best trial's own model, trained on its fit rows
        # and early-stopped on the validation rows, is the final model.
        final_model = (
            f"the best trial's model, trained on {fit_fraction:.0%} of the training rows (a refit on every row "
            "would end past the budget)"
        )
        final_params = algo.refit_params(params, Fitted(model=None, rounds=rounds), 1.0)  # its own rounds
        final = Fitted(model=top["models"][0], rounds=rounds)
    else:
        for k in kept:
            release(k["models"])
        final_model = "refit on every training row"
        final_params = algo.refit_params(params, Fitted(model=None, rounds=rounds), fit_fraction)
        if final_fit is not None:
            final_model = "refit on every training row across the Dask cluster"
            final = final_fit(final_params)
        else:
            final = algo.fit(final_params, train, None, ctx, Monitor(None, math.inf))
    result = TuneResult(
        params=final_params,
        trials_run=len(ran),
        trials_pruned=len(pruned),
        best_valid=best_valid,
        seconds=time.monotonic() - t0,
        history=history,
        valid_std=std,
        valid_method=validation.method,
        valid_rows=validation.rows,
        valid_folds=len(validation.pairs),
        stopped_by=stop["by"] if len(ran) < tuning.trials else "trials",
        final_model=final_model,
        search_rows=len(searched),
        fit_fraction=fit_fraction,
    )
    if top is not None:
        result.valid_y, result.valid_scores = truth_kept["y"], top["scores"]
    if chosen is not None:
        result.ensemble_selection = chosen.describe()
    if chosen is not None and chosen.kept:
        result.valid_scores = chosen.scores
        result.best_valid = chosen.value
        result.ensemble = chosen.weights
    return result, final


def _improves(value: float, best: float | None, direction: str, margin: float | None = None) -> bool:
    if best is None:
        return True
    margin = MIN_IMPROVEMENT * max(abs(best), 1e-12) if margin is None else margin
    return value > best + margin if direction == "maximize" else value < best - margin

"""Stage 3: search the algorithm's space with Optuna within the job's budget, then refit on all training rows.

Budget: exactly spec.tuning — at most `trials` trials, and the search stops launching trials once TUNE_SHARE of
`time_budget_minutes` has passed since the job started (the rest is for the refit, evaluation and logging);
a trial running at the deadline stops its boosting/passes there. The first trial is the library's defaults
(so a budget of one trial is a sound default model), then TPE (multivariate, seeded) proposes; trials report
their validation metric every boosting round / pass and the median pruner stops the hopeless ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from automl_trainer.algorithms.base import Algorithm, Context, Fitted, Monitor
from automl_trainer.evaluate import OBJECTIVES, evaluate
from automl_trainer.prepare import Data, split
from automl_trainer.spec import Tuning

VALID_FRACTION = 0.2
TUNE_SHARE = 0.75


@dataclass
class TuneResult:
    params: dict[str, Any]
    trials_run: int
    trials_pruned: int
    best_valid: float | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def tune(algo: Algorithm, train: Data, ctx: Context, tuning: Tuning, started: float) -> tuple[TuneResult, Fitted]:
    """Search, then refit the best parameters on all of `train`. Returns the search summary and the final model."""
    t0 = time.monotonic()
    budget = tuning.time_budget_minutes * 60.0
    deadline = started + budget * TUNE_SHARE
    objective_name, direction = OBJECTIVES[ctx.problem]
    unsupervised = ctx.problem == "anomaly_detection" and train.y is None

    if unsupervised:
        # Nothing to score a trial against without a label: the defaults, no search (trials_run 0).
        result = TuneResult(dict(algo.default_params(ctx)), 0, 0, None, 0.0)
        final = algo.fit(result.params, train, None, ctx, Monitor(None, started + budget))
        result.seconds = time.monotonic() - t0
        return result, final

    fit_rows, valid_rows = split(train, ctx.problem, VALID_FRACTION, ctx.seed)
    fit_part, valid_part = train.take(fit_rows), train.take(valid_rows)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=20),
    )
    study.enqueue_trial(algo.default_params(ctx))

    def objective(trial: optuna.Trial) -> float:
        params = algo.suggest(trial, ctx)
        fitted = algo.fit(params, fit_part, valid_part, ctx, Monitor(trial, deadline))
        trial.set_user_attr("rounds", fitted.rounds)
        try:
            value = evaluate(ctx.problem, valid_part, algo.predict(fitted.model, valid_part, ctx)).get(objective_name)
        finally:
            algo.release(fitted.model)
        if value is None or not math.isfinite(value):
            raise optuna.TrialPruned(f"{objective_name} undefined on the validation rows")
        return float(value)

    def stop_at_deadline(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if time.monotonic() >= deadline:
            study.stop()

    remaining = max(1.0, deadline - time.monotonic())
    study.optimize(objective, n_trials=tuning.trials, timeout=remaining, callbacks=[stop_at_deadline])

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if complete:
        best = study.best_trial
        params, rounds, best_valid = dict(best.params), best.user_attrs.get("rounds"), best.value
    else:
        params, rounds, best_valid = dict(algo.default_params(ctx)), None, None
    job_start_wall = time.time() - (time.monotonic() - started)
    history = [
        {
            "number": t.number,
            "started_at_seconds": t.datetime_start.timestamp() - job_start_wall if t.datetime_start else None,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "rounds": t.user_attrs.get("rounds"),
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None,
        }
        for t in study.trials
    ]
    train_fraction = len(fit_part) / max(1, len(train))
    final_params = algo.refit_params(params, Fitted(model=None, rounds=rounds), train_fraction)
    final = algo.fit(final_params, train, None, ctx, Monitor(None, started + budget))
    result = TuneResult(
        params=final_params,
        trials_run=len(study.trials),
        trials_pruned=len(pruned),
        best_valid=best_valid,
        seconds=time.monotonic() - t0,
        history=history,
    )
    return result, final

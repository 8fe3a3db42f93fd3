"""The stages in order: load → prepare → tune/train → evaluate → log/register → report. Returns the result JSON.

The job's time budget (`tuning.time_budget_minutes`) is counted from the trainer's start: loading and preparing the
table, the search and the final model, evaluation, registration and the report all fit in it (the search stops at
tune.TUNE_SHARE of it, the final model is expected by tune.REFIT_BY, both at least tune.TAIL_SECONDS before its end;
the report gets what is left less END_SECONDS).
How long each part took is logged as the run's `time_<part>_seconds` metrics and returned as `timings`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

from automl_trainer import cluster, memory, package, report, track
from automl_trainer.algorithms import get_algorithm
from automl_trainer.algorithms.base import Algorithm, Context, Fitted
from automl_trainer.errors import TrainerError
from automl_trainer.evaluate import OBJECTIVES
from automl_trainer.guard import Finished, finish
from automl_trainer.load import Source, open_source
from automl_trainer.prepare import Data, Preprocessing, prepare, split
from automl_trainer.spec import JobSpec
from automl_trainer.tune import TuneResult, search_deadlines, tune

TEST_FRACTION = 0.2
SEED = 42


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"automl_trainer: [{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


CELLS_PER_THREAD = 250_000
END_SECONDS = 1.0  # kept after the report: tagging the version, the last metrics, ending the run, the result file


def useful_threads(available: int, cells: int) -> int:
    """Small tables train fastest on one thread (thread start-up and synchronisation dominate)."""
    return max(1, min(available, 1 + cells // CELLS_PER_THREAD))


Stages = tuple[TuneResult, Finished, Context, Data, Any]  # and the table's first rows as loaded


def _on_cluster(
    spec: JobSpec, source: Source, needed: memory.Estimate | None, allowed: memory.Limit
) -> tuple[str, str] | None:
    """(scheduler address, why) when the job trains on the Dask cluster; None on this worker. A table over the
    memory limit that the cluster cannot train fails here, saying both."""
    address = cluster.address()
    over = needed is not None and needed.total > allowed.bytes
    if address is None or not (over or cluster.forced()):
        return None
    reason = cluster.unsupported(spec, source)
    if reason is None:
        if over:
            assert needed is not None
            return address, f"the memory estimate ({memory.human(needed.total)}) is over {allowed.describe()}"
        return address, f"{cluster.ENV_FORCE} is set"
    if over:
        assert needed is not None
        try:
            memory.check(needed, source.table, allowed)
        except TrainerError as error:
            raise TrainerError(f"{error}; {reason}") from None
    log(f"{cluster.ENV_FORCE} is set, but {reason}: training on this worker")
    return None


def _common_params(spec: JobSpec, n_rows: int, n_train: int, n_test: int, pre: Preprocessing) -> dict[str, Any]:
    return {
        "algorithm": spec.algorithm,
        "problem_type": spec.problem_type,
        "preset": spec.preset,
        "source_table": spec.source_table,
        "label_column": spec.label_column,
        "budget_trials": spec.tuning.trials,
        "budget_minutes": spec.tuning.time_budget_minutes,
        "n_rows": n_rows,
        "n_train": n_train,
        "n_test": n_test,
        "n_features": len(pre.keys),
        "n_categorical": len(pre.categorical),
        **{
            k: v
            for k, v in {
                "group_column": spec.group_column,
                "action_column": spec.action_column,
                "reward_column": spec.reward_column,
                "cost_column": spec.cost_column,
                "propensity_column": spec.propensity_column,
            }.items()
            if v
        },
    }


def _searched(result: TuneResult, rows: int) -> None:
    log(
        f"{result.trials_run} trials ({result.trials_pruned} pruned, stopped by {result.stopped_by}, search on "
        f"{result.search_rows} of {rows} training rows, validation {result.valid_method} on "
        f"{result.valid_rows} rows) in {result.seconds:.1f}s; final model: {result.final_model}; best {result.params}"
        + (f"; ensemble selection: {result.ensemble_selection}" if result.ensemble_selection else "")
    )


def _single_node(spec: JobSpec, source: Source, algo: Algorithm, threads: int, started: float, took: Any) -> Stages:
    """Load the whole table here, prepare, search, fit and evaluate on this worker."""
    parts = source.parts(threads)
    reader = (
        "SQLAlchemy"
        if not source.columnar()
        else "ADBC (COPY binary" + (f", {parts} parts side by side)" if parts > 1 else ")")
    )
    log(f"loading through {reader}")
    frame = source.read(streams=threads)
    features = source.features
    source.close()  # no connection to the source is held while the job trains
    log(f"loaded {len(frame)} rows, {len(features)} features from {spec.source_table}")
    took("load")

    # prepare
    data, pre = prepare(frame, features, spec)
    raw_sample = frame[features].head(package.PREDICT_ROWS).copy()  # each column's dtype: signature, predict time
    del frame
    per_model = useful_threads(threads, data.X.size)
    ctx = Context(
        problem=spec.problem_type,
        preprocessing=pre,
        threads=per_model,
        seed=SEED,
        folds_at_once=max(1, threads // per_model),  # small tables: cross-validation folds side by side
    )
    train_rows, test_rows = split(data, spec.problem_type, TEST_FRACTION, SEED)
    train, test = data.take(train_rows), data.take(test_rows)
    n_rows = len(data)
    del data  # train and test are the copies the rest uses: no third one of the table
    track.log_params({**_common_params(spec, n_rows, len(train), len(test), pre), "engine": "single node"})
    track.log_json("preprocessing.json", pre.to_json())
    took("prepare")

    # tune / train
    result, final = tune(algo, train, ctx, spec.tuning, started)
    _searched(result, len(train))
    took("search")

    # guard, evaluate, gate
    _, refit_by = search_deadlines(started, spec.tuning.time_budget_minutes * 60.0)
    done = finish(algo, result, final, train, test, ctx, refit_by)
    return result, done, ctx, test, raw_sample


def _on_dask(
    spec: JobSpec,
    source: Source,
    engine: cluster.Cluster,
    reason: str,
    needed: memory.Estimate,
    algo: Algorithm,
    threads: int,
    started: float,
    took: Any,
) -> Stages:
    """The encoding fixed from the database, the table read into the workers, the search on a sample of it here,
    the final model and the test rows' scores on the cluster (cluster.py)."""
    pre, head = cluster.describe(source, spec)
    held = cluster.load(engine, source, spec, pre, needed, SEED, TEST_FRACTION)
    source.close()  # the workers have read it: no connection to the source is held while the job trains
    n_train, n_test, partitions = held.pop("train_rows"), held.pop("test_rows"), held.pop("partitions")
    log(
        f"the Dask workers read {n_train + n_test} rows of {spec.source_table} in {partitions} partitions "
        f"(partitions per worker: {held})"
    )
    took("load")
    sample = cluster.search_data(engine, n_train, SEED)
    per_model = useful_threads(threads, sample.X.size)
    ctx = Context(
        problem=spec.problem_type,
        preprocessing=pre,
        threads=per_model,
        seed=SEED,
        folds_at_once=max(1, threads // per_model),
    )
    track.log_params(
        {
            **_common_params(spec, n_train + n_test, n_train, n_test, pre),
            **cluster.describe_cluster(engine),
            "engine_reason": reason,
            "dask_partitions": partitions,
            "dask_partitions_by_worker": json.dumps(held, sort_keys=True),
        }
    )
    track.log_json("preprocessing.json", pre.to_json())
    took("prepare")
    log(f"searching on {len(sample)} of the {n_train} training rows, drawn by the workers")

    def refit(params: dict[str, Any]) -> Fitted:
        log(f"training the final model across the Dask cluster ({params.get('n_estimators')} rounds)")
        return cluster.fit(engine, algo, params, ctx)

    result, final = tune(algo, sample, ctx, spec.tuning, started, train_rows=n_train, final_fit=refit)
    _searched(result, n_train)
    took("search")
    done, test = cluster.finish(engine, algo, result, final, sample, ctx)
    return result, done, ctx, test, head[source.features]


def run_pipeline(spec: JobSpec, source_url: str, run_id: str, threads: int, started: float) -> dict[str, Any]:
    """`started`: when the trainer started (time.monotonic()), the budget's clock."""
    algo = get_algorithm(spec.algorithm)
    budget_end = started + spec.tuning.time_budget_minutes * 60.0
    timings: dict[str, float] = {}
    mark = {"at": time.monotonic()}
    timings["start"] = mark["at"] - started  # the process up to here: MLflow's run started

    def took(part: str) -> None:
        now = time.monotonic()
        timings[part] = now - mark["at"]
        mark["at"] = now

    # load
    allowed = memory.limit()
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(source_url, spec))
        needed = memory.estimate(source)
        if needed is None:
            log(f"no row count from {source.engine.dialect.name} before reading: memory estimate skipped")
        else:
            track.log_params({"estimated_memory_bytes": needed.total, "estimated_rows": needed.rows})
            log(
                f"{spec.source_table}: about {needed.rows} rows ({source.rows_from}), needs about "
                f"{memory.human(needed.total)}; limit {allowed.describe()}"
            )
        on_cluster = _on_cluster(spec, source, needed, allowed)
        if on_cluster is None:
            if needed is not None:
                memory.check(needed, source.table, allowed)
            stages = _single_node(spec, source, algo, threads, started, took)
        else:
            assert needed is not None
            engine = stack.enter_context(contextlib.closing(cluster.Cluster.connect(on_cluster[0], source_url)))
            log(f"training on the Dask cluster at {engine.address} ({engine.size}): {on_cluster[1]}")
            stages = _on_dask(spec, source, engine, on_cluster[1], needed, algo, threads, started, took)
    result, done, ctx, test, raw_sample = stages
    metrics = done.metrics
    objective = OBJECTIVES[spec.problem_type][0]
    log(f"test metrics {metrics}")
    for warning in done.warnings:
        log(f"warning: {warning}")
    # Which estimate is which, and how many rows are behind each: the test metrics (plain names) come from rows
    # the search never saw; the validation estimate (guard.finish) is the registered trial's (CV mean and spread, or
    # one holdout), the other validation metrics the guarded model's on those rows (out-of-fold under CV).
    metrics.setdefault("test_rows", float(len(test)))
    if result.best_valid is not None:
        metrics["validation_rows"] = float(result.valid_rows)
        metrics["validation_folds"] = float(result.valid_folds)
    model, test_scores = done.model, done.test_scores

    # log / register
    track.log_params(
        {
            **{f"hp.{k}": v for k, v in result.params.items()},
            "validation_method": result.valid_method,
            "search_stopped_by": result.stopped_by,
            "final_model": result.final_model,
            **({"ensemble_selection": result.ensemble_selection} if result.ensemble_selection else {}),
            "search_rows": result.search_rows,
            **done.params,
        }
    )
    if done.warnings:
        track.set_tag("automl.warnings", "\n".join(done.warnings)[:5000])
    took("evaluate")
    summary = {
        "trials_run": float(result.trials_run),
        "trials_pruned": float(result.trials_pruned),
        "tuning_seconds": result.seconds,
    }
    track.log_metrics({**metrics, **summary})
    track.log_json("trials.json", result.history)
    log("logging and registering the model")
    info, meta, cost = package.log_model(done.algo, model, spec, ctx, raw_sample)
    model_version = str(info.registered_model_version)
    metrics.update(cost)  # the job's metrics too: what serving the model costs
    track.log_metrics(cost)
    per_1000 = cost.get("predict_ms_per_1000_rows", 0.0)
    log(f"model: {cost['model_size_bytes'] / 1e6:.1f} MB, predicts 1,000 raw rows in {per_1000:.1f} ms")
    took("register")
    left = budget_end - time.monotonic() - END_SECONDS
    log(f"writing the report ({left:.1f}s of the budget left for it)")
    try:
        report.log_report(done.algo, model, ctx, test, test_scores, meta, left)
    except Exception as error:  # the model is registered and sound: a report that fails is noted, not fatal
        log(f"report incomplete: {type(error).__name__}: {error}")
        track.set_tag("automl.report_error", f"{type(error).__name__}: {error}"[:5000])
    took("report")
    algo.release(model)
    track.tag_version(spec.registered_model_name, model_version, spec.job_id)
    log(f"registered {spec.registered_model_name} version {model_version}")
    time_used = time.monotonic() - started
    track.log_metrics(
        {
            "time_used_seconds": time_used,
            "time_budget_seconds": spec.tuning.time_budget_minutes * 60.0,
            **{f"time_{part}_seconds": seconds for part, seconds in timings.items()},
        }
    )
    return {
        "mlflow_run_id": run_id,
        "registered_model_name": spec.registered_model_name,
        "model_version": model_version,
        "objective": objective,
        "metrics": {k: v for k, v in metrics.items() if v == v},
        "trials_run": result.trials_run,
        "best_params": result.params,
        "time_used_seconds": round(time_used, 3),
        "timings": {part: round(seconds, 3) for part, seconds in timings.items()},
        "warnings": done.warnings,
    }

"""The final model of a table one worker cannot hold, trained across a Dask cluster.

When DASK_SCHEDULER_ADDRESS names a Dask scheduler, a LightGBM or XGBoost classifier or regressor whose table the
memory estimate refuses (or any such table when AUTOML_DASK_FORCE is set) trains this way:

1. The encoding is fixed before any partition is read, from the database's own aggregates: which rows the text
   features hold most often (their categories, by count, ties by text, as `prepare.describe_features` orders
   them), which columns hold NULLs, and the label's classes. Each column's kind and raw type come from the table's
   first rows. So every partition encodes its rows the same way, and the model's features.json is the one the
   single-node trainer would write for the same table.
2. The table is cut into ctid ranges of its pages, sized from its row estimate so that one partition takes a
   small share of the smallest worker's memory. Each Dask worker reads its partitions from the source itself
   (the ADBC columnar reader, the same read-only credential), encodes them, and splits each into training and
   test rows (TEST_FRACTION, seeded per partition). The partitions stay on the workers; no process holds the
   whole table.
3. The search runs on the trainer as on one machine, on a sample of the training rows (at most
   tune.SEARCH_ROWS) that the workers draw from their partitions.
4. The final model trains on every training row across the cluster (`lightgbm.dask` / `xgboost.dask`) with the
   best trial's parameters and its rounds, scaled as a single-node refit's are. The booster comes back to the
   trainer as the library's own sklearn model, so export, the registered pyfunc and the report are the
   single-node ones.
5. The test rows are scored on the cluster, behind the same guard (input ranges taken from every training row),
   and only their scores and labels come back; the report uses a sample of them.

Failures name their cause: a scheduler that does not answer, a worker lost while the cluster works (its address),
a partition that did not fit its worker's memory (the worker's nanny restarted it at its memory limit). Futures
still running are cancelled.

The workers run the trainer's environment (requirements.lock and this package on the path, as the trainer's
image has them): the tasks are this module's functions.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from automl_trainer.algorithms.base import Algorithm, Context, Fitted
from automl_trainer.errors import TrainerError
from automl_trainer.evaluate import OBJECTIVES, evaluate
from automl_trainer.guard import (
    Finished,
    Guarded,
    add_validation_metrics,
    bootstrap_std,
    fit_guard,
    gate,
    output_range,
)
from automl_trainer.load import Source, TableName, _first_line, _read_adbc, build_query, postgresql_sql, table_parts
from automl_trainer.memory import UNLIMITED, Estimate, human
from automl_trainer.prepare import MAX_CATEGORIES, Data, Preprocessing, describe_features
from automl_trainer.serving import Features, category_text
from automl_trainer.spec import JobSpec
from automl_trainer.tune import SEARCH_ROWS, TuneResult

ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"
ENV_FORCE = "AUTOML_DASK_FORCE"
PROBLEMS = ("binary_classification", "multiclass_classification", "regression")
CONNECT_SECONDS = 10.0
HEAD_ROWS = 1000  # the table's first rows: each column's kind and raw type, the model's signature and example
# What a worker holds per training row across the job, in bytes of the encoded row (float32 features + the label):
# its persisted partitions, the library's concatenated copy and its binned dataset.
WORKER_ROW_FACTOR = 3.0
WORKER_BASE_BYTES = 150 * 2**20  # a worker process with pandas, pyarrow, the driver and the library loaded
WORKER_SHARE = 0.8  # of a worker's memory_limit the job may plan for (the nanny restarts a worker at 95 %)
PARTITION_SHARE = 0.1  # of a worker's plannable memory one partition's read may take (its Arrow batches, its
# compact frame and its encoded copy are held at once while it is read)
REPORT_ROWS = 5000  # test rows brought back for the report (permutation importance scores at most this many)
LIBRARY_TIMEOUT_MINUTES = 5  # LightGBM's socket time-out between workers: a lost peer ends training, not hangs
MEMORY_EVENT_SECONDS = 2.0  # how long a lost worker's memory-restart event may take to reach the scheduler
MEMORY_RESTART = "worker-restart-memory"  # the event a nanny sends when it restarts its worker at the memory limit


def address() -> str | None:
    return os.environ.get(ENV_ADDRESS, "").strip() or None


def forced() -> bool:
    return os.environ.get(ENV_FORCE, "").strip().lower() in ("1", "true", "yes", "on")


def unsupported(spec: JobSpec, source: Source) -> str | None:
    """Why this job cannot train on the cluster, or None."""
    if not spec.algorithm.startswith(("lightgbm_", "xgboost_")) or spec.problem_type not in PROBLEMS:
        return "the Dask cluster trains LightGBM and XGBoost classifiers and regressors only"
    if not source.columnar():
        return "the Dask workers read PostgreSQL tables of the columnar reader's column types only"
    if not source.pages or not source.rows:
        return "the Dask workers read plain tables (ctid ranges of their pages) only"
    return None


class Secret:
    """The source URL on its way to the workers: Dask's logs show a failed task's arguments, never this value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret('***')"


def masked(text: str, url: str) -> str:
    """A message with the URL and its password taken out."""
    password = sa.engine.make_url(url).password
    for secret in (url, str(password) if password else ""):
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


# Tasks run on the workers -------------------------------------------------------------------------------------------


def read_partition(
    url: Secret,
    sql: str,
    table: TableName,
    compact: list[str],
    features: list[dict[str, Any]],
    label: str,
    classes: list[Any] | None,
    test_fraction: float,
    seed: int,
    index: int,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """One ctid range of the table, read from the source by the worker, encoded, split into (X, y) of its training
    rows and of its test rows."""
    frame = _read_adbc(url.value, sql, table, compact)
    encoded = Features.from_json(features).transform(frame)
    raw = frame[label]
    del frame
    if classes is not None:
        codes = raw.map({c: i for i, c in enumerate(classes)})
        if codes.isna().any():
            raise TrainerError(f"label column '{label}' of table {table} holds a value outside {classes}")
        y = codes.to_numpy(dtype=np.int64)
    else:
        y = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    test = np.random.default_rng([seed, index]).random(len(encoded)) < test_fraction
    train_x, test_x = encoded[~test].reset_index(drop=True), encoded[test].reset_index(drop=True)
    return train_x, pd.Series(y[~test], name="label"), test_x, pd.Series(y[test], name="label")


def part_sizes(part: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]) -> tuple[int, int]:
    return len(part[0]), len(part[2])


def piece(part: tuple[Any, ...], i: int) -> Any:
    return part[i]


def sample_rows(x: pd.DataFrame, y: pd.Series, fraction: float, seed: int, index: int) -> tuple[pd.DataFrame, Any]:
    keep = np.random.default_rng([seed, index, 1]).random(len(x)) < fraction
    return x[keep].reset_index(drop=True), y.to_numpy()[keep]


def head_rows(x: pd.DataFrame, y: pd.Series, rows: int) -> tuple[pd.DataFrame, Any]:
    return x.head(rows).reset_index(drop=True), y.to_numpy()[:rows]


def ranges(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Any, float, float]:
    """Each feature's min and max (NaN where the partition has no value of it) and the label's."""
    if len(x) == 0:
        nothing = np.full(x.shape[1], np.nan)
        return nothing, nothing, math.inf, -math.inf
    values, labels = x.to_numpy(dtype=np.float64), y.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column without a value here: NaN
        return np.nanmin(values, axis=0), np.nanmax(values, axis=0), float(labels.min()), float(labels.max())


def score_partition(algo: Guarded, model: Any, x: pd.DataFrame, ctx: Context) -> Any:
    return algo.predict(model, Data(X=x), ctx)


# The trainer's side -------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """The job's use of one Dask cluster: its client, the partitions it holds, and how each failure is named."""

    address: str
    url: str
    client: Any = None
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # address → scheduler's info at the start
    restarts_before: int = 0  # memory restarts the scheduler had recorded when the job connected
    futures: list[Any] = field(default_factory=list)
    train: list[tuple[Any, Any]] = field(default_factory=list)  # (X, y) futures per partition
    test: list[tuple[Any, Any]] = field(default_factory=list)
    table: str = ""
    rows: int = 0

    @classmethod
    def connect(cls, scheduler: str, url: str) -> Cluster:
        from distributed import Client

        try:
            client = Client(scheduler, timeout=CONNECT_SECONDS)  # the default: the libraries' collections compute on it
        except (OSError, TimeoutError, ValueError) as error:
            raise TrainerError(
                f"Dask scheduler {scheduler} ({ENV_ADDRESS}) is unreachable: {_first_line(error, type(error).__name__)}"
            ) from None
        cluster = cls(scheduler, url, client)
        cluster.workers = dict(client.scheduler_info(n_workers=-1)["workers"])
        if not cluster.workers:
            cluster.close()
            raise TrainerError(f"Dask scheduler {scheduler} ({ENV_ADDRESS}) has no workers")
        cluster.restarts_before = len(cluster._memory_restarts())
        return cluster

    def close(self) -> None:
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures, force=True)
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        self.client = None

    def limits(self) -> list[int]:
        """Each worker's memory_limit (a worker without one: UNLIMITED)."""
        return [int(w.get("memory_limit") or 0) or UNLIMITED for w in self.workers.values()]

    @property
    def size(self) -> str:
        smallest = min(self.limits())
        return f"{len(self.workers)} workers of " + (human(smallest) if smallest < UNLIMITED else "no memory limit")

    def plannable(self) -> list[int]:
        """Bytes each worker may hold for the job (WORKER_SHARE of its memory_limit less its own base)."""
        return [max(0, int(WORKER_SHARE * limit) - WORKER_BASE_BYTES) for limit in self.limits()]

    def partitions(self, needed: Estimate, pages: int, features: int) -> int:
        """How many ctid ranges the table is read in: at least one per worker, and enough that reading one takes
        at most PARTITION_SHARE of the smallest worker's plannable memory. Fails when the workers cannot hold the
        encoded table (float32 features and the label, WORKER_ROW_FACTOR times) together."""
        encoded_row = 4 * features + 8
        plannable = self.plannable()
        holds = sum(plannable)
        total = int(needed.rows * encoded_row * WORKER_ROW_FACTOR)
        if total > holds or min(plannable) <= 0:
            raise TrainerError(
                f"table {self.table} ({needed.rows:,} rows) needs about {human(total)} across the Dask cluster, "
                f"over what its {self.size} can hold ({human(holds)})"
            )
        per_partition = max(1.0, PARTITION_SHARE * min(plannable))
        count = max(len(plannable), math.ceil(needed.rows * needed.row_bytes / per_partition))
        return max(1, min(count, pages))

    def _memory_restarts(self) -> list[dict[str, Any]]:
        """The workers the nannies restarted at their memory limit (the scheduler's `worker-restart-memory` events:
        worker address, pid, RSS), since the job connected (before: every one the scheduler keeps)."""
        try:
            events = self.client.get_events(MEMORY_RESTART)
        except Exception:  # no answer: none known
            return []
        return [dict(event) for _, event in list(events)[self.restarts_before :] if isinstance(event, dict)]

    def _current_workers(self) -> set[str] | None:
        """The workers the scheduler has now; None when it does not answer."""
        try:
            return set(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:
            return None

    def gather(self, futures: list[Any]) -> list[Any]:
        """The futures' results, brought to the trainer (see `settle`)."""
        self.settle(futures)
        return list(self.client.gather(futures))

    def settle(self, futures: list[Any]) -> None:
        """Wait until the futures are done, on their workers; raise the first one's error. Fails as soon as a worker
        the job started with is gone (a task bound to it would wait for it forever)."""
        from distributed import wait

        while True:
            try:
                wait(futures, timeout=1.0)
                break
            except TimeoutError:
                self.check_workers()
        for future in futures:
            if future.status == "error":
                future.result()  # raises the task's error

    def check_workers(self) -> None:
        current = self._current_workers()
        if current is None:
            raise RuntimeError("the scheduler stopped answering")
        if set(self.workers) - current:
            raise RuntimeError("a worker left the cluster")

    @contextlib.contextmanager
    def stage(self, doing: str) -> Iterator[None]:
        """Cluster work whose failure becomes one TrainerError saying which failure it was."""
        try:
            yield
        except TrainerError as error:
            raise TrainerError(masked(str(error), self.url)) from None
        except Exception as error:
            cause = masked(_first_line(error, type(error).__name__), self.url)
            current = self._current_workers()
            restarts = self._memory_restarts()
            if not restarts and current is not None and set(self.workers) - current:
                time.sleep(MEMORY_EVENT_SECONDS)  # a nanny reports the restart as it stops the worker
                restarts = self._memory_restarts()
            lost = sorted(set(self.workers) - current) if current is not None else []
            with contextlib.suppress(Exception):
                self.client.cancel(self.futures, force=True)
            if restarts:
                workers = ", ".join(sorted({str(r.get("worker")) for r in restarts}))
                message = (
                    f"a partition of table {self.table} did not fit its Dask worker's memory while {doing}: the "
                    f"nanny restarted {workers} at its memory limit ({self.size}; the partitions are sized from the "
                    f"table's row estimate, {self.rows:,} rows: ANALYZE the table if that is stale)"
                )
            elif lost:
                message = f"Dask worker {', '.join(lost)} was lost while {doing} ({type(error).__name__}: {cause})"
            elif current is None:
                message = f"the Dask scheduler {self.address} stopped answering while {doing} ({cause})"
            else:
                message = f"the Dask cluster failed while {doing}: {type(error).__name__}: {cause}"
            raise TrainerError(message) from None


def describe(source: Source, spec: JobSpec) -> tuple[Preprocessing, pd.DataFrame]:
    """The encoding every partition applies, fixed before any is read (see the module docstring), and the table's
    first rows as loaded (integer columns that hold NULLs elsewhere as float64, as a whole load gives them)."""
    query = build_query(source.table, source.names)
    head = _read_adbc(
        source.url, postgresql_sql(query.suffix_with(f"LIMIT {HEAD_ROWS}")), source.table, source.features_only
    )
    table = sa.table(source.table.name, *[sa.column(n) for n in source.names], schema=source.table.schema)
    features = describe_features(head, source.features)
    label = spec.label_column
    assert label is not None
    with source.engine.connect() as connection:
        counts = connection.execute(
            sa.select(
                sa.func.count().label("rows"),
                *[sa.func.count(table.c[name]).label(f"c{i}") for i, name in enumerate(source.names)],
            ).select_from(table)
        ).one()
        rows = int(counts[0])
        present = dict(zip(source.names, [int(v) for v in counts[1:]], strict=True))
        if present[label] < rows:
            raise TrainerError(f"column '{label}' of table {spec.source_table} has missing values")
        for column in features.columns:
            column.required = present[column.name] == rows
            if column.kind != "category":
                continue
            value = table.c[column.name]
            top = connection.execute(
                sa.select(value)
                .where(value.is_not(None))
                .group_by(value)
                .order_by(sa.func.count().desc(), value.collate("C"))
                .limit(MAX_CATEGORIES)
            ).scalars()
            column.categories = sorted(category_text(v) for v in top)
        pre = Preprocessing(features=features)
        if spec.problem_type in ("binary_classification", "multiclass_classification"):
            distinct = connection.execute(sa.select(table.c[label]).distinct()).scalars().all()
            classes = sorted(
                (float(v) if type(v).__name__ == "Decimal" else v for v in distinct), key=lambda v: (str(type(v)), v)
            )
            if spec.problem_type == "binary_classification" and len(classes) != 2:
                raise TrainerError(f"label column '{label}' has {len(classes)} distinct values; binary needs exactly 2")
            if len(classes) < 2:
                raise TrainerError(f"label column '{label}' has fewer than 2 distinct values")
            pre.classes = classes
        elif not pd.api.types.is_numeric_dtype(head[label].dtype):
            raise TrainerError(f"column '{label}' of table {spec.source_table} must be numeric")
    for column in features.columns:
        series = head[column.name]
        if not column.required and pd.api.types.is_integer_dtype(series.dtype):
            head[column.name] = series.astype("float64")
    return pre, head


def load(cluster: Cluster, source: Source, spec: JobSpec, pre: Preprocessing, needed: Estimate, seed: int,
         test_fraction: float) -> dict[str, int]:  # fmt: skip
    """The table read into the workers' memory, partition by partition; returns the partitions per worker."""
    assert source.pages is not None and spec.label_column is not None
    cluster.table, cluster.rows = str(source.table), needed.rows
    count = cluster.partitions(needed, source.pages, len(source.features))
    sqls = (
        table_parts(build_query(source.table, source.names), source.pages, count)
        if count > 1
        else [postgresql_sql(build_query(source.table, source.names))]
    )
    client, workers = cluster.client, sorted(cluster.workers)
    secret = Secret(source.url)
    features = pre.features.to_json()
    with cluster.stage(f"reading table {source.table} in {count} partitions"):
        reads = [
            client.submit(
                read_partition, secret, sql, source.table, source.features_only, features, spec.label_column,
                pre.classes, test_fraction, seed, i, workers=[workers[i % len(workers)]], pure=False,
            )
            for i, sql in enumerate(sqls)
        ]  # fmt: skip
        cluster.futures += reads
        for n, read in enumerate(reads):
            parts = [client.submit(piece, read, i, workers=[workers[n % len(workers)]], pure=False) for i in range(4)]
            cluster.futures += parts
            cluster.train.append((parts[0], parts[1]))
            cluster.test.append((parts[2], parts[3]))
        sizes = cluster.gather([client.submit(part_sizes, read, pure=False) for read in reads])
        cluster.settle(list(cluster.futures))  # every piece computed and held where its partition was read
        for read in reads:
            cluster.futures.remove(read)
        del reads, read  # the pieces hold the partition now: the scheduler releases each read's tuple
        held = client.who_has([x for x, _ in cluster.train])
    by_worker: dict[str, int] = {}
    for holders in held.values():
        for holder in holders:
            by_worker[str(holder)] = by_worker.get(str(holder), 0) + 1
    train_rows = sum(a for a, _ in sizes)
    if train_rows == 0:
        raise TrainerError(f"table {source.table} has no rows")
    return {"partitions": count, "train_rows": train_rows, "test_rows": sum(b for _, b in sizes), **by_worker}


def search_data(cluster: Cluster, train_rows: int, seed: int) -> Data:
    """A sample of the training rows, at most about tune.SEARCH_ROWS of them, drawn by the workers."""
    fraction = min(1.0, SEARCH_ROWS / max(train_rows, 1))
    client = cluster.client
    with cluster.stage("drawing the search's sample"):
        parts = cluster.gather(
            [client.submit(sample_rows, x, y, fraction, seed, i, pure=False) for i, (x, y) in enumerate(cluster.train)]
        )
    return Data(X=pd.concat([x for x, _ in parts], ignore_index=True), y=np.concatenate([y for _, y in parts]))


def fit(cluster: Cluster, algo: Algorithm, params: dict[str, Any], ctx: Context) -> Fitted:
    """The final model on every training row across the cluster, brought back as the library's local model."""
    import dask.dataframe as dd

    meta_x = pd.DataFrame({key: pd.Series(dtype=np.float32) for key in ctx.keys})
    dtype = np.float64 if ctx.problem == "regression" else np.int64
    x = dd.from_delayed([x for x, _ in cluster.train], meta=meta_x, verify_meta=False)
    y = dd.from_delayed([y for _, y in cluster.train], meta=pd.Series(dtype=dtype, name="label"), verify_meta=False)
    build = getattr(algo, "on_cluster", None)
    if build is None:
        raise TrainerError(f"{algo.name} does not train on a Dask cluster")
    outcome: dict[str, Any] = {}

    def train() -> None:
        try:
            outcome["model"] = build(cluster.client, params, ctx, x, y, LIBRARY_TIMEOUT_MINUTES)
        except BaseException as error:
            outcome["error"] = error

    with cluster.stage("training the final model"):
        # The library waits for every worker's part, and a lost worker's part, run again elsewhere, waits for a
        # peer that is gone: the trainer watches the cluster instead and fails as soon as a worker leaves.
        thread = threading.Thread(target=train, name="dask-fit", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(1.0)
            cluster.check_workers()
        if "error" in outcome:
            raise outcome["error"]
    return Fitted(model=outcome["model"], rounds=params.get("n_estimators"))


def finish(
    cluster: Cluster, algo: Algorithm, result: TuneResult, final: Fitted, sample: Data, ctx: Context
) -> tuple[Finished, Data]:
    """The guard (input ranges and the regression bound from every training row), the test rows scored on the
    cluster, their metrics, and the gate (a model that fails it is registered with the warning); returns also the
    test rows brought back for the report and their scores (Finished.test_scores)."""
    client = cluster.client
    guard, valid_metrics, params, notes = fit_guard(sample, result, ctx)
    with cluster.stage("scoring the test rows"):
        extent = cluster.gather([client.submit(ranges, x, y, pure=False) for x, y in cluster.train])
        lows = np.nanmin(np.stack([low for low, _, _, _ in extent]), axis=0)
        highs = np.nanmax(np.stack([high for _, high, _, _ in extent]), axis=0)
        guard.input_range = {
            key: [float(lows[j]), float(highs[j])]
            for j, key in enumerate(ctx.keys)
            if np.isfinite(lows[j]) and _ranged(ctx, key)
        }
        if ctx.problem == "regression":
            guard.output_range = output_range(
                np.array([min(e[2] for e in extent), max(e[3] for e in extent)], dtype=np.float64)
            )
        guarded = Guarded(algo, guard)
        model = client.scatter(final.model, broadcast=True, hash=False)
        cluster.futures.append(model)
        scores = cluster.gather(
            [client.submit(score_partition, guarded, model, x, ctx, pure=False) for x, _ in cluster.test]
        )
        labels = cluster.gather([y for _, y in cluster.test])
        per_part = max(1, REPORT_ROWS // max(1, len(cluster.test)))
        heads = cluster.gather([client.submit(head_rows, x, y, per_part, pure=False) for x, y in cluster.test])
    test_y = np.concatenate(labels)
    test_scores = np.concatenate(scores)
    threshold = guard.threshold if guard.threshold is not None else 0.5
    metrics = evaluate(ctx.problem, Data(X=pd.DataFrame(index=pd.RangeIndex(len(test_y))), y=test_y), test_scores,
                       threshold)  # fmt: skip
    objective = OBJECTIVES[ctx.problem][0]
    add_validation_metrics(metrics, valid_metrics, result, guard, objective)
    scored = Data(X=pd.DataFrame(index=pd.RangeIndex(len(test_y))), y=test_y)
    spread = bootstrap_std(ctx.problem, objective, scored, test_scores, ctx.seed)
    ratio = gate(ctx.problem, result.best_valid, result.valid_std, metrics.get(objective), spread)
    if ratio:
        notes.append(
            f"the model's {objective} on the test rows ({metrics[objective]:.6g}) is far worse than its validation "
            f"estimate ({result.best_valid:.6g}); a model trained on the cluster has no fallback"
        )
        params["gate"] = "warned"
        metrics["warning_test_vs_validation"] = ratio if math.isfinite(ratio) else 1e308
    else:
        params["gate"] = "passed"
    report = Data(X=pd.concat([x for x, _ in heads], ignore_index=True), y=np.concatenate([y for _, y in heads]))
    report_scores = guarded.predict(final.model, report, ctx)
    finished = Finished(guarded, final.model, report_scores, metrics, params, notes)
    metrics["test_rows"] = float(len(test_y))
    return finished, report


def _ranged(ctx: Context, key: str) -> bool:
    """Number and datetime features are clipped to their training range (not for anomaly detection)."""
    if ctx.problem == "anomaly_detection":
        return False
    return any(c.key == key and c.kind in ("number", "datetime") for c in ctx.preprocessing.features.columns)


def describe_cluster(cluster: Cluster) -> dict[str, Any]:
    """The run's params of the engine."""
    return {"engine": "dask", "dask_scheduler": cluster.address, "dask_workers": len(cluster.workers)}

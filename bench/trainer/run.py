"""Trainer scale benchmark (`npm run bench:trainer`): load, prepare and (optionally) whole runs at 1M+ rows.

For each size it makes (or reuses) a table of 15 numeric columns (smallint, integer, bigint, real, double
precision, numeric; NULLs in some), 5 text columns (one with NULLs) and a binary label with signal, generated
inside PostgreSQL with generate_series/random(). Then, each stage in a child process of its own (wall time, and
peak RSS from wait4's ru_maxrss):

- copy: `COPY (SELECT <the columns> FROM t) TO STDOUT (FORMAT binary)` through psql to /dev/null, the floor;
- load_sqlalchemy: the trainer's old path, pd.read_sql through SQLAlchemy + psycopg2;
- load_columnar: the trainer's load stage as it runs now (ADBC, COPY binary → Arrow → pandas);
- prepare: load_columnar, then prepare() + the train/test split (seconds of prepare alone);
- train (BENCH_TRAIN=1): `python -m automl_trainer`, lightgbm_classifier, preset fast (BENCH_TRIALS trials,
  default 3), MLflow tracking in a local SQLite file; with the trainer's memory estimate beside its peak RSS.

Environment: BENCH_DATABASE_URL (as `npm run bench`: default postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_SCHEMA (default automl_bench; tables t_<rows>, reused when their row count matches), BENCH_ROWS (default
1000000,5000000), BENCH_TRAIN=1, BENCH_TRIALS, BENCH_REPEAT (runs of the COPY and columnar stages, default 2; all
kept), BENCH_SQLALCHEMY_MAX_ROWS (default 3000000: the old load is not run on bigger tables), BENCH_DROP=1 (drop
the schema at the end). Results: bench/trainer/results.json, one entry per size, replaced by the next run of that
size (a size run without BENCH_TRAIN keeps its last whole run's figures, with the date and commit they were measured
at), and `calibration`: the line through the whole runs' peak RSS that memory.py's constants come from. The file
starts with the header every benchmark's results file has (bench/shared/bench_results.py: date, commit, dirty,
machine, of its last write; machine also holds the load average at the run's start), and each size's entry carries
the date, commit and dirty of the run that measured it (entries written before those were recorded have none).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import sqlalchemy as sa
from psycopg2 import sql

from bench_results import run_header, stamp, write_results

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "trainer" / "src"
URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SCHEMA = os.environ.get("BENCH_SCHEMA", "automl_bench")
SIZES = [int(s) for s in os.environ.get("BENCH_ROWS", "1000000,5000000").split(",") if s.strip()]
TRAIN = os.environ.get("BENCH_TRAIN", "") == "1"
TRIALS = int(os.environ.get("BENCH_TRIALS", "3"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
# The old load's peak grows 1.7 GiB per million rows: above this it is not run.
SQLALCHEMY_MAX_ROWS = int(os.environ.get("BENCH_SQLALCHEMY_MAX_ROWS", "3000000"))
RESULTS = HERE / "results.json"

NUMERIC = [f"i{i}" for i in range(5)] + [f"d{i}" for i in range(7)] + ["r0", "n0", "n1"]
TEXT = [f"t{i}" for i in range(5)]
COLUMNS = [*NUMERIC, *TEXT, "label"]

# Everything is random() or generate_series: no literal from outside goes into this text but the row count
# (an int) and identifiers (composed by psycopg2.sql).
GENERATE = """
CREATE UNLOGGED TABLE {table} AS
SELECT i0, i1, i2, i3, i4, d0, d1, d2, d3, d4, d5, d6, r0, n0, n1, t0, t1, t2, t3, t4,
  (d0 + 0.2 * d1 + 0.4 * (t0 = 'c1')::int + 0.3 * coalesce(d2, 0.5) + 0.5 * random() > 1.2)::int AS label
FROM (
  SELECT
    (random() * 100)::smallint AS i0, (random() * 100000)::integer AS i1, (random() * 1e12)::bigint AS i2,
    CASE WHEN random() < 0.05 THEN NULL ELSE (random() * 1000)::integer END AS i3, (g % 97)::bigint AS i4,
    random() AS d0, random() * 10 - 5 AS d1, CASE WHEN random() < 0.1 THEN NULL ELSE random() END AS d2,
    random() * 1e6 AS d3, ln(random() + 1e-9) AS d4, random() AS d5, random() AS d6,
    (random() * 100)::real AS r0, round((random() * 10000)::numeric, 4) AS n0,
    CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 100)::numeric, 2) END AS n1,
    'c' || (random() * 9)::int AS t0, 'city_' || (random() * 49)::int AS t1,
    CASE WHEN random() < 0.1 THEN NULL ELSE 'k' || (random() * 20)::int END AS t2,
    ('v' || (random() * 199)::int)::varchar(20) AS t3, substr(md5((g % 5000)::text), 1, 12) AS t4
  FROM generate_series(1, {rows}) AS g
) AS generated
"""


def table_name(rows: int) -> str:
    return f"t_{rows}"


def ensure_table(rows: int) -> dict[str, Any]:
    """The table of this many rows, made unless present with exactly that count (noted in its comment)."""
    name = table_name(rows)
    ident = sql.Identifier(SCHEMA, name)
    marker = f"automl bench rows={rows}"
    with psycopg2.connect(URL) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f'"{SCHEMA}"."{name}"',))
        found = cursor.fetchone()
        if found and found[0] == marker:
            return {"table": f"{SCHEMA}.{name}", "generated_seconds": None}
        t0 = time.monotonic()
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        cursor.execute(sql.SQL(GENERATE).format(table=ident, rows=sql.Literal(rows)))
        cursor.execute(sql.SQL("ANALYZE {}").format(ident))
        cursor.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(marker)))
        return {"table": f"{SCHEMA}.{name}", "generated_seconds": round(time.monotonic() - t0, 2)}


def spec_for(rows: int) -> dict[str, Any]:
    job_id = str(uuid.uuid4())
    return {
        "job_id": job_id,
        "name": f"bench {rows}",
        "source_table": f"{SCHEMA}.{table_name(rows)}",
        "label_column": "label",
        "feature_columns": None,
        "problem_type": "binary_classification",
        "algorithm": "lightgbm_classifier",
        "preset": "fast",
        "tuning": {"trials": TRIALS, "time_budget_minutes": 10},
        "mlflow_experiment_name": "automl/bench",
        "registered_model_name": f"bench-{job_id[:8]}",
    }


def sqlalchemy_url() -> str:
    return sa.engine.make_url(URL).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


# --- stages, each run in a child process: `run.py --stage NAME ROWS` prints one JSON line --------------------------


def stage(name: str, rows: int) -> dict[str, Any]:
    from automl_trainer.cli import thread_count
    from automl_trainer.load import open_source
    from automl_trainer.spec import parse_spec

    spec = parse_spec(json.dumps(spec_for(rows)))
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    with open_source(sqlalchemy_url(), spec) as source:
        frame = source.read(columnar=name != "load_sqlalchemy", streams=thread_count())
        features = source.features
    out["load_seconds"] = time.monotonic() - t0
    out["rows"] = len(frame)
    if name == "prepare":
        from automl_trainer.pipeline import SEED, TEST_FRACTION
        from automl_trainer.prepare import prepare, split

        t1 = time.monotonic()
        data, _ = prepare(frame, features, spec)
        del frame
        train_rows, test_rows = split(data, spec.problem_type, TEST_FRACTION, SEED)
        train, test = data.take(train_rows), data.take(test_rows)
        out["prepare_seconds"] = time.monotonic() - t1
        out["train_rows"], out["test_rows"] = len(train), len(test)
    return out


def measured(args: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run a child process: its wall time, peak RSS (MiB, from wait4) and, for Python stages, its JSON line."""
    t0 = time.monotonic()
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kwargs.get("env"), cwd=kwargs.get("cwd")
    )
    stdout_chunks: list[bytes] = []
    stderr_chunks: list[bytes] = []

    def drain(stream: Any, into: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            into.append(chunk)

    readers = [
        threading.Thread(target=drain, args=(process.stdout, stdout_chunks)),
        threading.Thread(target=drain, args=(process.stderr, stderr_chunks)),
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    stdout, stderr = b"".join(stdout_chunks).decode(), b"".join(stderr_chunks).decode()
    if process.returncode != 0:
        raise RuntimeError(f"{args[:4]} failed ({process.returncode}): {stderr[-3000:]}")
    result: dict[str, Any] = {"wall_seconds": round(seconds, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:
        result.update({k: round(v, 3) if isinstance(v, float) else v for k, v in json.loads(lines[-1]).items()})
    result["stderr_tail"] = stderr[-1500:] if kwargs.get("keep_stderr") else None
    return result


def copy_floor(rows: int) -> dict[str, Any]:
    query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS), sql.Identifier(SCHEMA, table_name(rows))
    )
    with psycopg2.connect(URL) as connection:
        text = query.as_string(connection)
    psql = shutil.which("psql")
    if psql:
        with open(os.devnull, "wb") as sink:
            t0 = time.monotonic()
            subprocess.run([psql, "-X", "-q", "-d", URL, "-c", text], stdout=sink, check=True)
            return {"wall_seconds": round(time.monotonic() - t0, 3), "via": "psql"}

    class Sink:
        def write(self, data: bytes) -> int:
            return len(data)

    with psycopg2.connect(URL) as connection, connection.cursor() as cursor:
        t0 = time.monotonic()
        cursor.copy_expert(text, Sink())
        return {"wall_seconds": round(time.monotonic() - t0, 3), "via": "psycopg2 copy_expert"}


def train_run(rows: int, tmp: Path) -> dict[str, Any]:
    spec = spec_for(rows)
    (tmp / "spec.json").write_text(json.dumps(spec))
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ", "TMPDIR") if k in os.environ}
    env.update(
        {
            "PYTHONPATH": str(SRC),
            "AUTOML_JOB_SPEC_PATH": str(tmp / "spec.json"),
            "AUTOML_RESULT_PATH": str(tmp / "result.json"),
            "AUTOML_SOURCE_URL": sqlalchemy_url(),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "AUTOML_TRAINER_MAX_MEMORY": os.environ.get("AUTOML_TRAINER_MAX_MEMORY", "1T"),
        }
    )
    result = measured([sys.executable, "-m", "automl_trainer"], env=env, cwd=str(tmp), keep_stderr=True)
    stages: dict[str, float] = {}
    for line in (result.get("stderr_tail") or "").splitlines():
        if "] " in line and line.startswith("automl_trainer: ["):
            stages[line.split("] ", 1)[1][:60]] = float(line.split("[", 1)[1].split("s]", 1)[0])
    result["log_marks"] = stages
    return result


def estimate_for(rows: int) -> dict[str, Any]:
    from automl_trainer import memory
    from automl_trainer.load import open_source
    from automl_trainer.spec import parse_spec

    with open_source(sqlalchemy_url(), parse_spec(json.dumps(spec_for(rows)))) as source:
        needed = memory.estimate(source)
    assert needed is not None
    return {
        "rows": needed.rows,
        "row_bytes": needed.row_bytes,
        "estimated_bytes": needed.total,
        "base_bytes": memory.BASE_BYTES,
        "row_factor": memory.ROW_FACTOR,
    }


def calibration(sizes: dict[str, Any]) -> dict[str, Any] | None:
    """A straight line through the whole runs' peak RSS by rows: memory.BASE_BYTES and ROW_FACTOR come from it."""
    points = [
        (int(rows), entry["train"]["peak_rss_mib"], entry["estimate"]["row_bytes"])
        for rows, entry in sizes.items()
        if "train" in entry
    ]
    if len(points) < 2 or len({p[2] for p in points}) != 1:
        return None
    n = len(points)
    mean_x, mean_y = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    slope = sum((p[0] - mean_x) * (p[1] - mean_y) for p in points) / sum((p[0] - mean_x) ** 2 for p in points)
    return {
        "points_rows_peak_mib": [[p[0], p[1]] for p in sorted(points)],
        "row_bytes": points[0][2],
        "intercept_mib": round(mean_y - slope * mean_x, 1),
        "bytes_per_row": round(slope * 2**20, 1),
        "row_factor": round(slope * 2**20 / points[0][2], 2),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--stage":
        from automl_trainer.cli import return_freed_memory

        return_freed_memory()  # as the trainer's entry point does, before pandas and pyarrow load
        print(json.dumps(stage(sys.argv[2], int(sys.argv[3]))), flush=True)
        return
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    load_average = [round(x, 2) for x in os.getloadavg()]
    sizes = results.setdefault("sizes", {})

    def write() -> None:
        header = run_header()
        header["machine"]["load_average_at_start"] = load_average
        write_results(RESULTS, {**header, **{k: v for k, v in results.items() if k not in header}})

    for rows in SIZES:
        print(f"bench:trainer: {rows:,} rows", file=sys.stderr, flush=True)
        entry: dict[str, Any] = {"table": ensure_table(rows)}
        entry["copy_floor"] = [copy_floor(rows) for _ in range(REPEAT)]
        floor = min(r["wall_seconds"] for r in entry["copy_floor"])
        for name in ("load_sqlalchemy", "load_columnar", "prepare"):
            if name == "load_sqlalchemy" and rows > SQLALCHEMY_MAX_ROWS:
                entry[name] = [{"skipped": f"over BENCH_SQLALCHEMY_MAX_ROWS={SQLALCHEMY_MAX_ROWS}"}]
                print(f"  {name:<16} skipped (over {SQLALCHEMY_MAX_ROWS:,} rows)", file=sys.stderr, flush=True)
                continue
            repeat = 1 if name != "load_columnar" else REPEAT
            runs = [measured([sys.executable, __file__, "--stage", name, str(rows)]) for _ in range(repeat)]
            for run in runs:
                run.pop("stderr_tail", None)
                run["load_over_copy"] = round(run["load_seconds"] / floor, 2)
            entry[name] = runs
            best = min(runs, key=lambda r: r["load_seconds"])
            print(
                f"  {name:<16} load {best['load_seconds']:6.2f} s ({best['load_over_copy']:.1f}x COPY {floor:.2f} s)"
                + (f" prepare {best['prepare_seconds']:6.2f} s" if "prepare_seconds" in best else "")
                + f" peak RSS {best['peak_rss_mib']:7.1f} MiB wall {best['wall_seconds']:6.2f} s",
                file=sys.stderr,
                flush=True,
            )
        entry["estimate"] = estimate_for(rows)
        if TRAIN:
            with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
                run = train_run(rows, Path(tmp))
            run.pop("stderr_tail", None)
            estimate = entry["estimate"]
            run["estimated_mib"] = round(estimate["estimated_bytes"] / 2**20, 1)
            # what ROW_FACTOR would have made the estimate equal this run's peak, with BASE_BYTES as it is
            run["fitted_row_factor"] = round(
                (run["peak_rss_mib"] * 2**20 - estimate["base_bytes"]) / (rows * estimate["row_bytes"]), 2
            )
            entry["train"] = run
            entry["estimate_then"] = estimate
            print(
                f"  train            wall {run['wall_seconds']:6.1f} s peak RSS {run['peak_rss_mib']:7.1f} MiB "
                f"(estimate {run['estimated_mib']:.1f} MiB; fitted factor {run['fitted_row_factor']})",
                file=sys.stderr,
                flush=True,
            )
        earlier = sizes.get(str(rows), {})
        if not TRAIN and "train" in earlier:  # keep the last whole run's figures (the calibration uses them)
            measured = {key: earlier[key] for key in ("date", "commit", "dirty") if key in earlier}
            entry["train"] = {**measured, **earlier["train"], "from_an_earlier_bench_run": True}
            entry["estimate_then"] = earlier.get("estimate_then", earlier.get("estimate"))
        sizes[str(rows)] = {**entry, **stamp(run_header())}
        write()
    results["calibration"] = calibration(sizes)
    write()
    if os.environ.get("BENCH_DROP") == "1":
        with psycopg2.connect(URL) as connection, connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
    print(f"bench:trainer: results in {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Memory known before loading: the estimate, the limit and its sources, and a job over the limit failing at once
with its MLflow run FAILED."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from automl_trainer import memory
from automl_trainer.errors import TrainerError
from automl_trainer.load import Source, SourceColumn, TableName, open_source
from automl_trainer.spec import parse_spec

from . import data
from .conftest import make_spec, run_trainer, trainer_env, write_table


def test_parse_size_and_human() -> None:
    assert memory.parse_size("1073741824") == 2**30
    assert memory.parse_size("512M") == 512 * 2**20
    assert memory.parse_size("2G") == 2 * 2**30
    assert memory.parse_size("1.5GiB") == int(1.5 * 2**30)
    assert memory.parse_size("800mb") == 800 * 2**20
    assert memory.parse_size(" 64 Ki ") == 64 * 2**10
    for bad in ("", "lots", "12X", "GiB", "-1G", "1 iB"):
        with pytest.raises(TrainerError, match=r"AUTOML_TRAINER_MAX_MEMORY .* is not a size"):
            memory.parse_size(bad)
    assert memory.human(3.2 * 2**30) == "3.2 GiB"
    assert memory.human(2**30) == "1.0 GiB"
    assert memory.human(512 * 2**20) == "512.0 MiB"
    assert memory.human(100) == "100 B"


def _source(rows: int | None, columns: list[SourceColumn], features: int, url: str = "sqlite://") -> Source:
    engine = sa.create_engine(url)  # no connection is made
    return Source(url, engine, TableName(None, "t"), [c.name for c in columns[:features]], columns, rows)


def test_estimate_from_rows_and_types() -> None:
    columns = [
        SourceColumn("i", sa.Integer()),
        SourceColumn("x", sa.Float()),
        SourceColumn("n", sa.Numeric()),
        SourceColumn("b", sa.Boolean()),
        SourceColumn("d", sa.Date()),
        SourceColumn("ts", sa.DateTime(timezone=True)),
        SourceColumn("t", sa.Text(), avg_width=10),
        SourceColumn("v", sa.String(20)),  # no statistics: TEXT_BYTES
        SourceColumn("label", sa.Integer()),
    ]
    # Read through SQLAlchemy (any database but PostgreSQL, or a column type ADBC does not take): a Python object
    # per text and date value, the old load's factor.
    row = 8 + 8 + 8 + 8 + 40 + 8 + (8 + 10) + (8 + memory.TEXT_BYTES) + 8
    estimate = memory.estimate(_source(1_000_000, columns, features=8))
    assert estimate is not None
    assert estimate.row_bytes == row + 4 * 8
    assert estimate.total == int(memory.BASE_BYTES + 1_000_000 * memory.SQLALCHEMY_ROW_FACTOR * (row + 32))
    # PostgreSQL through ADBC: the features compact (float32 numbers, text as one- or two-byte category codes),
    # the label as pd.read_sql gives it.
    postgres = _source(1_000_000, columns, features=8, url="postgresql+psycopg2://reader@127.0.0.1:1/db")
    assert postgres.columnar()
    compact = memory.estimate(postgres)
    assert compact is not None
    row = 8 + 4 + 4 + 8 + 40 + 8 + 2 + 2 + 8
    assert compact.row_bytes == row + 4 * 8
    assert compact.total == int(memory.BASE_BYTES + 1_000_000 * memory.ROW_FACTOR * (row + 32))
    assert memory.estimate(_source(None, columns, features=8)) is None  # no statistics (Trino): no estimate


def test_check_names_estimate_and_limit() -> None:
    needed = memory.Estimate(rows=5_000_000, row_bytes=300, total=int(3.2 * 2**30))
    with pytest.raises(TrainerError) as caught:
        memory.check(needed, TableName("s", "t"), memory.limit({"AUTOML_TRAINER_MAX_MEMORY": "1G"}))
    assert str(caught.value) == (
        "table s.t (5,000,000 rows) needs about 3.2 GiB to train, over AUTOML_TRAINER_MAX_MEMORY 1.0 GiB"
    )
    memory.check(needed, "t", memory.limit({"AUTOML_TRAINER_MAX_MEMORY": "4G"}))  # fits: no error


def test_limit_defaults_to_cgroup_then_ram(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job.slice/trainer\n")
    group = tmp_path / "fs" / "job.slice" / "trainer"
    group.mkdir(parents=True)
    (group / "memory.max").write_text("2147483648\n")
    assert memory._cgroup_limit(tmp_path / "fs", proc) == 2**31
    (group / "memory.max").write_text("max\n")
    assert memory._cgroup_limit(tmp_path / "fs", proc) is None
    v1 = tmp_path / "v1"
    (v1 / "memory" / "docker" / "abc").mkdir(parents=True)
    (v1 / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text("536870912\n")
    proc.write_text("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n")
    assert memory._cgroup_limit(v1, proc) == 2**29
    (v1 / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert memory._cgroup_limit(v1, proc) is None  # v1's "no limit"
    default = memory.limit({})
    assert default.bytes > 0 and "set AUTOML_TRAINER_MAX_MEMORY to change" in default.origin


def test_job_over_the_limit_fails_before_loading(pg_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    write_table(pg_url, "too_big", data.binary(n=20000))
    spec = make_spec(source_table="too_big", label_column="churned")
    env = trainer_env(tmp_path, pg_url, mlflow_uri, spec)
    env["AUTOML_TRAINER_MAX_MEMORY"] = "300MiB"  # below the interpreter's own share of the estimate
    t0 = time.monotonic()
    run = run_trainer(env, tmp_path)
    assert run.returncode == 1, run.stderr[-2000:]
    line = run.last_error_line
    assert line.startswith("error: table too_big (")
    assert line.endswith("to train, over AUTOML_TRAINER_MAX_MEMORY 300.0 MiB")
    assert "needs about " in line
    assert "loading through" not in run.stderr and "loaded " not in run.stderr  # failed before reading rows
    client = MlflowClient()
    experiment = client.get_experiment_by_name("automl/tests")
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`automl.job_id` = '{spec['job_id']}'",
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    estimated = int(runs[0].data.params["estimated_memory_bytes"])
    assert estimated > 300 * 2**20
    assert memory.human(estimated) in line
    assert run.result is None
    assert time.monotonic() - t0 < 120


def test_no_row_count_outside_postgresql_skips_the_estimate(tmp_path: Path) -> None:
    # Any non-PostgreSQL dialect goes the SQLAlchemy way with no row estimate (as Trino does); SQLite stands in.
    url = f"sqlite:///{tmp_path / 'source.db'}"
    write_table(url, "t", data.binary(n=40))
    spec = parse_spec(json.dumps(make_spec(source_table="t", label_column="churned")))
    with open_source(url, spec) as source:
        assert source.rows is None and not source.columnar()
        assert memory.estimate(source) is None
        assert len(source.read()) == 40

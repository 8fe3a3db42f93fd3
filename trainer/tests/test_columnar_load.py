"""The columnar reader (ADBC, COPY binary) against the SQLAlchemy one on real PostgreSQL: the same prepared
features and preprocessing for every column type the trainer accepts, safe identifiers, the same errors."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
import pytest
import sqlalchemy as sa

from automl_trainer.errors import TrainerError
from automl_trainer.load import TableName, _read_adbc, load_frame, open_source
from automl_trainer.package import example_rows
from automl_trainer.prepare import prepare, signature_type
from automl_trainer.spec import parse_spec

from .conftest import make_spec, write_table

# Every type the trainer reads, each with NULLs (every 7th row), plus NOT NULL integer/boolean columns whose
# pandas dtype differs from their NULL-holding twins (int64 vs float64, bool vs object).
EVERY_TYPE = """
CREATE TABLE {table} (
  small smallint, int integer, big bigint, re real, dbl double precision, num numeric(14, 4), num_free numeric,
  flag boolean, txt text, vc varchar(20), day date, ts timestamp, tstz timestamptz,
  small_nn smallint NOT NULL, big_nn bigint NOT NULL, flag_nn boolean NOT NULL, label integer NOT NULL
);
INSERT INTO {table}
SELECT
  nullif(i % 100, 0)::smallint, CASE WHEN i % 7 = 1 THEN NULL ELSE i * 1000 END,
  CASE WHEN i % 7 = 2 THEN NULL ELSE i::bigint * 10000000000 END,
  CASE WHEN i % 7 = 3 THEN NULL ELSE (i / 7.0 + 0.1)::real END,
  CASE WHEN i % 7 = 4 THEN NULL ELSE i / 3.0 END,
  CASE WHEN i % 7 = 5 THEN NULL ELSE round(i * 1.2345, 4) END,
  CASE WHEN i % 7 = 6 THEN NULL ELSE 1 / (i + 0.7) END,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i % 3 = 0 END,
  CASE WHEN i % 7 = 1 THEN NULL ELSE 'cat ' || (i % 5) END,
  CASE WHEN i % 7 = 2 THEN NULL ELSE 'v' || (i % 11) END,
  CASE WHEN i % 7 = 3 THEN NULL ELSE date '2024-01-01' + i END,
  CASE WHEN i % 7 = 4 THEN NULL ELSE timestamp '2024-01-01 00:00:00.123456' + i * interval '1 hour 1 second' END,
  CASE WHEN i % 7 = 5 THEN NULL ELSE timestamptz '2024-01-01 00:00:00+02' + i * interval '90 minutes' END,
  (i % 17)::smallint, i::bigint, i % 2 = 0, (i * 7919) % 3 % 2
FROM generate_series(1, 300) AS i;
"""


def _execute(url: str, sql: str) -> None:
    connection = psycopg2.connect(sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


@pytest.fixture(scope="module")
def every_type(pg_url: str) -> str:
    _execute(
        pg_url,
        'CREATE SCHEMA IF NOT EXISTS "Mixed Schema"; SET search_path TO "Mixed Schema";'
        + EVERY_TYPE.format(table='"Every ""Type"" Table"'),
    )
    return '"Mixed Schema"."Every ""Type"" Table"'


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
def test_columnar_and_sqlalchemy_give_the_same_prepared_result(pg_url: str, every_type: str, problem: str) -> None:
    overrides: dict[str, Any] = {"source_table": every_type, "label_column": "label", "problem_type": problem}
    if problem == "regression":
        overrides.update(algorithm="lightgbm_regressor", label_column="big_nn")
    spec = parse_spec(json.dumps(make_spec(**overrides)))
    with open_source(pg_url, spec) as source:
        assert source.columnar()
        columnar, reference = source.read(), source.read(columnar=False)
        features = source.features
    assert list(columnar.columns) == list(reference.columns)
    data_c, pre_c = prepare(columnar, features, spec)
    data_s, pre_s = prepare(reference, features, spec)
    pd.testing.assert_frame_equal(data_c.X, data_s.X, check_exact=True)
    np.testing.assert_array_equal(np.asarray(data_c.y), np.asarray(data_s.y))
    assert json.dumps(pre_c.to_json(), default=str) == json.dumps(pre_s.to_json(), default=str)
    kinds = {c.name: c.kind for c in pre_c.features.columns}
    assert kinds["num"] == kinds["num_free"] == kinds["re"] == kinds["big"] == "number"
    assert kinds["flag"] == kinds["flag_nn"] == "boolean"
    assert kinds["day"] == kinds["ts"] == kinds["tstz"] == "datetime"
    assert kinds["txt"] == kinds["vc"] == "category"
    for column in pre_c.features.columns:  # the model's signature types too
        assert signature_type(columnar[column.name], column) == signature_type(reference[column.name], column)
    # NULLs are NaN/None on both paths
    for name in columnar.columns:
        assert columnar[name].isna().tolist() == reference[name].isna().tolist(), name
    # The columns that are not features come as pd.read_sql gives them; the features compact (float32 numbers,
    # integers in their own width, text as categories), and the model's input example the same but for the
    # float32 rounding of the numbers the table holds in double precision.
    special = [n for n in columnar.columns if n not in features]
    pd.testing.assert_frame_equal(columnar[special], reference[special], check_exact=True)
    assert isinstance(columnar["txt"].dtype, pd.CategoricalDtype)
    assert columnar["dbl"].dtype == columnar["num"].dtype == columnar["re"].dtype == np.float32
    assert columnar["small_nn"].dtype == np.int16
    context = SimpleNamespace(preprocessing=pre_c)
    example_c = example_rows(columnar[features], context)  # type: ignore[arg-type]
    example_s = example_rows(reference[features], context)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(example_c, example_s, check_exact=False, rtol=1e-7)


@pytest.mark.parametrize("columnar", [True, False])
def test_odd_identifiers_are_quoted_on_both_paths(pg_url: str, columnar: bool) -> None:
    frame = pd.DataFrame(
        {
            'we"ird col': [1.0, 2.0],
            "Mixed Case": [3, 4],
            "per%cent:colon": ["a", "b"],
            "label": [0, 1],
            "unused; DROP TABLE x": ["a", "b"],
        }
    )
    write_table(pg_url, 'Tricky "Table" %s', frame, schema="odd Schema")
    spec = parse_spec(
        json.dumps(
            make_spec(
                source_table='"odd Schema"."Tricky ""Table"" %s"',
                label_column="label",
                feature_columns=['we"ird col', "Mixed Case", "per%cent:colon"],
            )
        )
    )
    with open_source(pg_url, spec) as source:
        assert source.columnar()
        loaded = source.read(columnar)
    assert list(loaded.columns) == ['we"ird col', "Mixed Case", "per%cent:colon", "label"]
    assert loaded['we"ird col'].tolist() == [1.0, 2.0]
    assert loaded["Mixed Case"].tolist() == [3, 4]
    assert loaded["per%cent:colon"].tolist() == ["a", "b"]


def test_missing_table_and_column_errors_are_the_same_on_the_columnar_path(pg_url: str) -> None:
    write_table(pg_url, "small_c", pd.DataFrame({"a": [1.0], "y": [0]}))
    spec = parse_spec(json.dumps(make_spec(source_table="small_c", label_column="y", feature_columns=["a", "nope"])))
    with pytest.raises(TrainerError, match=r"^column 'nope' not found in table small_c$"):
        load_frame(pg_url, spec, columnar=True)
    spec = parse_spec(json.dumps(make_spec(source_table="public.absent", label_column="y")))
    with pytest.raises(TrainerError, match=r"^table public.absent not found$"):
        load_frame(pg_url, spec, columnar=True)


def test_columnar_read_errors_name_the_table_not_the_url() -> None:
    url = "postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(TrainerError) as caught:
        _read_adbc(url, "SELECT 1", TableName("s", "t"))
    message = str(caught.value)
    assert message.startswith("cannot read table s.t: ")
    assert "s3cret-pw" not in message
    assert "\n" not in message


def test_other_types_fall_back_to_sqlalchemy(pg_url: str) -> None:
    _execute(
        pg_url,
        "CREATE TABLE with_uuid AS SELECT gen_random_uuid() AS u, i::float8 AS x, i % 2 AS y "
        "FROM generate_series(1, 10) AS i",
    )
    spec = parse_spec(json.dumps(make_spec(source_table="with_uuid", label_column="y")))
    with open_source(pg_url, spec) as source:
        assert not source.columnar()
        frame = source.read()
    assert len(frame) == 10


def test_row_estimate_without_reading(pg_url: str) -> None:
    _execute(pg_url, "CREATE TABLE counted AS SELECT i::float8 AS x, i % 2 AS y FROM generate_series(1, 5000) AS i")
    spec = parse_spec(json.dumps(make_spec(source_table="counted", label_column="y")))
    with open_source(pg_url, spec) as source:  # never analysed: the planner's estimate, from the size on disk
        assert source.rows_from.startswith("EXPLAIN")
        assert 2000 < (source.rows or 0) < 20000
    _execute(pg_url, "ANALYZE counted")
    with open_source(pg_url, spec) as source:
        assert (source.rows, source.rows_from) == (5000, "pg_class.reltuples")


def test_a_table_read_in_parts_side_by_side_gives_the_rows_of_one_read(pg_url: str, every_type: str) -> None:
    """The ctid ranges cover every page once, on one snapshot, in the table's order: the same frame as one read."""
    from automl_trainer.load import PARALLEL_ROWS, build_query, postgresql_sql, table_parts

    spec = parse_spec(json.dumps(make_spec(source_table=every_type, label_column="label")))
    with open_source(pg_url, spec) as source:
        assert source.pages and source.pages >= 3
        query = build_query(source.table, source.names)
        whole = _read_adbc(pg_url, postgresql_sql(query), source.table, source.features_only)
        parts = table_parts(query, source.pages, 3)
        assert len(parts) == 3 and "ctid >= '(" in parts[2] and "ctid <" not in parts[2]
        in_parts = _read_adbc(pg_url, parts, source.table, source.features_only)
        # Only a big plain table is split, one part per stream
        source.rows = PARALLEL_ROWS * 4
        assert (source.parts(1), source.parts(2), source.parts(8)) == (1, 2, 4)
        source.rows = PARALLEL_ROWS - 1
        assert source.parts(2) == 1
    pd.testing.assert_frame_equal(in_parts, whole, check_exact=True)
    assert len(whole) == 300


def test_a_table_without_rows_is_named_on_the_columnar_path(pg_url: str) -> None:
    _execute(pg_url, "CREATE TABLE no_rows (x double precision, n numeric, t text, y integer)")
    spec = parse_spec(json.dumps(make_spec(source_table="no_rows", label_column="y")))
    with pytest.raises(TrainerError, match=r"^table no_rows has no rows$"):
        load_frame(pg_url, spec, columnar=True)

"""The job spec's two transports, its validation, and the table query (PostgreSQL for real, Trino compiled)."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from trino.sqlalchemy.dialect import TrinoDialect

from automl_trainer.errors import TrainerError
from automl_trainer.load import TableName, build_query, load_frame, needed_columns
from automl_trainer.spec import load_spec, parse_spec

from .conftest import make_spec, write_table


def packed(spec: dict[str, object]) -> str:
    return base64.b64encode(gzip.compress(json.dumps(spec).encode())).decode()


def test_spec_from_path_wins_over_gz_b64(tmp_path: Path) -> None:
    on_disk, in_env = make_spec(name="from file", label_column="y"), make_spec(name="from env", label_column="y")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(on_disk))
    assert load_spec({"AUTOML_JOB_SPEC_PATH": str(path), "AUTOML_JOB_SPEC_GZ_B64": packed(in_env)}).name == "from file"
    assert load_spec({"AUTOML_JOB_SPEC_GZ_B64": packed(in_env)}).name == "from env"


def test_spec_transport_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match="no job spec: set AUTOML_JOB_SPEC_PATH or AUTOML_JOB_SPEC_GZ_B64"):
        load_spec({})
    with pytest.raises(TrainerError, match="AUTOML_JOB_SPEC_GZ_B64 is not base64 of gzipped UTF-8 JSON"):
        load_spec({"AUTOML_JOB_SPEC_GZ_B64": "not base64!"})
    with pytest.raises(TrainerError, match="cannot read AUTOML_JOB_SPEC_PATH"):
        load_spec({"AUTOML_JOB_SPEC_PATH": str(tmp_path / "missing.json")})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"problem_type": "ranking", "algorithm": "lightgbm_ranker", "label_column": "r"},
            "'group_column' is required",
        ),
        (
            {
                "problem_type": "contextual_bandit",
                "algorithm": "vw_contextual_bandit",
                "label_column": "r",
                "propensity_column": "p",
                "reward_column": "r",
            },
            "'action_column' is required",
        ),
        (
            {
                "problem_type": "contextual_bandit",
                "algorithm": "vw_contextual_bandit",
                "label_column": "r",
                "action_column": "a",
                "reward_column": "r",
            },
            "'propensity_column' is required",
        ),
        (
            {
                "problem_type": "contextual_bandit",
                "algorithm": "vw_contextual_bandit",
                "label_column": "r",
                "action_column": "a",
                "propensity_column": "p",
            },
            "exactly one of 'reward_column' and 'cost_column'",
        ),
        (
            {
                "problem_type": "contextual_bandit",
                "algorithm": "vw_contextual_bandit",
                "label_column": "r",
                "action_column": "a",
                "propensity_column": "p",
                "reward_column": "r",
                "cost_column": "c",
            },
            "exactly one of",
        ),
        ({"label_column": None}, "'label_column' is required for binary_classification"),
        ({"label_column": "y", "algorithm": "vw_regressor"}, "does not solve problem_type 'binary_classification'"),
        ({"label_column": "y", "tuning": {"trials": 0, "time_budget_minutes": 5}}, "'tuning.trials' must be"),
        ({"label_column": "y", "feature_columns": ["a", "y"]}, "feature column 'y' is also the label"),
    ],
)
def test_spec_problem_columns(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TrainerError, match=message):
        parse_spec(json.dumps(make_spec(**overrides)))


def test_spec_ignores_unknown_keys() -> None:
    spec = parse_spec(
        json.dumps(
            make_spec(
                label_column="y", future_key=1, tuning={"trials": 2, "time_budget_minutes": 5, "per_trial": {"x": 1}}
            )
        )
    )
    assert spec.tuning.trials == 2


def test_feature_columns_omitted_means_all_but_label_and_special_columns() -> None:
    spec = parse_spec(
        json.dumps(
            make_spec(
                problem_type="contextual_bandit",
                algorithm="vw_contextual_bandit",
                label_column="c",
                action_column="a",
                propensity_column="p",
                cost_column="c",
            )
        )
    )
    features, columns = needed_columns(spec, ["x", "a", "p", "c", "z"], TableName(None, "t"))
    assert features == ["x", "z"]
    assert columns == ["x", "z", "c", "a", "p"]  # the label, also the cost column, selected once


def test_trino_query_quotes_every_identifier() -> None:
    query = build_query(TableName("lake", 'Odd "Table"'), ["feature one", 'q"x', "select", "plain"])
    sql = str(query.compile(dialect=TrinoDialect()))
    assert sql == 'SELECT "feature one", "q""x", "select", plain \nFROM lake."Odd ""Table"""'


@pytest.mark.parametrize(
    ("source_table", "expected"),
    [
        ("t", TableName(None, "t")),
        ("s.t", TableName("s", "t")),
        ("db.s.t", TableName("s", "t", catalog="db")),
        ("Sales.Orders2024", TableName("sales", "orders2024")),  # unquoted: read in lower case, as PostgreSQL does
        ('"Sales"."Orders2024"', TableName("Sales", "Orders2024")),  # quoted: as written
        ('"Warehouse"."Sales"."Orders2024"', TableName("Sales", "Orders2024", catalog="Warehouse")),
        ('order."select"', TableName("order", "select")),  # reserved words are names like any other
        ('"2024_sales".orders', TableName("2024_sales", "orders")),
        ('"a.b"."c""d"', TableName("a.b", 'c"d')),  # a quoted part may hold the separator and a doubled quote
        ('"odd Schema"."Tricky ""Table"" %s"', TableName("odd Schema", 'Tricky "Table" %s')),
    ],
)
def test_table_name_forms(source_table: str, expected: TableName) -> None:
    assert TableName.parse(source_table) == expected
    assert TableName.parse(str(expected)) == expected  # the name as shown reads back as itself


@pytest.mark.parametrize(
    ("source_table", "why"),
    [
        ("a.b.c.d", ""),
        ("", ""),
        ("a..b", ""),
        ("a.", ""),
        (".a", ""),
        ("1abc", ""),
        ("odd schema.t", ""),
        ('"x"y', ""),
        ('"x', ": a quoted part is not closed"),
        ('"".t', ": a quoted part is empty"),
    ],
)
def test_table_name_outside_the_grammar_fails_naming_the_rule(source_table: str, why: str) -> None:
    rule = (
        f"source_table {json.dumps(source_table)} must be 'table', 'schema.table' or 'catalog.schema.table', each "
        "part letters, digits and underscores not starting with a digit (read in lower case) or double-quoted "
        "(read as written)"
    )
    with pytest.raises(TrainerError) as raised:
        TableName.parse(source_table)
    assert str(raised.value) == rule + why
    with pytest.raises(TrainerError, match="source_table"):  # the spec stage refuses it before anything is read
        parse_spec(json.dumps(make_spec(source_table=source_table, label_column="y")))


def test_postgres_reads_only_needed_columns_with_hostile_names(pg_url: str) -> None:
    frame = pd.DataFrame({'we"ird col': [1.0, 2.0], "label": [0, 1], "unused; DROP TABLE x": ["a", "b"]})
    write_table(pg_url, 'Tricky "Table"', frame, schema="odd schema")
    spec = parse_spec(
        json.dumps(
            make_spec(
                source_table='"odd schema"."Tricky ""Table"""', label_column="label", feature_columns=['we"ird col']
            )
        )
    )
    loaded, features = load_frame(pg_url, spec)
    assert features == ['we"ird col']
    assert list(loaded.columns) == ['we"ird col', "label"]
    assert loaded['we"ird col'].tolist() == [1.0, 2.0]
    engine = sa.create_engine(pg_url)
    with engine.connect() as connection:  # the hostile column name was data, not SQL: the table is still there
        assert connection.execute(sa.text('SELECT count(*) FROM "odd schema"."Tricky ""Table"""')).scalar() == 2
    engine.dispose()


def test_missing_column_and_table_are_named(pg_url: str) -> None:
    write_table(pg_url, "small", pd.DataFrame({"a": [1.0], "y": [0]}))
    spec = parse_spec(json.dumps(make_spec(source_table="small", label_column="y", feature_columns=["a", "nope"])))
    with pytest.raises(TrainerError, match=r"^column 'nope' not found in table small$"):
        load_frame(pg_url, spec)
    spec = parse_spec(json.dumps(make_spec(source_table="public.absent", label_column="y")))
    with pytest.raises(TrainerError, match=r"^table public.absent not found$"):
        load_frame(pg_url, spec)

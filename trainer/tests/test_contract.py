"""The job-spec contract the service generates (src/automl_trainer/job_spec.schema.json) and the JOB_SPECs its own
DagRenderer writes (fixtures/rendered_job_specs.json; both from `npm run contract`, a service unit test keeps them
current): every rendered spec parses; source_table names the table the API promises, on PostgreSQL for real; a job
on a quoted mixed-case name and one on a database.schema.table name train end to end through the CLI."""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from trino.sqlalchemy.dialect import TrinoDialect

from automl_trainer.algorithms import get_algorithm
from automl_trainer.errors import TrainerError
from automl_trainer.load import TableName, build_query, load_frame, with_trino_catalog
from automl_trainer.spec import contract, load_spec, parse_spec, rules

from . import data
from .conftest import TrainerRun, run_status, run_trainer, trainer_env, write_table

FIXTURE = Path(__file__).parent / "fixtures" / "rendered_job_specs.json"
RENDERED: dict[str, dict[str, Any]] = {
    case["case"]: case["spec"] for case in json.loads(FIXTURE.read_text(encoding="utf-8"))
}

# What each source_table form the renderer was given names (scripts/rendered-job-specs.ts, SOURCE_TABLES).
NAMED = {
    "bare": TableName(None, "churn"),
    "schema_table": TableName("marketing", "churn"),
    "quoted_mixed_case": TableName("Sales", "Orders2024"),
    "unquoted_mixed_case": TableName("sales", "orders2024"),
    "reserved_words": TableName("order", "select"),
    "quoted_leading_digit": TableName("2024_sales", "orders"),
    "three_part": TableName("sales", "orders", catalog="warehouse"),
    "three_part_quoted": TableName("Sales", "Orders2024", catalog="Warehouse"),
}


def _schemas(schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from _schemas(sub)
    if "items" in schema:
        yield from _schemas(schema["items"])


def test_contract_is_package_data_with_every_rule_table() -> None:
    document = contract()
    assert document["title"] == "AutoMLTrainingJobSpec"
    assert set(rules()) >= {"algorithms", "label_optional_for", "problem_columns", "exclusive_problem_columns"}
    assert set(rules()["algorithms"]) == set(document["properties"]["problem_type"]["enum"])
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'automl_trainer = ["job_spec.schema.json"]' in pyproject  # installed with the package


def test_contract_uses_only_keywords_the_trainer_checks() -> None:
    from automl_trainer.spec import _ANNOTATIONS, _CHECKS

    used = {keyword for schema in _schemas(contract()) for keyword in schema}
    assert used <= _ANNOTATIONS | _CHECKS


def test_every_algorithm_of_the_contract_is_implemented() -> None:
    algorithms = {name for names in rules()["algorithms"].values() for name in names}
    assert algorithms == set(contract()["properties"]["algorithm"]["enum"])
    for name in algorithms:
        assert get_algorithm(name).name == name


def test_the_fixture_covers_every_algorithm_and_problem_type_and_source_table_form() -> None:
    pairs = {(spec["algorithm"], spec["problem_type"]) for spec in RENDERED.values()}
    assert pairs == {(a, p) for p, names in rules()["algorithms"].items() for a in names}
    assert {case.removeprefix("source_table-") for case in RENDERED if case.startswith("source_table-")} == set(NAMED)


@pytest.mark.parametrize("case", sorted(RENDERED))
def test_every_rendered_spec_parses(case: str) -> None:
    raw = RENDERED[case]
    spec = parse_spec(json.dumps(raw))
    packed = base64.b64encode(gzip.compress(json.dumps(raw).encode())).decode()  # the container path's transport
    assert load_spec({"AUTOML_JOB_SPEC_GZ_B64": packed}) == spec
    assert (spec.job_id, spec.problem_type, spec.algorithm) == (raw["job_id"], raw["problem_type"], raw["algorithm"])
    assert (spec.label_column, spec.feature_columns) == (raw["label_column"], raw["feature_columns"])
    assert (spec.tuning.trials, spec.tuning.time_budget_minutes) == tuple(raw["tuning"].values())
    assert all(getattr(spec, column) == raw[column] for column in rules()["problem_columns"])
    form = case.removeprefix("source_table-")
    assert TableName.parse(spec.source_table) == NAMED.get(form, NAMED["schema_table"])


def test_a_catalog_part_is_the_connected_database_or_the_trino_catalog() -> None:
    name = TableName.parse("warehouse.sales.orders")
    assert name.located("postgresql", "warehouse") == TableName("sales", "orders")
    assert name.located("trino", "warehouse") == TableName("sales", "orders")
    with pytest.raises(TrainerError, match=r"^source_table warehouse.sales.orders: database warehouse is not the "):
        name.located("postgresql", "analytics")
    with pytest.raises(TrainerError, match=r"database \"Warehouse\" is not the source's database warehouse"):
        TableName.parse('"Warehouse".sales.orders').located("postgresql", "warehouse")  # quoted: case matters
    with pytest.raises(TrainerError, match=r"a sqlite source has no level above the schema; give 'table' or"):
        name.located("sqlite", None)
    assert TableName("s", "t").located("sqlite", None) == TableName("s", "t")


def test_a_trino_three_part_name_connects_to_its_catalog() -> None:
    url = with_trino_catalog(sa.engine.make_url("trino://reader@trino.internal:8080/hive/default"), "Lake/Z")
    _, kwargs = TrinoDialect().create_connect_args(url)
    assert (kwargs["catalog"], kwargs["schema"]) == ("Lake/Z", "default")
    _, kwargs = TrinoDialect().create_connect_args(
        with_trino_catalog(sa.engine.make_url("trino://reader@trino.internal:8080"), "lake")
    )
    assert kwargs["catalog"] == "lake"
    query = build_query(TableName.parse('lake."Sales"."Orders2024"').located("trino", "lake"), ["a"])
    assert str(query.compile(dialect=TrinoDialect())) == 'SELECT a \nFROM "Sales"."Orders2024"'


def _database(url: str) -> str:
    database = sa.engine.make_url(url).database
    assert database is not None and database == database.lower()
    return database


@pytest.fixture(scope="module")
def sales_tables(pg_url: str) -> pd.DataFrame:
    """ "Sales"."Orders2024" and sales.orders (the training rows), and sales.orders2024 (other rows): the quoted and
    the unquoted spelling of one name are two tables."""
    frame = data.binary().rename(columns={"churned": "label"})
    write_table(pg_url, "Orders2024", frame, schema="Sales")
    write_table(pg_url, "orders", frame, schema="sales")
    write_table(pg_url, "orders2024", frame.head(7), schema="sales")
    return frame


@pytest.mark.parametrize(
    ("source_table", "rows"),
    [
        ('"Sales"."Orders2024"', 1500),
        ("Sales.Orders2024", 7),  # unquoted: sales.orders2024
        ("sales.orders2024", 7),
        ("{database}.sales.orders2024", 7),
        ('"{database}"."Sales"."Orders2024"', 1500),
        ("{database}.Sales.orders", 1500),
    ],
)
def test_postgres_reads_the_table_the_name_gives(
    pg_url: str, sales_tables: pd.DataFrame, source_table: str, rows: int
) -> None:
    raw = {
        **RENDERED["source_table-quoted_mixed_case"],
        "source_table": source_table.format(database=_database(pg_url)),
    }
    frame, _ = load_frame(pg_url, parse_spec(json.dumps(raw)))
    assert len(frame) == rows


def test_postgres_refuses_another_database_before_reading(pg_url: str, sales_tables: pd.DataFrame) -> None:
    raw = {**RENDERED["source_table-three_part"], "source_table": "warehouse.sales.orders"}
    with pytest.raises(TrainerError) as raised:
        load_frame(pg_url, parse_spec(json.dumps(raw)))
    assert str(raised.value) == (
        f"source_table warehouse.sales.orders: database warehouse is not the source's database {_database(pg_url)} "
        "(a three-part name's first part must name the database AUTOML_SOURCE_URL connects to)"
    )


def _train(pg_url: str, mlflow_uri: str, tmp: Path, spec: dict[str, Any]) -> TrainerRun:
    run = run_trainer(trainer_env(tmp, pg_url, mlflow_uri, spec), tmp)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"loaded 1500 rows, 4 features from {spec['source_table']}" in run.stdout + run.stderr
    assert run.result is not None and run.result["registered_model_name"] == spec["registered_model_name"]
    assert run_status(run.result["mlflow_run_id"]) == "FINISHED"
    return run


def test_a_rendered_job_on_a_quoted_mixed_case_table_trains_end_to_end(
    pg_url: str, mlflow_uri: str, sales_tables: pd.DataFrame, tmp_path: Path
) -> None:
    spec = RENDERED["source_table-quoted_mixed_case"]
    assert spec["source_table"] == '"Sales"."Orders2024"'
    _train(pg_url, mlflow_uri, tmp_path, spec)


def test_a_rendered_job_on_a_database_schema_table_name_trains_end_to_end(
    pg_url: str, mlflow_uri: str, sales_tables: pd.DataFrame, tmp_path: Path
) -> None:
    rendered = RENDERED["source_table-three_part"]
    assert rendered["source_table"] == "warehouse.sales.orders"
    # The rendered spec, its database part the test database's name (made per test session).
    _train(pg_url, mlflow_uri, tmp_path, {**rendered, "source_table": f"{_database(pg_url)}.sales.orders"})


def _api_reading(source_table: str) -> TableName:
    """What the API's description promises for a name its pattern accepts (its quoted parts hold no dot or quote):
    an unquoted part in lower case, a quoted part as written."""
    parts = [p[1:-1] if p.startswith('"') else p.lower() for p in source_table.split(".")]
    if len(parts) == 1:
        return TableName(None, parts[0])
    if len(parts) == 2:
        return TableName(parts[0], parts[1])
    return TableName(parts[1], parts[2], catalog=parts[0])


def test_the_trainer_reads_every_name_the_api_accepts_as_the_api_promises() -> None:
    pattern = re.compile(rules()["source_table"]["pattern"])
    rng = random.Random(0)
    accepted = 0
    for _ in range(20_000):
        if rng.random() < 0.5:  # mostly well formed: 1 to 4 parts, each bare, quoted or broken
            parts = []
            for _ in range(rng.randint(1, 4)):
                body = "".join(rng.choice("abcXYZ_019") for _ in range(rng.randint(0, 4)))
                parts.append(rng.choice([body, f'"{body}"', f'"{body}', f'{body}"']))
            text = ".".join(parts)
        else:
            text = "".join(rng.choice('aZ_09."') for _ in range(rng.randint(0, 10)))
        named: TableName | None = None
        refusal = ""
        try:
            named = TableName.parse(text)
        except TrainerError as error:
            refusal = str(error)
        assert named is not None or refusal.startswith(f"source_table {json.dumps(text)} must be "), refusal
        if pattern.fullmatch(text):
            accepted += 1
            assert named == _api_reading(text), text
        elif named is not None:  # beyond the API's names: only a quoted part holding a dot or a (doubled) quote
            assert any(c in part for part in (named.catalog, named.schema, named.name) if part for c in '."'), text
    assert accepted > 2_000

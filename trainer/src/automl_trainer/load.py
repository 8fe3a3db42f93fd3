"""Stage 1: read the needed columns of the source table through SQLAlchemy (PostgreSQL, Trino, …).

Identifiers go through SQLAlchemy's quoting (sa.table / sa.column), never into SQL text by formatting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from automl_trainer.errors import TrainerError
from automl_trainer.spec import JobSpec


@dataclass(frozen=True)
class TableName:
    schema: str | None
    name: str

    @classmethod
    def parse(cls, source_table: str) -> TableName:
        parts = source_table.split(".")
        if len(parts) == 1 and parts[0]:
            return cls(None, parts[0])
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1])
        raise TrainerError(f"source_table '{source_table}' must be 'table' or 'schema.table'")

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def build_query(table: TableName, columns: list[str]) -> sa.Select[*tuple[Any, ...]]:
    """SELECT of exactly these columns; every identifier is quoted by the dialect that compiles it."""
    return sa.select(*[sa.column(c) for c in columns]).select_from(sa.table(table.name, schema=table.schema))


def table_columns(engine: Engine, table: TableName) -> list[str]:
    inspector = sa.inspect(engine)
    if not inspector.has_table(table.name, schema=table.schema):
        raise TrainerError(f"table {table} not found")
    return [str(c["name"]) for c in inspector.get_columns(table.name, schema=table.schema)]


def needed_columns(spec: JobSpec, available: list[str], table: TableName) -> tuple[list[str], list[str]]:
    """(features, every column to select). Omitted features = all columns but the label and special columns."""
    extra = [c for c in [spec.label_column, *spec.special_columns()] if c]
    features = spec.feature_columns if spec.feature_columns is not None else [c for c in available if c not in extra]
    if not features:
        raise TrainerError(f"table {table} has no feature column besides the label and special columns")
    present = set(available)
    for column in [*extra, *features]:
        if column not in present:
            raise TrainerError(f"column '{column}' not found in table {table}")
    return list(features), [*features, *extra]


def with_installed_driver(url: str) -> sa.engine.URL | str:
    """A bare `postgresql://` URL (what an Airflow postgres Connection gives) on the psycopg2 driver this venv ships:
    SQLAlchemy 2.1 made psycopg 3 the default for it, which the trainer's lock does not install."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return url
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def load_frame(url: str, spec: JobSpec) -> tuple[pd.DataFrame, list[str]]:
    """The table's needed columns as a DataFrame, and the feature column names."""
    table = TableName.parse(spec.source_table)
    try:
        engine = sa.create_engine(with_installed_driver(url), pool_pre_ping=False)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
        raise TrainerError(f"AUTOML_SOURCE_URL is not a usable SQLAlchemy URL ({type(error).__name__})") from None
    try:
        features, columns = needed_columns(spec, table_columns(engine, table), table)
        with engine.connect() as connection:
            frame = pd.read_sql(build_query(table, columns), connection)
    except sa.exc.OperationalError as error:
        # The driver's message can echo the URL's host and user; keep only its first line, never the URL.
        first = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise TrainerError(f"cannot read table {table}: {first}") from None
    finally:
        engine.dispose()
    if frame.empty:
        raise TrainerError(f"table {table} has no rows")
    return frame, features

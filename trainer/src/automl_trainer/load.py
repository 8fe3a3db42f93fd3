"""Stage 1: read the needed columns of the source table.

Two readers, one result. The table's metadata (does it exist, its columns and their types, its row count) always
comes through SQLAlchemy. The rows then come:

- from PostgreSQL, through the ADBC PostgreSQL driver (`adbc-driver-postgresql`, Apache Arrow's libpq-based
  driver): it runs the SELECT as `COPY (…) TO STDOUT (FORMAT binary)` and decodes straight into Arrow record
  batches, each converted as it comes (`columnar_frame`): the features compact (float32 numbers, integers in
  their own width, text as categories), the label and other special columns as the SQLAlchemy path gives them.
  The prepared features are the same either way (tests/test_columnar_load.py). A plain table of PARALLEL_ROWS
  rows or more is read in ctid ranges side by side, one connection and thread per range, all on one exported
  snapshot (`table_parts`), so the client's decoding runs on as many cores as the server's encoding;
- from any other database (Trino, …), through SQLAlchemy and `pd.read_sql`.

Why ADBC: measured on a 1,000,000-row × 21-column table (15 numeric of smallint/integer/bigint/real/double/
numeric, 5 text, an integer label, NULLs in some; `npm run bench:trainer`), on the shared 2-core machine:
`COPY … TO STDOUT (FORMAT binary)` through psql took 1.2–1.4 s (the floor); ADBC 3.9–4.1 s to the final
DataFrame (3.0–3.1 s to Arrow) at 555 MB peak RSS; ConnectorX 3.4–3.8 s at 560 MB; psycopg 3 binary COPY row by
row 14.9 s at 1.7 GB; psycopg 3 fetchall 13.2 s at 2.4 GB; `pd.read_sql` through psycopg2 18.4 s at
1.9 GB. ADBC and ConnectorX tie on time and memory; ADBC wins on exactness: it hands NUMERIC over as the
database's own text (parsed here to float64 exactly as psycopg2's Decimal → float), where ConnectorX forces
decimal128(38, 10) and rounds every digit past the tenth decimal. It is also the smaller wheel, an Apache Arrow
subproject, and speaks the DB-API (its errors are DB-API errors).

Identifiers: the SELECT is built by SQLAlchemy (`sa.table` / `sa.column`) and compiled by its PostgreSQL dialect
(quoting every identifier that needs it, doubling embedded quotes), never by formatting names into SQL text.
Only column types both readers turn into the same values go the columnar way (`COLUMNAR_TYPES`); a table with
any other type (uuid, json, interval, arrays, enums, …) is read through SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Engine

from automl_trainer.errors import TrainerError
from automl_trainer.spec import JobSpec, rules, source_table_parts

# A plain table is read in parts side by side, one per PARALLEL_ROWS rows up to one per thread (a connection and a
# thread each, AUTOML_TRAINER_THREADS): on 2 cores, 3M rows took 5.9 s in two parts, 8.3 s in one (COPY: 4.1 s).
PARALLEL_ROWS = 100_000

# SQLAlchemy column types (as the PostgreSQL inspector reports them) the columnar reader turns into exactly what
# pd.read_sql through psycopg2 gives: sa.Float is REAL and DOUBLE PRECISION, sa.Numeric NUMERIC; sa.String TEXT,
# VARCHAR and CHAR (but not enums, which subclass it).
COLUMNAR_TYPES: tuple[type[sa.types.TypeEngine[Any]], ...] = (
    sa.Integer,
    sa.Numeric,
    sa.Float,  # SQLAlchemy 2.1: no longer a Numeric subclass
    sa.Boolean,
    sa.String,
    sa.Date,
    sa.DateTime,
)


@dataclass(frozen=True)
class TableName:
    """A source table as the database names it: each part exactly (source_table's unquoted parts already in lower
    case, its quoted parts as written). `catalog`: a three-part name's first part, the source's database
    (PostgreSQL) or catalog (Trino); `located` checks or applies it before anything is read."""

    schema: str | None
    name: str
    catalog: str | None = None

    @classmethod
    def parse(cls, source_table: str) -> TableName:
        """source_table read by the contract's grammar (spec.source_table_parts)."""
        parts = source_table_parts(source_table)
        if len(parts) == 1:
            return cls(None, parts[0])
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        return cls(parts[1], parts[2], catalog=parts[0])

    def located(self, dialect: str, catalog: str | None) -> TableName:
        """The name the source's own connection reads, its catalog part checked: `dialect` is the source's
        SQLAlchemy dialect name, `catalog` what that connection is on (PostgreSQL: current_database(); Trino: the
        catalog of the URL, which open_source has set to this name's)."""
        if self.catalog is None:
            return self
        level = rules()["source_table"]["catalog"].get(dialect)
        if level is None:
            raise TrainerError(
                f"source_table {self}: a {dialect} source has no level above the schema; give 'table' or "
                f"'schema.table' (a three-part name's first part is a PostgreSQL database or a Trino catalog)"
            )
        if self.catalog != catalog:
            raise TrainerError(
                f"source_table {self}: {level} {_shown(self.catalog)} is not the source's {level} "
                f"{_shown(catalog or '')} (a three-part name's first part must name the {level} AUTOML_SOURCE_URL "
                f"connects to)"
            )
        return TableName(self.schema, self.name)

    def __str__(self) -> str:
        return ".".join(_shown(part) for part in (self.catalog, self.schema, self.name) if part is not None)


def _shown(part: str) -> str:
    """A name part as source_table would spell it: bare when reading it unquoted gives it back, else quoted."""
    return part if re.fullmatch(r"[a-z_][a-z0-9_]*", part) else '"' + part.replace('"', '""') + '"'


def with_trino_catalog(url: sa.engine.URL, catalog: str) -> sa.engine.URL:
    """A Trino URL on `catalog` (its database is `catalog[/schema]`, URL-encoded), the default schema kept."""
    rest = (url.database or "").split("/", 1)[1:]
    return url.set(database="/".join([quote_plus(catalog), *rest]))


def build_query(table: TableName, columns: list[str]) -> sa.Select[*tuple[Any, ...]]:
    """SELECT of exactly these columns; every identifier is quoted by the dialect that compiles it."""
    return sa.select(*[sa.column(c) for c in columns]).select_from(sa.table(table.name, schema=table.schema))


def postgresql_sql(query: sa.Select[*tuple[Any, ...]]) -> str:
    """The query as PostgreSQL text, identifiers quoted by SQLAlchemy's PostgreSQL dialect. With the 'named'
    paramstyle: the default (pyformat, psycopg2's) doubles every '%' in a name for the driver to undo."""
    compiled = query.compile(dialect=PGDialect(paramstyle="named"))
    if compiled.params:  # the SELECT has no values in it, only identifiers
        raise TrainerError("internal error: the table query has parameters")
    return str(compiled)


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: sa.types.TypeEngine[Any]
    avg_width: int | None = None  # PostgreSQL's pg_stats.avg_width (bytes), when the table was analysed


@dataclass
class Source:
    """A source table checked before reading: its needed columns, their types, and its estimated row count."""

    url: str
    engine: Engine
    table: TableName
    features: list[str]
    columns: list[SourceColumn]
    rows: int | None = None  # estimate before reading; None when the database gives none (Trino)
    rows_from: str = ""  # where the estimate came from
    pages: int | None = None  # PostgreSQL: the table's size in pages now (None for a view or a partitioned table)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features_only(self) -> list[str]:
        """Feature columns that are not also the label or a special column (the columnar read makes them compact)."""
        special = set(self.names[len(self.features) :])
        return [name for name in self.features if name not in special]

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def columnar(self) -> bool:
        """Read through ADBC: a PostgreSQL table whose needed columns are all of types it reads as SQLAlchemy does."""
        return self.is_postgresql and all(
            isinstance(c.type, COLUMNAR_TYPES) and not isinstance(c.type, sa.Enum) for c in self.columns
        )

    def read(self, columnar: bool | None = None, streams: int = 1) -> pd.DataFrame:
        """The needed columns as a DataFrame (columnar: None = whenever possible, False = SQLAlchemy path). On the
        columnar path a plain table of PARALLEL_ROWS rows or more is read in `streams` parts side by side."""
        use_columnar = self.columnar() if columnar is None else columnar
        query = build_query(self.table, self.names)
        if use_columnar:
            parts = self.parts(streams)
            whole = postgresql_sql(query)
            sql = table_parts(query, self.pages or 0, parts) if parts > 1 else whole
            frame = _read_adbc(self.url, sql, self.table, self.features_only, whole)
        else:
            frame = _read_sqlalchemy(self.engine, query, self.table)
        if frame.empty:
            raise TrainerError(f"table {self.table} has no rows")
        return frame

    def parts(self, streams: int) -> int:
        """How many parts the columnar read takes: for a plain table, one per PARALLEL_ROWS rows up to one per
        stream; else one."""
        if streams < 2 or not self.pages or not self.rows or self.rows < PARALLEL_ROWS:
            return 1
        return max(1, min(streams, self.rows // PARALLEL_ROWS, self.pages))

    def close(self) -> None:
        self.engine.dispose()


def table_columns(engine: Engine, table: TableName) -> list[tuple[str, sa.types.TypeEngine[Any]]]:
    """Each column's name and type, in the table's order."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(table.name, schema=table.schema):
        raise TrainerError(f"table {table} not found")
    return [(str(c["name"]), c["type"]) for c in inspector.get_columns(table.name, schema=table.schema)]


def needed_columns(spec: JobSpec, available: list[str], table: TableName) -> tuple[list[str], list[str]]:
    """(features, every column to select). Omitted features = all columns but the label and special columns."""
    extra = list(dict.fromkeys(c for c in [spec.label_column, *spec.special_columns()] if c))  # a column once
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


def _first_line(error: BaseException | None, fallback: str) -> str:
    """The driver's message can echo the URL's host and user; keep only its first line, never the URL."""
    text = str(error).strip() if error is not None else ""
    return text.splitlines()[0] if text else fallback


def _row_estimate(connection: sa.Connection, table: TableName, query: sa.Select[*tuple[Any, ...]]) -> tuple[int, str]:
    """PostgreSQL's row count without reading the table: pg_class.reltuples (set by ANALYZE / autovacuum); for a
    table never analysed (-1), a view or a partitioned parent, the planner's own estimate from EXPLAIN, which
    scales by the table's current size on disk. Not count(*): that scans the whole table, as slow as the load."""
    reltuples = connection.execute(
        sa.text(
            "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema()) AND c.relkind IN ('r', 'm')"
        ),
        {"name": table.name, "schema": table.schema},
    ).scalar()
    if reltuples is not None and reltuples >= 0:
        return int(reltuples), "pg_class.reltuples"
    # The driver's own cursor with no parameters: the text goes as compiled, so a '%' or ':' in a name is just that.
    cursor = connection.connection.cursor()
    try:
        cursor.execute("EXPLAIN (FORMAT JSON) " + postgresql_sql(query))
        row = cursor.fetchone()
        plan: Any = row[0] if row else [{"Plan": {"Plan Rows": 0}}]
    finally:
        cursor.close()
    return int(plan[0]["Plan"]["Plan Rows"]), "EXPLAIN estimate (table never analysed)"


def _pages(connection: sa.Connection, table: TableName) -> int | None:
    """The table's size in pages now (not relpages, which only ANALYZE and VACUUM update); None for a view, a
    partitioned table or anything else that has no ctid ranges to split by."""
    pages = connection.execute(
        sa.text(
            "SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema()) AND c.relkind IN ('r', 'm')"
        ),
        {"name": table.name, "schema": table.schema},
    ).scalar()
    return None if pages is None else int(pages)


def _avg_widths(connection: sa.Connection, table: TableName) -> dict[str, int]:
    rows = connection.execute(
        sa.text(
            "SELECT attname, avg_width FROM pg_stats "
            "WHERE tablename = :name AND schemaname = coalesce(:schema, current_schema())"
        ),
        {"name": table.name, "schema": table.schema},
    )
    return {str(name): int(width) for name, width in rows}


@contextlib.contextmanager
def open_source(url: str, spec: JobSpec) -> Iterator[Source]:
    """Check the table and its columns (missing ones named), and estimate its rows, before reading anything."""
    named = TableName.parse(spec.source_table)
    target = with_installed_driver(url)
    if named.catalog is not None and isinstance(target, sa.engine.URL) and target.get_backend_name() == "trino":
        target = with_trino_catalog(target, named.catalog)
    try:
        engine = sa.create_engine(target, pool_pre_ping=False)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
        raise TrainerError(f"AUTOML_SOURCE_URL is not a usable SQLAlchemy URL ({type(error).__name__})") from None
    try:
        try:
            table = named.located(engine.dialect.name, _catalog(engine) if named.catalog is not None else None)
            described = table_columns(engine, table)
            features, names = needed_columns(spec, [name for name, _ in described], table)
            types = dict(described)
            source = Source(url, engine, table, features, [SourceColumn(n, types[n]) for n in names])
            if source.is_postgresql:
                with engine.connect() as connection:
                    source.rows, source.rows_from = _row_estimate(connection, table, build_query(table, source.names))
                    source.pages = _pages(connection, table)
                    widths = _avg_widths(connection, table)
                source.columns = [SourceColumn(c.name, c.type, widths.get(c.name)) for c in source.columns]
        except sa.exc.OperationalError as error:
            raise TrainerError(f"cannot read table {named}: {_first_line(error.orig, type(error).__name__)}") from None
        yield source
    finally:
        engine.dispose()


def _catalog(engine: Engine) -> str | None:
    """What a three-part name's first part must equal: PostgreSQL's connected database, Trino's catalog."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            database = connection.execute(sa.text("SELECT current_database()")).scalar()
        return None if database is None else str(database)
    if engine.dialect.name == "trino":
        database = engine.url.database or ""
        return unquote_plus(database.split("/", 1)[0]) or None
    return None


def load_frame(url: str, spec: JobSpec, columnar: bool | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The table's needed columns as a DataFrame, and the feature column names."""
    with open_source(url, spec) as source:
        return source.read(columnar), source.features


def _read_sqlalchemy(engine: Engine, query: sa.Select[*tuple[Any, ...]], table: TableName) -> pd.DataFrame:
    try:
        with engine.connect() as connection:
            return pd.read_sql(query, connection)
    except sa.exc.OperationalError as error:
        raise TrainerError(f"cannot read table {table}: {_first_line(error.orig, type(error).__name__)}") from None


def libpq_uri(url: str) -> str:
    """The SQLAlchemy URL as the libpq connection URI ADBC takes (same user, password, host, database, options)."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _read_adbc(
    url: str, sql: str | list[str], table: TableName, compact: Collection[str] = (), whole: str = ""
) -> pd.DataFrame:
    """Run the SELECT through ADBC; a list of SELECTs (the parts of one table) runs side by side, one connection
    each, all on one snapshot (the first exports it), and their rows come in the list's order. Where the server
    exports no snapshot for the others to share (a standby may refuse), `whole` is read in one stream instead."""
    import adbc_driver_manager
    import pyarrow as pa

    uri = libpq_uri(url)
    compact = frozenset(compact)  # looked up per column of every batch
    try:
        if isinstance(sql, list):
            frame = _read_parts(uri, sql, compact)
            if frame is not None:
                return frame
            sql = whole
        with _adbc_connect(uri) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return columnar_frame(cursor.fetch_record_batch(), compact)
    except (adbc_driver_manager.Error, pa.ArrowException) as error:
        message = _first_line(error, type(error).__name__)
        password = sa.engine.make_url(url).password
        for secret in (uri, url, str(password) if password else ""):
            if secret:
                message = message.replace(secret, "***")
        # ADBC prefixes its status ("IO: [libpq] …", "NOT_FOUND: …"); the database's words are what help.
        message = re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", message)
        raise TrainerError(f"cannot read table {table}: {message}") from None


def _adbc_connect(uri: str, autocommit: bool = False) -> Any:
    import adbc_driver_postgresql.dbapi

    return adbc_driver_postgresql.dbapi.connect(uri, autocommit=autocommit)


def _read_parts(uri: str, parts: list[str], compact: Collection[str]) -> pd.DataFrame | None:
    from concurrent.futures import ThreadPoolExecutor

    import adbc_driver_manager

    with contextlib.ExitStack() as stack:
        cursors = []
        for _ in parts:
            connection = stack.enter_context(_adbc_connect(uri, autocommit=True))
            cursors.append(stack.enter_context(connection.cursor()))
        try:
            for cursor in cursors:
                cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursors[0].execute("SELECT pg_export_snapshot()")
            snapshot = str(cursors[0].fetchone()[0])
            if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
                return None
            for cursor in cursors[1:]:
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        except adbc_driver_manager.Error:
            return None

        def read(index: int) -> tuple[Any, dict[str, list[Any]]]:
            cursor = cursors[index]
            cursor.execute(parts[index])
            batches = cursor.fetch_record_batch()
            return batches.schema, _chunks(batches, compact)

        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="load") as pool:
            results = list(pool.map(read, range(len(parts))))
        return _frame(results[0][0], [chunks for _, chunks in results], compact)


def table_parts(query: sa.Select[*tuple[Any, ...]], pages: int, count: int) -> list[str]:
    """The SELECT split into `count` ranges of the table's pages by ctid (TID range scans, PostgreSQL 14+); the
    last range is open, so pages added since `pages` was measured are read too."""
    bounds = [pages * i // count for i in range(count + 1)]
    parts = []
    for i in range(count):
        part = query
        if i > 0:
            part = part.where(sa.text(f"ctid >= '({int(bounds[i])},0)'::tid"))
        if i < count - 1:
            part = part.where(sa.text(f"ctid < '({int(bounds[i + 1])},0)'::tid"))
        parts.append(postgresql_sql(part))
    return parts


def columnar_frame(batches: Any, compact: Collection[str] = ()) -> pd.DataFrame:
    """Record batches from ADBC as a DataFrame, converted batch by batch (each batch's buffers freed as it goes).

    Every column but the `compact` ones becomes what pd.read_sql through psycopg2 gives: integers → int64
    (float64 when NULLs are present); real → float64 of its shortest text (psycopg2 parses PostgreSQL's text, so
    0.1::real is 0.1, not 0.10000000149); NUMERIC (ADBC: the database's text) → float64, as pd.read_sql's
    coerce_float makes of Decimals; booleans, text, dates (datetime.date objects), timestamps and timestamptz
    (UTC) as Arrow's own conversion gives them.

    `compact` columns (the features) come as small as the model input they become allows, with the same
    prepared result (`Features.transform` makes float32 of every number): integers in their own width (float64
    when NULLs are present, as pd.read_sql gives them), double, real and NUMERIC as float32, text as a pandas
    Categorical (a code per row, each distinct text once) instead of a Python str per row.
    """
    return _frame(batches.schema, [_chunks(batches, compact)], compact)


def _chunks(batches: Any, compact: Collection[str]) -> dict[str, list[Any]]:
    """Each column's converted chunks, batch by batch; the batch is dropped once converted."""
    chunks: dict[str, list[Any]] = {name: [] for name in batches.schema.names}
    for batch in batches:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            chunks[name].append(_chunk(column, name in compact))
        del batch, column
    return chunks


def _frame(schema: Any, parts: list[dict[str, list[Any]]], compact: Collection[str]) -> pd.DataFrame:
    """One column at a time from the chunks of every part, in order (each column's chunks freed once built)."""
    import pyarrow as pa

    series: dict[str, pd.Series] = {}
    for field_ in schema:
        name = field_.name
        # A table without rows: one empty chunk, converted as any other (its type is the column's).
        chunks = [chunk for part in parts for chunk in part.pop(name)] or [
            _chunk(pa.nulls(0, field_.type), name in compact)
        ]
        series[name] = _column(pa.chunked_array(chunks), name in compact)
        del chunks
    return pd.DataFrame(series, copy=False)


def _chunk(column: Any, compact: bool) -> Any:
    """One batch's column converted, in buffers of its own (a slice of the batch would keep the whole batch)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if isinstance(kind, pa.BaseExtensionType):  # NUMERIC: arrow.opaque over the text form
        number = pc.cast(column.storage, pa.float64())
        return pc.cast(number, pa.float32()) if compact else number
    if compact:
        if pa.types.is_float64(kind):
            return pc.cast(column, pa.float32())
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return pc.dictionary_encode(column)
        return pa.concat_arrays([column])
    if pa.types.is_integer(kind) and kind != pa.int64():
        return pc.cast(column, pa.int64())
    if pa.types.is_float32(kind):
        return pc.cast(pc.cast(column, pa.string()), pa.float64())
    return pa.concat_arrays([column])


def _column(chunked: Any, compact: bool) -> pd.Series:
    import pyarrow as pa

    kind = chunked.type
    if compact and pa.types.is_dictionary(kind):
        return chunked.unify_dictionaries().to_pandas()
    return chunked.to_pandas()

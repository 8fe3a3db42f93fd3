"""Memory known before loading: what a job will need, from the table's row count and column types, against the
limit it runs under (AUTOML_TRAINER_MAX_MEMORY, else the process's cgroup limit, else 80 % of RAM).

The estimate is peak RSS = BASE_BYTES + rows × factor × (bytes of one loaded row + 4 bytes per feature).
A loaded row is each column's bytes in the DataFrame (`value_bytes`: the features compact on the columnar path);
the 4 bytes per feature are its encoded float32 copy. The factor covers what a run holds beyond one copy of each:
the reader's chunks while a column is built, the train/test copies of the encoded features, the library's own
dataset (LightGBM/XGBoost bins, VW's text lines), predictions and the report: ROW_FACTOR on the columnar path,
calibrated by measuring peak RSS of whole trainer runs (lightgbm_classifier, preset fast) on `npm run
bench:trainer`'s table at four sizes (below); SQLALCHEMY_ROW_FACTOR for a table read through SQLAlchemy (a
Python object per value while it loads), from the same bench's old-load stage.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from automl_trainer.errors import TrainerError
from automl_trainer.load import Source

ENV = "AUTOML_TRAINER_MAX_MEMORY"

# Calibrated on `npm run bench:trainer` with BENCH_TRAIN=1 (lightgbm_classifier, preset fast, 3 trials; the
# bench's 21-column table, 178 bytes per row by value_bytes on the columnar path with the float32 features): peak
# RSS 419 / 465 / 583 / 961 MiB at 250k / 500k / 1M / 3M rows, a straight line of 373 MiB + 207 bytes per row,
# i.e. 1.16 × the row bytes. Rounded up (420 MiB, 1.3) so the estimate errs high: +10 to +14 % over those peaks.
BASE_BYTES = 420 * 2**20  # the interpreter with pandas, scikit-learn, the algorithm's library, MLflow, … loaded
ROW_FACTOR = 1.3
# The old load (pd.read_sql through SQLAlchemy + psycopg2) of the same table, 278 bytes per row as it loads them:
# peak RSS 544 / 961 / 1,794 / 4,967 MiB at 250k / 500k / 1M / 3M rows, 1,686 bytes per row (6.1 × the row bytes).
SQLALCHEMY_ROW_FACTOR = 6.5

TEXT_BYTES = 32  # a text value when PostgreSQL has no statistics on its width
UNLIMITED = 2**60  # cgroup v1 writes ~2^63 for "no limit"

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def value_bytes(kind: sa.types.TypeEngine[object] | None, avg_width: int | None = None, compact: bool = False) -> int:
    """Bytes one value of this column type takes in the loaded DataFrame (`compact`: a feature as the columnar
    load gives it, see load.columnar_frame)."""
    if compact and isinstance(kind, sa.Float | sa.Numeric):
        return 4  # float32
    if compact and isinstance(kind, sa.String):
        return 2  # a category code (int8 up to 127 distinct values, int16 up to 32,767)
    if isinstance(kind, sa.Boolean):
        return 8  # bool, or object (True/False/None) when NULLs are present
    if isinstance(kind, sa.Integer | sa.Numeric | sa.Float | sa.DateTime):
        return 8  # int64 / float64 / datetime64
    if isinstance(kind, sa.Date):
        return 8 + 32  # a datetime.date object per value
    if isinstance(kind, sa.String):
        return 8 + (avg_width if avg_width is not None else TEXT_BYTES)  # offset + UTF-8 bytes (pandas str)
    return 8 + (avg_width if avg_width is not None else 48)  # other types: a Python object per value


@dataclass(frozen=True)
class Estimate:
    rows: int
    row_bytes: int
    total: int


def estimate(source: Source) -> Estimate | None:
    """The job's estimated peak memory; None when the database gave no row count (e.g. Trino)."""
    if source.rows is None:
        return None
    columnar = source.columnar()
    compact = set(source.features_only) if columnar else set()
    row_bytes = sum(value_bytes(c.type, c.avg_width, c.name in compact) for c in source.columns)
    row_bytes += 4 * len(source.features)
    factor = ROW_FACTOR if columnar else SQLALCHEMY_ROW_FACTOR
    return Estimate(source.rows, row_bytes, int(BASE_BYTES + source.rows * factor * row_bytes))


def parse_size(text: str) -> int:
    """Bytes from '1073741824', '512M', '2G', '1.5GiB', '800MB' (K/M/G/T, with or without 'i'/'iB'/'B': powers
    of 1024, as Docker's and the JVM's memory flags read them)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text, flags=re.IGNORECASE)
    if not match or (match.group(3) and not match.group(2)):
        raise TrainerError(f"{ENV} '{text}' is not a size (bytes, or a number with K, M, G, T, e.g. 512M, 1.5GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human(size: float) -> str:
    """1.0 GiB, 512.0 MiB, 3.2 GiB."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def _cgroup_limit(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """The memory limit of this process's cgroup (v2 memory.max, v1 memory.limit_in_bytes); None if unlimited."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # v2 unified hierarchy
            candidates += [root / relative / "memory.max", root / "memory.max"]
        elif "memory" in controllers.split(","):
            candidates += [root / "memory" / relative / "memory.limit_in_bytes", root / "memory/memory.limit_in_bytes"]
    candidates += [root / "memory.max", root / "memory/memory.limit_in_bytes"]
    for candidate in candidates:
        try:
            raw = candidate.read_text().strip()
        except OSError:
            continue
        if raw == "max" or not raw.isdigit() or int(raw) >= UNLIMITED:
            return None
        return int(raw)
    return None


@dataclass(frozen=True)
class Limit:
    bytes: int
    origin: str  # how the error names it

    def describe(self) -> str:
        return f"{self.origin} {human(self.bytes)}"


def limit(environ: os._Environ[str] | dict[str, str] = os.environ) -> Limit:
    raw = environ.get(ENV, "").strip()
    if raw:
        return Limit(parse_size(raw), ENV)
    cgroup = _cgroup_limit()
    if cgroup is not None:
        return Limit(cgroup, f"the cgroup memory limit (set {ENV} to change)")
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Limit(int(ram * 0.8), f"80 % of RAM (set {ENV} to change)")


def check(needed: Estimate, table: object, allowed: Limit) -> None:
    """Fail before loading when the job would not fit."""
    if needed.total > allowed.bytes:
        raise TrainerError(
            f"table {table} ({needed.rows:,} rows) needs about {human(needed.total)} to train, over "
            f"{allowed.describe()}"
        )

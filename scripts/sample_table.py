"""Loads scikit-learn's bundled breast cancer dataset (569 rows, 30 numeric features, label `malignant`),
or a CSV file of your own, into a PostgreSQL table, for the local stack and the real-Airflow e2e tests.

Usage: python scripts/sample_table.py SQLALCHEMY_URL [schema.table] [file.csv]
  (default table public.breast_cancer; with file.csv: that file, header row first, column types inferred
  by pandas, the table replaced if it exists)
Runs in the trainer's venv (scikit-learn, pandas, SQLAlchemy, psycopg2 from trainer/requirements.lock).
"""

from __future__ import annotations

import re
import sys

import pandas as pd
import sqlalchemy as sa
from sklearn.datasets import load_breast_cancer


def column_name(feature: str) -> str:
    """'mean radius' -> 'mean_radius': names the service accepts as feature_columns."""
    return re.sub(r"[^a-z0-9]+", "_", feature.lower()).strip("_")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = argv[1]
    schema, _, table = (argv[2] if len(argv) > 2 else "public.breast_cancer").rpartition(".")
    if len(argv) > 3:
        frame: pd.DataFrame = pd.read_csv(argv[3])
        label = None
    else:
        data = load_breast_cancer(as_frame=True)
        frame = data.frame.rename(columns=column_name)
        # sklearn's target is 0 = malignant; the label says what it means.
        frame = frame.drop(columns=["target"]).assign(malignant=(data.target == 0).astype(int))
        label = "malignant"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            if schema:
                connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            frame.to_sql(table, connection, schema=schema or None, index=False, if_exists="replace")
    finally:
        engine.dispose()
    if label is None:
        print(f"{schema or 'public'}.{table}: {len(frame)} rows, columns {', '.join(map(str, frame.columns))}")
    else:
        print(
            f"{schema or 'public'}.{table}: {len(frame)} rows, label {label}, features {', '.join(frame.columns[:-1])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

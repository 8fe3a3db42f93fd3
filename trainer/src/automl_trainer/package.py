"""Stage 6: the registered model. One self-contained MLflow pyfunc per job, for every algorithm: serving.py as the
model's code, features.json and the fitted model file (the library's own format) as its artifacts, a signature of
the table's own columns and types, raw rows as its input example, and pinned requirements of only what loading it
takes (never this trainer package).

Its inference cost is measured as it is logged: the size of its artifacts and the time the served model takes to
score PREDICT_ROWS raw rows (features.json's transform, the guard, the library's predict), best of PREDICT_REPEATS.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

from automl_trainer import serving
from automl_trainer.algorithms.base import Algorithm, Context
from automl_trainer.prepare import signature_type
from automl_trainer.serving import METHODS, Column, Meta
from automl_trainer.spec import JobSpec

EXAMPLE_ROWS = 5
PREDICT_ROWS = 1000  # raw rows the predict time is measured on (the table's first ones, repeated if fewer)
PREDICT_REPEATS = 2


def output_type(values: list[Any]) -> str:
    """The MLflow type of a list of labels / actions as the table holds them."""
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "long"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "double"
    return "string"


def signature(ctx: Context, raw: pd.DataFrame, threshold: float | None = None) -> Any:
    """The model's input columns and types, its output, and its params: predict_method, and for a binary
    classifier decision_threshold (default: the trainer's choice)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    pre = ctx.preprocessing

    def spec(column: Column) -> Any:
        kind = signature_type(raw[column.name], column)
        # MLflow's `datetime` refuses text, which is what CSV and JSON callers (`mlflow models predict/serve`) send:
        # a datetime column takes any value, and the model parses datetimes and ISO 8601 text alike.
        return ColSpec(AnyType() if kind == "datetime" else kind, column.name, required=column.required)

    inputs = Schema([spec(c) for c in pre.features.columns])
    problem = ctx.problem
    if pre.classes is not None:
        out = output_type(pre.classes)
    elif pre.actions is not None:
        out = output_type(pre.actions)
    elif problem == "anomaly_detection":
        out = "string"
    else:
        out = "double"
    specs = [ParamSpec("predict_method", "string", "predict")]
    if problem == "binary_classification":
        specs.append(ParamSpec("decision_threshold", "double", 0.5 if threshold is None else float(threshold)))
    params = ParamSchema(specs)
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(out)]), params=params)


def meta_of(spec: JobSpec, ctx: Context, library: str, model_format: str, extra: dict[str, Any]) -> Meta:
    pre = ctx.preprocessing.to_json()
    return Meta(
        problem=spec.problem_type,
        algorithm=spec.algorithm,
        library=library,
        model_format=model_format,
        features=ctx.preprocessing.features,
        classes=pre["classes"],
        actions=pre["actions"],
        label=spec.label_column if spec.problem_type != "contextual_bandit" else spec.action_column,
        extra=extra,
    )


def example_rows(raw: pd.DataFrame, ctx: Context, count: int = EXAMPLE_ROWS) -> pd.DataFrame:
    """The first raw rows as the signature declares them: NUMERIC (Decimal) as float, dates as naive UTC datetimes."""
    rows = raw.head(count).copy()
    for column in ctx.preprocessing.features.columns:
        series = rows[column.name]
        if isinstance(series.dtype, pd.CategoricalDtype):  # text as the columnar load gives it
            rows[column.name] = series.astype(series.cat.categories.dtype)  # text's own dtype, as pd.read_sql's
        elif column.kind == "number" and pd.api.types.is_float_dtype(series.dtype):
            # float32 as loaded: the signature's double, by its shortest text (0.1, not 0.10000000149)
            rows[column.name] = series.astype(str).astype("float64") if series.dtype == np.float32 else series
        elif column.kind == "number" and pd.api.types.is_integer_dtype(series.dtype):
            rows[column.name] = series.astype("int64")  # smallint/integer in their own width: the signature's long
        elif column.kind == "number" and series.dtype == object:
            rows[column.name] = pd.to_numeric(series, errors="coerce").astype("float64")
        elif column.kind == "datetime":
            rows[column.name] = pd.to_datetime(series, errors="coerce", utc=True).dt.tz_localize(None)
    return rows


def _bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def inference_cost(meta: Meta, model_path: str, meta_path: str, raw: pd.DataFrame, ctx: Context) -> dict[str, float]:
    """The model's artifact bytes and its predict time per 1,000 raw rows, as the registered model serves them."""
    rows = example_rows(raw, ctx, len(raw))
    if len(rows):
        rows = pd.concat([rows] * -(-PREDICT_ROWS // len(rows)), ignore_index=True).head(PREDICT_ROWS)
    scorer = serving.Scorer(meta, model_path)
    best = float("inf")
    for _ in range(PREDICT_REPEATS if len(rows) else 0):
        started = time.perf_counter()
        serving.predict_frame(meta, scorer, rows)
        best = min(best, time.perf_counter() - started)
    cost = {"model_size_bytes": float(_bytes(model_path) + _bytes(meta_path))}
    if len(rows):
        cost["predict_ms_per_1000_rows"] = best * 1000.0 * 1000.0 / len(rows)
    return cost


def log_model(
    algo: Algorithm, model: Any, spec: JobSpec, ctx: Context, raw_sample: pd.DataFrame
) -> tuple[Any, Meta, dict[str, float]]:
    """Log and register the job's model; returns MLflow's ModelInfo, the model's features.json content and its
    inference cost (`inference_cost`). `raw_sample`: the table's first rows as loaded (the input example is the
    first EXAMPLE_ROWS of them)."""
    import mlflow.pyfunc

    raw_example = raw_sample.head(EXAMPLE_ROWS)
    with tempfile.TemporaryDirectory() as directory:
        exported = algo.export(model, ctx, directory)
        meta = meta_of(spec, ctx, exported.library, exported.model_format, exported.extra)
        meta_path = os.path.join(directory, "features.json")
        with open(meta_path, "w", encoding="utf-8") as handle:
            json.dump(meta.to_json(), handle, indent=1, default=str)
        cost = inference_cost(meta, exported.path, meta_path, raw_sample, ctx)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=serving.__file__,
            artifacts={"features": meta_path, "model": exported.path},
            signature=signature(ctx, raw_example, (exported.extra.get("guard") or {}).get("threshold")),
            input_example=example_rows(raw_example, ctx),
            pip_requirements=[f"mlflow-skinny=={version('mlflow-skinny')}", *exported.requirements],
            registered_model_name=spec.registered_model_name,
            metadata={
                "automl": {
                    "format": serving.FORMAT,
                    "algorithm": spec.algorithm,
                    "problem_type": spec.problem_type,
                    "library": exported.library,
                    "model_format": exported.model_format,
                    "model_file": os.path.basename(exported.path),
                    "predict_methods": list(METHODS[spec.problem_type]),
                    "job_id": spec.job_id,
                }
            },
        )
        return info, meta, cost

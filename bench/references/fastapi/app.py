"""The DAG status writeback as the original FastAPI service serves it: the benchmark's second reference.

`npm run bench` runs this beside our service and the bare node:http + pg baseline, on the same database, and prints
ours ÷ this. It does the work ours does for `PUT /api/automl/train/jobs/{job_id}/status`: the PSK check, the job id
as a UUID path parameter, the validated body, the allowed-from statuses of the lifecycle, the very statement of our
`TrainingJobRepository.advance` (src/automl-training/persistence/training-job.repository.ts), and the full job back
through a response model. Run by bench/shared/service-process.ts (startFastApi) as

    python -m uvicorn app:app --app-dir bench/references/fastapi --loop uvloop --http httptools --workers 1

with uvicorn's access log on (its default). Environment: DATABASE_URL, API_PSK, POOL_SIZE (default 10).
"""

import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import AfterValidator, BaseModel, Field, FiniteFloat, StringConstraints

DATABASE_URL = os.environ["DATABASE_URL"]
API_PSK = os.environ["API_PSK"]
POOL_SIZE = int(os.environ.get("POOL_SIZE", "10"))


# --- Enums (src/automl-training/domain/automl-training.enums.ts) ---


class AutoMLTrainingJobStatus(StrEnum):
    READY = "ready"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class ProblemType(StrEnum):
    BINARY_CLASSIFICATION = "binary_classification"
    MULTICLASS_CLASSIFICATION = "multiclass_classification"
    REGRESSION = "regression"
    RANKING = "ranking"
    ANOMALY_DETECTION = "anomaly_detection"
    CONTEXTUAL_BANDIT = "contextual_bandit"


class AutoMLAlgorithm(StrEnum):
    LIGHTGBM_CLASSIFIER = "lightgbm_classifier"
    LIGHTGBM_REGRESSOR = "lightgbm_regressor"
    LIGHTGBM_RANKER = "lightgbm_ranker"
    XGBOOST_CLASSIFIER = "xgboost_classifier"
    XGBOOST_REGRESSOR = "xgboost_regressor"
    XGBOOST_RANKER = "xgboost_ranker"
    ISOLATION_FOREST = "isolation_forest"
    VW_CLASSIFIER = "vw_classifier"
    VW_REGRESSOR = "vw_regressor"
    VW_CONTEXTUAL_BANDIT = "vw_contextual_bandit"


class Preset(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    BEST_QUALITY = "best_quality"


# --- Lifecycle (src/automl-training/domain/training-job.lifecycle.ts) ---

Status = AutoMLTrainingJobStatus

_RANK: dict[Status, int] = {Status.READY: 0, Status.QUEUED: 1, Status.RUNNING: 2, Status.COMPLETE: 3, Status.FAILED: 3}


def _is_terminal(status: Status) -> bool:
    return status in (Status.COMPLETE, Status.FAILED)


def decide_transition(current: Status, target: Status) -> str:
    """ready → queued → running → complete | failed; skipping ahead is allowed, moving back or out of an end is not."""
    if current == target:
        return "same"
    if _is_terminal(current):
        return "refuse"
    if target == Status.FAILED:
        return "advance"
    return "advance" if _RANK[target] > _RANK[current] else "refuse"


# The statuses each status is a forward move from, computed once (statusesAdvancingTo).
ADVANCING_FROM: dict[Status, list[str]] = {
    target: [current.value for current in Status if decide_transition(current, target) == "advance"]
    for target in Status
}


# --- Tuning budgets (src/automl-training/dag/training-presets.ts) ---

_FAMILY: dict[AutoMLAlgorithm, str] = {
    AutoMLAlgorithm.LIGHTGBM_CLASSIFIER: "lightgbm",
    AutoMLAlgorithm.LIGHTGBM_REGRESSOR: "lightgbm",
    AutoMLAlgorithm.LIGHTGBM_RANKER: "lightgbm",
    AutoMLAlgorithm.XGBOOST_CLASSIFIER: "xgboost",
    AutoMLAlgorithm.XGBOOST_REGRESSOR: "xgboost",
    AutoMLAlgorithm.XGBOOST_RANKER: "xgboost",
    AutoMLAlgorithm.VW_CLASSIFIER: "vw",
    AutoMLAlgorithm.VW_REGRESSOR: "vw",
    AutoMLAlgorithm.VW_CONTEXTUAL_BANDIT: "vw",
    AutoMLAlgorithm.ISOLATION_FOREST: "isolation_forest",
}

_BUDGETS: dict[str, dict[Preset, tuple[int, int]]] = {
    "lightgbm": {Preset.FAST: (100, 10), Preset.BALANCED: (300, 45), Preset.BEST_QUALITY: (1000, 180)},
    "xgboost": {Preset.FAST: (80, 15), Preset.BALANCED: (250, 60), Preset.BEST_QUALITY: (800, 240)},
    "vw": {Preset.FAST: (200, 5), Preset.BALANCED: (600, 20), Preset.BEST_QUALITY: (1000, 90)},
    "isolation_forest": {Preset.FAST: (20, 5), Preset.BALANCED: (50, 15), Preset.BEST_QUALITY: (100, 45)},
}


# --- Request model (AutoMLTrainingStatusUpdate, src/automl-training/api/dto/request.dto.ts) ---

MAX_WRITEBACK_METRICS = 100
WRITEBACK_NAME_MAX_LENGTH = 250


def _replace_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: a DAG's text keeps everything else (U+FFFD in its place)."""
    return value.replace("\x00", "\ufffd")


Text = Annotated[str, AfterValidator(_replace_nul)]
Name = Annotated[str, StringConstraints(max_length=WRITEBACK_NAME_MAX_LENGTH), AfterValidator(_replace_nul)]


class AutoMLTrainingStatusUpdate(BaseModel):
    """Status writeback payload sent by the Airflow DAG."""

    status: AutoMLTrainingJobStatus
    mlflow_run_id: Text | None = None
    registered_model_name: Text | None = None
    error_message: Text | None = None
    model_version: Name | None = None
    objective: Name | None = None
    metrics: Annotated[dict[Name, FiniteFloat], Field(max_length=MAX_WRITEBACK_METRICS)] | None = None


# --- Response models (src/automl-training/api/dto/response.dto.ts) ---


class AutoMLTrainingTuningBudget(BaseModel):
    trials: int
    time_budget_minutes: int


class AutoMLTrainingJobResponse(BaseModel):
    """A persisted training job."""

    job_id: uuid.UUID
    name: str
    domain: str
    owner: str
    source_table: str
    problem_type: ProblemType
    algorithm: AutoMLAlgorithm
    preset: Preset
    status: AutoMLTrainingJobStatus
    rendered_dag: str | None = None
    mlflow_run_id: str | None = None
    mlflow_experiment_name: str | None = None
    registered_model_name: str | None = None
    airflow_dag_id: str | None = None
    airflow_dag_url: str | None = None
    error_message: str | None = None
    feature_engineering_job_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime
    label_column: str | None = None
    feature_columns: list[str] | None = None
    group_column: str | None = None
    action_column: str | None = None
    propensity_column: str | None = None
    reward_column: str | None = None
    cost_column: str | None = None
    tuning: AutoMLTrainingTuningBudget | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    model_version: str | None = None
    objective: str | None = None
    metrics: dict[str, float] | None = None


class ErrorResponse(BaseModel):
    error: str
    code: int = 500


# --- The statement (TrainingJobRepository.advance, character for character) ---

_CLOCK = "clock AS (SELECT clock_timestamp() AS now)"
_CLOCK_NOW = "(SELECT now FROM clock)"


def _run_times(status: str) -> list[str]:
    return [
        f"started_at = CASE WHEN {status} = 'running' THEN {_CLOCK_NOW} "
        f"WHEN {status} IN ('ready', 'queued') THEN NULL ELSE started_at END",
        f"finished_at = CASE WHEN {status} IN ('complete', 'failed') THEN {_CLOCK_NOW} ELSE NULL END",
    ]


_RUN_TIMES = ",\n                ".join(_run_times("$3::varchar"))

ADVANCE_SQL = f"""WITH {_CLOCK}, current AS (
         SELECT job_id, status FROM automl_training_jobs
          WHERE job_id = $1 AND deleted_at IS NULL AND status = ANY($2)
          FOR UPDATE
       ), updated AS (
         UPDATE automl_training_jobs job
            SET status = $3,
                mlflow_run_id = COALESCE($4, job.mlflow_run_id),
                registered_model_name = COALESCE($5, job.registered_model_name),
                error_message = COALESCE($6, job.error_message),
                model_version = COALESCE($10, job.model_version),
                objective = COALESCE($11, job.objective),
                metrics = COALESCE($12::jsonb, job.metrics),
                {_RUN_TIMES},
                version = job.version + 1,
                updated_at = {_CLOCK_NOW}
           FROM current
          WHERE job.job_id = current.job_id
          RETURNING job.*, current.status AS previous_status
       ), logged AS (
         INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
         SELECT job_id, previous_status, status, $7, $8, $9, updated_at FROM updated
       )
       SELECT * FROM updated"""  # noqa: S608 -- only this module's constants are interpolated


# --- App ---


async def _init_connection(connection: asyncpg.Connection) -> None:
    for json_type in ("json", "jsonb"):
        await connection.set_type_codec(json_type, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE, init=_init_connection)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="AutoML Training (FastAPI reference)", lifespan=lifespan)


@app.exception_handler(HTTPException)
async def error_response(_: Request, error: HTTPException) -> JSONResponse:
    body = ErrorResponse(error=str(error.detail), code=error.status_code)
    return JSONResponse(body.model_dump(), status_code=error.status_code, headers=error.headers)


psk_header = APIKeyHeader(name="Authorization-PSK", auto_error=False)


def require_psk(key: Annotated[str | None, Security(psk_header)]) -> str:
    if not key:
        raise HTTPException(status_code=401, detail="Not authenticated", headers={"WWW-Authenticate": "APIKey"})
    if not hmac.compare_digest(key.encode(), API_PSK.encode()):
        raise HTTPException(status_code=401, detail="Invalid PSK", headers={"WWW-Authenticate": "APIKey"})
    return "psk"


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


@app.put(
    "/api/automl/train/jobs/{job_id}/status",
    response_model=AutoMLTrainingJobResponse,
    responses={404: {"model": ErrorResponse}},
    summary="DAG status writeback",
)
async def update_training_status(
    job_id: uuid.UUID,
    update: AutoMLTrainingStatusUpdate,
    _: Annotated[str, Depends(require_psk)],
    db: Annotated[asyncpg.Pool, Depends(get_pool)],
) -> dict[str, object]:
    """Called by the rendered DAG at task start, success, or failure."""
    row = await db.fetchrow(
        ADVANCE_SQL,
        job_id,
        ADVANCING_FROM[update.status],
        update.status.value,
        update.mlflow_run_id,
        update.registered_model_name,
        update.error_message,
        "callback",
        "airflow",
        update.error_message,
        update.model_version,
        update.objective,
        update.metrics,
    )
    # Ours falls back to a compare-and-set path when no row comes back (a repeat, a refusal or a lost race). The
    # benchmark only ever moves queued jobs to running, so that path never runs there and is left out: no row is 404.
    if row is None:
        raise HTTPException(status_code=404, detail=f"Training job {job_id} not found")
    job = dict(row)
    # The stored budget (tuning_trials, tuning_time_budget_minutes), the preset's where a column is null.
    trials, minutes = _BUDGETS[_FAMILY[AutoMLAlgorithm(job["algorithm"])]][Preset(job["preset"])]
    job["tuning"] = {
        "trials": job.get("tuning_trials") or trials,
        "time_budget_minutes": job.get("tuning_time_budget_minutes") or minutes,
    }
    return job

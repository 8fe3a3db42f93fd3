import { applyDecorators, Controller, Delete, Get, Headers, HttpCode, Inject, Post, Put, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiBody, ApiExtraModels, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { RequestValidationError, valueError } from '../../common/validation/pydantic-errors';
import { Auth, AuthMethod, CurrentPrincipal } from '../../common/auth/auth.decorator';
import type { Principal } from '../../common/auth/principal';
import { HTTPValidationError } from '../../common/openapi/validation-error.dto';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { ValidateRequest, ValidBody, ValidParams, ValidQuery } from '../../common/validation/request-schema.decorator';
import { JobRecordsService } from '../jobs/job-records.service';
import { JobAirflowActionsService } from '../jobs/job-airflow-actions.service';
import {
  AutoMLTrainingRequest,
  AutoMLTrainingStatusUpdate,
  AutoMLTrainingTuning,
  CreateJobQuery,
  JobEventsQuery,
  JobIdParams,
  JobLogsQuery,
  JobStatusesQuery,
  ListJobsQuery,
} from './dto/request.dto';
import {
  AutoMLTrainingJobEvent,
  AutoMLTrainingJobHistory,
  AutoMLTrainingJobList,
  AutoMLTrainingJobLogs,
  AutoMLTrainingJobResponse,
  AutoMLTrainingJobStatuses,
  AutoMLTrainingTuningBudget,
  ErrorResponse,
} from './dto/response.dto';
import { TransitionEventStreams } from '../events/transition-event-streams';
import { TrainingJobEntity } from '../persistence/training-job.entity';
import { toJobResponse, toListItem, toStatusItem, toTransition } from './training-job.mapper';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const LAST_EVENT_ID = /^[0-9]{1,15}$/;

/** An optional header's value, refused with a 422 item at ["header", name] unless it matches `pattern`. */
function optionalHeader(name: string, value: string | undefined, pattern: RegExp, message: string): string | undefined {
  if (value === undefined || pattern.test(value)) return value;
  throw new RequestValidationError([valueError(['header', name], value, message)]);
}
const EVENT_EXAMPLE =
  'retry: 3000\n: connected\n\n' +
  'id: 42\ndata: {"job_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","from":"queued","to":"running","status":"running",' +
  '"error_message":null,"updated_at":"2026-11-22T10:15:00.000Z"}\n\n' +
  ': keep-alive\n\n';

const ok = (type: Function) => ApiResponse({ status: 200, description: 'Successful Response', type });
/**
 * An ErrorResponse answer, with an example carrying its own status: without one, Swagger UI shows the schema's
 * `code` default (500) for every error.
 */
const error = (status: number, description: string, example = description) =>
  ApiResponse({ status, description, type: ErrorResponse, example: { error: example, code: status } });
const notFound = () => error(404, 'Not Found', 'Training job 3fa85f64-5717-4562-b3fc-2c963f66afa6 not found');
const unavailable = () =>
  error(
    503,
    'Airflow unavailable or not configured; retry later',
    'Airflow is unavailable (timeout); try again shortly',
  );
const invalid = () => ApiResponse({ status: 422, description: 'Validation Error', type: HTTPValidationError });
const authErrors = () =>
  applyDecorators(
    error(401, 'Missing or invalid credential', 'Not authenticated'),
    error(403, 'Credential not accepted on this route'),
  );

@ApiTags('AutoML Training')
@ApiExtraModels(
  ErrorResponse,
  HTTPValidationError,
  AutoMLTrainingJobEvent,
  AutoMLTrainingTuningBudget,
  AutoMLTrainingTuning,
)
@Controller('automl/train/jobs')
export class AutomlTrainingController {
  private readonly mlflowUiUrl: string | null;

  constructor(
    private readonly records: JobRecordsService,
    private readonly airflowActions: JobAirflowActionsService,
    private readonly streams: TransitionEventStreams,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.mlflowUiUrl = config.mlflow.uiUrl;
  }

  private respond(job: TrainingJobEntity): AutoMLTrainingJobResponse {
    return toJobResponse(job, this.mlflowUiUrl);
  }

  @Post()
  @HttpCode(201)
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ query: CreateJobQuery, body: AutoMLTrainingRequest })
  @ApiOperation({
    operationId: 'create_training_job_api_automl_train_jobs_post',
    summary: 'Create an AutoML training job',
    description:
      'Stores the job and its DAG. With `auto_trigger=true` (default) the job is `queued` and runs as soon as ' +
      'Airflow parses the DAG; with `auto_trigger=false` it is `ready` and waits for a manual trigger.\n\n' +
      "The algorithm must suit the problem type. `owner` defaults to the bearer token's `preferred_username` " +
      'and is required with a PSK.',
  })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Makes the create safe to retry: for 24 hours the same key and body answer with the first job (header ' +
      '`Idempotent-Replayed: true`), even for concurrent duplicates; the same key with another body is a 409.',
    schema: { type: 'string', minLength: 1, maxLength: 255 },
  })
  @ApiBody({ type: AutoMLTrainingRequest, required: true })
  @ApiResponse({ status: 201, description: 'Successful Response', type: AutoMLTrainingJobResponse })
  @error(409, 'Idempotency-Key reused with a different request')
  @authErrors()
  @invalid()
  async create(
    @ValidQuery() query: CreateJobQuery,
    @ValidBody() body: AutoMLTrainingRequest,
    @CurrentPrincipal() principal: Principal,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<AutoMLTrainingJobResponse> {
    const autoTrigger = query.auto_trigger ?? true;
    const key = optionalHeader(
      'idempotency-key',
      idempotencyKey,
      IDEMPOTENCY_KEY,
      'Idempotency-Key must be 1 to 255 visible ASCII characters',
    );
    if (key === undefined) return this.respond(await this.records.create(body, autoTrigger, principal));
    const { job, replayed } = await this.records.createIdempotent(body, autoTrigger, principal, key);
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    return this.respond(job);
  }

  @Get()
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ query: ListJobsQuery })
  @ApiOperation({
    operationId: 'list_training_jobs_api_automl_train_jobs_get',
    summary: 'List training jobs',
    description:
      'A pure database read, newest first; never calls Airflow. Filters combine with AND. Page with the opaque ' +
      "`cursor` from the previous page's `next_cursor`. Refresh live statuses with the bulk status endpoint. " +
      'Items carry `rendered_dag: null`: read one job for its DAG source.',
  })
  @ok(AutoMLTrainingJobList)
  @authErrors()
  @invalid()
  async list(
    @ValidQuery() query: ListJobsQuery,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobList> {
    const page = await this.records.list(query, principal);
    // A listing item leaves out the DAG source (kilobytes each); create and GET /jobs/{id} carry it.
    return { items: page.items.map((job) => toListItem(job, this.mlflowUiUrl)), next_cursor: page.nextCursor };
  }

  // Declared before `:job_id` routes so `status` is not parsed as a job id (seed 003).
  @Get('status')
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ query: JobStatusesQuery })
  @ApiOperation({
    operationId: 'get_training_job_statuses_api_automl_train_jobs_status_get',
    summary: 'Bulk reconciled job statuses',
    description:
      'Reconcile + return statuses for the given job IDs.\n\n' +
      'Decoupled from ``GET /train/jobs``, a pure DB read, so the listing can\n' +
      'render immediately and refresh live status independently. Declare this\n' +
      "route before ``/train/jobs/{job_id}`` so ``status`` isn't parsed as a\n" +
      'job ID.',
  })
  @ok(AutoMLTrainingJobStatuses)
  @invalid()
  async statuses(
    @ValidQuery() query: JobStatusesQuery,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobStatuses> {
    const jobs = await this.records.statuses(query.ids ?? [], principal);
    return { items: jobs.map(toStatusItem) };
  }

  // Declared before `:job_id` routes so `events` is not parsed as a job id.
  @Get('events')
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ query: JobEventsQuery })
  @ApiOperation({
    operationId: 'stream_training_job_events_api_automl_train_jobs_events_get',
    summary: 'Live stream of job status transitions (Server-Sent Events)',
    description:
      'A `text/event-stream` of status transitions as they commit on any replica (PostgreSQL LISTEN/NOTIFY). ' +
      'Each event has `id:` = the transition id and `data:` = one line of JSON shaped as ' +
      '`AutoMLTrainingJobEvent` (`job_id`, `from`, `to`, `status`, `error_message`, `updated_at`). ' +
      'A `: keep-alive` comment is sent every STREAM_HEARTBEAT_MS.\n\n' +
      'Filters combine with AND: `ids` (repeat the parameter), `domain`, `owner`. A bearer user without an ' +
      "admin role only sees their own jobs' transitions.\n\n" +
      'Resuming: send `Last-Event-ID` (EventSource does on reconnect) and the transitions after it that match ' +
      'the filters are replayed from the history, in order, before live ones, without gaps or duplicates.\n\n' +
      'Limits: open streams are capped per credential and per instance (429 with Retry-After); a consumer that ' +
      'stops reading is disconnected once its unsent backlog passes STREAM_MAX_BUFFER_BYTES, and resumes with ' +
      '`Last-Event-ID`.',
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'Resume after this event id: the missed transitions are replayed first.',
    schema: { type: 'string', pattern: '^[0-9]{1,15}$' },
  })
  @ApiResponse({
    status: 200,
    description: 'The event stream; every `data:` line is an `AutoMLTrainingJobEvent`.',
    content: {
      'text/event-stream': {
        schema: { type: 'string', example: EVENT_EXAMPLE },
      },
    },
  })
  @authErrors()
  @error(429, 'Too many open event streams for this credential or instance')
  @error(503, 'Database unavailable; retry later')
  @invalid()
  async events(
    @ValidQuery() query: JobEventsQuery,
    @CurrentPrincipal() principal: Principal,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Res() response: Response,
  ): Promise<void> {
    const resumeAfter = optionalHeader(
      'last-event-id',
      lastEventIdHeader,
      LAST_EVENT_ID,
      'Last-Event-ID must be an event id sent by this stream',
    );
    const lastEventId = resumeAfter === undefined ? null : Number(resumeAfter);
    await this.streams.open(
      { principal, jobIds: query.ids, domain: query.domain, owner: query.owner, lastEventId },
      response,
    );
  }

  @Get(':job_id')
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams })
  @ApiOperation({
    operationId: 'get_training_job_api_automl_train_jobs__job_id__get',
    summary: 'Get a training job',
    description: 'One job, read from the database. Deleted jobs are not found.',
  })
  @ok(AutoMLTrainingJobResponse)
  @authErrors()
  @notFound()
  @invalid()
  async get(
    @ValidParams() params: JobIdParams,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobResponse> {
    return this.respond(await this.records.get(params.job_id, principal));
  }

  @Put(':job_id/status')
  @Auth(AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams, body: AutoMLTrainingStatusUpdate })
  @ApiOperation({
    operationId: 'update_training_status_api_automl_train_jobs__job_id__status_put',
    summary: 'DAG status writeback',
    description:
      'Called by the rendered DAG at task start, success, or failure.\n\n' +
      'PSK-authenticated to match the existing /api/jobs/{id}/status endpoint\n' +
      'used by data-engineering DAGs.',
  })
  @ApiBody({ type: AutoMLTrainingStatusUpdate, required: true })
  @ok(AutoMLTrainingJobResponse)
  @notFound()
  @invalid()
  async writeback(
    @ValidParams() params: JobIdParams,
    @ValidBody() body: AutoMLTrainingStatusUpdate,
  ): Promise<AutoMLTrainingJobResponse> {
    return this.respond(await this.records.writeback(params.job_id, body));
  }

  @Get(':job_id/history')
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams })
  @ApiOperation({
    operationId: 'get_training_job_history_api_automl_train_jobs__job_id__history_get',
    summary: 'Status history of a training job',
    description:
      'Every recorded status transition of the job (creation, callbacks, reconciliation, user actions), oldest first.',
  })
  @ok(AutoMLTrainingJobHistory)
  @authErrors()
  @notFound()
  @invalid()
  async history(
    @ValidParams() params: JobIdParams,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobHistory> {
    const transitions = await this.records.history(params.job_id, principal);
    return { job_id: params.job_id, items: transitions.map(toTransition) };
  }

  @Get(':job_id/logs')
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams, query: JobLogsQuery })
  @ApiOperation({
    operationId: 'get_training_job_logs_api_automl_train_jobs__job_id__logs_get',
    summary: "Task logs of a job's latest Airflow run",
    description:
      "Reads the logs of the job's latest Airflow run from Airflow's REST API: the `train` task first, then the " +
      'callback task `report_complete`, each its latest try (or `try_number`) and one piece of its log. A long log ' +
      'comes in pieces: call again with `task`, `try_number` and the `continuation_token` as `token` for the next one. A task that has not run yet has try 0 and no lines.\n\n' +
      '404 when the job has no run in Airflow yet; 503 when Airflow is down or not configured.',
  })
  @ok(AutoMLTrainingJobLogs)
  @authErrors()
  @notFound()
  @unavailable()
  @invalid()
  async logs(
    @ValidParams() params: JobIdParams,
    @ValidQuery() query: JobLogsQuery,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobLogs> {
    return this.airflowActions.logs(params.job_id, principal, query);
  }

  @Post(':job_id/trigger')
  @HttpCode(200)
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams })
  @ApiOperation({
    operationId: 'trigger_training_job_api_automl_train_jobs__job_id__trigger_post',
    summary: 'Manually trigger an AutoML training DAG',
    description:
      'Starts a DAG run for a `ready` job (created with `auto_trigger=false`), or retries a `failed` one: ' +
      'unpauses the DAG, creates the run in Airflow, and moves the job to `queued`. Any other status is a 409. ' +
      'A DAG Airflow has not parsed yet is a 409 to retry shortly.',
  })
  @ok(AutoMLTrainingJobResponse)
  @authErrors()
  @notFound()
  @error(409, 'Job not in ready/failed, or its DAG not parsed by Airflow yet')
  @unavailable()
  @invalid()
  async trigger(
    @ValidParams() params: JobIdParams,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobResponse> {
    return this.respond(await this.airflowActions.trigger(params.job_id, principal));
  }

  @Post(':job_id/cancel')
  @HttpCode(200)
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams })
  @ApiOperation({
    operationId: 'cancel_training_job_api_automl_train_jobs__job_id__cancel_post',
    summary: 'Cancel a queued or running training job',
    description:
      "Marks the job's Airflow run failed and the job `failed`, with `error_message` naming who cancelled. " +
      'Jobs in any other status are a 409.',
  })
  @ok(AutoMLTrainingJobResponse)
  @authErrors()
  @notFound()
  @error(409, 'Job not queued or running')
  @unavailable()
  @invalid()
  async cancel(
    @ValidParams() params: JobIdParams,
    @CurrentPrincipal() principal: Principal,
  ): Promise<AutoMLTrainingJobResponse> {
    return this.respond(await this.airflowActions.cancel(params.job_id, principal));
  }

  @Delete(':job_id')
  @HttpCode(204)
  @Auth(AuthMethod.Bearer, AuthMethod.Psk)
  @ValidateRequest({ params: JobIdParams })
  @ApiOperation({
    operationId: 'delete_training_job_api_automl_train_jobs__job_id__delete',
    summary: 'Delete a training job',
    description:
      'Removes the DAG file and the DAG in Airflow, and soft-deletes the job: it leaves listings and reads ' +
      'but stays in the database for audit.',
  })
  @ApiResponse({ status: 204, description: 'Deleted' })
  @authErrors()
  @notFound()
  @unavailable()
  @invalid()
  async remove(@ValidParams() params: JobIdParams, @CurrentPrincipal() principal: Principal): Promise<void> {
    await this.airflowActions.remove(params.job_id, principal);
  }
}

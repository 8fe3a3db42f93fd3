import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { actorOf, canAccessOwner, ownerScope, Principal } from '../../common/auth/principal';
import { PermissionDeniedError } from '../../common/errors/domain.error';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { MetricsService } from '../../metrics/metrics.service';
import { DagDeployer } from '../dag/dag-deployer';
import { DagRenderer, MAX_CONTAINER_SPEC_BYTES } from '../dag/dag-renderer';
import { presetBudget } from '../dag/training-presets';
import { IdempotencyStore } from '../idempotency/idempotency.store';
import { missing, RequestValidationError, valueError } from '../../common/validation/pydantic-errors';
import { AutoMLTrainingJobStatus, Preset, TransitionSource } from '../domain/automl-training.enums';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  InvalidStatusTransitionError,
  TrainingJobNotFoundError,
} from '../domain/automl-training.errors';
import {
  AutoMLTrainingRequest,
  AutoMLTrainingStatusUpdate,
  DEFAULT_PAGE_SIZE,
  JobSort,
  ListJobsQuery,
} from '../api/dto/request.dto';
import { decodeCursor, encodeCursor } from './job-cursor';
import { decideTransition, statusesAdvancingTo } from '../domain/training-job.lifecycle';
import { compareAndSetRounds } from '../persistence/compare-and-set';
import { TrainingJobTransitionRepository } from '../persistence/training-job-transition.repository';
import { JobPatch, JobStatusView, TrainingJobRepository } from '../persistence/training-job.repository';
import { TrainingJobStatusReconciler } from '../reconcile/training-job-status.reconciler';
import { TrainingJobTransitionEntity } from '../persistence/training-job-transition.entity';
import { TrainingJobEntity } from '../persistence/training-job.entity';
import { scheduledRunId } from '../airflow/run-ids';

/** How long a repeat waits for the first request with its Idempotency-Key to finish. */
const IDEMPOTENT_WAIT_MS = 10_000;

export interface JobPage {
  items: TrainingJobEntity[];
  nextCursor: string | null;
}

/**
 * The use cases on the job records that never call Airflow themselves: create (rendering and deploying the DAG
 * file, then the row), read, list, the DAG's status writeback and the history. Bulk status reads the records and
 * has the TrainingJobStatusReconciler bring them in line with the runs. What calls Airflow is
 * JobAirflowActionsService.
 */
@Injectable()
export class JobRecordsService {
  constructor(
    private readonly repository: TrainingJobRepository,
    private readonly transitions: TrainingJobTransitionRepository,
    private readonly reconciler: TrainingJobStatusReconciler,
    private readonly renderer: DagRenderer,
    private readonly deployer: DagDeployer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly idempotency: IdempotencyStore,
  ) {}

  /**
   * Create, once per Idempotency-Key: the first request with a key creates the
   * job; repeats of the same request (even concurrent ones) get that job back;
   * the same key with another request is a 409.
   */
  async createIdempotent(
    request: AutoMLTrainingRequest,
    autoTrigger: boolean,
    principal: Principal,
    key: string,
  ): Promise<{ job: TrainingJobEntity; replayed: boolean }> {
    const scope = principal.kind === 'psk' ? 'psk' : `user:${principal.subject}`;
    const requestHash = createHash('sha256')
      .update(JSON.stringify([request, autoTrigger]))
      .digest('hex');
    const claim = await this.idempotency.claim(scope, key, requestHash);
    if (claim.owned) {
      try {
        const job = await this.create(request, autoTrigger, principal);
        await this.idempotency.complete(scope, key, job.jobId);
        return { job, replayed: false };
      } catch (error) {
        await this.idempotency.release(scope, key);
        throw error;
      }
    }
    if (claim.requestHash !== requestHash) {
      throw new IdempotencyKeyReusedError();
    }
    const jobId = claim.jobId ?? (await this.idempotency.waitForJob(scope, key, IDEMPOTENT_WAIT_MS));
    if (!jobId) throw new IdempotencyKeyInFlightError();
    return { job: await this.get(jobId, principal), replayed: true };
  }

  async create(request: AutoMLTrainingRequest, autoTrigger: boolean, principal: Principal): Promise<TrainingJobEntity> {
    const owner = request.owner ?? (principal.kind === 'keycloak' ? principal.username : null);
    if (owner && !canAccessOwner(principal, owner)) {
      throw new PermissionDeniedError('Only an admin may create a job for another owner');
    }
    if (!owner) {
      // The PSK has no identity to default from (spec: owner required with a PSK).
      throw new RequestValidationError([
        principal.kind === 'psk'
          ? missing(['body', 'owner'], request)
          : valueError(['body', 'owner'], null, 'owner is required: the token has no preferred_username'),
      ]);
    }
    const status = autoTrigger ? AutoMLTrainingJobStatus.Queued : AutoMLTrainingJobStatus.Ready;
    const actor = actorOf(principal);
    const preset = request.preset ?? Preset.Balanced;
    const tuning = presetBudget(request.algorithm, preset, request.tuning);
    const job = {
      jobId: randomUUID(),
      name: request.name,
      domain: request.domain,
      owner,
      sourceTable: request.source_table,
      labelColumn: request.label_column ?? null,
      featureColumns: request.feature_columns ?? null,
      problemType: request.problem_type,
      algorithm: request.algorithm,
      preset,
      tuningTrials: tuning.trials,
      tuningTimeBudgetMinutes: tuning.time_budget_minutes,
      autoTrigger,
      // To the second: the auto-triggered run's logical date, and so its run id, name when the job was created.
      startDate: new Date(Math.floor(Date.now() / 1000) * 1000),
      featureEngineeringJobId: request.feature_engineering_job_id ?? null,
      groupColumn: request.group_column ?? null,
      actionColumn: request.action_column ?? null,
      propensityColumn: request.propensity_column ?? null,
      rewardColumn: request.reward_column ?? null,
      costColumn: request.cost_column ?? null,
    };
    const dag = this.renderer.render(job);
    if (dag.containerSpecBytes !== null && dag.containerSpecBytes > MAX_CONTAINER_SPEC_BYTES) {
      // The container path hands the pod its spec in one environment variable, which Linux caps at 128 KiB.
      throw new RequestValidationError([
        valueError(
          ['body', 'feature_columns'],
          request.feature_columns ?? null,
          `the job spec is too large for the training container (TRAINING_IMAGE): encoded (gzip + base64) it takes ${dag.containerSpecBytes} bytes, over the ${MAX_CONTAINER_SPEC_BYTES}-byte limit of one environment variable (Linux refuses any over 128 KiB); give fewer or shorter feature_columns`,
        ),
      ]);
    }
    // File first, row second: a failed write leaves no row; a failed insert removes the file.
    await this.deployer.deploy(dag.dagId, dag.source);
    try {
      return await this.repository.insert(
        {
          ...job,
          status,
          renderedDag: dag.source,
          mlflowRunId: null,
          mlflowExperimentName: dag.mlflowExperimentName,
          registeredModelName: null,
          airflowDagId: dag.dagId,
          airflowDagUrl: this.dagUrl(dag.dagId),
          airflowRunId: autoTrigger ? scheduledRunId(job.startDate) : null,
          errorMessage: null,
          modelVersion: null,
          objective: null,
          metrics: null,
          createdBy: actor,
        },
        { from: null, to: status, source: TransitionSource.User, actor, errorMessage: null },
      );
    } catch (error) {
      await this.deployer.remove(dag.dagId);
      throw error;
    }
  }

  private dagUrl(dagId: string): string {
    const { uiUrl, apiVersion } = this.config.airflow;
    return apiVersion === 'v1' ? `${uiUrl}/dags/${dagId}/grid` : `${uiUrl}/dags/${dagId}`;
  }

  /** A page of the jobs the caller may see (all for the PSK and admins, else their own). */
  async list(query: ListJobsQuery, principal: Principal): Promise<JobPage> {
    const scope = ownerScope(principal);
    if (scope !== null && query.owner !== undefined && query.owner !== scope) return { items: [], nextCursor: null };
    const ascending = query.sort === JobSort.OldestFirst;
    let after = null;
    if (query.cursor !== undefined) {
      after = decodeCursor(query.cursor);
      if (!after) {
        throw new RequestValidationError([
          valueError(['query', 'cursor'], query.cursor, 'invalid cursor: pass a next_cursor returned by this endpoint'),
        ]);
      }
      if (after.ascending !== ascending) {
        throw new RequestValidationError([
          valueError(
            ['query', 'cursor'],
            query.cursor,
            'this cursor continues a listing in another sort order: pass the same sort',
          ),
        ]);
      }
    }
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const rows = await this.repository.list(
      {
        statuses: query.status,
        domain: query.domain,
        owner: scope ?? query.owner,
        problemType: query.problem_type,
        algorithm: query.algorithm,
        nameContains: query.q,
        createdAfter: query.created_after,
        createdBefore: query.created_before,
      },
      after,
      limit + 1,
      ascending,
    );
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last, ascending) : null };
  }

  /** The job, if it exists and `principal` (when given) may see it: others' jobs are "not found", never "forbidden". */
  async get(jobId: string, principal?: Principal): Promise<TrainingJobEntity> {
    const job = await this.repository.findById(jobId);
    if (!job || (principal && !canAccessOwner(principal, job.owner))) throw new TrainingJobNotFoundError(jobId);
    return job;
  }

  /** Reconciled statuses of the live jobs among `ids`, in the order first asked; unknown ids left out. */
  async statuses(ids: string[], principal: Principal): Promise<(JobStatusView | TrainingJobEntity)[]> {
    const unique = [...new Set(ids)];
    const found = (await this.repository.statusesByIds(unique)).filter((job) => canAccessOwner(principal, job.owner));
    const reconciled = await this.reconciler.reconcile(found);
    const byId = new Map(reconciled.map((job) => [job.jobId, job]));
    return unique.flatMap((id) => byId.get(id) ?? []);
  }

  /**
   * The DAG's status writeback: compare-and-set until this update is applied
   * on the latest version, refused (409) by the lifecycle, or a no-op repeat.
   */
  async writeback(jobId: string, update: AutoMLTrainingStatusUpdate): Promise<TrainingJobEntity> {
    // Fast path, one round trip: the job is in a status this update moves forward.
    const advanced = await this.repository.advance(
      jobId,
      statusesAdvancingTo(update.status),
      update.status,
      {
        mlflowRunId: update.mlflow_run_id,
        registeredModelName: update.registered_model_name,
        errorMessage: update.error_message,
        modelVersion: update.model_version,
        objective: update.objective,
        metrics: update.metrics,
      },
      { source: TransitionSource.Callback, actor: 'airflow', errorMessage: update.error_message ?? null },
    );
    if (advanced) {
      this.metrics.writeback('advanced');
      return advanced;
    }
    // Otherwise: a repeat, a refusal, a missing job, or a race lost to another writer.
    return compareAndSetRounds(jobId, async () => {
      const job = await this.repository.findById(jobId);
      if (!job) {
        this.metrics.writeback('not_found');
        throw new TrainingJobNotFoundError(jobId);
      }
      const decision = decideTransition(job.status, update.status);
      if (decision === 'refuse') {
        this.metrics.writeback('refused');
        throw new InvalidStatusTransitionError(jobId, job.status, update.status);
      }
      // A move sets what the DAG reports; a repeat only fills what is still empty
      // (so a late failure callback never overwrites "cancelled by …").
      const settable = <T>(current: T | null, reported: T | null | undefined) =>
        reported != null && !isDeepStrictEqual(reported, current) && (decision === 'advance' || current === null);
      const patch: JobPatch = {};
      if (settable(job.mlflowRunId, update.mlflow_run_id)) patch.mlflowRunId = update.mlflow_run_id;
      if (settable(job.registeredModelName, update.registered_model_name))
        patch.registeredModelName = update.registered_model_name;
      if (settable(job.errorMessage, update.error_message)) patch.errorMessage = update.error_message;
      if (settable(job.modelVersion, update.model_version)) patch.modelVersion = update.model_version;
      if (settable(job.objective, update.objective)) patch.objective = update.objective;
      if (settable(job.metrics, update.metrics)) patch.metrics = update.metrics;
      if (decision === 'same' && Object.keys(patch).length === 0) {
        this.metrics.writeback('repeated');
        return job;
      }
      if (decision === 'advance') patch.status = update.status;
      const transition =
        decision === 'advance'
          ? {
              from: job.status,
              to: update.status,
              source: TransitionSource.Callback,
              actor: 'airflow',
              errorMessage: update.error_message ?? null,
            }
          : null;
      const updated = await this.repository.compareAndSet(jobId, job.version, patch, transition);
      if (updated) this.metrics.writeback(decision === 'advance' ? 'advanced' : 'filled');
      return updated;
    });
  }

  async history(jobId: string, principal: Principal): Promise<TrainingJobTransitionEntity[]> {
    await this.get(jobId, principal);
    return this.transitions.history(jobId);
  }
}

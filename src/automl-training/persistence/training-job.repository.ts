import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { AutoMLAlgorithm, AutoMLTrainingJobStatus, ProblemType, TransitionSource } from '../domain/automl-training.enums';
import { TrainingJobTransitionEntity } from './training-job-transition.entity';
import { TrainingJobEntity } from './training-job.entity';
import { sqlRows } from '../../database/sql';
import { TransitionNotifications } from '../events/transition-notifications';

export interface TransitionRecord {
  from: AutoMLTrainingJobStatus | null;
  to: AutoMLTrainingJobStatus;
  source: TransitionSource;
  actor: string;
  errorMessage: string | null;
}

export interface JobFilter {
  statuses?: AutoMLTrainingJobStatus[];
  domain?: string;
  owner?: string;
  problemType?: ProblemType;
  algorithm?: AutoMLAlgorithm;
  nameContains?: string;
  /** created_at ≥ this. */
  createdAfter?: Date;
  /** created_at < this. */
  createdBefore?: Date;
}

export interface KeysetPosition {
  createdAt: Date;
  jobId: string;
}

/** Columns a compare-and-set may change; never ids, owner or timestamps. */
export type JobPatch = Partial<
  Pick<
    TrainingJobEntity,
    | 'status'
    | 'mlflowRunId'
    | 'registeredModelName'
    | 'errorMessage'
    | 'renderedDag'
    | 'airflowDagId'
    | 'airflowDagUrl'
    | 'airflowRunId'
    | 'mlflowExperimentName'
    | 'modelVersion'
    | 'objective'
    | 'metrics'
    | 'dagRetiredAt'
  >
>;

/** What a writeback reports besides its status; an absent or null field leaves the column as it is. */
export type WritebackFields = Pick<
  JobPatch,
  'mlflowRunId' | 'registeredModelName' | 'errorMessage' | 'modelVersion' | 'objective' | 'metrics'
>;

/** What a completed job's event carries besides the transition (JSON as the job response has it). */
export interface CompletionResult {
  mlflow_run_id: string | null;
  registered_model_name: string | null;
  model_version: string | null;
  objective: string | null;
  metrics: Record<string, number> | null;
  started_at: string | null;
  finished_at: string | null;
}

/** A recorded transition with the job fields event streams filter on. */
export interface TransitionEventRow {
  id: number;
  jobId: string;
  domain: string;
  owner: string;
  from: AutoMLTrainingJobStatus | null;
  to: AutoMLTrainingJobStatus;
  errorMessage: string | null;
  at: Date;
  /** On a transition to complete: the job's result (so a listing can update without a GET). */
  result?: CompletionResult | null;
}

/** Narrows a replay of transitions; absent fields do not filter. */
export interface TransitionFilter {
  jobIds?: string[];
  domain?: string;
  owner?: string;
}

/**
 * A job as a status answer and its reconciliation read it: no DAG source (tens
 * of kB a job) nor request columns, so a thousand of them cost little to fetch.
 */
export type JobStatusView = Pick<
  TrainingJobEntity,
  'jobId' | 'owner' | 'status' | 'airflowDagId' | 'airflowRunId' | 'errorMessage' | 'version' | 'updatedAt'
>;

/** An in-flight job as background reconciliation reads it: its status view and when it was created. */
export type InFlightJob = JobStatusView & Pick<TrainingJobEntity, 'createdAt'>;

function statusView(row: Record<string, unknown>): JobStatusView {
  return {
    jobId: row.job_id as string,
    owner: row.owner as string,
    status: row.status as AutoMLTrainingJobStatus,
    airflowDagId: row.airflow_dag_id as string | null,
    airflowRunId: row.airflow_run_id as string | null,
    errorMessage: row.error_message as string | null,
    version: row.version as number,
    updatedAt: row.updated_at as Date,
  };
}

/** One job's move in reconcileMany: from `from` (as read, at `version`) to `to`, with the Airflow run seen. */
export interface ReconcileChange {
  jobId: string;
  version: number;
  from: AutoMLTrainingJobStatus;
  to: AutoMLTrainingJobStatus;
  airflowRunId: string;
  /** Set on the job and recorded on its transition; null leaves the job's as it is. */
  errorMessage: string | null;
}

/** The columns a reconcile statement changes, as it left them. */
export type ReconciledColumns = Pick<
  TrainingJobEntity,
  'jobId' | 'status' | 'airflowRunId' | 'errorMessage' | 'version' | 'updatedAt' | 'startedAt' | 'finishedAt'
>;

export type NewJob = Omit<TrainingJobEntity, 'createdAt' | 'updatedAt' | 'deletedAt' | 'version' | 'startedAt' | 'finishedAt' | 'dagRetiredAt'>;

const NOW = 'clock_timestamp()';

/** One instant per statement (the `clock` CTE), so a row's updated_at, its run times and the transition's `at` agree. */
const CLOCK = 'clock AS (SELECT clock_timestamp() AS now)';
const CLOCK_NOW = '(SELECT now FROM clock)';

/** started_at and finished_at follow the status the statement moves the job to (`status`, a SQL expression). */
function runTimes(status: string): string[] {
  return [
    `started_at = CASE WHEN ${status} = 'running' THEN ${CLOCK_NOW} WHEN ${status} IN ('ready', 'queued') THEN NULL ELSE started_at END`,
    `finished_at = CASE WHEN ${status} IN ('complete', 'failed') THEN ${CLOCK_NOW} ELSE NULL END`,
  ];
}

/**
 * The writeback's one statement (TrainingJobRepository.advance), built once with the job columns it returns
 * (`returning`: the entity's columns, never `job.*`; see jobColumns).
 */
const advanceSql = (returning: string): string => `WITH ${CLOCK}, current AS (
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
                ${runTimes('$3::varchar').join(',\n                ')},
                version = job.version + 1,
                updated_at = ${CLOCK_NOW}
           FROM current
          WHERE job.job_id = current.job_id
          RETURNING ${returning}, current.status AS previous_status
       ), logged AS (
         INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
         SELECT job_id, previous_status, status, $7, $8, $9, updated_at FROM updated
       )
       SELECT * FROM updated`;


@Injectable()
export class TrainingJobRepository {
  constructor(
    @InjectRepository(TrainingJobEntity) private readonly jobs: Repository<TrainingJobEntity>,
    @InjectRepository(TrainingJobTransitionEntity) private readonly transitions: Repository<TrainingJobTransitionEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly notifications: TransitionNotifications,
  ) {}

  /** Reads by id and writes go straight to the pg pool (see sqlRows): one round trip each. */
  private sql(text: string, params: unknown[], name?: string): Promise<Record<string, unknown>[]> {
    return sqlRows(this.dataSource, text, params, name);
  }

  async findById(jobId: string): Promise<TrainingJobEntity | null> {
    this.byIdSql ??= `SELECT ${this.jobColumns()} FROM automl_training_jobs WHERE job_id = $1 AND deleted_at IS NULL`;
    const rows = await this.sql(this.byIdSql, [jobId], 'job_by_id');
    return rows.length > 0 ? this.toEntity(rows[0]) : null;
  }

  /** Status views of the live jobs among `jobIds` (valid uuids), in no particular order; one round trip. */
  async statusesByIds(jobIds: string[]): Promise<JobStatusView[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.sql(
      `SELECT job_id, owner, status, airflow_dag_id, airflow_run_id, error_message, version, updated_at
         FROM automl_training_jobs
        WHERE job_id = ANY($1::uuid[]) AND deleted_at IS NULL`,
      [jobIds],
      'job_statuses_by_ids',
    );
    return rows.map(statusView);
  }

  private listColumns: string[] | null = null;

  /** Newest first (or oldest first), keyset-paged on (created_at, job_id); returns up to `limit` rows, without `renderedDag`. */
  list(filter: JobFilter, after: KeysetPosition | null, limit: number, ascending = false): Promise<TrainingJobEntity[]> {
    // Every column but rendered_dag (the bulk of a row): a listing item carries no DAG source.
    this.listColumns ??= this.jobs.metadata.columns
      .filter((column) => column.databaseName !== 'rendered_dag')
      .map((column) => `job.${column.propertyName}`);
    const query = this.jobs.createQueryBuilder('job').select(this.listColumns).where('job.deleted_at IS NULL');
    if (filter.statuses?.length) query.andWhere('job.status IN (:...statuses)', { statuses: [...new Set(filter.statuses)] });
    if (filter.domain) query.andWhere('job.domain = :domain', { domain: filter.domain });
    if (filter.owner) query.andWhere('job.owner = :owner', { owner: filter.owner });
    if (filter.problemType) query.andWhere('job.problem_type = :problemType', { problemType: filter.problemType });
    if (filter.algorithm) query.andWhere('job.algorithm = :algorithm', { algorithm: filter.algorithm });
    if (filter.nameContains) {
      const pattern = `%${filter.nameContains.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query.andWhere(`job.name ILIKE :pattern ESCAPE '\\'`, { pattern });
    }
    if (filter.createdAfter) query.andWhere('job.created_at >= :createdAfter', { createdAfter: filter.createdAfter });
    if (filter.createdBefore) query.andWhere('job.created_at < :createdBefore', { createdBefore: filter.createdBefore });
    if (after) {
      query.andWhere(`(job.created_at, job.job_id) ${ascending ? '>' : '<'} (:afterCreatedAt, :afterJobId)`, {
        afterCreatedAt: after.createdAt,
        afterJobId: after.jobId,
      });
    }
    const direction = ascending ? 'ASC' : 'DESC';
    return query.orderBy('job.created_at', direction).addOrderBy('job.job_id', direction).limit(limit).getMany();
  }

  /** Live queued or running jobs with a DAG, by job id after `afterJobId`, for background reconciliation. */
  async inFlight(afterJobId: string | null, limit: number): Promise<InFlightJob[]> {
    const rows = await this.sql(
      `SELECT job_id, owner, status, airflow_dag_id, airflow_run_id, error_message, version, updated_at, created_at
         FROM automl_training_jobs
        WHERE deleted_at IS NULL AND status IN ('queued', 'running') AND airflow_dag_id IS NOT NULL
          AND ($1::uuid IS NULL OR job_id > $1::uuid)
        ORDER BY job_id LIMIT $2`,
      [afterJobId, limit],
      'jobs_in_flight',
    );
    return rows.map((row) => ({ ...statusView(row), createdAt: row.created_at as Date }));
  }

  /**
   * DAG ids of the jobs deleted within the last `withinMs` whose file was still deployed (not retired), newest
   * first, at most `limit`.
   */
  async recentlyDeletedDags(withinMs: number, limit: number): Promise<string[]> {
    const rows = await this.sql(
      `SELECT airflow_dag_id FROM automl_training_jobs
        WHERE deleted_at IS NOT NULL AND airflow_dag_id IS NOT NULL AND dag_retired_at IS NULL
          AND deleted_at > clock_timestamp() - $1 * interval '1 millisecond'
        ORDER BY deleted_at DESC LIMIT $2`,
      [withinMs, limit],
      'recently_deleted_dags',
    );
    return rows.map((row) => row.airflow_dag_id as string);
  }

  /**
   * Retires the DAG files of up to `limit` jobs that finished (and were last
   * written) more than `retentionMs` ago and still have their file: locks
   * their rows, has `remove` delete the files, and marks them retired, in one
   * transaction. A retry's compare-and-set on one of these rows waits for the
   * commit, so it deploys the file again only after it was removed. Rows
   * another writer holds are skipped. Returns the DAG ids retired.
   */
  async retireDags(retentionMs: number, limit: number, remove: (dagIds: string[]) => Promise<void>): Promise<string[]> {
    return this.dataSource.transaction(async (manager) => {
      const rows: { job_id: string; airflow_dag_id: string }[] = await manager.query(
        `SELECT job_id, airflow_dag_id FROM automl_training_jobs
          WHERE deleted_at IS NULL AND dag_retired_at IS NULL AND finished_at IS NOT NULL
            AND finished_at < clock_timestamp() - $1 * interval '1 millisecond'
            AND updated_at < clock_timestamp() - $1 * interval '1 millisecond'
            AND airflow_dag_id IS NOT NULL
          ORDER BY finished_at
          LIMIT $2
          FOR UPDATE SKIP LOCKED`,
        [retentionMs, limit],
      );
      if (rows.length === 0) return [];
      const dagIds = rows.map((row) => row.airflow_dag_id);
      await remove(dagIds);
      await manager.query(`UPDATE automl_training_jobs SET dag_retired_at = clock_timestamp() WHERE job_id = ANY($1::uuid[])`, [
        rows.map((row) => row.job_id),
      ]);
      return dagIds;
    });
  }

  /** The highest transition id recorded so far (0 when none). */
  async lastTransitionId(): Promise<number> {
    const rows = await this.sql('SELECT COALESCE(max(id), 0) AS id FROM automl_training_job_transitions', []);
    return Number(rows[0].id);
  }

  /**
   * Transitions with ids in (afterId, upTo], oldest first, at most `limit`,
   * narrowed by `filter`: the tail event streams read and replay.
   */
  async transitionsAfter(
    afterId: number,
    limit: number,
    filter: TransitionFilter = {},
    upTo: number | null = null,
  ): Promise<TransitionEventRow[]> {
    const rows = await this.sql(
      `SELECT t.id, t.job_id, t.from_status, t.to_status, t.error_message, t.at, j.domain, j.owner,
              CASE WHEN t.to_status = 'complete' THEN jsonb_build_object(
                'mlflow_run_id', j.mlflow_run_id, 'registered_model_name', j.registered_model_name,
                'model_version', j.model_version, 'objective', j.objective, 'metrics', j.metrics,
                'started_at', j.started_at, 'finished_at', j.finished_at) END AS result
         FROM automl_training_job_transitions t
         JOIN automl_training_jobs j ON j.job_id = t.job_id
        WHERE t.id > $1 AND ($2::bigint IS NULL OR t.id <= $2::bigint)
          AND ($3::uuid[] IS NULL OR t.job_id = ANY($3::uuid[]))
          AND ($4::text IS NULL OR j.domain = $4::text)
          AND ($5::text IS NULL OR j.owner = $5::text)
        ORDER BY t.id
        LIMIT $6`,
      [afterId, upTo, filter.jobIds ?? null, filter.domain ?? null, filter.owner ?? null, limit],
    );
    return rows.map((row) => ({
      id: Number(row.id),
      jobId: row.job_id as string,
      domain: row.domain as string,
      owner: row.owner as string,
      from: row.from_status as AutoMLTrainingJobStatus | null,
      to: row.to_status as AutoMLTrainingJobStatus,
      errorMessage: row.error_message as string | null,
      at: row.at as Date,
      result: (row.result as CompletionResult | null) ?? null,
    }));
  }

  history(jobId: string): Promise<TrainingJobTransitionEntity[]> {
    return this.transitions.find({ where: { jobId }, order: { id: 'ASC' } });
  }

  /** Inserts the job and its creation transition in one statement. */
  async insert(job: NewJob, transition: TransitionRecord): Promise<TrainingJobEntity> {
    const columns = this.jobs.metadata.columns.filter((column) => column.propertyName in job);
    const values = columns.map((column) => {
      const value = job[column.propertyName as keyof NewJob];
      return column.type === 'jsonb' && value !== null ? JSON.stringify(value) : value;
    });
    const names = columns.map((column) => `"${column.databaseName}"`).join(', ');
    const placeholders = columns.map((_, index) => `$${index + 1}`).join(', ');
    const n = values.length;
    const rows = await this.sql(
      `WITH inserted AS (
         INSERT INTO automl_training_jobs (${names}, created_at, updated_at, version)
         VALUES (${placeholders}, ${NOW}, ${NOW}, 1)
         RETURNING *
       ), logged AS (
         INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
         SELECT job_id, $${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, created_at FROM inserted
       )
       SELECT * FROM inserted`,
      [...values, transition.from, transition.to, transition.source, transition.actor, transition.errorMessage],
    );
    this.notifications.committed();
    return this.toEntity(rows[0]);
  }

  /**
   * Applies `patch` only if the row still has `expectedVersion`, bumping the
   * version and recording `transition` (when given) in the same statement.
   * Returns the updated job, or null when another writer got there first.
   */
  async compareAndSet(
    jobId: string,
    expectedVersion: number,
    patch: JobPatch,
    transition: TransitionRecord | null,
  ): Promise<TrainingJobEntity | null> {
    const entries = Object.entries(patch).filter(([, value]) => value !== undefined);
    const assignments = entries.map(([property], index) => {
      const column = this.jobs.metadata.findColumnWithPropertyName(property);
      if (!column) throw new Error(`Unknown job property ${property}`);
      return `"${column.databaseName}" = $${index + 3}`;
    });
    const n = entries.length + 2;
    const params: unknown[] = [
      jobId,
      expectedVersion,
      ...entries.map(([property, value]) =>
        this.jobs.metadata.findColumnWithPropertyName(property)?.type === 'jsonb' && value !== null ? JSON.stringify(value) : value,
      ),
    ];
    let logged = '';
    if (transition) {
      logged = `, logged AS (
         INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
         SELECT job_id, $${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, updated_at FROM updated
       )`;
      params.push(transition.from, transition.to, transition.source, transition.actor, transition.errorMessage);
    }
    const statusIndex = entries.findIndex(([property]) => property === 'status');
    const times = statusIndex >= 0 ? runTimes(`$${statusIndex + 3}::varchar`) : [];
    const rows = await this.sql(
      `WITH ${CLOCK}, updated AS (
         UPDATE automl_training_jobs
            SET ${[...assignments, ...times, `version = version + 1`, `updated_at = ${CLOCK_NOW}`].join(', ')}
          WHERE job_id = $1 AND version = $2 AND deleted_at IS NULL
          RETURNING *
       )${logged}
       SELECT * FROM updated`,
      params,
    );
    if (rows.length === 0) return null;
    if (transition) this.notifications.committed();
    return this.toEntity(rows[0]);
  }

  /**
   * Reconciliation's compare-and-sets in one statement: each job moves to its
   * `status` and `airflowRunId` (and `errorMessage`, when given), with its run
   * times, a version bump and a `reconcile` transition from the status it had,
   * only if its row still has the `version` it was read with. Rows another
   * writer changed first are left alone and missing from the answer, which
   * carries what the statement changed of each job it updated.
   */
  async reconcileMany(changes: ReconcileChange[], actor: string): Promise<ReconciledColumns[]> {
    if (changes.length === 0) return [];
    const rows = await this.sql(
      `WITH ${CLOCK}, wanted AS (
         SELECT * FROM unnest($1::uuid[], $2::int[], $3::varchar[], $4::varchar[], $5::text[], $6::text[])
           AS i(job_id, version, from_status, status, run_id, error_message)
       ), updated AS (
         UPDATE automl_training_jobs job
            SET status = i.status,
                airflow_run_id = i.run_id,
                error_message = COALESCE(i.error_message, job.error_message),
                ${runTimes('i.status').join(',\n                ')},
                version = job.version + 1,
                updated_at = ${CLOCK_NOW}
           FROM wanted i
          WHERE job.job_id = i.job_id AND job.version = i.version AND job.deleted_at IS NULL
          RETURNING job.job_id, job.status, job.airflow_run_id, job.error_message, job.version, job.updated_at,
                    job.started_at, job.finished_at, i.from_status, i.error_message AS transition_error
       ), logged AS (
         INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
         SELECT job_id, from_status, status, $7, $8, transition_error, updated_at FROM updated
       )
       SELECT job_id, status, airflow_run_id, error_message, version, updated_at, started_at, finished_at FROM updated`,
      [
        changes.map((change) => change.jobId),
        changes.map((change) => change.version),
        changes.map((change) => change.from),
        changes.map((change) => change.to),
        changes.map((change) => change.airflowRunId),
        changes.map((change) => change.errorMessage),
        TransitionSource.Reconcile,
        actor,
      ],
      'jobs_reconcile_many',
    );
    if (rows.length > 0) this.notifications.committed();
    return rows.map((row) => ({
      jobId: row.job_id as string,
      status: row.status as AutoMLTrainingJobStatus,
      airflowRunId: row.airflow_run_id as string | null,
      errorMessage: row.error_message as string | null,
      version: row.version as number,
      updatedAt: row.updated_at as Date,
      startedAt: row.started_at as Date | null,
      finishedAt: row.finished_at as Date | null,
    }));
  }

  /**
   * The common writeback in one statement: if the job's current status is one
   * of `from`, lock the row, move it to `to` (setting the given non-null
   * fields), bump its version and record the transition from the status it
   * really had. The row lock re-checks `from` against a concurrent writer's
   * commit, so no update is lost. Returns null when the job is missing or not
   * in `from` (the caller then takes the compare-and-set path).
   */
  async advance(
    jobId: string,
    from: readonly AutoMLTrainingJobStatus[],
    to: AutoMLTrainingJobStatus,
    fields: WritebackFields,
    transition: Omit<TransitionRecord, 'from' | 'to'>,
  ): Promise<TrainingJobEntity | null> {
    const rows = await this.sql(
      (this.advanceSql ??= advanceSql(this.jobColumns('job.'))),
      [
        jobId,
        from,
        to,
        fields.mlflowRunId ?? null,
        fields.registeredModelName ?? null,
        fields.errorMessage ?? null,
        transition.source,
        transition.actor,
        transition.errorMessage,
        fields.modelVersion ?? null,
        fields.objective ?? null,
        fields.metrics != null ? JSON.stringify(fields.metrics) : null,
      ],
      'job_advance',
    );
    if (rows.length === 0) return null;
    this.notifications.committed();
    return this.toEntity(rows[0]);
  }

  /** Marks the job deleted if it still has `expectedVersion`; false when another writer got there first. */
  async softDelete(jobId: string, expectedVersion: number): Promise<boolean> {
    const rows = await this.sql(
      `UPDATE automl_training_jobs
          SET deleted_at = ${NOW}, updated_at = ${NOW}, version = version + 1
        WHERE job_id = $1 AND version = $2 AND deleted_at IS NULL
        RETURNING job_id`,
      [jobId, expectedVersion],
    );
    return rows.length > 0;
  }

  /** Entity property ← row column, worked out once from the entity's metadata. */
  private columnPairs: [string, string][] | null = null;
  private byIdSql: string | null = null;
  private advanceSql: string | null = null;

  /**
   * The entity's columns, quoted (each prefixed, e.g. `job.`). The named (prepared) statements select these,
   * never `*`: a column that a newer replica's migration adds would otherwise change their result type, and
   * PostgreSQL then refuses them ("cached plan must not change result type") on every pooled connection of the
   * replicas still running, until each connection closes.
   */
  private jobColumns(prefix = ''): string {
    return this.jobs.metadata.columns.map((column) => `${prefix}"${column.databaseName}"`).join(', ');
  }

  private toEntity(row: Record<string, unknown>): TrainingJobEntity {
    this.columnPairs ??= this.jobs.metadata.columns.map((column) => [column.propertyName, column.databaseName]);
    const entity = this.jobs.metadata.create() as TrainingJobEntity;
    const target = entity as unknown as Record<string, unknown>;
    for (const [property, column] of this.columnPairs) target[property] = row[column];
    return entity;
  }
}

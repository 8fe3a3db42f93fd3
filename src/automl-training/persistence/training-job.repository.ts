import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { sqlRows } from '../../database/sql';
import {
  AutoMLAlgorithm,
  AutoMLTrainingJobStatus,
  ProblemType,
  TransitionSource,
} from '../domain/automl-training.enums';
import { JobRows, STATUS_VIEW } from './job-rows';
import { recordTransitions, TransitionRecord, TransitionValues } from './training-job-transition.repository';
import { TransitionCommits } from './transition-commits';
import { TrainingJobEntity } from './training-job.entity';

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

/**
 * A job as a status answer and its reconciliation read it: no DAG source (tens
 * of kB a job) nor request columns, so a thousand of them cost little to fetch.
 */
export type JobStatusView = Pick<TrainingJobEntity, (typeof STATUS_VIEW)[number]>;

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

/** The columns a reconcile statement changes. */
const RECONCILED = [
  'jobId',
  'status',
  'airflowRunId',
  'errorMessage',
  'version',
  'updatedAt',
  'startedAt',
  'finishedAt',
] as const;

/** The columns a reconcile statement changes, as it left them. */
export type ReconciledColumns = Pick<TrainingJobEntity, (typeof RECONCILED)[number]>;

export type NewJob = Omit<
  TrainingJobEntity,
  'createdAt' | 'updatedAt' | 'deletedAt' | 'version' | 'startedAt' | 'finishedAt' | 'dagRetiredAt'
>;

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
 * (`returning`: the entity's columns, never `job.*`; see JobRows.columns).
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
       ), ${recordTransitions({ rows: 'updated', from: 'previous_status', to: 'status', source: '$7', actor: '$8', errorMessage: '$9', at: 'updated_at' })}
       SELECT * FROM updated`;

/** The jobs table as the use cases read and write one job (or a batch of reconciled ones). */
@Injectable()
export class TrainingJobRepository {
  private readonly rows: JobRows;
  private byIdSql: string | null = null;
  private advanceSql: string | null = null;
  private listColumns: string[] | null = null;

  constructor(
    @InjectRepository(TrainingJobEntity) private readonly jobs: Repository<TrainingJobEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly commits: TransitionCommits,
  ) {
    this.rows = new JobRows(() => jobs.metadata);
  }

  /** Reads by id and writes go straight to the pg pool (see sqlRows): one round trip each. */
  private sql(text: string, params: unknown[], name?: string): Promise<Record<string, unknown>[]> {
    return sqlRows(this.dataSource, text, params, name);
  }

  async findById(jobId: string): Promise<TrainingJobEntity | null> {
    this.byIdSql ??= `SELECT ${this.rows.columns()} FROM automl_training_jobs WHERE job_id = $1 AND deleted_at IS NULL`;
    const rows = await this.sql(this.byIdSql, [jobId], 'job_by_id');
    return rows.length > 0 ? this.rows.entity(rows[0]) : null;
  }

  /** Status views of the live jobs among `jobIds` (valid uuids), in no particular order; one round trip. */
  async statusesByIds(jobIds: string[]): Promise<JobStatusView[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.sql(
      `SELECT ${this.rows.columns('', STATUS_VIEW)}
         FROM automl_training_jobs
        WHERE job_id = ANY($1::uuid[]) AND deleted_at IS NULL`,
      [jobIds],
      'job_statuses_by_ids',
    );
    return rows.map(this.rows.reader(STATUS_VIEW));
  }

  /** Newest first (or oldest first), keyset-paged on (created_at, job_id); returns up to `limit` rows, without `renderedDag`. */
  list(
    filter: JobFilter,
    after: KeysetPosition | null,
    limit: number,
    ascending = false,
  ): Promise<TrainingJobEntity[]> {
    // Every column but rendered_dag (the bulk of a row): a listing item carries no DAG source.
    this.listColumns ??= this.jobs.metadata.columns
      .filter((column) => column.databaseName !== 'rendered_dag')
      .map((column) => `job.${column.propertyName}`);
    const query = this.jobs.createQueryBuilder('job').select(this.listColumns).where('job.deleted_at IS NULL');
    if (filter.statuses?.length)
      query.andWhere('job.status IN (:...statuses)', { statuses: [...new Set(filter.statuses)] });
    if (filter.domain) query.andWhere('job.domain = :domain', { domain: filter.domain });
    if (filter.owner) query.andWhere('job.owner = :owner', { owner: filter.owner });
    if (filter.problemType) query.andWhere('job.problem_type = :problemType', { problemType: filter.problemType });
    if (filter.algorithm) query.andWhere('job.algorithm = :algorithm', { algorithm: filter.algorithm });
    if (filter.nameContains) {
      const pattern = `%${filter.nameContains.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query.andWhere(`job.name ILIKE :pattern ESCAPE '\\'`, { pattern });
    }
    if (filter.createdAfter) query.andWhere('job.created_at >= :createdAfter', { createdAfter: filter.createdAfter });
    if (filter.createdBefore)
      query.andWhere('job.created_at < :createdBefore', { createdBefore: filter.createdBefore });
    if (after) {
      query.andWhere(`(job.created_at, job.job_id) ${ascending ? '>' : '<'} (:afterCreatedAt, :afterJobId)`, {
        afterCreatedAt: after.createdAt,
        afterJobId: after.jobId,
      });
    }
    const direction = ascending ? 'ASC' : 'DESC';
    return query.orderBy('job.created_at', direction).addOrderBy('job.job_id', direction).limit(limit).getMany();
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
    const rows = await this.sql(
      `WITH inserted AS (
         INSERT INTO automl_training_jobs (${names}, created_at, updated_at, version)
         VALUES (${placeholders}, ${NOW}, ${NOW}, 1)
         RETURNING *
       ), ${recordTransitions({ rows: 'inserted', ...transitionParams(values.length), at: 'created_at' })}
       SELECT * FROM inserted`,
      [...values, ...transitionValues(transition)],
    );
    this.commits.committed();
    return this.rows.entity(rows[0]);
  }

  /**
   * Applies `patch` only if the row still has `expectedVersion`, bumping the
   * version and recording `transition` (when given) in the same statement.
   * Returns the updated job, or null when another writer got there first
   * (see compareAndSetRounds for retrying).
   */
  async compareAndSet(
    jobId: string,
    expectedVersion: number,
    patch: JobPatch,
    transition: TransitionRecord | null,
  ): Promise<TrainingJobEntity | null> {
    const entries = Object.entries(patch).filter(([, value]) => value !== undefined);
    const assignments = entries.map(([property], index) => `"${this.rows.column(property)}" = $${index + 3}`);
    const params: unknown[] = [
      jobId,
      expectedVersion,
      ...entries.map(([property, value]) =>
        this.jobs.metadata.findColumnWithPropertyName(property)?.type === 'jsonb' && value !== null
          ? JSON.stringify(value)
          : value,
      ),
    ];
    let logged = '';
    if (transition) {
      logged = `, ${recordTransitions({ rows: 'updated', ...transitionParams(params.length), at: 'updated_at' })}`;
      params.push(...transitionValues(transition));
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
    if (transition) this.commits.committed();
    return this.rows.entity(rows[0]);
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
          RETURNING ${this.rows.columns('job.', RECONCILED)}, i.from_status, i.error_message AS transition_error
       ), ${recordTransitions({ rows: 'updated', from: 'from_status', to: 'status', source: '$7', actor: '$8', errorMessage: 'transition_error', at: 'updated_at' })}
       SELECT ${this.rows.columns('', RECONCILED)} FROM updated`,
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
    if (rows.length > 0) this.commits.committed();
    return rows.map(this.rows.reader(RECONCILED));
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
      (this.advanceSql ??= advanceSql(this.rows.columns('job.'))),
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
    this.commits.committed();
    return this.rows.entity(rows[0]);
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
}

/** Placeholders of a transition's values after the statement's first `n` parameters (see transitionValues). */
function transitionParams(n: number): Omit<TransitionValues, 'rows' | 'at'> {
  return { from: `$${n + 1}`, to: `$${n + 2}`, source: `$${n + 3}`, actor: `$${n + 4}`, errorMessage: `$${n + 5}` };
}

function transitionValues(transition: TransitionRecord): unknown[] {
  return [transition.from, transition.to, transition.source, transition.actor, transition.errorMessage];
}

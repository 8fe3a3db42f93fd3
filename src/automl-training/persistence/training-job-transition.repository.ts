import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { sqlRows } from '../../database/sql';
import { AutoMLTrainingJobStatus, TransitionSource } from '../domain/automl-training.enums';
import { TrainingJobTransitionEntity } from './training-job-transition.entity';

export interface TransitionRecord {
  from: AutoMLTrainingJobStatus | null;
  to: AutoMLTrainingJobStatus;
  source: TransitionSource;
  actor: string;
  errorMessage: string | null;
}

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
 * SQL expressions of the transition a job statement records for each row of its CTE `rows` (which has the job's
 * `job_id`): the statuses it moved between, its source, actor and error message, and its instant.
 */
export interface TransitionValues {
  rows: string;
  from: string;
  to: string;
  source: string;
  actor: string;
  errorMessage: string;
  at: string;
}

/**
 * The `logged` CTE that records transitions in the statement that changes the jobs, so a job never changes
 * without its transition, nor the other way round.
 */
export function recordTransitions(values: TransitionValues): string {
  return `logged AS (
         INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
         SELECT job_id, ${values.from}, ${values.to}, ${values.source}, ${values.actor}, ${values.errorMessage}, ${values.at} FROM ${values.rows}
       )`;
}

/** The transition table as a job's history and the transition feed and its streams read it. */
@Injectable()
export class TrainingJobTransitionRepository {
  constructor(
    @InjectRepository(TrainingJobTransitionEntity)
    private readonly transitions: Repository<TrainingJobTransitionEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** The highest transition id recorded so far (0 when none). */
  async lastTransitionId(): Promise<number> {
    const rows = await sqlRows(
      this.dataSource,
      'SELECT COALESCE(max(id), 0) AS id FROM automl_training_job_transitions',
      [],
    );
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
    const rows = await sqlRows(
      this.dataSource,
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

  /** The job's transitions, oldest first. */
  history(jobId: string): Promise<TrainingJobTransitionEntity[]> {
    return this.transitions.find({ where: { jobId }, order: { id: 'ASC' } });
  }
}

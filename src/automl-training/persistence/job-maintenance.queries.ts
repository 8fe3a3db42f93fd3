import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { sqlRows } from '../../database/sql';
import { JobRows, STATUS_VIEW } from './job-rows';
import { JobStatusView } from './training-job.repository';
import { TrainingJobEntity } from './training-job.entity';

/** An in-flight job as background reconciliation reads it: its status view and when it was created. */
export type InFlightJob = JobStatusView & Pick<TrainingJobEntity, 'createdAt'>;

const IN_FLIGHT = [...STATUS_VIEW, 'createdAt'] as const;

/** The queries of the background tasks (reconciliation, DAG retirement) that sweep many jobs at once. */
@Injectable()
export class JobMaintenanceQueries {
  private readonly rows: JobRows;

  constructor(
    @InjectRepository(TrainingJobEntity) jobs: Repository<TrainingJobEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {
    this.rows = new JobRows(() => jobs.metadata);
  }

  /** Live queued or running jobs with a DAG, by job id after `afterJobId`, for background reconciliation. */
  async inFlight(afterJobId: string | null, limit: number): Promise<InFlightJob[]> {
    const rows = await sqlRows(
      this.dataSource,
      `SELECT ${this.rows.columns('', IN_FLIGHT)}
         FROM automl_training_jobs
        WHERE deleted_at IS NULL AND status IN ('queued', 'running') AND airflow_dag_id IS NOT NULL
          AND ($1::uuid IS NULL OR job_id > $1::uuid)
        ORDER BY job_id LIMIT $2`,
      [afterJobId, limit],
      'jobs_in_flight',
    );
    return rows.map(this.rows.reader(IN_FLIGHT));
  }

  /**
   * DAG ids of the jobs deleted within the last `withinMs` whose file was still deployed (not retired), newest
   * first, at most `limit`.
   */
  async recentlyDeletedDags(withinMs: number, limit: number): Promise<string[]> {
    const rows = await sqlRows(
      this.dataSource,
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
      await manager.query(
        `UPDATE automl_training_jobs SET dag_retired_at = clock_timestamp() WHERE job_id = ANY($1::uuid[])`,
        [rows.map((row) => row.job_id)],
      );
      return dagIds;
    });
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { AirflowClient } from '../airflow/airflow.client';
import { isNotFound } from '../airflow/airflow.errors';
import { DagDeployer } from '../dag/dag-deployer';
import { AirflowStatusReconciler } from './airflow-status.reconciler';
import { AutoMLTrainingJobStatus, TransitionSource } from '../domain/automl-training.enums';
import { startedByTrigger } from '../airflow/run-ids';
import { LeaderTask } from '../leadership/leader-task';
import { ADVISORY_LOCK_KEYS } from '../leadership/lock-keys';
import { JobMaintenanceQueries } from '../persistence/job-maintenance.queries';
import { TrainingJobRepository } from '../persistence/training-job.repository';

const BATCH_SIZE = 500;
/** At most this many DAGs of deleted jobs are checked per round (one GET each), the most recently deleted first. */
const RECREATED_CHECKS = 100;

export interface RoundReport {
  checked: number;
  timedOut: number;
  /** DAGs of deleted jobs that Airflow had re-created, deleted again. */
  redeleted: number;
}

/**
 * Every RECONCILE_INTERVAL_MS, one replica reconciles all queued and running
 * jobs against Airflow in batches, through the same reconciler as bulk
 * status, so a run whose failure callback was lost does not stay `running`.
 * The leader is the replica holding a PostgreSQL session advisory lock on a
 * dedicated connection: replicas never double the work, and when the leader
 * dies its session ends and another takes over. A queued job whose DAG has
 * no run in Airflow after DAG_PARSE_TIMEOUT_MS is failed.
 *
 * It also deletes again the DAG of a job deleted within DAG_PARSE_TIMEOUT_MS
 * that Airflow shows again: Airflow's dag-processor writes what a parse that
 * was under way when the file went read, after the service's DELETE (seen on
 * Airflow 3.3.2), and a DAG without its file then stays, stale, for good.
 */
@Injectable()
export class BackgroundReconciler extends LeaderTask<RoundReport> {
  constructor(
    private readonly repository: TrainingJobRepository,
    private readonly maintenance: JobMaintenanceQueries,
    private readonly reconciler: AirflowStatusReconciler,
    private readonly airflow: AirflowClient,
    private readonly deployer: DagDeployer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super(ADVISORY_LOCK_KEYS.backgroundReconciliation, 'background reconciliation', config.database);
  }

  protected periodMs(): number | null {
    const interval = this.config.airflow.reconcileIntervalMs;
    return interval === 0 || !this.airflow.configured ? null : interval;
  }

  /** One round: reconciles the jobs in flight, then deletes again the DAGs Airflow re-created. */
  protected async run(): Promise<RoundReport> {
    const report: RoundReport = { checked: 0, timedOut: 0, redeleted: 0 };
    await this.reconcileInFlight(report);
    report.redeleted = await this.deleteRecreatedDags();
    return report;
  }

  private async reconcileInFlight(report: RoundReport): Promise<void> {
    const deadline = Date.now() - this.config.airflow.dagParseTimeoutMs;
    for (let after: string | null = null; ;) {
      const batch = await this.maintenance.inFlight(after, BATCH_SIZE);
      if (batch.length === 0) return;
      after = batch[batch.length - 1].jobId;
      report.checked += batch.length;
      const result = await this.reconciler.reconcileBatch(batch);
      if (!result) return;
      for (const job of result.withoutRun) {
        // A triggered job's DAG was parsed (trigger needs it); an auto-triggered one still waits for its scheduled run.
        if (
          job.status !== AutoMLTrainingJobStatus.Queued ||
          startedByTrigger(job.airflowRunId) ||
          job.createdAt.getTime() > deadline
        )
          continue;
        const minutes = Math.round(this.config.airflow.dagParseTimeoutMs / 60_000);
        const message = `Airflow has not parsed DAG ${job.airflowDagId} within ${minutes} minutes; check the DAG folder and Airflow's import errors`;
        const failed = await this.repository.compareAndSet(
          job.jobId,
          job.version,
          { status: AutoMLTrainingJobStatus.Failed, errorMessage: message },
          {
            from: job.status,
            to: AutoMLTrainingJobStatus.Failed,
            source: TransitionSource.Reconcile,
            actor: 'airflow',
            errorMessage: message,
          },
        );
        if (failed) report.timedOut++;
      }
    }
  }

  /** Deletes again the DAGs of recently deleted jobs that Airflow shows again (their files stay removed). */
  private async deleteRecreatedDags(): Promise<number> {
    const dagIds = await this.maintenance.recentlyDeletedDags(this.config.airflow.dagParseTimeoutMs, RECREATED_CHECKS);
    let redeleted = 0;
    for (const dagId of dagIds) {
      // Stale too: without its file Airflow marks the re-created DAG stale at its next look at the folder, and keeps it.
      if ((await this.airflow.getDag(dagId, { includeStale: true })) === null) continue;
      await this.deployer.remove(dagId);
      try {
        await this.airflow.deleteDag(dagId);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      this.logger.warn(
        `Airflow showed DAG ${dagId} of a deleted job again (a parse under way when its file went); deleted it again`,
      );
      redeleted++;
    }
    return redeleted;
  }
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { MetricsService } from '../../metrics/metrics.service';
import { AirflowClient } from '../airflow/airflow.client';
import { AirflowRun } from '../airflow/airflow-api';
import { statusOfRun } from '../airflow/airflow-state.mapper';
import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { decideTransition, isTerminal } from '../domain/training-job.lifecycle';
import { ReconcileChange, ReconciledColumns, TrainingJobRepository } from '../persistence/training-job.repository';
import { ReconcilableJob, TrainingJobStatusReconciler } from './training-job-status.reconciler';
import { TrainingJobEntity } from '../persistence/training-job.entity';

/**
 * Reconciles non-terminal jobs against their DAGs' latest runs, fetched in
 * one batch request bounded by RECONCILE_BUDGET_MS. Changes are written with
 * compare-and-set and recorded as `reconcile` transitions; a writer that got
 * there first (a DAG callback) always wins, and the lifecycle never lets a
 * reconcile move a job backwards or out of a terminal status. Terminal jobs
 * never cost an Airflow call; if Airflow is slow or down, the answer is the
 * database's.
 */
@Injectable()
export class AirflowStatusReconciler extends TrainingJobStatusReconciler {
  private readonly logger = new Logger(AirflowStatusReconciler.name);
  private readonly budgetMs: number;

  constructor(
    private readonly airflow: AirflowClient,
    private readonly repository: TrainingJobRepository,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    super();
    this.budgetMs = config.airflow.reconcileBudgetMs;
  }

  async reconcile<T extends ReconcilableJob>(jobs: T[]): Promise<(T | TrainingJobEntity)[]> {
    return (await this.reconcileBatch(jobs))?.jobs ?? jobs;
  }

  /**
   * Reconciles `jobs`; also says which live jobs' DAGs have no run in Airflow
   * at all. Null when Airflow could not answer (the jobs stand as stored).
   */
  async reconcileBatch<T extends ReconcilableJob>(
    jobs: T[],
  ): Promise<{ jobs: (T | TrainingJobEntity)[]; withoutRun: T[] } | null> {
    const live = jobs.filter((job) => !isTerminal(job.status) && job.airflowDagId);
    if (live.length === 0 || !this.airflow.configured) return { jobs, withoutRun: [] };
    this.metrics.reconcileBatchSize(live.length);
    let runs: Map<string, AirflowRun>;
    try {
      runs = await this.airflow.latestRuns(
        live.map((job) => job.airflowDagId!),
        { timeoutMs: this.budgetMs },
      );
    } catch (error) {
      this.logger.warn(`Answering from the database: ${(error as Error).message}`);
      return null;
    }
    // Most jobs have nothing to change: decided synchronously; those that advance are written in one statement.
    const withoutRun: T[] = [];
    const changes: ReconcileChange[] = [];
    const advancing = new Map<string, T>();
    for (const job of live) {
      const run = runs.get(job.airflowDagId!);
      if (!run) {
        withoutRun.push(job);
        continue;
      }
      const next = advanceTo(job, run);
      if (!next) continue;
      const errorMessage =
        next === AutoMLTrainingJobStatus.Failed && !job.errorMessage ? `Airflow run ${run.runId} failed` : null;
      changes.push({
        jobId: job.jobId,
        version: job.version,
        from: job.status,
        to: next,
        airflowRunId: run.runId,
        errorMessage,
      });
      advancing.set(job.jobId, job);
    }
    if (changes.length === 0) return { jobs, withoutRun };
    const reconciled = new Map<string, T | TrainingJobEntity>();
    for (const columns of await this.repository.reconcileMany(changes, 'airflow')) {
      reconciled.set(columns.jobId, withColumns(advancing.get(columns.jobId)!, columns));
    }
    // Lost the race: the other writer's state is fresher than ours.
    await Promise.all(
      changes
        .filter((change) => !reconciled.has(change.jobId))
        .map(async ({ jobId }) =>
          reconciled.set(jobId, (await this.repository.findById(jobId)) ?? advancing.get(jobId)!),
        ),
    );
    return { jobs: jobs.map((job) => reconciled.get(job.jobId) ?? job), withoutRun };
  }
}

/** The status `run` moves `job` forward to, if any. */
function advanceTo(job: ReconcilableJob, run: AirflowRun): AutoMLTrainingJobStatus | null {
  // After a trigger we know our run; an older run Airflow still lists says nothing about it.
  if (job.airflowRunId && run.runId !== job.airflowRunId) return null;
  const next = statusOfRun(run.state);
  return next && decideTransition(job.status, next) === 'advance' ? next : null;
}

/** `job` (a copy, of the same class) with the columns a reconcile statement changed, as it left them. */
function withColumns<T extends ReconcilableJob>(job: T, columns: ReconciledColumns): T {
  return Object.assign(Object.create(Object.getPrototypeOf(job) as object) as T, job, columns);
}

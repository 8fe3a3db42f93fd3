import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/app.config';
import { MetricsService } from '../metrics/metrics.service';
import { AirflowClient } from './airflow/airflow.client';
import { AirflowRun } from './airflow/airflow-api';
import { statusOfRun } from './airflow/airflow-state.mapper';
import { AutoMLTrainingJobStatus, TransitionSource } from './automl-training.enums';
import { decideTransition, isTerminal } from './training-job.lifecycle';
import { TrainingJobRepository } from './training-job.repository';
import { ReconcilableJob, TrainingJobStatusReconciler } from './training-job-status.reconciler';
import { TrainingJobEntity } from './training-job.entity';

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
  async reconcileBatch<T extends ReconcilableJob>(jobs: T[]): Promise<{ jobs: (T | TrainingJobEntity)[]; withoutRun: T[] } | null> {
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
    // Most jobs have nothing to change: decided synchronously, only the advancing ones are written.
    const reconciled = new Map<string, T | TrainingJobEntity>();
    const writes: Promise<void>[] = [];
    const withoutRun: T[] = [];
    for (const job of live) {
      const run = runs.get(job.airflowDagId!);
      if (!run) {
        withoutRun.push(job);
        continue;
      }
      const next = this.advanceTo(job, run);
      if (next) writes.push(this.apply(job, run, next).then((updated) => void reconciled.set(job.jobId, updated)));
    }
    await Promise.all(writes);
    return { jobs: reconciled.size === 0 ? jobs : jobs.map((job) => reconciled.get(job.jobId) ?? job), withoutRun };
  }

  /** The status `run` moves `job` forward to, if any. */
  private advanceTo(job: ReconcilableJob, run: AirflowRun): AutoMLTrainingJobStatus | null {
    // After a trigger we know our run; an older run Airflow still lists says nothing about it.
    if (job.airflowRunId && run.runId !== job.airflowRunId) return null;
    const next = statusOfRun(run.state);
    return next && decideTransition(job.status, next) === 'advance' ? next : null;
  }

  private async apply<T extends ReconcilableJob>(job: T, run: AirflowRun, next: AutoMLTrainingJobStatus): Promise<T | TrainingJobEntity> {
    const errorMessage =
      next === AutoMLTrainingJobStatus.Failed && !job.errorMessage ? `Airflow run ${run.runId} failed` : undefined;
    const updated = await this.repository.compareAndSet(
      job.jobId,
      job.version,
      { status: next, airflowRunId: run.runId, errorMessage },
      { from: job.status, to: next, source: TransitionSource.Reconcile, actor: 'airflow', errorMessage: errorMessage ?? null },
    );
    // Lost the race: the other writer's state is fresher than ours.
    return updated ?? (await this.repository.findById(job.jobId)) ?? job;
  }
}

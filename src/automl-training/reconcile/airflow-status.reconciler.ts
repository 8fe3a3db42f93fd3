import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { MetricsService } from '../../metrics/metrics.service';
import { AirflowClient } from '../airflow/airflow.client';
import { AirflowRun } from '../airflow/airflow-api';
import { AirflowRequestError } from '../airflow/airflow.errors';
import { statusOfRun, statusOfRunningRun, TRAIN_TASK_ID } from '../airflow/airflow-state.mapper';
import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { decideTransition, isTerminal } from '../domain/training-job.lifecycle';
import { ReconcileChange, ReconciledColumns, TrainingJobRepository } from '../persistence/training-job.repository';
import { ReconcilableJob, TrainingJobStatusReconciler } from './training-job-status.reconciler';
import { TrainingJobEntity } from '../persistence/training-job.entity';

/**
 * Reconciles non-terminal jobs against their DAGs' latest runs, fetched in
 * one batch request bounded by RECONCILE_BUDGET_MS; a run that has started
 * while its job is not yet `running` costs one more batch request, within the
 * same budget, for the state of its train task (a run whose training waits
 * for a pool slot or a worker stays `queued`). Changes are written with
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
    const deadline = Date.now() + this.budgetMs;
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
    const change = (job: T, run: AirflowRun, next: AutoMLTrainingJobStatus) => {
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
    };
    const started: { job: T; run: AirflowRun }[] = [];
    for (const job of live) {
      const run = runs.get(job.airflowDagId!);
      if (!run) {
        withoutRun.push(job);
        continue;
      }
      const next = advanceTo(job, run);
      if (next === AutoMLTrainingJobStatus.Running) started.push({ job, run });
      else if (next) change(job, run, next);
    }
    // A running run whose training still waits (a pool with no free slot, no worker free) is `queued`: its train
    // task's state decides, for every such run in one more batch request. An Airflow that refuses that request
    // leaves the run's own state to decide; one that does not answer leaves the jobs as stored.
    const trainStates = await this.trainStates(
      started.map(({ run }) => run),
      deadline,
    );
    for (const { job, run } of trainStates ? started : []) {
      const next = statusOfRunningRun(trainStates!.get(runKey(run)));
      if (decideTransition(job.status, next) === 'advance') change(job, run, next);
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

  /**
   * The states of the train task of `runs` by runKey (empty, so every run counts as started, when Airflow refuses
   * the request); null when Airflow did not answer within the deadline.
   */
  private async trainStates(runs: AirflowRun[], deadline: number): Promise<Map<string, string | null> | null> {
    if (runs.length === 0) return new Map();
    try {
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) throw new Error('no time left in the reconcile budget');
      const states = await this.airflow.taskStates(TRAIN_TASK_ID, runs, { timeoutMs });
      return new Map(states.map((task) => [runKey(task), task.state]));
    } catch (error) {
      if (error instanceof AirflowRequestError) {
        this.logger.warn(`Airflow refused the train tasks' states (${error.message}): the runs' states decide`);
        return new Map();
      }
      this.logger.warn(`Leaving ${runs.length} started run(s) as stored: ${(error as Error).message}`);
      return null;
    }
  }
}

function runKey(run: { dagId: string; runId: string }): string {
  return `${run.dagId}\n${run.runId}`;
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

import { Injectable, Logger } from '@nestjs/common';
import { actorOf, Principal } from '../../common/auth/principal';
import { JobRecordsService } from './job-records.service';
import { AirflowRequestError, isNotFound, refusedByAirflow } from '../airflow/airflow.errors';
import { AirflowClient } from '../airflow/airflow.client';
import { AirflowNotConfiguredError } from '../airflow/airflow.errors';
import { AutoMLTrainingJobStatus as Status, TransitionSource } from '../domain/automl-training.enums';
import {
  ConcurrentUpdateError,
  DagNotReadyError,
  JobNotCancellableError,
  JobNotTriggerableError,
  NoAirflowRunError,
  TaskNotInRunError,
} from '../domain/automl-training.errors';
import { AirflowTaskInstance } from '../airflow/airflow-api';
import { AutoMLTrainingJobLogs, AutoMLTrainingTaskLog } from '../api/dto/response.dto';
import { JobLogsQuery } from '../api/dto/request.dto';
import { RequestValidationError, valueError } from '../../common/validation/pydantic-errors';
import { DagDeployer } from '../dag/dag-deployer';
import { manualRunId } from '../airflow/run-ids';
import { canTrigger } from '../domain/training-job.lifecycle';
import { compareAndSetRounds } from '../persistence/compare-and-set';
import { TrainingJobRepository } from '../persistence/training-job.repository';
import { TrainingJobEntity } from '../persistence/training-job.entity';

/**
 * The DAG's training task first, then its callback task; any other task after them, by id (`report_running` is the
 * callback task of jobs deployed with an earlier DAG runtime, whose train task does not write back `running` itself).
 */
const TASK_ORDER = ['train', 'report_running', 'report_complete'];
const taskRank = (taskId: string) => (TASK_ORDER.includes(taskId) ? TASK_ORDER.indexOf(taskId) : TASK_ORDER.length);

/**
 * The use cases that call Airflow: a user's trigger, cancel and delete of a job, and its task logs. What touches
 * only the job records (and the DAG file) is JobRecordsService.
 */
@Injectable()
export class JobAirflowActionsService {
  private readonly logger = new Logger(JobAirflowActionsService.name);

  constructor(
    private readonly repository: TrainingJobRepository,
    private readonly airflow: AirflowClient,
    private readonly deployer: DagDeployer,
    private readonly records: JobRecordsService,
  ) {}

  /**
   * ready (or failed, as a retry) → queued: unpause the DAG and start a run with our own run id. A retry of a
   * retired job first deploys the stored DAG again, so Airflow re-parses it before it can run.
   */
  async trigger(jobId: string, principal: Principal): Promise<TrainingJobEntity> {
    let job = await this.load(jobId, principal);
    if (!canTrigger(job.status)) throw new JobNotTriggerableError(jobId, job.status);
    if (!this.airflow.configured) throw new AirflowNotConfiguredError();
    // Only a retired job's file must come back (and its retirement be cleared, which moves its version): a job
    // whose file is still there keeps its version, so a repeated trigger names the same run (see manualRunId).
    if (job.status === Status.Failed && job.dagRetiredAt !== null) job = await this.redeploy(job, principal);
    const dagId = job.airflowDagId!;
    const actor = actorOf(principal);
    const run = await this.onAirflow(async () => {
      const dag = await this.airflow.getDag(dagId);
      if (!dag) throw new DagNotReadyError(dagId, 'has not parsed');
      if (dag.hasImportErrors) throw new DagNotReadyError(dagId, 'could not import');
      if (dag.isPaused) await this.airflow.setPaused(dagId, false);
      // One run id per job version: a repeated trigger of the same version reuses the run.
      return this.airflow.triggerRun(
        dagId,
        manualRunId(jobId, job.version, job.updatedAt),
        { job_id: jobId },
        `Triggered by ${actor}`,
      );
    });
    const updated = await this.repository.compareAndSet(
      jobId,
      job.version,
      { status: Status.Queued, airflowRunId: run.runId, errorMessage: null },
      { from: job.status, to: Status.Queued, source: TransitionSource.User, actor, errorMessage: null },
    );
    if (!updated) throw new ConcurrentUpdateError(jobId);
    return updated;
  }

  /**
   * Clears the job's retirement (a compare-and-set, which waits for a retirement sweep holding the row and keeps
   * the next sweep off it), then writes its stored DAG to the DAG folder.
   */
  private async redeploy(job: TrainingJobEntity, principal: Principal): Promise<TrainingJobEntity> {
    const updated = await compareAndSetRounds(job.jobId, async () => {
      const cleared = await this.repository.compareAndSet(job.jobId, job.version, { dagRetiredAt: null }, null);
      if (cleared) return cleared;
      job = await this.load(job.jobId, principal);
      if (!canTrigger(job.status)) throw new JobNotTriggerableError(job.jobId, job.status);
      return null;
    });
    if (updated.airflowDagId && updated.renderedDag)
      await this.deployer.deploy(updated.airflowDagId, updated.renderedDag);
    return updated;
  }

  /** queued/running → failed: mark the Airflow run failed, then the job, naming who cancelled. */
  async cancel(jobId: string, principal: Principal): Promise<TrainingJobEntity> {
    let job = await this.load(jobId, principal);
    if (job.status !== Status.Queued && job.status !== Status.Running)
      throw new JobNotCancellableError(jobId, job.status);
    if (!this.airflow.configured) throw new AirflowNotConfiguredError();
    const dagId = job.airflowDagId!;
    await this.onAirflow(async () => {
      const runId = job.airflowRunId ?? (await this.airflow.latestRuns([dagId])).get(dagId)?.runId;
      if (runId) await this.ignoringNotFound(() => this.airflow.setRunFailed(dagId, runId));
    });
    const actor = actorOf(principal);
    const message = `cancelled by ${actor}`;
    return compareAndSetRounds(jobId, async () => {
      const updated = await this.repository.compareAndSet(
        jobId,
        job.version,
        { status: Status.Failed, errorMessage: message },
        { from: job.status, to: Status.Failed, source: TransitionSource.User, actor, errorMessage: message },
      );
      if (updated) return updated;
      job = await this.load(jobId, principal);
      if (job.status !== Status.Queued && job.status !== Status.Running)
        throw new JobNotCancellableError(jobId, job.status);
      return null;
    });
  }

  /** Removes the DAG file, then the DAG in Airflow, then soft-deletes the row (kept for audit). */
  async remove(jobId: string, principal: Principal): Promise<void> {
    let job = await this.load(jobId, principal);
    const dagId = job.airflowDagId;
    if (dagId) {
      // File first: Airflow would re-create a deleted DAG from a file still in its folder.
      await this.deployer.remove(dagId);
      if (this.airflow.configured)
        await this.onAirflow(() => this.ignoringNotFound(() => this.airflow.deleteDag(dagId)));
    }
    await compareAndSetRounds(jobId, async () => {
      if (await this.repository.softDelete(jobId, job.version)) return true;
      job = await this.load(jobId, principal);
      return null;
    });
  }

  /**
   * Task logs of the job's latest Airflow run (our triggered run, else the newest Airflow lists), one chunk per
   * task, or the chunk after `query.token` of one task's try.
   */
  async logs(jobId: string, principal: Principal, query: JobLogsQuery): Promise<AutoMLTrainingJobLogs> {
    const job = await this.load(jobId, principal);
    if (!this.airflow.configured) throw new AirflowNotConfiguredError();
    const dagId = job.airflowDagId;
    if (!dagId) throw new NoAirflowRunError(jobId);
    return this.onAirflow(async () => {
      const runId = job.airflowRunId ?? (await this.airflow.latestRuns([dagId])).get(dagId)?.runId;
      if (!runId) throw new NoAirflowRunError(jobId);
      let instances: AirflowTaskInstance[];
      try {
        instances = await this.airflow.listTaskInstances(dagId, runId);
      } catch (error) {
        if (isNotFound(error)) throw new NoAirflowRunError(jobId);
        throw error;
      }
      instances.sort((a, b) => taskRank(a.taskId) - taskRank(b.taskId) || a.taskId.localeCompare(b.taskId));
      if (query.task !== undefined) {
        instances = instances.filter((instance) => instance.taskId === query.task);
        if (instances.length === 0) throw new TaskNotInRunError(query.task, runId);
      }
      const tasks = await Promise.all(instances.map((instance) => this.taskLog(dagId, runId, instance, query)));
      return { job_id: jobId, dag_id: dagId, run_id: runId, tasks };
    });
  }

  private async taskLog(
    dagId: string,
    runId: string,
    instance: AirflowTaskInstance,
    query: JobLogsQuery,
  ): Promise<AutoMLTrainingTaskLog> {
    const tryNumber = query.try_number ?? instance.tryNumber;
    const base = { task_id: instance.taskId, try_number: tryNumber, state: instance.state };
    if (tryNumber < 1) return { ...base, lines: [], continuation_token: null };
    try {
      const chunk = await this.airflow.getTaskLog(dagId, runId, instance.taskId, tryNumber, query.token ?? null);
      return { ...base, lines: chunk.lines, continuation_token: chunk.continuationToken };
    } catch (error) {
      if (!(error instanceof AirflowRequestError)) throw error;
      // No log (yet) for this try: an empty one, not an error for the whole run.
      if (error.status === 404) return { ...base, lines: [], continuation_token: null };
      // Airflow refuses a token it did not sign (400) or cannot decode (422 on Airflow 3).
      if ((error.status === 400 || error.status === 422) && query.token !== undefined) {
        throw new RequestValidationError([
          valueError(['query', 'token'], query.token, `Airflow refused the token: ${error.detail}`),
        ]);
      }
      throw error;
    }
  }

  private load(jobId: string, principal: Principal): Promise<TrainingJobEntity> {
    return this.records.get(jobId, principal);
  }

  private async onAirflow<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof AirflowRequestError) throw refusedByAirflow(error);
      throw error;
    }
  }

  private async ignoringNotFound(call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (!isNotFound(error)) throw error;
      this.logger.debug(`Airflow had nothing to act on: ${error.detail}`);
    }
  }
}

import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { AirflowRunState } from './airflow-api';

/** Airflow's DAG run state → our job status (spec, "Reconciliation"). */
export function statusOfRun(state: AirflowRunState): AutoMLTrainingJobStatus | null {
  switch (state) {
    case 'queued':
      return AutoMLTrainingJobStatus.Queued;
    case 'running':
      return AutoMLTrainingJobStatus.Running;
    case 'success':
      return AutoMLTrainingJobStatus.Complete;
    case 'failed':
      return AutoMLTrainingJobStatus.Failed;
    default:
      // A state this version does not know: leave the stored status alone.
      return null;
  }
}

/** The task of every training DAG that runs the trainer, and writes back `running` once it has started. */
export const TRAIN_TASK_ID = 'train';

/**
 * True while a task instance waits for its turn: not scheduled yet (null), scheduled but held back (an Airflow pool
 * with no free slot, a concurrency limit), or queued for a worker to take it.
 */
export function isWaitingTaskState(state: string | null): boolean {
  return state === null || state === 'none' || state === 'scheduled' || state === 'queued';
}

/**
 * The status of a run Airflow calls `running`, knowing its train task's state: the run is on but its training waits
 * (for a pool slot or a worker) → `queued`; the task has started (or ended, or the DAG has no such task:
 * `undefined`) → `running`.
 */
export function statusOfRunningRun(trainState: string | null | undefined): AutoMLTrainingJobStatus {
  return trainState !== undefined && isWaitingTaskState(trainState)
    ? AutoMLTrainingJobStatus.Queued
    : AutoMLTrainingJobStatus.Running;
}

import { TrainingJobEntity } from '../persistence/training-job.entity';

/** What reconciling a job reads of it: enough to decide and compare-and-set a transition. */
export type ReconcilableJob = Pick<
  TrainingJobEntity,
  'jobId' | 'status' | 'version' | 'airflowDagId' | 'airflowRunId' | 'errorMessage'
>;

/**
 * Brings stored statuses in line with the orchestrator's view of the runs.
 * Given live jobs, returns them as they should be answered: each as given, or
 * the job as stored after it changed. Must answer within its own time budget
 * and never throw because the orchestrator is unavailable.
 */
export abstract class TrainingJobStatusReconciler {
  abstract reconcile<T extends ReconcilableJob>(jobs: T[]): Promise<(T | TrainingJobEntity)[]>;
}

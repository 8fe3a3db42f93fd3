import { TrainingJobEntity } from './training-job.entity';

/**
 * Brings stored statuses in line with the orchestrator's view of the runs.
 * Given live jobs, returns them as they should be answered (possibly
 * updated). Must answer within its own time budget and never throw because
 * the orchestrator is unavailable.
 */
export abstract class TrainingJobStatusReconciler {
  abstract reconcile(jobs: TrainingJobEntity[]): Promise<TrainingJobEntity[]>;
}

import { ConcurrentUpdateError } from '../domain/automl-training.errors';

/**
 * Upper bound on compare-and-set rounds for one change of a job, whoever makes it (a writeback, a user's
 * trigger, cancel or delete). A round is lost only when another writer's compare-and-set on the same job won,
 * and a job changes a bounded number of times (the lifecycle has few steps; a writeback fills each field once),
 * so contention settles long before this; reaching it means something is wrong, and the caller gets a 409
 * (ConcurrentUpdateError) to retry.
 */
export const MAX_COMPARE_AND_SET_ROUNDS = 100;

/**
 * Runs `round` until it returns a result, at most MAX_COMPARE_AND_SET_ROUNDS times. A round reads the job,
 * decides (throwing when the change no longer applies, or returning what is already there) and compare-and-sets
 * it (TrainingJobRepository.compareAndSet); it returns null when another writer got there first.
 */
export async function compareAndSetRounds<T>(jobId: string, round: () => Promise<T | null>): Promise<T> {
  for (let attempt = 0; attempt < MAX_COMPARE_AND_SET_ROUNDS; attempt++) {
    const result = await round();
    if (result !== null) return result;
  }
  throw new ConcurrentUpdateError(jobId);
}

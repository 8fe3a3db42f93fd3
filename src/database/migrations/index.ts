import { CreateTrainingJobs1763836800000 } from './1763836800000-CreateTrainingJobs';

/** Every migration, in order. Listed explicitly so ts-jest, ts-node and dist all load the same set. */
export const MIGRATIONS = [CreateTrainingJobs1763836800000];

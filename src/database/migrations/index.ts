import { CreateTrainingJobs1763836800000 } from './1763836800000-CreateTrainingJobs';
import { CreateIdempotencyKeys1763923200000 } from './1763923200000-CreateIdempotencyKeys';
import { AddProblemColumnsAndResultSummary1795837482000 } from './1795837482000-AddProblemColumnsAndResultSummary';

/** Every migration, in order. Listed explicitly so ts-jest, ts-node and dist all load the same set. */
export const MIGRATIONS = [CreateTrainingJobs1763836800000, CreateIdempotencyKeys1763923200000, AddProblemColumnsAndResultSummary1795837482000];

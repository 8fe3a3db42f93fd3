import { CreateTrainingJobs1763836800000 } from './1763836800000-CreateTrainingJobs';
import { CreateIdempotencyKeys1763923200000 } from './1763923200000-CreateIdempotencyKeys';
import { CreateAuthFailures1764288000000 } from './1764288000000-CreateAuthFailures';
import { AddProblemColumnsAndResultSummary1795837482000 } from './1795837482000-AddProblemColumnsAndResultSummary';
import { AddRunTimes1795840000000 } from './1795840000000-AddRunTimes';
import { AddTuningBudget1795850000000 } from './1795850000000-AddTuningBudget';
import { AddDagRetiredAt1795900000000 } from './1795900000000-AddDagRetiredAt';
import { AddDeletedDagIndex1795950000000 } from './1795950000000-AddDeletedDagIndex';

/** Every migration, in order. Listed explicitly so ts-jest, ts-node and dist all load the same set. */
export const MIGRATIONS = [
  CreateTrainingJobs1763836800000,
  CreateIdempotencyKeys1763923200000,
  CreateAuthFailures1764288000000,
  AddProblemColumnsAndResultSummary1795837482000,
  AddRunTimes1795840000000,
  AddTuningBudget1795850000000,
  AddDagRetiredAt1795900000000,
  AddDeletedDagIndex1795950000000,
];

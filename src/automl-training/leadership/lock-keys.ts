/**
 * The PostgreSQL advisory-lock keys this service takes, in one place so no two tasks share one. Each is an
 * arbitrary constant shared by every replica: whoever holds a key does that task, one replica at a time.
 */
export const ADVISORY_LOCK_KEYS = {
  /** Held (blocking) while migrations run at startup (src/database/database.config.ts). */
  migrations: 727_143_001,
  /** Leadership of background reconciliation (reconcile/background-reconciler.ts). */
  backgroundReconciliation: 727_143_002,
  /** Leadership of DAG file retirement (dag/dag-retirer.ts). */
  dagRetirement: 727_143_003,
} as const;

export type AdvisoryLockKey = (typeof ADVISORY_LOCK_KEYS)[keyof typeof ADVISORY_LOCK_KEYS];

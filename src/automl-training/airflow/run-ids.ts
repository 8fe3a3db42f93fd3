/**
 * Names of the Airflow runs of a job, so that a person reading Airflow's UI (or the job) sees which job and
 * when. Airflow's run id pattern (`[scheduler] allowed_run_id_pattern`, `^[A-Za-z0-9_.~:+-]+$`) allows all.
 */

/** A time as Airflow writes it in run ids: UTC to the second, `2026-05-01T12:00:03+00:00`. */
export function runIdTime(at: Date): string {
  return `${at.toISOString().slice(0, 19)}+00:00`;
}

/**
 * The id Airflow gives the one run of an auto-triggered (`@once`) DAG: `scheduled__` and its logical date, the
 * DAG's `start_date` (Airflow 2 and 3 alike).
 */
export function scheduledRunId(startDate: Date): string {
  return `scheduled__${runIdTime(startDate)}`;
}

/**
 * The id of the run a trigger starts: the job, the version of the job it was started from and that version's
 * time (when the job entered the status it was triggered from). Fixed per version, so a trigger repeated
 * before the job moved on (a retry after a timeout, a double click) finds the same run instead of starting a
 * second training.
 */
export function manualRunId(jobId: string, version: number, versionAt: Date): string {
  return `manual__${runIdTime(versionAt)}__${jobId}__v${version}`;
}

/** Whether a job's run id is one a trigger started (not the run an auto-triggered DAG is expected to get). */
export function startedByTrigger(runId: string | null): boolean {
  return runId !== null && !runId.startsWith('scheduled__');
}

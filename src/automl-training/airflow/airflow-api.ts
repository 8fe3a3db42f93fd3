/** Airflow's DagRunState, the same in v1 and v2. */
export type AirflowRunState = 'queued' | 'running' | 'success' | 'failed';

export interface AirflowRun {
  dagId: string;
  runId: string;
  state: AirflowRunState;
  /** When the run was (or will be) scheduled: v1 `execution_date`, v2 `run_after`. */
  sortKey: string;
}

export interface AirflowDag {
  dagId: string;
  isPaused: boolean;
  hasImportErrors: boolean;
}

/** One task instance of a run: its latest try (0 when it has not run). */
export interface AirflowTaskInstance {
  taskId: string;
  tryNumber: number;
  state: string | null;
}

/** One task's state in one run (null: not scheduled yet). */
export interface AirflowRunTaskState {
  dagId: string;
  runId: string;
  state: string | null;
}

/** One piece of a task try's log; `continuationToken` fetches what follows (null: the log ended). */
export interface AirflowLogChunk {
  lines: string[];
  continuationToken: string | null;
}

export interface CallOptions {
  signal: AbortSignal;
}

/**
 * The operations the service needs, over one Airflow REST API version.
 * Implementations translate the generated v1/v2 types; none retries or times
 * out on its own (AirflowClient does).
 */
export interface AirflowApi {
  /**
   * null when Airflow has not parsed the DAG (404), or when its file is gone (Airflow 3: `is_stale`, Airflow 2:
   * `is_active` false) unless `includeStale`.
   */
  getDag(dagId: string, options: CallOptions & { includeStale?: boolean }): Promise<AirflowDag | null>;
  setPaused(dagId: string, paused: boolean, options: CallOptions): Promise<void>;
  /** Creates the run; a run with this id that already exists is returned as is. */
  triggerRun(
    dagId: string,
    runId: string,
    conf: Record<string, unknown>,
    note: string,
    options: CallOptions,
  ): Promise<AirflowRun>;
  setRunFailed(dagId: string, runId: string, options: CallOptions): Promise<void>;
  /** Removes the DAG's metadata; an unknown DAG is not an error. */
  deleteDag(dagId: string, options: CallOptions): Promise<void>;
  /** True when Airflow's own health endpoint answers 2xx. */
  healthy(options: CallOptions): Promise<boolean>;
  /** The task instances of one run (unmapped tasks). */
  listTaskInstances(dagId: string, runId: string, options: CallOptions): Promise<AirflowTaskInstance[]>;
  /** One chunk of a task try's log, from its start or from `token`; 404 (AirflowRequestError) when Airflow has none. */
  getTaskLog(
    dagId: string,
    runId: string,
    taskId: string,
    tryNumber: number,
    token: string | null,
    options: CallOptions,
  ): Promise<AirflowLogChunk>;
  /**
   * The state of task `taskId` in each of the given runs, in one batch request (more only when Airflow pages); a run
   * without that task is left out.
   */
  listTaskStates(
    taskId: string,
    runs: { dagId: string; runId: string }[],
    options: CallOptions,
  ): Promise<AirflowRunTaskState[]>;
  /** Runs of the given DAGs, newest first, in one batch request (more only when Airflow pages). */
  listRuns(dagIds: string[], options: CallOptions): Promise<AirflowRun[]>;
}

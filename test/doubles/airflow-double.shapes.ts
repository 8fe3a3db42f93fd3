import { createHash } from 'node:crypto';
import { DagRecord, RunRecord, TaskRecord } from './airflow.double';

/** DAG and DAG run bodies shaped as Airflow's official specs define them (v1: Airflow 2, v2: Airflow 3). */
export function dagBody(dag: DagRecord, version: 'v1' | 'v2'): unknown {
  const common = {
    dag_id: dag.dagId,
    dag_display_name: dag.dagId,
    is_paused: dag.isPaused,
    last_parsed_time: dag.parsedAt,
    last_expired: null,
    fileloc: dag.fileloc,
    file_token: Buffer.from(dag.fileloc).toString('base64url'),
    owners: ['airflow'],
    description: 'AutoML training',
    timetable_description: dag.autoTrigger ? 'Once, as soon as possible' : 'Never, external triggers only',
    tags: [{ name: 'automl-training' }],
    max_active_tasks: 16,
    max_active_runs: 1,
    has_task_concurrency_limits: false,
    has_import_errors: false,
    next_dagrun_data_interval_start: null,
    next_dagrun_data_interval_end: null,
  };
  if (version === 'v1') {
    return {
      ...common,
      root_dag_id: null,
      is_active: !dag.stale,
      is_subdag: false,
      last_pickled: null,
      scheduler_lock: null,
      pickle_id: null,
      default_view: 'grid',
      schedule_interval: null,
      next_dagrun: null,
      next_dagrun_create_after: null,
    };
  }
  return {
    ...common,
    tags: [{ name: 'automl-training', dag_id: dag.dagId, dag_display_name: dag.dagId }],
    is_stale: dag.stale === true,
    last_parse_duration: 0.05,
    bundle_name: 'dags-folder',
    bundle_version: null,
    relative_fileloc: dag.fileloc.split('/').pop(),
    timetable_summary: dag.autoTrigger ? '@once' : null,
    timetable_partitioned: false,
    max_consecutive_failed_dag_runs: 0,
    next_dagrun_logical_date: null,
    next_dagrun_run_after: null,
    allowed_run_types: null,
    timetable_periodic: false,
    is_backfillable: false,
  };
}

/**
 * Written out key by key, in the order `{ ...base, overrides }` would give: V8 builds a spread
 * whose later keys override earlier ones tens of times slower, which a list of a thousand runs
 * (bulk status) felt as 20-50 ms of the double's own time per answer.
 */
export function runBody(run: RunRecord, version: 'v1' | 'v2', username: string): unknown {
  if (version === 'v1') {
    return {
      dag_run_id: run.runId,
      dag_id: run.dagId,
      logical_date: run.runAfter,
      start_date: run.startDate,
      end_date: run.endDate,
      data_interval_start: null,
      data_interval_end: null,
      last_scheduling_decision: null,
      run_type: run.runType,
      state: run.state,
      conf: run.conf,
      note: run.note,
      execution_date: run.runAfter,
      external_trigger: run.runType === 'manual',
    };
  }
  const scheduled = run.runType === 'scheduled';
  return {
    dag_run_id: run.runId,
    dag_id: run.dagId,
    // Airflow 3: manual runs have no logical date; an @once run's is its start_date.
    logical_date: scheduled ? run.runAfter : null,
    start_date: run.startDate,
    end_date: run.endDate,
    data_interval_start: scheduled ? run.runAfter : null,
    data_interval_end: scheduled ? run.runAfter : null,
    last_scheduling_decision: null,
    run_type: run.runType,
    state: run.state,
    conf: run.conf,
    note: run.note,
    queued_at: run.runAfter,
    duration: run.startDate && run.endDate ? (Date.parse(run.endDate) - Date.parse(run.startDate)) / 1000 : null,
    run_after: run.runAfter,
    triggered_by: run.runType === 'manual' ? 'rest_api' : 'timetable',
    triggering_user_name: run.runType === 'manual' ? username : null,
    dag_versions: [],
    bundle_version: null,
    dag_display_name: run.dagId,
    partition_key: null,
    partition_date: null,
  };
}

export function healthBody(version: 'v1' | 'v2'): unknown {
  const beat = new Date().toISOString();
  const common = {
    metadatabase: { status: 'healthy' },
    scheduler: { status: 'healthy', latest_scheduler_heartbeat: beat },
  };
  if (version === 'v1') return common;
  return {
    ...common,
    triggerer: { status: 'healthy', latest_triggerer_heartbeat: beat },
    dag_processor: { status: 'healthy', latest_dag_processor_heartbeat: beat },
  };
}

/** A task instance of a run, as each version's TaskInstance schema has it. */
export function taskInstanceBody(run: RunRecord, task: TaskRecord, version: 'v1' | 'v2'): unknown {
  const duration =
    task.startDate && task.endDate ? (Date.parse(task.endDate) - Date.parse(task.startDate)) / 1000 : null;
  const operator = task.taskId === 'train' ? 'TrainingOperator' : 'PythonOperator';
  const common = {
    task_id: task.taskId,
    task_display_name: task.taskId,
    dag_id: run.dagId,
    dag_run_id: run.runId,
    start_date: task.startDate,
    end_date: task.endDate,
    duration,
    state: task.state,
    try_number: task.tryNumber,
    map_index: -1,
    max_tries: 0,
    hostname: task.tryNumber > 0 ? 'worker-1' : '',
    unixname: 'airflow',
    pool: 'default_pool',
    pool_slots: 1,
    queue: 'default',
    priority_weight: 1,
    operator,
    queued_when: task.startDate,
    pid: task.tryNumber > 0 ? 4242 : null,
    executor_config: '{}',
    rendered_map_index: null,
    note: null,
  };
  if (version === 'v1') return { ...common, execution_date: run.runAfter };
  return {
    ...common,
    id: createHash('md5')
      .update(`${run.dagId}/${run.runId}/${task.taskId}`)
      .digest('hex')
      .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'),
    logical_date: null,
    run_after: run.runAfter,
    dag_display_name: run.dagId,
    hostname: task.tryNumber > 0 ? 'worker-1' : null,
    operator_name: operator,
    scheduled_when: task.startDate,
    executor: null,
    trigger: null,
    triggerer_job: null,
    dag_version: null,
    // The task's templated fields as rendered when it ran: they are its operator's own (a BashOperator's
    // bash_command, env, cwd); the double models no operator's fields.
    rendered_fields: {},
  };
}

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob } from '../utils/jobs';
import { MlflowRest, trainerVenv, trainingCommand } from '../utils/mlflow-server';
import { RealAirflow, RealAirflowInfo, sleep, startServiceOn } from '../utils/real-airflow';
import { createSourceDatabase, SourceDatabase, withClient } from '../utils/source-database';
import { psk, TEST_PSK, TestApp } from '../utils/test-app';
import { airflowAdminDatabaseUrl, describeRealAirflow, realAirflowInfo } from './real-airflow-env';

const JOBS = '/api/automl/train/jobs';
const TABLE = 'public.long_search';
const FEATURES = Array.from({ length: 24 }, (_, i) => `f${i + 1}`);
/**
 * A table on which the search does not stop before its deadline: 100 000 rows of 24 uniform features (made in
 * PostgreSQL from a fixed seed, in a second) and a label from a noisy sum of non-linear terms and interactions.
 * The trainer's patience rule (30 trials in a row without improvement, and a quarter of the search's time) ends
 * the search early on a table whose trials take a few seconds: a 5-minute job stopped by patience after 79 s on
 * the 569-row breast cancer table and after 175 s on 40 000 rows of this one; on 400 000 rows a trial took three
 * minutes and the training 406 s.
 */
const TABLE_SQL = `
SELECT setseed(0.42);
CREATE TABLE public.long_search AS
SELECT ${FEATURES.map((f) => `random() AS ${f}`).join(', ')} FROM generate_series(1, 100000);
ALTER TABLE public.long_search ADD COLUMN label integer;
UPDATE public.long_search SET label = (
  sin(6 * f1) + 4 * f2 * f3 + 8 * (f4 - 0.5) ^ 2 + f5 * f6 - f7 + cos(5 * f8 * f9) + 2 * (f10 - f11) ^ 2
  + 3 * f12 * (1 - f13) + sin(4 * f14 + f15) + f16 * f17 * f18 + 1.5 * (random() - 0.5) > 3.2)::int;
ANALYZE public.long_search;`;

/**
 * What keeps a long task alive on Airflow 3, cut to seconds so that a few minutes cover many lifetimes:
 * - `[execution_api] jwt_expiration_time`: the task's Execution API token. The task's supervisor heartbeats every
 *   `[workers] min_heartbeat_interval` (5 s) and the api-server's JWTReissueMiddleware
 *   (airflow/api_fastapi/execution_api/app.py) answers a token with less than max(20 % of its life, 30 s) left
 *   with `Refreshed-API-Token`, which the SDK client (airflow/sdk/api/client.py `_update_auth`) takes up. A token
 *   that expires unrefreshed fails every heartbeat; after `[workers] max_failed_heartbeats` (3) the supervisor
 *   (airflow/sdk/execution_time/supervisor.py `_handle_heartbeat_failures`) SIGTERMs the task.
 * - `[scheduler] task_instance_heartbeat_timeout`: a running task instance whose last heartbeat is older than this
 *   is failed by the scheduler (scheduler_job_runner.py `_find_and_purge_task_instances_without_heartbeats`).
 * A 15 s token means every heartbeat is answered with a new one; one missed refresh plus the 10 s
 * `[api_auth] jwt_leeway` and the task dies: exactly the failure to rule out.
 */
export const ACCELERATED_LONG_TASK_SETTINGS = {
  AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME: '15',
  AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT: '30',
  AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL: '5',
};
const TOKEN_LIFETIME_S = Number(ACCELERATED_LONG_TASK_SETTINGS.AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME);
const BUDGET_MINUTES = 4;
const POOL = 'automl_training';

/**
 * A job whose training runs for its whole budget (4 min: 16 token lifetimes) on a real Airflow 3 of its own,
 * started with the accelerated token and heartbeat settings above (the suite's shared Airflow keeps the defaults,
 * so no other scenario runs near those edges), with the real trainer and the suite's MLflow server. The budget
 * binds, not the trial cap (see TABLE_SQL).
 */
describeRealAirflow('a long job on a real Airflow 3 with short-lived tokens and a short heartbeat timeout', () => {
  const info = realAirflowInfo() as RealAirflowInfo;
  let airflow: RealAirflow;
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let source: SourceDatabase;
  let home: string;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'automl-long-job-'));
    const venv = trainerVenv();
    [airflow, source] = await Promise.all([
      RealAirflow.start({
        home,
        dagsDir: join(home, 'dags'),
        adminDatabaseUrl: airflowAdminDatabaseUrl(),
        env: ACCELERATED_LONG_TASK_SETTINGS,
      }),
      createSourceDatabase(airflowAdminDatabaseUrl(), `automl_source_${randomBytes(5).toString('hex')}`),
    ]);
    await withClient(source.ownerUrl, (client) => client.query(TABLE_SQL));
    await airflow.configureForService(TEST_PSK, source.readerUrl, info.mlflowUrl);
    const pool = await airflow.api('POST', '/api/v2/pools', { name: POOL, slots: 2, description: 'AutoML trainings' });
    expect(pool.status).toBe(201);
    keycloak = await KeycloakDouble.start();
    testApp = await startServiceOn({
      ...keycloak.env(),
      ...airflow.serviceEnv(),
      TRAINING_COMMAND: trainingCommand(venv),
      TRAINING_POOL: POOL,
      TRAINING_TIMEOUT_MARGIN_MINUTES: '10',
    });
  }, 600_000);

  afterAll(async () => {
    await testApp?.close();
    await keycloak?.stop();
    await airflow?.stop();
    await source?.drop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('should run its training for its whole budget, over ten token lifetimes, complete by callback and register its model', async () => {
    // The Airflow under test runs with the accelerated settings (read back through Airflow's own configuration).
    const effective = (section: string, key: string) =>
      execFileSync(join(airflow.venv, 'bin', 'airflow'), ['config', 'get-value', section, key], {
        env: airflow.env,
        encoding: 'utf8',
      }).trim();
    expect(effective('execution_api', 'jwt_expiration_time')).toBe(String(TOKEN_LIFETIME_S));
    expect(effective('scheduler', 'task_instance_heartbeat_timeout')).toBe('30');

    const created = await createJob(testApp, {
      name: 'long search',
      domain: 'e2e',
      owner: 'alice',
      source_table: TABLE,
      label_column: 'label',
      feature_columns: FEATURES,
      problem_type: 'binary_classification',
      algorithm: 'lightgbm_classifier',
      preset: 'fast',
      tuning: { trials: 1000, time_budget_minutes: BUDGET_MINUTES },
    });
    const dagId: string = created.airflow_dag_id;
    const deadline = Date.now() + (BUDGET_MINUTES + 6) * 60_000;
    let done: any;
    for (;;) {
      done = (await testApp.http().get(`${JOBS}/${created.job_id}`).set(psk()).expect(200)).body;
      if (['complete', 'failed'].includes(done.status) || Date.now() > deadline) break;
      await sleep(5_000);
    }
    const runs = (await airflow.api('GET', `/api/v2/dags/${dagId}/dagRuns`)).body.dag_runs;
    const train = (await airflow.api('GET', `/api/v2/dags/${dagId}/dagRuns/${runs[0]?.dag_run_id}/taskInstances/train`))
      .body;
    const why = () => `job ${JSON.stringify(done)}\ntrain ${JSON.stringify(train)}\n${taskLog(home, dagId)}`;
    if (done.status !== 'complete') throw new Error(`the long job did not complete: ${why()}`);

    // The DAG as Airflow holds it: the budget plus the service's margin, and the pool.
    const task = (await airflow.api('GET', `/api/v2/dags/${dagId}/tasks/train`)).body;
    expect(task).toMatchObject({ pool: POOL, pool_slots: 1 });
    expect(task.execution_timeout).toMatchObject({ days: 0, seconds: (BUDGET_MINUTES + 10) * 60 });

    // One try, ended by the trainer at its budget, after many token lifetimes.
    const seconds = (Date.parse(train.end_date) - Date.parse(train.start_date)) / 1000;
    process.stdout.write(
      `long job: train ran ${seconds.toFixed(0)} s = ${(seconds / TOKEN_LIFETIME_S).toFixed(1)} token lifetimes of ${TOKEN_LIFETIME_S} s\n`,
    );
    expect({ state: train.state, try_number: train.try_number, pool: train.pool }).toEqual({
      state: 'success',
      try_number: 1,
      pool: POOL,
    });
    expect(seconds).toBeGreaterThan(10 * TOKEN_LIFETIME_S);
    expect(seconds).toBeGreaterThan(BUDGET_MINUTES * 60 * 0.8);
    expect(seconds).toBeLessThan((BUDGET_MINUTES + 10) * 60);
    const log = taskLog(home, dagId);
    expect(log).not.toMatch(
      /Failed to send heartbeat|Too many failed heartbeats|Invalid auth token|Signature has expired/,
    );

    // The callback said complete, and MLflow holds the registered model of the job's run.
    const history = (await testApp.http().get(`${JOBS}/${created.job_id}/history`).set(psk()).expect(200)).body.items;
    expect(history.map((t: { to_status: string; source: string }) => `${t.source}:${t.to_status}`)).toContain(
      'callback:complete',
    );
    const mlflow = new MlflowRest(info.mlflowUrl);
    const found = await mlflow.get('model-versions/search', { filter: `name='${done.registered_model_name}'` });
    expect((found?.model_versions ?? []).filter((v: { run_id: string }) => v.run_id === done.mlflow_run_id)).toEqual([
      expect.objectContaining({ run_id: done.mlflow_run_id, status: 'READY' }),
    ]);
  }, 900_000);
});

/** Every task log file of the DAG under Airflow's home (for failure messages and the heartbeat check). */
function taskLog(home: string, dagId: string): string {
  const root = join(home, 'logs', `dag_id=${dagId}`);
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.push(path);
    }
  };
  try {
    walk(root);
  } catch {
    return `(no task logs under ${root})`;
  }
  return files.map((file) => `--- ${file}\n${readFileSync(file, 'utf8').slice(-20_000)}`).join('\n');
}

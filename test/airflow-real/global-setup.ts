import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import baseSetup from '../setup/global-setup';
import { TEMPLATE_ENV } from '../setup/test-database';
import { MlflowServer, trainerVenv } from '../utils/mlflow-server';
import { RealAirflow } from '../utils/real-airflow';
import { airflowAdminDatabaseUrl, realAirflowDisabled, REAL_AIRFLOW_ENV } from './real-airflow-env';

/**
 * One real Airflow 3 for every test file of the `airflow` project (starting it
 * costs about a minute): the venv from the committed lock (cached), then
 * api-server, scheduler and dag-processor on loopback. Workers find it through
 * REAL_AIRFLOW_ENV; global-teardown stops it and drops its database.
 */
export default async function globalSetup(): Promise<void> {
  // Under `npm test` the e2e project's global-setup may have made the template database already.
  if (!process.env[TEMPLATE_ENV]) await baseSetup();
  if (realAirflowDisabled()) {
    process.stderr.write('\n*** AIRFLOW_E2E=off: the real-Airflow e2e tests are SKIPPED ***\n\n');
    return;
  }
  const home = mkdtempSync(join(tmpdir(), 'automl-real-airflow-'));
  const started = Date.now();
  // The trainer's venv first (it holds the MLflow server), then Airflow and MLflow start side by side.
  const venv = trainerVenv();
  const [airflow, mlflow] = await Promise.all([
    RealAirflow.start({ home, dagsDir: join(home, 'dags'), adminDatabaseUrl: airflowAdminDatabaseUrl() }),
    MlflowServer.start(join(home, 'mlflow'), venv),
  ]);
  Object.assign(globalThis, { realAirflow: airflow, realMlflow: mlflow });
  process.env[REAL_AIRFLOW_ENV] = JSON.stringify({
    url: airflow.url,
    username: airflow.username,
    password: airflow.password,
    dagsDir: airflow.options.dagsDir,
    home,
    pids: airflow.processPids(),
    mlflowUrl: mlflow.url,
  });
  const { total } = airflow.rssMiB();
  process.stderr.write(
    `\nreal Airflow ${airflow.url} and MLflow ${mlflow.url} up in ${Date.now() - started} ms (venv ${airflow.timings.venvMs} ms, db migrate ${airflow.timings.migrateMs} ms, ` +
      `healthy ${airflow.timings.healthyMs} ms), RSS ${total} MiB, home ${home}\n`,
  );
}

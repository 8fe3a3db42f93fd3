/**
 * `npm run stack`: the whole platform on this machine without Docker, wired, on loopback.
 *
 * Installs (cached by lock hash) and starts Apache Airflow 3 (api-server, scheduler, dag-processor;
 * LocalExecutor), an MLflow tracking server (one worker, no job runner) and the built service; creates the
 * service's database and, apart from it, a source database with a read-only role for the trainer, and loads
 * scikit-learn's bundled breast cancer data there as `samples.breast_cancer`; sets Airflow's PSK Variable and
 * the `automl_source` (that role) / `automl_mlflow` Connections through its REST API; prints how to create a
 * job in Swagger UI, how to load a table of your own, and the memory of every process. Ctrl-C stops everything
 * and drops the databases and the role it made.
 *
 * Environment: STACK_DATABASE_URL (a PostgreSQL server it may create databases and roles on, as a superuser; default
 * postgres://postgres@127.0.0.1:5432/postgres), STACK_DIR (state; default .data/stack), PORT (service;
 * default 3000 when free). `npm run stack -- --demo` also creates a job through the API and follows it
 * to `complete` and its model version in MLflow.
 *
 * `npm run stack -- --executor celery`: the CeleryExecutor with the local Redis as broker (STACK_REDIS_URL, default
 * redis://127.0.0.1:6379/<a random database 1-15>) and two Celery workers with their own working directories,
 * temporary files and task logs, sharing only the DAG folder: `small` serves the default queue and `train`,
 * `large` serves `train-large`, where best_quality jobs go (TRAINING_QUEUE_BY_PRESET); a pool of STACK_POOL_SLOTS
 * (default 1) caps the trainings running at once. Every component shares the JWT secret and the execution API URL,
 * and Redis's visibility timeout is above the longest budget (see docs/deployment.md).
 *
 * `npm run stack -- --dask N`: also a Dask scheduler and N workers (one thread each, STACK_DASK_MEMORY each, default
 * 2GiB) from the trainer's venv, and the Airflow Connection `automl_dask` naming the scheduler: a LightGBM or XGBoost
 * table the trainer's memory estimate refuses trains its final model across them (see docs/deployment.md).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { MlflowServer, loadSampleTable, trainerVenv, trainingCommand } from '../test/utils/mlflow-server';
import { createSourceDatabase, SOURCE_SCHEMA, sqlalchemyUrl } from '../test/utils/source-database';
import { freePort } from '../test/utils/net';
import { airflowVenv, RealAirflow, sleep, treeRssMiB } from '../test/utils/real-airflow';
import { STACK_CELERY_SERVICE_ENV, STACK_POOL, stackCelery } from '../test/utils/celery-stack';
import { ROOT, SERVICE_MAIN } from '../test/utils/service-main';
import { DaskCluster } from '../test/utils/dask-cluster';

const ADMIN_URL = process.env.STACK_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DIR = resolve(process.env.STACK_DIR ?? join(ROOT, '.data', 'stack'));
const TABLE = `${SOURCE_SCHEMA}.breast_cancer`;
const say = (line = '') => process.stdout.write(`${line}\n`);

async function sql(url: string, statement: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return new Promise((done) => {
    const server = createServer()
      .once('error', () => done(false))
      .listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

function executorArgument(): 'local' | 'celery' {
  const at = process.argv.indexOf('--executor');
  const value = at >= 0 ? process.argv[at + 1] : 'local';
  if (value !== 'local' && value !== 'celery') throw new Error(`--executor takes local or celery (got ${value})`);
  return value;
}

function daskArgument(): number {
  const at = process.argv.indexOf('--dask');
  if (at < 0) return 0;
  const workers = Number(process.argv[at + 1]);
  if (!Number.isInteger(workers) || workers < 1 || workers > 16)
    throw new Error(`--dask takes a number of workers, 1 to 16 (got ${process.argv[at + 1]})`);
  return workers;
}

async function main(): Promise<void> {
  const demo = process.argv.includes('--demo');
  const daskWorkers = daskArgument();
  const executor = executorArgument();
  const poolSlots = Number(process.env.STACK_POOL_SLOTS ?? '1');
  const celery =
    executor === 'celery'
      ? stackCelery(process.env.STACK_REDIS_URL ?? `redis://127.0.0.1:6379/${1 + Math.floor(Math.random() * 15)}`)
      : undefined;
  const started = Date.now();
  const step = (what: string) => say(`[stack ${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });

  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\n[stack] stopping: service, Airflow, MLflow; dropping the stack databases');
    for (const stop of stops.reverse()) await stop().catch((error) => say(`[stack] ${String(error)}`));
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    step('Python venvs from the committed locks (built once, then cached by lock hash)');
    airflowVenv();
    const venv = trainerVenv();

    const database = `automl_stack_${randomBytes(4).toString('hex')}`;
    const serviceDb = new URL(ADMIN_URL);
    serviceDb.pathname = `/${database}`;
    await sql(ADMIN_URL, `CREATE DATABASE "${database}"`);
    stops.push(() => sql(ADMIN_URL, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
    // User tables live apart from the service's data, read by a role that can read nothing else and write nothing.
    const source = await createSourceDatabase(ADMIN_URL, `${database}_source`, [database]);
    stops.push(() => source.drop());
    step(`sample table: ${loadSampleTable(sqlalchemyUrl(source.ownerUrl), TABLE, venv)} (database ${source.database})`);

    step('MLflow tracking server and Airflow 3 (db migrate, api-server, scheduler, dag-processor), side by side');
    const mlflowStarting = MlflowServer.start(join(DIR, 'mlflow'), venv).then(
      (server) => (stops.push(() => server.stop()), server),
    );
    const airflowStarting = RealAirflow.start({
      home: join(DIR, 'airflow'),
      dagsDir: join(DIR, 'dags'),
      adminDatabaseUrl: ADMIN_URL,
      password: 'admin',
      celery,
    }).then((started) => (stops.push(() => started.stop()), started));
    const [mlflow, airflow] = await Promise.all([mlflowStarting, airflowStarting]);
    await sql(ADMIN_URL, `REVOKE CONNECT, TEMPORARY ON DATABASE "${airflow.options.databaseName}" FROM PUBLIC`);

    const psk = `stack-${randomBytes(16).toString('hex')}`;
    await airflow.configureForService(psk, source.readerUrl, mlflow.url);
    let dask: DaskCluster | undefined;
    if (daskWorkers > 0) {
      const memoryLimit = process.env.STACK_DASK_MEMORY ?? '2GiB';
      dask = await DaskCluster.start({ dir: join(DIR, 'dask'), venv, workers: daskWorkers, memoryLimit });
      stops.push(() => dask!.stop());
      await airflow.setConnection({
        connection_id: 'automl_dask',
        conn_type: 'generic',
        host: '127.0.0.1',
        port: dask.port,
      });
      step(`Dask: scheduler ${dask.address}, ${daskWorkers} worker(s) of ${memoryLimit}; Connection automl_dask`);
    }
    if (celery) {
      const pool = await airflow.api('POST', '/api/v2/pools', {
        name: STACK_POOL,
        slots: poolSlots,
        description: 'AutoML trainings running at once',
      });
      if (pool.status !== 201) throw new Error(`POST /api/v2/pools: ${pool.status} ${JSON.stringify(pool.body)}`);
      step(
        `CeleryExecutor, broker ${celery.brokerUrl}; workers ${celery.workers
          .map((w) => `${w.name} (queues ${w.queues.join(',')}, ${w.concurrency} slots)`)
          .join(', ')}; pool ${STACK_POOL}: ${poolSlots} training(s) at once (STACK_POOL_SLOTS)`,
      );
    }

    step('the service (dist/main.js)');
    const port = process.env.PORT ? Number(process.env.PORT) : (await portFree(3000)) ? 3000 : await freePort();
    const service: ChildProcess = spawn(process.execPath, [SERVICE_MAIN], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'development',
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
        PORT: String(port),
        DATABASE_URL: serviceDb.toString(),
        API_PSK: psk,
        AIRFLOW_URL: airflow.url,
        AIRFLOW_API_VERSION: 'v2',
        AIRFLOW_USERNAME: airflow.username,
        AIRFLOW_PASSWORD: airflow.password,
        AIRFLOW_DAGS_DIR: airflow.options.dagsDir,
        AIRFLOW_TIMEOUT_MS: '30000',
        RECONCILE_INTERVAL_MS: '15000',
        // A busy laptop's Airflow can take seconds to list runs; the default 2 s budget would mostly answer from the database.
        RECONCILE_BUDGET_MS: '10000',
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        TRAINING_COMMAND: trainingCommand(venv),
        MLFLOW_UI_URL: mlflow.url,
        ...(celery ? STACK_CELERY_SERVICE_ENV : {}),
      },
    });
    stops.push(async () => {
      service.kill('SIGTERM');
      for (let i = 0; i < 50 && service.exitCode === null && service.signalCode === null; i++) await sleep(100);
    });
    service.on('exit', (code) => {
      if (!stopping) {
        say(`[stack] the service exited (${code}); stopping`);
        void stopAll(1);
      }
    });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ready = await fetch(`${base}/health/ready`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ready) break;
      if (i > 120) throw new Error('the service did not become ready in 60 s');
      await sleep(500);
    }
    const memory = {
      ...airflow.rssMiB().byProcess,
      mlflow: mlflow.rssMiB(),
      service: service.pid === undefined ? 0 : treeRssMiB(service.pid),
      ...(dask ? Object.fromEntries(Object.entries(dask.rssMiB()).map(([name, mib]) => [`dask-${name}`, mib])) : {}),
    };
    const total = Object.values(memory).reduce((sum, mib) => sum + mib, 0);
    step(
      `up; RSS ${total} MiB: ${Object.entries(memory)
        .map(([name, mib]) => `${name} ${mib}`)
        .join(', ')} (MiB, with their workers)`,
    );

    const example = {
      name: 'breast cancer',
      domain: 'demo',
      owner: 'newcomer',
      source_table: TABLE,
      label_column: 'malignant',
      feature_columns: null,
      problem_type: 'binary_classification',
      algorithm: 'lightgbm_classifier',
      preset: 'fast',
    };
    say(`
  AutoML Training service  ${base}/docs
  Airflow 3                ${airflow.url}          (admin / ${airflow.password})
  MLflow                   ${mlflow.url}
  PostgreSQL               ${serviceDb.toString()} (the service's tables)
  Source tables            ${source.ownerUrl} (sample ${TABLE}; Airflow's automl_source
                           Connection reads it as ${source.role}: read-only, and no access to the service's database)

  Load a CSV of your own (header row first; the table is created, column types inferred) and train on it:
    ${join(venv, 'bin', 'python')} ${join(ROOT, 'scripts', 'sample_table.py')} '${sqlalchemyUrl(source.ownerUrl)}' ${SOURCE_SCHEMA}.my_table my_table.csv

  Create a job in Swagger UI:
    1. open ${base}/docs, click Authorize, paste into APIKeyHeader (Authorization-PSK):
         ${psk}
    2. POST /api/automl/train/jobs → Try it out → this body → Execute:
         ${JSON.stringify(example)}
    3. GET /api/automl/train/jobs/{job_id} (or /history): queued → running → complete in a minute or two,
       with mlflow_run_id and registered_model_name; mlflow_run_url and model_version_url open the run
       and the registered model version in MLflow's UI.

  Ctrl-C stops everything.
`);

    if (demo) await runDemo(base, psk, example, mlflow, step);
  } catch (error) {
    say(`[stack] failed: ${(error as Error).stack ?? String(error)}`);
    await stopAll(1);
  }
}

/** Creates the example job through the API and follows it to a terminal status and its model version. */
async function runDemo(
  base: string,
  psk: string,
  body: Record<string, unknown>,
  mlflow: MlflowServer,
  step: (what: string) => void,
): Promise<void> {
  const headers = { 'Authorization-PSK': psk, 'content-type': 'application/json' };
  const created = await fetch(`${base}/api/automl/train/jobs`, { method: 'POST', headers, body: JSON.stringify(body) });
  const job = (await created.json()) as { job_id: string; status: string };
  step(`demo: created job ${job.job_id} (${created.status}, ${job.status})`);
  let last = job.status;
  for (;;) {
    await sleep(2_000);
    const current = (await (await fetch(`${base}/api/automl/train/jobs/${job.job_id}`, { headers })).json()) as {
      status: string;
    } & Record<string, string | null>;
    if (current.status !== last) {
      step(`demo: ${last} → ${current.status}${current.error_message ? ` (${current.error_message})` : ''}`);
      last = current.status;
    }
    if (current.status === 'complete' || current.status === 'failed') {
      if (current.status === 'complete') {
        const versions = await mlflow.get('model-versions/search', {
          filter: `name='${current.registered_model_name}'`,
        });
        const version = versions?.model_versions?.find((v: { run_id: string }) => v.run_id === current.mlflow_run_id);
        step(
          `demo: mlflow_run_id ${current.mlflow_run_id}, model ${current.registered_model_name} version ${version?.version} (${version?.status})`,
        );
        step(`demo: in MLflow's UI: ${current.mlflow_run_url} and ${current.model_version_url}`);
      }
      return;
    }
  }
}

void main();

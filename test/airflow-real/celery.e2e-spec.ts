import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob } from '../utils/jobs';
import { loadSampleTable, MlflowRest, trainerVenv, trainingCommand } from '../utils/mlflow-server';
import { commandLine, descendants, RealAirflow, RealAirflowInfo, sleep, startServiceOn } from '../utils/real-airflow';
import { createSourceDatabase, SourceDatabase, sqlalchemyUrl } from '../utils/source-database';
import { bearer, psk, TEST_PSK, TestApp } from '../utils/test-app';
import { STACK_CELERY_SERVICE_ENV, STACK_POOL, stackCelery } from '../utils/celery-stack';
import { airflowAdminDatabaseUrl, describeRealAirflow, realAirflowInfo } from './real-airflow-env';

const JOBS = '/api/automl/train/jobs';
const TABLE = 'public.breast_cancer';
const FEATURES = ['mean_radius', 'mean_texture', 'mean_perimeter', 'mean_area', 'mean_smoothness', 'worst_concavity'];

/**
 * `npm run stack -- --executor celery`'s platform, on an Airflow 3.3.2 of its own: the CeleryExecutor with the local
 * Redis as broker, two workers with their own working directories sharing only the DAG folder (`small`: queues
 * default and train; `large`: train-large), the service routing best_quality jobs to train-large, and a pool of one
 * slot over every training. Jobs go through the service's API only.
 */
describeRealAirflow('jobs on the CeleryExecutor: two workers, queues by preset, a pool of one', () => {
  const info = realAirflowInfo() as RealAirflowInfo;
  let airflow: RealAirflow;
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let source: SourceDatabase;
  let home: string;
  const mlflow = new MlflowRest(info.mlflowUrl);
  const user = () => bearer(keycloak.token({ preferred_username: 'alice' }));
  const job = async (id: string) => (await testApp.http().get(`${JOBS}/${id}`).set(psk()).expect(200)).body;

  /** The train task instance of a job's one run (null before the run exists). */
  async function trainTask(dagId: string): Promise<any> {
    const runs = (await airflow.api('GET', `/api/v2/dags/${dagId}/dagRuns`)).body?.dag_runs ?? [];
    if (runs.length === 0) return null;
    const ti = await airflow.api('GET', `/api/v2/dags/${dagId}/dagRuns/${runs[0].dag_run_id}/taskInstances/train`);
    return ti.status === 200 ? ti.body : null;
  }

  /** The trainer processes under one worker. */
  function trainerPids(worker: string): number[] {
    const pid = airflow.processPids()[`worker-${worker}`];
    return descendants(pid).filter((p) => (commandLine(p) ?? '').includes('-m automl_trainer'));
  }

  async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms: number): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms\n${airflow.logTail('scheduler', 30)}`);
      await sleep(500);
    }
  }

  const request = (overrides: Record<string, unknown>) => ({
    name: 'celery',
    domain: 'e2e',
    owner: 'alice',
    source_table: TABLE,
    label_column: 'malignant',
    feature_columns: FEATURES,
    problem_type: 'binary_classification',
    algorithm: 'lightgbm_classifier',
    ...overrides,
  });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'automl-celery-'));
    const venv = trainerVenv();
    const broker = `redis://127.0.0.1:6379/${1 + Math.floor(Math.random() * 15)}`;
    [airflow, source] = await Promise.all([
      RealAirflow.start({
        home,
        dagsDir: join(home, 'dags'),
        adminDatabaseUrl: airflowAdminDatabaseUrl(),
        celery: stackCelery(broker),
      }),
      createSourceDatabase(airflowAdminDatabaseUrl(), `automl_source_${randomBytes(5).toString('hex')}`),
    ]);
    loadSampleTable(sqlalchemyUrl(source.ownerUrl), TABLE, venv);
    await airflow.configureForService(TEST_PSK, source.readerUrl, info.mlflowUrl);
    const pool = await airflow.api('POST', '/api/v2/pools', { name: STACK_POOL, slots: 1, description: 'trainings' });
    expect(pool.status).toBe(201);
    keycloak = await KeycloakDouble.start();
    testApp = await startServiceOn({
      ...keycloak.env(),
      ...airflow.serviceEnv(),
      TRAINING_COMMAND: trainingCommand(venv),
      ...STACK_CELERY_SERVICE_ENV,
    });
  }, 600_000);

  afterAll(async () => {
    await testApp?.close();
    await keycloak?.stop();
    if (airflow) {
      process.stdout.write(`celery stack RSS: ${JSON.stringify(airflow.rssMiB())}\n`);
      await airflow.stop();
    }
    await source?.drop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('should route each job to its queue’s worker, hold the cap, call back and register from both workers', async () => {
    const small = await createJob(testApp, request({ name: 'celery small', preset: 'fast', tuning: { trials: 3 } }));
    const large = await createJob(
      testApp,
      request({ name: 'celery large', preset: 'best_quality', tuning: { trials: 3 } }),
    );
    const jobs = [small, large];
    const states: Record<string, string>[] = [];
    const waitedSince: Record<string, number> = {};
    const waited: Record<string, number> = {};
    // What the service showed (bulk status, reconciled against Airflow) for a job while its train task waited.
    const shownWhileWaiting: string[] = [];
    const deadline = Date.now() + 300_000;
    for (;;) {
      const tis = await Promise.all(jobs.map((j) => trainTask(j.airflow_dag_id)));
      const shown = (
        await testApp
          .http()
          .get(`${JOBS}/status?${jobs.map((j) => `ids=${j.job_id}`).join('&')}`)
          .set(user())
          .expect(200)
      ).body.items as { job_id: string; status: string }[];
      // The train task's state after the service answered: still waiting then means it waited while it answered.
      const after = await Promise.all(jobs.map((j) => trainTask(j.airflow_dag_id)));
      const sample: Record<string, string> = {};
      tis.forEach((ti, i) => {
        const state = ti?.state ?? 'none';
        sample[jobs[i].job_id] = state;
        // Waiting behind the cap: the run is on, its train task not yet running.
        const waiting = (s: string | undefined) => ['scheduled', 'queued'].includes(s ?? '');
        if (waiting(state)) waitedSince[jobs[i].job_id] ??= Date.now();
        if (waiting(state) && waiting(after[i]?.state))
          shownWhileWaiting.push(shown.find((item) => item.job_id === jobs[i].job_id)!.status);
        if (state === 'running' && waitedSince[jobs[i].job_id] !== undefined && waited[jobs[i].job_id] === undefined)
          waited[jobs[i].job_id] = Date.now() - waitedSince[jobs[i].job_id];
      });
      states.push(sample);
      const done = await Promise.all(jobs.map((j) => job(j.job_id)));
      if (done.every((d) => ['complete', 'failed'].includes(d.status)) || Date.now() > deadline) break;
      await sleep(500);
    }
    // A job whose training waits behind the pool is `queued` for its user, never `running`.
    expect(shownWhileWaiting.length).toBeGreaterThan(0);
    expect([...new Set(shownWhileWaiting)]).toEqual(['queued']);
    // The cap: never two trainings running at once.
    const running = states.map((sample) => Object.values(sample).filter((state) => state === 'running').length);
    expect(Math.max(...running)).toBe(1);
    // One waited while the other trained (its task held back by the pool, not queued on a worker).
    const heldBack = states.some(
      (sample) => Object.values(sample).includes('running') && Object.values(sample).includes('scheduled'),
    );
    expect(heldBack).toBe(true);
    process.stdout.write(`celery: waits behind the pool of one, ms: ${JSON.stringify(waited)}\n`);

    for (const [created, worker, queue] of [
      [small, 'small', 'train'],
      [large, 'large', 'train-large'],
    ] as const) {
      const done = await job(created.job_id);
      expect(done).toMatchObject({ status: 'complete', error_message: null });
      const ti = await trainTask(created.airflow_dag_id);
      expect({ hostname: ti.hostname, queue: ti.queue, pool: ti.pool, state: ti.state }).toEqual({
        hostname: worker,
        queue,
        pool: STACK_POOL,
        state: 'success',
      });
      const found = await mlflow.get('model-versions/search', { filter: `name='${done.registered_model_name}'` });
      expect((found?.model_versions ?? []).map((v: { run_id: string }) => v.run_id)).toContain(done.mlflow_run_id);
    }
  }, 420_000);

  it('should stop a training on either worker when its job is cancelled', async () => {
    const long = { trials: 1000, time_budget_minutes: 5 };
    const jobs = [
      {
        created: await createJob(testApp, request({ name: 'cancel small', preset: 'fast', tuning: long })),
        worker: 'small',
      },
      {
        created: await createJob(testApp, request({ name: 'cancel large', preset: 'best_quality', tuning: long })),
        worker: 'large',
      },
    ];
    // The pool lets one train at a time: cancel whichever runs, then the other once it has the slot.
    for (let round = 0; round < 2; round++) {
      const { created, worker } = await waitFor(
        'a training running',
        async () => {
          for (const entry of jobs) {
            if ((await job(entry.created.job_id)).status === 'failed') continue;
            const ti = await trainTask(entry.created.airflow_dag_id);
            if (ti?.state === 'running' && trainerPids(entry.worker).length > 0) return entry;
          }
          return null;
        },
        180_000,
      );
      const trainers = trainerPids(worker);
      const cancelled = await testApp.http().post(`${JOBS}/${created.job_id}/cancel`).set(user()).expect(200);
      expect(cancelled.body).toMatchObject({ status: 'failed', error_message: 'cancelled by alice' });
      await waitFor('the trainer gone', async () => trainers.every((pid) => !commandLine(pid)), 60_000);
      const ti = await trainTask(created.airflow_dag_id);
      expect(ti.hostname).toBe(worker);
    }
  }, 420_000);
});

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AirflowDouble } from '../doubles/airflow.double';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob, writeback } from '../utils/jobs';
import { bearer, psk, startTestAppWithAirflow, startTestAppWithKeycloak, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';

describe.each(['v1', 'v2'] as const)('orchestration with Airflow %s', (version) => {
  let keycloak: KeycloakDouble;
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let dagsDir: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({
      keycloak,
      airflow,
      testApp,
      dagsDir,
      close: stop,
    } = await startTestAppWithAirflow({ version, env: { AIRFLOW_TIMEOUT_MS: '1000' } }));
  });

  afterEach(() => {
    expect(airflow.violations).toEqual([]);
  });

  afterAll(() => stop());

  const user = () => bearer(keycloak.token({ preferred_username: 'alice' }));
  const statuses = async (...ids: string[]) =>
    (
      await testApp
        .http()
        .get(`${JOBS}/status?${ids.map((id) => `ids=${id}`).join('&')}`)
        .set(psk())
        .expect(200)
    ).body.items;
  const history = async (id: string) =>
    (await testApp.http().get(`${JOBS}/${id}/history`).set(psk()).expect(200)).body.items;

  it('should run an auto-triggered job end to end: file → parsed → running → complete', async () => {
    const job = await createJob(testApp);
    expect(job.airflow_dag_url).toBe(
      version === 'v1' ? `${airflow.url}/dags/${job.airflow_dag_id}/grid` : `${airflow.url}/dags/${job.airflow_dag_id}`,
    );
    expect(existsSync(join(dagsDir, `${job.airflow_dag_id}.py`))).toBe(true);
    expect(airflow.parse()).toContain(job.airflow_dag_id);
    expect(airflow.runsOf(job.airflow_dag_id)).toHaveLength(1);

    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    airflow.setRunState(job.airflow_dag_id, 'running');
    const done = await writeback(testApp, job.job_id, {
      status: 'complete',
      mlflow_run_id: 'mlf-1',
      registered_model_name: 'marketing.churn',
    }).expect(200);
    expect(done.body).toMatchObject({
      status: 'complete',
      mlflow_run_id: 'mlf-1',
      registered_model_name: 'marketing.churn',
    });
    airflow.setRunState(job.airflow_dag_id, 'success');

    const before = airflow.requests.length;
    expect(await statuses(job.job_id)).toEqual([expect.objectContaining({ job_id: job.job_id, status: 'complete' })]);
    expect(airflow.requests.length).toBe(before);
    expect((await history(job.job_id)).map((t: { to_status: string }) => t.to_status)).toEqual([
      'queued',
      'running',
      'complete',
    ]);
  });

  it('should reconcile 200 non-terminal jobs with one batch request for their runs (and one for the train tasks of the runs that started) and apply the mapped states', async () => {
    await testApp.reset();
    const jobs = [];
    for (let i = 0; i < 200; i++) jobs.push(await createJob(testApp, { name: `bulk ${i}` }));
    airflow.parse();
    // A started run whose train task waits for a pool slot ('held') is still queued for its user.
    const states = ['queued', 'running', 'success', 'failed', 'held'] as const;
    jobs.forEach((job, i) =>
      states[i % 5] === 'held'
        ? airflow.holdTraining(job.airflow_dag_id)
        : airflow.setRunState(job.airflow_dag_id, states[i % 5] as Exclude<(typeof states)[number], 'held'>),
    );

    const apiRequests = () => airflow.requests.filter((r) => !r.path.startsWith('/auth/'));
    const tokenRequests = () => airflow.count('POST', '/auth/token');
    const [apiBefore, tokensBefore] = [apiRequests().length, tokenRequests()];
    const items = await statuses(...jobs.map((job) => job.job_id));
    // Two batch requests for all 200 (Airflow 3 may first fetch its bearer token, once per process): the runs, then
    // the train tasks of the 80 runs that started while their jobs were queued.
    const made = apiRequests().slice(apiBefore);
    expect(made.map((r) => `${r.method} ${r.path.replace(/^\/api\/v[12]/, '')}`)).toEqual([
      'POST /dags/~/dagRuns/list',
      'POST /dags/~/dagRuns/~/taskInstances/list',
    ]);
    expect((made[1].body as { task_ids: string[]; dag_ids: string[] }).task_ids).toEqual(['train']);
    expect((made[1].body as { dag_ids: string[] }).dag_ids).toHaveLength(80);
    expect(tokenRequests() - tokensBefore).toBeLessThanOrEqual(1);

    const expected = ['queued', 'running', 'complete', 'failed', 'queued'];
    expect(items.map((item: { status: string }) => item.status)).toEqual(jobs.map((_, i) => expected[i % 5]));
    const failed = items[3];
    expect(failed.error_message).toMatch(/^Airflow run .+ failed$/);
    expect(await history(jobs[2].job_id)).toEqual([
      expect.objectContaining({ to_status: 'queued', source: 'user' }),
      expect.objectContaining({ from_status: 'queued', to_status: 'complete', source: 'reconcile', actor: 'airflow' }),
    ]);

    // Terminal now: a second refresh of the finished half costs no Airflow call.
    const finished = jobs.filter((_, i) => i % 5 === 2 || i % 5 === 3).map((job) => job.job_id);
    const again = airflow.requests.length;
    await statuses(...finished);
    expect(airflow.requests.length).toBe(again);
  });

  it("should show a started run as running when Airflow refuses the train tasks' states, and as stored when they do not come in time", async () => {
    const [refused, slow] = [await createJob(testApp), await createJob(testApp)];
    airflow.parse();
    airflow.holdTraining(refused.airflow_dag_id);
    airflow.holdTraining(slow.airflow_dag_id);
    airflow.withoutTaskInstanceBatch = true;
    try {
      // Refused (an Airflow without the batch endpoint): the run's own state decides.
      expect((await statuses(refused.job_id)).map((item: { status: string }) => item.status)).toEqual(['running']);
    } finally {
      airflow.withoutTaskInstanceBatch = false;
    }
    // No answer within the budget: the job stands as stored.
    airflow.latencyMs = 1_500;
    try {
      expect((await statuses(slow.job_id)).map((item: { status: string }) => item.status)).toEqual(['queued']);
    } finally {
      airflow.latencyMs = 0;
    }
  });

  it('should never let a stale reconcile overwrite a racing writeback', async () => {
    const job = await createJob(testApp);
    airflow.parse();
    airflow.setRunState(job.airflow_dag_id, 'running');
    airflow.latencyMs = 400;
    try {
      const refresh = statuses(job.job_id);
      await new Promise((r) => setTimeout(r, 100));
      await writeback(testApp, job.job_id, { status: 'complete', mlflow_run_id: 'won' }).expect(200);
      const [item] = await refresh;
      expect(item.status).toBe('complete');
    } finally {
      airflow.latencyMs = 0;
    }
    const stored = (await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(200)).body;
    expect(stored).toMatchObject({ status: 'complete', mlflow_run_id: 'won' });
    expect(
      (await history(job.job_id)).map((t: { source: string; to_status: string }) => `${t.source}:${t.to_status}`),
    ).toEqual(['user:queued', 'callback:complete']);
  });

  it('should name runs after the job and a time, and answer the current run id on the job', async () => {
    const second = (iso: string) => `${iso.slice(0, 19)}+00:00`;
    const auto = await createJob(testApp);
    // The @once DAG's start_date is the job's creation (to the second): its run's logical date and id say so.
    expect(auto.airflow_run_id).toMatch(/^scheduled__\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    expect(
      Math.abs(Date.parse(auto.airflow_run_id.slice('scheduled__'.length)) - Date.parse(auto.created_at)),
    ).toBeLessThan(2_000);
    expect(auto.rendered_dag).toContain(
      `start_date=datetime.fromisoformat("${auto.airflow_run_id.slice('scheduled__'.length)}")`,
    );
    airflow.parse();
    expect(airflow.runsOf(auto.airflow_dag_id).map((run) => run.runId)).toEqual([auto.airflow_run_id]);
    expect((await testApp.http().get(`${JOBS}/${auto.job_id}`).set(psk()).expect(200)).body.airflow_run_id).toBe(
      auto.airflow_run_id,
    );

    const manual = await createJob(testApp, {}, false);
    expect(manual.airflow_run_id).toBeNull();
    airflow.parse();
    const triggered = (await testApp.http().post(`${JOBS}/${manual.job_id}/trigger`).set(user()).expect(200)).body;
    expect(triggered.airflow_run_id).toBe(`manual__${second(manual.updated_at)}__${manual.job_id}__v1`);
    expect(airflow.runsOf(manual.airflow_dag_id).map((run) => run.runId)).toEqual([triggered.airflow_run_id]);
    const listed = (await testApp.http().get(`${JOBS}?limit=500`).set(psk()).expect(200)).body.items;
    expect(listed.find((j: { job_id: string }) => j.job_id === manual.job_id).airflow_run_id).toBe(
      triggered.airflow_run_id,
    );
    // A retry is a new version of the job: a new run, named after the failure it retries.
    const failed = (await writeback(testApp, manual.job_id, { status: 'failed', error_message: 'OOM' }).expect(200))
      .body;
    const retried = (await testApp.http().post(`${JOBS}/${manual.job_id}/trigger`).set(user()).expect(200)).body;
    expect(retried.airflow_run_id).toBe(`manual__${second(failed.updated_at)}__${manual.job_id}__v3`);
    expect(
      airflow
        .runsOf(manual.airflow_dag_id)
        .map((run) => run.runId)
        .sort(),
    ).toEqual([triggered.airflow_run_id, retried.airflow_run_id].sort());
  });

  it('should trigger a manual job only once Airflow has parsed it, and retry a failed one', async () => {
    const job = await createJob(testApp, {}, false);
    expect(job.status).toBe('ready');
    const early = await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user()).expect(409);
    expect(early.body.error).toContain('has not parsed');

    airflow.parse();
    expect(airflow.runsOf(job.airflow_dag_id)).toHaveLength(0);
    airflow.dag(job.airflow_dag_id)!.isPaused = true;
    const triggered = await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user()).expect(200);
    expect(triggered.body).toMatchObject({ status: 'queued', error_message: null });
    expect(airflow.dag(job.airflow_dag_id)!.isPaused).toBe(false);
    const [run] = airflow.runsOf(job.airflow_dag_id);
    expect(run).toMatchObject({ runType: 'manual', state: 'queued', conf: { job_id: job.job_id } });

    await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user()).expect(409);
    await writeback(testApp, job.job_id, { status: 'failed', error_message: 'OOM' }).expect(200);
    const retried = await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user()).expect(200);
    expect(retried.body).toMatchObject({ status: 'queued', error_message: null });
    expect(airflow.runsOf(job.airflow_dag_id)).toHaveLength(2);
    expect(
      (await history(job.job_id)).map(
        (t: { source: string; to_status: string; actor: string }) => `${t.source}:${t.to_status}:${t.actor}`,
      ),
    ).toEqual(['user:ready:psk', 'user:queued:alice', 'callback:failed:airflow', 'user:queued:alice']);
  });

  it("should read a completed job's metrics and model version from GET /jobs/{id} and its train-task log from /logs", async () => {
    const job = await createJob(testApp);
    airflow.parse();
    const training = Array.from({ length: 250 }, (_, i) => `trial ${i}: roc_auc=${(0.5 + i / 1000).toFixed(3)}`);
    airflow.writeTaskLog(job.airflow_dag_id, 'train', training.slice(0, 1));
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    airflow.writeTaskLog(job.airflow_dag_id, 'train', training.slice(1), { state: 'success' });
    await writeback(testApp, job.job_id, {
      status: 'complete',
      mlflow_run_id: 'mlf-9',
      registered_model_name: 'marketing.churn',
      model_version: '4',
      objective: 'roc_auc',
      metrics: { roc_auc: 0.749, accuracy: 0.81 },
    }).expect(200);
    airflow.setRunState(job.airflow_dag_id, 'success');

    const read = (await testApp.http().get(`${JOBS}/${job.job_id}`).set(user()).expect(200)).body;
    expect(read).toMatchObject({
      status: 'complete',
      model_version: '4',
      objective: 'roc_auc',
      metrics: { roc_auc: 0.749, accuracy: 0.81 },
    });

    const logsResponse = await testApp.http().get(`${JOBS}/${job.job_id}/logs`).set(user());
    expect({ status: logsResponse.status, body: logsResponse.status === 200 ? null : logsResponse.body }).toEqual({
      status: 200,
      body: null,
    });
    const logs = logsResponse.body;
    expect(logs).toMatchObject({
      job_id: job.job_id,
      dag_id: job.airflow_dag_id,
      run_id: airflow.runsOf(job.airflow_dag_id)[0].runId,
    });
    expect(
      logs.tasks.map((task: { task_id: string; try_number: number; state: string | null }) => [
        task.task_id,
        task.try_number,
        task.state,
      ]),
    ).toEqual([
      ['train', 1, 'success'],
      ['report_complete', 0, null],
    ]);
    const [train, complete] = logs.tasks;
    expect(complete).toMatchObject({ lines: [], continuation_token: null });
    // 250 lines come in pieces of 100: follow the continuation to the end.
    const read_ = [...train.lines];
    let token: string | null = train.continuation_token;
    for (let piece = 0; token && piece < 10; piece++) {
      const next = await testApp
        .http()
        .get(`${JOBS}/${job.job_id}/logs?task=train&try_number=1&token=${encodeURIComponent(token)}`)
        .set(psk())
        .expect(200);
      expect(next.body.tasks.map((task: { task_id: string }) => task.task_id)).toEqual(['train']);
      read_.push(...next.body.tasks[0].lines);
      token = next.body.tasks[0].lines.length > 0 ? next.body.tasks[0].continuation_token : null;
    }
    expect(read_.map((line) => line.slice(line.indexOf('trial')))).toEqual(training);
    // The train task's 250 lines in three pieces (Airflow 2 ends a log with an empty one); report_complete has not
    // run, so its log is not asked for.
    expect(airflow.count('GET', '/logs/')).toBe(version === 'v1' ? 4 : 3);
  });

  it('should answer /logs with 404 before any run, for a task not in the run and for another owner; 422 for a bad token', async () => {
    const job = await createJob(testApp, {}, false);
    airflow.parse();
    const none = await testApp.http().get(`${JOBS}/${job.job_id}/logs`).set(user()).expect(404);
    expect(none.body).toEqual({ error: `Training job ${job.job_id} has no Airflow run yet`, code: 404 });
    await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user()).expect(200);
    airflow.writeTaskLog(job.airflow_dag_id, 'train', ['loading table'], { state: 'running' });
    const live = (await testApp.http().get(`${JOBS}/${job.job_id}/logs?task=train`).set(user()).expect(200)).body;
    expect(live.tasks).toEqual([
      expect.objectContaining({
        task_id: 'train',
        try_number: 1,
        state: 'running',
        lines: [expect.stringContaining('loading table')],
      }),
    ]);
    await testApp.http().get(`${JOBS}/${job.job_id}/logs?task=evaluate`).set(user()).expect(404);
    await testApp
      .http()
      .get(`${JOBS}/${job.job_id}/logs`)
      .set(bearer(keycloak.token({ preferred_username: 'mallory' })))
      .expect(404);
    const forged = await testApp
      .http()
      .get(`${JOBS}/${job.job_id}/logs?task=train&try_number=1&token=abc.def`)
      .set(user())
      .expect(422);
    expect(forged.body.detail).toEqual([expect.objectContaining({ type: 'value_error', loc: ['query', 'token'] })]);
    const alone = await testApp.http().get(`${JOBS}/${job.job_id}/logs?token=abc.def`).set(user()).expect(422);
    expect(alone.body.detail).toEqual([expect.objectContaining({ type: 'value_error', loc: ['query', 'token'] })]);
    airflow.failWith = 503;
    try {
      const down = await testApp.http().get(`${JOBS}/${job.job_id}/logs`).set(user()).expect(503);
      expect(down.body.code).toBe(503);
    } finally {
      airflow.failWith = null;
    }
  });

  it('should accept the platform PSK on trigger, cancel and delete, recording psk as the actor', async () => {
    const job = await createJob(testApp, {}, false);
    airflow.parse();
    const triggered = await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(psk()).expect(200);
    expect(triggered.body).toMatchObject({ status: 'queued' });
    expect(airflow.runsOf(job.airflow_dag_id)).toHaveLength(1);
    const cancelled = await testApp.http().post(`${JOBS}/${job.job_id}/cancel`).set(psk()).expect(200);
    expect(cancelled.body).toMatchObject({ status: 'failed', error_message: 'cancelled by psk' });
    expect(airflow.runsOf(job.airflow_dag_id)[0].state).toBe('failed');
    expect(
      (await history(job.job_id)).map((t: { to_status: string; actor: string }) => `${t.to_status}:${t.actor}`),
    ).toEqual(['ready:psk', 'queued:psk', 'failed:psk']);
    await testApp.http().delete(`${JOBS}/${job.job_id}`).set(psk()).expect(204);
    expect(airflow.dag(job.airflow_dag_id)).toBeUndefined();
    await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(404);
    // A wrong key is still a 401, not a way in.
    await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(psk('not-the-psk-0123456789')).expect(401);
  });

  it('should cancel a running job: its Airflow run and the job fail, naming who cancelled', async () => {
    const job = await createJob(testApp);
    airflow.parse();
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    airflow.setRunState(job.airflow_dag_id, 'running');
    const cancelled = await testApp.http().post(`${JOBS}/${job.job_id}/cancel`).set(user()).expect(200);
    expect(cancelled.body).toMatchObject({ status: 'failed', error_message: 'cancelled by alice' });
    expect(airflow.runsOf(job.airflow_dag_id)[0].state).toBe('failed');
    // The DAG's own failure callback arrives late: accepted, and it does not overwrite who cancelled.
    const late = await writeback(testApp, job.job_id, { status: 'failed', error_message: 'train: killed' }).expect(200);
    expect(late.body.error_message).toBe('cancelled by alice');
    await testApp.http().post(`${JOBS}/${job.job_id}/cancel`).set(user()).expect(409);
  });

  it('should delete a job: the file and the DAG go, the row stays for audit but leaves reads', async () => {
    const job = await createJob(testApp);
    airflow.parse();
    await testApp.http().delete(`${JOBS}/${job.job_id}`).set(user()).expect(204);
    expect(existsSync(join(dagsDir, `${job.airflow_dag_id}.py`))).toBe(false);
    expect(airflow.dag(job.airflow_dag_id)).toBeUndefined();
    await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(404);
    expect(await statuses(job.job_id)).toEqual([]);
    const listed = (await testApp.http().get(`${JOBS}?limit=500`).set(psk()).expect(200)).body.items;
    expect(listed.map((j: { job_id: string }) => j.job_id)).not.toContain(job.job_id);
    const rows = await testApp.dataSource.query('SELECT deleted_at FROM automl_training_jobs WHERE job_id = $1', [
      job.job_id,
    ]);
    expect(rows[0].deleted_at).toBeInstanceOf(Date);
    await testApp.http().delete(`${JOBS}/${job.job_id}`).set(user()).expect(404);
  });

  it('should delete a job whose training runs: Airflow refuses (409) until the run is failed, then the DAG goes', async () => {
    const job = await createJob(testApp);
    airflow.parse();
    airflow.setRunState(job.airflow_dag_id, 'running');
    airflow.writeTaskLog(job.airflow_dag_id, 'train', ['training'], { state: 'running' });
    const refusedBefore = airflow.count('DELETE', job.airflow_dag_id);
    await testApp.http().delete(`${JOBS}/${job.job_id}`).set(user()).expect(204);
    expect(airflow.count('DELETE', job.airflow_dag_id) - refusedBefore).toBe(2); // the 409, then the 204
    expect(airflow.count('PATCH', `${job.airflow_dag_id}/dagRuns/`)).toBe(1);
    expect(airflow.dag(job.airflow_dag_id)).toBeUndefined();
    expect(existsSync(join(dagsDir, `${job.airflow_dag_id}.py`))).toBe(false);
    await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(404);
  });

  it('should answer bulk status from the database within 2.5 s while Airflow hangs, and fail triggers fast once the breaker opens', async () => {
    const job = await createJob(testApp, {}, false);
    const live = await createJob(testApp);
    airflow.parse();
    airflow.hang = true;
    try {
      const started = Date.now();
      const items = await statuses(live.job_id);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(items).toEqual([expect.objectContaining({ job_id: live.job_id, status: 'queued' })]);

      for (let i = 0; i < 3; i++) await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user());
      const fastStart = Date.now();
      const refused = await testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(user()).expect(503);
      expect(Date.now() - fastStart).toBeLessThan(200);
      expect(refused.body).toEqual({
        error: 'Airflow is unavailable (circuit open after repeated failures); try again shortly',
        code: 503,
      });
    } finally {
      airflow.hang = false;
    }
  });
});

describe('without Airflow configured', () => {
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ keycloak, testApp, close: stop } = await startTestAppWithKeycloak());
  });

  afterAll(() => stop());

  it('should answer /logs with 503 saying Airflow is not configured', async () => {
    const job = await createJob(testApp);
    const response = await testApp.http().get(`${JOBS}/${job.job_id}/logs`).set(psk()).expect(503);
    expect(response.body).toEqual({
      error: 'Airflow is not configured on this service (AIRFLOW_URL unset)',
      code: 503,
    });
  });

  it('should answer trigger and cancel with 503 saying so, and bulk status from the database', async () => {
    const ready = await createJob(testApp, {}, false);
    const response = await testApp
      .http()
      .post(`${JOBS}/${ready.job_id}/trigger`)
      .set(bearer(keycloak.token()))
      .expect(503);
    expect(response.body).toEqual({
      error: 'Airflow is not configured on this service (AIRFLOW_URL unset)',
      code: 503,
    });
    const queued = await createJob(testApp);
    await testApp.http().post(`${JOBS}/${queued.job_id}/cancel`).set(bearer(keycloak.token())).expect(503);
    const items = (await testApp.http().get(`${JOBS}/status?ids=${queued.job_id}`).set(psk()).expect(200)).body.items;
    expect(items).toEqual([expect.objectContaining({ status: 'queued' })]);
    await testApp.http().delete(`${JOBS}/${queued.job_id}`).set(bearer(keycloak.token())).expect(204);
  });
});

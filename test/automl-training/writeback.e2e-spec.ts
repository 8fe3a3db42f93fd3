import { TrainingJobRepository } from '../../src/automl-training/persistence/training-job.repository';
import { rawRequest, startTestApp, TestApp, psk } from '../utils/test-app';
import { createJob, writeback } from '../utils/jobs';

const RANK: Record<string, number> = { ready: 0, queued: 1, running: 2, complete: 3, failed: 3 };
const TERMINAL = new Set(['complete', 'failed']);

async function history(testApp: TestApp, jobId: string) {
  const response = await testApp.http().get(`/api/automl/train/jobs/${jobId}/history`).set(psk()).expect(200);
  return response.body.items as { from_status: string | null; to_status: string; source: string; actor: string }[];
}

async function storedVersion(testApp: TestApp, jobId: string): Promise<number> {
  const rows = await testApp.dataSource.query('SELECT version FROM automl_training_jobs WHERE job_id = $1', [jobId]);
  return rows[0].version;
}

describe('PUT /jobs/{job_id}/status (DAG writeback)', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  beforeEach(() => testApp.reset());

  afterAll(() => testApp.close());

  it('should walk the whole lifecycle queued → running → complete and record each transition', async () => {
    const job = await createJob(testApp);
    expect(job.status).toBe('queued');

    const running = await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    expect(running.body).toMatchObject({ job_id: job.job_id, status: 'running' });

    const complete = await writeback(testApp, job.job_id, {
      status: 'complete',
      mlflow_run_id: 'run-42',
      registered_model_name: 'marketing.churn_model',
    }).expect(200);
    expect(complete.body).toMatchObject({
      status: 'complete',
      mlflow_run_id: 'run-42',
      registered_model_name: 'marketing.churn_model',
      error_message: null,
    });
    expect(Date.parse(complete.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(running.body.updated_at));

    const stored = await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200);
    expect(stored.body).toEqual(complete.body);
    expect((await history(testApp, job.job_id)).map((t) => [t.from_status, t.to_status, t.source, t.actor])).toEqual([
      [null, 'queued', 'user', 'psk'],
      ['queued', 'running', 'callback', 'airflow'],
      ['running', 'complete', 'callback', 'airflow'],
    ]);
  });

  it('should answer an idempotent repeat with 200, fill late fields, and record no extra transition', async () => {
    const job = await createJob(testApp);
    await writeback(testApp, job.job_id, { status: 'failed' }).expect(200);
    const version = await storedVersion(testApp, job.job_id);

    const repeat = await writeback(testApp, job.job_id, { status: 'failed' }).expect(200);
    expect(repeat.body.status).toBe('failed');
    expect(await storedVersion(testApp, job.job_id)).toBe(version);

    const filled = await writeback(testApp, job.job_id, { status: 'failed', error_message: 'OOM in trial 3' }).expect(
      200,
    );
    expect(filled.body).toMatchObject({ status: 'failed', error_message: 'OOM in trial 3' });
    expect((await history(testApp, job.job_id)).map((t) => t.to_status)).toEqual(['queued', 'failed']);
  });

  it('should let a job skip a lost callback (queued → complete) and fail from any non-terminal status', async () => {
    const skipped = await createJob(testApp);
    await writeback(testApp, skipped.job_id, { status: 'complete' }).expect(200);
    const ready = await createJob(testApp, {}, false);
    expect(ready.status).toBe('ready');
    const failed = await writeback(testApp, ready.job_id, { status: 'failed', error_message: 'boom' }).expect(200);
    expect(failed.body).toMatchObject({ status: 'failed', error_message: 'boom' });
    expect((await history(testApp, ready.job_id)).at(-1)).toMatchObject({ from_status: 'ready', to_status: 'failed' });
  });

  it.each([
    ['complete', 'running'],
    ['complete', 'failed'],
    ['failed', 'queued'],
    ['failed', 'complete'],
  ])('should refuse %s → %s with 409 naming the current status and change nothing', async (terminal, next) => {
    const job = await createJob(testApp);
    const before = (await writeback(testApp, job.job_id, { status: terminal, mlflow_run_id: 'r1' }).expect(200)).body;
    const refused = await writeback(testApp, job.job_id, { status: next, mlflow_run_id: 'r2' }).expect(409);
    expect(refused.body).toEqual({
      error: `Training job ${job.job_id} is ${terminal}; it cannot move to ${next}`,
      code: 409,
    });
    const after = await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200);
    expect(after.body).toEqual(before);
  });

  it("should keep answering reads and writebacks after a newer replica's migration adds a column (no `*` in prepared statements)", async () => {
    const job = await createJob(testApp);
    // Prepare the named statements on the pool's connections first, as a running replica has.
    for (let i = 0; i < 3; i++) await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200);
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    await testApp.dataSource.query('ALTER TABLE automl_training_jobs ADD COLUMN added_by_a_newer_replica text');
    try {
      for (let i = 0; i < 3; i++)
        await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200);
      await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
      const done = await writeback(testApp, job.job_id, { status: 'complete', mlflow_run_id: 'r1' }).expect(200);
      expect(done.body.status).toBe('complete');
    } finally {
      await testApp.dataSource.query('ALTER TABLE automl_training_jobs DROP COLUMN added_by_a_newer_replica');
    }
  });

  it('should refuse a regression between non-terminal statuses (running → queued) with 409', async () => {
    const job = await createJob(testApp);
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    const refused = await writeback(testApp, job.job_id, { status: 'queued' }).expect(409);
    expect(refused.body.error).toContain('is running');
  });

  it('should not soft-delete a job whose version moved on (compare-and-set)', async () => {
    const job = await createJob(testApp);
    const repository = testApp.app.get(TrainingJobRepository);
    const version = await storedVersion(testApp, job.job_id);
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    expect(await repository.softDelete(job.job_id, version)).toBe(false);
    expect(await repository.findById(job.job_id)).not.toBeNull();
    expect(await repository.softDelete(job.job_id, version + 1)).toBe(true);
    expect(await repository.findById(job.job_id)).toBeNull();
  });

  it('should answer the submitted configuration, the concrete budget and the run times on the job', async () => {
    const job = await createJob(testApp, { feature_columns: ['tenure', 'plan'], preset: 'fast' }, false);
    expect(job).toMatchObject({
      label_column: 'churned',
      feature_columns: ['tenure', 'plan'],
      group_column: null,
      action_column: null,
      propensity_column: null,
      reward_column: null,
      cost_column: null,
      tuning: { trials: 100, time_budget_minutes: 10 },
      started_at: null,
      finished_at: null,
      model_version: null,
      objective: null,
      metrics: null,
    });
    const bandit = await createJob(testApp, {
      problem_type: 'contextual_bandit',
      algorithm: 'vw_contextual_bandit',
      label_column: 'y',
      feature_columns: null,
      action_column: 'action',
      propensity_column: 'p',
      cost_column: 'cost',
    });
    expect(bandit).toMatchObject({
      feature_columns: null,
      action_column: 'action',
      propensity_column: 'p',
      reward_column: null,
      cost_column: 'cost',
    });

    // Moves recorded by writeback (fast path and compare-and-set) and by the user carry their own instants.
    const at = async () => (await history(testApp, job.job_id)).map((t) => (t as unknown as { at: string }).at);
    await testApp.dataSource.query(`UPDATE automl_training_jobs SET status = 'queued' WHERE job_id = $1`, [job.job_id]);
    const running = await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    expect(running.body).toMatchObject({ started_at: (await at()).at(-1), finished_at: null });
    const failed = await writeback(testApp, job.job_id, { status: 'failed', error_message: 'OOM' }).expect(200);
    expect(failed.body).toMatchObject({ started_at: running.body.started_at, finished_at: (await at()).at(-1) });
    // A retry (compare-and-set, as trigger does) starts a new attempt: both times clear.
    const repository = testApp.app.get(TrainingJobRepository);
    const version = await storedVersion(testApp, job.job_id);
    const retried = await repository.compareAndSet(job.job_id, version, { status: 'queued' as never }, null);
    expect(retried).toMatchObject({ startedAt: null, finishedAt: null });
    await writeback(testApp, job.job_id, {
      status: 'complete',
      model_version: '1',
      objective: 'roc_auc',
      metrics: { roc_auc: 0.8 },
    }).expect(200);
    const read = (await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200)).body;
    expect(read).toMatchObject({
      status: 'complete',
      started_at: null,
      finished_at: read.updated_at,
      model_version: '1',
      objective: 'roc_auc',
      metrics: { roc_auc: 0.8 },
    });
  });

  it('should answer 404 ErrorResponse for an unknown job', async () => {
    const response = await writeback(testApp, '3f0c8a52-3f5d-4f0e-8a55-0e0d5c1b2a99', { status: 'running' }).expect(
      404,
    );
    expect(response.body).toEqual({ error: 'Training job 3f0c8a52-3f5d-4f0e-8a55-0e0d5c1b2a99 not found', code: 404 });
  });

  it('should settle 50 concurrent writebacks on one job into one consistent state with a legal history', async () => {
    const job = await createJob(testApp);
    const statuses = ['running', 'complete', 'failed', 'running', 'queued'];
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        writeback(testApp, job.job_id, {
          status: statuses[i % statuses.length],
          mlflow_run_id: statuses[i % statuses.length] === 'complete' ? `run-${i}` : undefined,
          error_message: statuses[i % statuses.length] === 'failed' ? `error ${i}` : undefined,
        }),
      ),
    );
    const codes = responses.map((r) => r.status);
    expect(codes.every((code) => code === 200 || code === 409)).toBe(true);

    const final = (await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200)).body;
    expect(TERMINAL.has(final.status)).toBe(true);
    // The terminal status was reported by exactly the writers that got 200 for it; every later contrary writer got 409.
    const terminalWinners = responses.filter((r) => r.status === 200 && TERMINAL.has(r.body.status));
    expect(terminalWinners.every((r) => r.body.status === final.status)).toBe(true);

    const transitions = await history(testApp, job.job_id);
    expect(transitions[0]).toMatchObject({ from_status: null, to_status: 'queued' });
    for (let i = 1; i < transitions.length; i++) {
      const { from_status, to_status } = transitions[i];
      expect(from_status).toBe(transitions[i - 1].to_status);
      expect(TERMINAL.has(from_status!)).toBe(false);
      expect(to_status === 'failed' || RANK[to_status] > RANK[from_status!]).toBe(true);
    }
    expect(transitions.at(-1)!.to_status).toBe(final.status);
    const version = await storedVersion(testApp, job.job_id);
    expect(version).toBeGreaterThanOrEqual(transitions.length);
  });

  describe('result summary (model_version, objective, metrics)', () => {
    const summary = (jobId: string) =>
      testApp.dataSource
        .query('SELECT model_version, objective, metrics, version FROM automl_training_jobs WHERE job_id = $1', [jobId])
        .then((rows) => rows[0]);

    it('should store the complete writeback’s summary, on the fast path and on a repeat', async () => {
      const job = await createJob(testApp);
      await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
      await writeback(testApp, job.job_id, {
        status: 'complete',
        mlflow_run_id: 'run-7',
        model_version: '3',
        objective: 'roc_auc',
        metrics: { roc_auc: 0.91, log_loss: 0.31, accuracy: 1, f1: -0 },
      }).expect(200);
      expect(await summary(job.job_id)).toMatchObject({
        model_version: '3',
        objective: 'roc_auc',
        metrics: { roc_auc: 0.91, log_loss: 0.31, accuracy: 1, f1: 0 },
      });
      // A repeat of the same status only fills what is still empty: it never overwrites the summary.
      const { version } = await summary(job.job_id);
      await writeback(testApp, job.job_id, {
        status: 'complete',
        model_version: '4',
        objective: 'f1',
        metrics: { f1: 0.5 },
      }).expect(200);
      expect(await summary(job.job_id)).toEqual({
        model_version: '3',
        objective: 'roc_auc',
        metrics: { roc_auc: 0.91, log_loss: 0.31, accuracy: 1, f1: 0 },
        version,
      });
    });

    it('should fill an empty summary on a repeated complete writeback (compare-and-set path)', async () => {
      const job = await createJob(testApp);
      await writeback(testApp, job.job_id, { status: 'complete', mlflow_run_id: 'run-8' }).expect(200);
      expect(await summary(job.job_id)).toMatchObject({ model_version: null, objective: null, metrics: null });
      await writeback(testApp, job.job_id, {
        status: 'complete',
        metrics: { rmse: 1.25e-3 },
        objective: 'rmse',
        model_version: '1',
      }).expect(200);
      expect(await summary(job.job_id)).toMatchObject({
        model_version: '1',
        objective: 'rmse',
        metrics: { rmse: 1.25e-3 },
      });
      expect((await history(testApp, job.job_id)).map((t) => t.to_status)).toEqual(['queued', 'complete']);
    });

    it('should accept explicit nulls and leave the columns empty', async () => {
      const job = await createJob(testApp);
      await writeback(testApp, job.job_id, {
        status: 'complete',
        model_version: null,
        objective: null,
        metrics: null,
      }).expect(200);
      expect(await summary(job.job_id)).toMatchObject({ model_version: null, objective: null, metrics: null });
    });

    it.each([
      [
        'an array',
        [1, 2],
        [{ type: 'dict_type', loc: ['body', 'metrics'], msg: 'Input should be a valid dictionary', input: [1, 2] }],
      ],
      [
        'a string value',
        { auc: '0.9' },
        [{ type: 'float_type', loc: ['body', 'metrics', 'auc'], msg: 'Input should be a valid number', input: '0.9' }],
      ],
      [
        'a boolean value',
        { auc: true },
        [{ type: 'float_type', loc: ['body', 'metrics', 'auc'], msg: 'Input should be a valid number', input: true }],
      ],
      [
        'an empty name',
        { '': 1 },
        [expect.objectContaining({ type: 'string_too_short', loc: ['body', 'metrics', '', '[key]'] })],
      ],
      [
        'a 251-character name',
        { ['m'.repeat(251)]: 1 },
        [
          expect.objectContaining({
            type: 'string_too_long',
            loc: ['body', 'metrics', 'm'.repeat(251), '[key]'],
            ctx: { max_length: 250 },
          }),
        ],
      ],
      [
        '101 metrics',
        Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`m${i}`, i])),
        [
          expect.objectContaining({
            type: 'too_long',
            loc: ['body', 'metrics'],
            msg: 'Dictionary should have at most 100 items after validation, not 101',
            ctx: { field_type: 'Dictionary', max_length: 100, actual_length: 101 },
          }),
        ],
      ],
    ])('should refuse metrics with %s (422, nothing changed)', async (_, metrics, detail) => {
      const job = await createJob(testApp);
      const before = await summary(job.job_id);
      const response = await writeback(testApp, job.job_id, { status: 'complete', metrics }).expect(422);
      expect(response.body.detail).toEqual(detail);
      expect(await summary(job.job_id)).toEqual(before);
      expect(
        (await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200)).body.status,
      ).toBe('queued');
    });

    it.each(['NaN', 'Infinity', '-Infinity'])(
      'should refuse a non-finite metric (%s) with finite_number',
      async (token) => {
        const job = await createJob(testApp);
        const response = await rawRequest(
          testApp,
          'PUT',
          `/api/automl/train/jobs/${job.job_id}/status`,
          { ...psk(), 'Content-Type': 'application/json' },
          Buffer.from(`{"status": "complete", "metrics": {"auc": 0.9, "loss": ${token}}}`),
        );
        expect(response.status).toBe(422);
        expect((response.body as { detail: unknown[] }).detail).toEqual([
          expect.objectContaining({
            type: 'finite_number',
            loc: ['body', 'metrics', 'loss'],
            msg: 'Input should be a finite number',
          }),
        ]);
        expect(await summary(job.job_id)).toMatchObject({ metrics: null });
      },
    );

    it('should refuse a model_version or objective over 250 characters', async () => {
      const job = await createJob(testApp);
      const response = await writeback(testApp, job.job_id, {
        status: 'complete',
        model_version: 'v'.repeat(251),
        objective: 5,
      }).expect(422);
      expect(response.body.detail).toEqual([
        expect.objectContaining({ type: 'string_too_long', loc: ['body', 'model_version'] }),
        expect.objectContaining({ type: 'string_type', loc: ['body', 'objective'] }),
      ]);
    });
  });
});

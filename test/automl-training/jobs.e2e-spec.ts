import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob, jobRequest, problemColumns, writeback } from '../utils/jobs';
import { bearer, psk, startTestApp, startTestAppWithKeycloak, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';

describe('training jobs: create, get, list', () => {
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ keycloak, testApp, close: stop } = await startTestAppWithKeycloak());
  });

  afterAll(() => stop());

  describe('POST /jobs', () => {
    beforeEach(() => testApp.reset());

    it('should store a queued job by default and a ready one with auto_trigger=false', async () => {
      const queued = await testApp.http().post(JOBS).set(psk()).send(jobRequest()).expect(201);
      expect(queued.body).toEqual({
        job_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name: 'churn model',
        domain: 'marketing',
        owner: 'alice',
        source_table: 'marketing.churn_features',
        problem_type: 'binary_classification',
        algorithm: 'lightgbm_classifier',
        preset: 'fast',
        status: 'queued',
        rendered_dag: expect.stringContaining('JOB_SPEC = json.loads('),
        mlflow_run_id: null,
        mlflow_experiment_name: '/automl/marketing/churn model',
        registered_model_name: null,
        airflow_dag_id: expect.stringMatching(/^automl_training_[0-9a-f_]{36}$/),
        airflow_dag_url: expect.stringMatching(/^http:\/\/localhost:8080\/dags\/automl_training_[0-9a-f_]{36}$/),
        error_message: null,
        feature_engineering_job_id: null,
        created_at: expect.any(String),
        updated_at: expect.any(String),
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
        mlflow_run_url: null,
        model_version_url: null,
        airflow_run_id: expect.stringMatching(/^scheduled__\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/),
      });
      expect(queued.body.airflow_dag_id).toBe(`automl_training_${queued.body.job_id.replace(/-/g, '_')}`);
      expect(readFileSync(join(testApp.config.airflow.dagsDir, `${queued.body.airflow_dag_id}.py`), 'utf8')).toBe(
        queued.body.rendered_dag,
      );
      const ready = await testApp.http().post(`${JOBS}?auto_trigger=false`).set(psk()).send(jobRequest()).expect(201);
      expect(ready.body.status).toBe('ready');
      expect(ready.body.airflow_run_id).toBeNull();
      const rows = await testApp.dataSource.query(
        'SELECT job_id, status FROM automl_training_jobs ORDER BY created_at',
      );
      expect(rows).toEqual([
        { job_id: queued.body.job_id, status: 'queued' },
        { job_id: ready.body.job_id, status: 'ready' },
      ]);
    });

    it('should default preset to balanced and owner to the token user, and ignore client-set status, ids and timestamps', async () => {
      const { owner: _owner, preset: _preset, ...body } = jobRequest();
      const response = await testApp
        .http()
        .post(JOBS)
        .set(bearer(keycloak.token({ preferred_username: 'bob' })))
        .send({
          ...body,
          status: 'complete',
          job_id: '11111111-1111-4111-8111-111111111111',
          created_at: '2000-01-01T00:00:00Z',
        })
        .expect(201);
      expect(response.body).toMatchObject({ owner: 'bob', preset: 'balanced', status: 'queued' });
      expect(response.body.job_id).not.toBe('11111111-1111-4111-8111-111111111111');
      expect(response.body.created_at.startsWith('2000')).toBe(false);
    });

    it('should require owner with a PSK', async () => {
      const { owner: _owner, ...body } = jobRequest();
      const response = await testApp.http().post(JOBS).set(psk()).send(body).expect(422);
      expect(response.body).toEqual({
        detail: [{ type: 'missing', loc: ['body', 'owner'], msg: 'Field required', input: body }],
      });
      expect(await testApp.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs')).toEqual([{ n: 0 }]);
    });

    it.each([
      ['lightgbm_regressor', 'binary_classification'],
      ['isolation_forest', 'regression'],
      ['vw_contextual_bandit', 'ranking'],
      ['xgboost_ranker', 'multiclass_classification'],
    ])('should refuse algorithm %s for problem_type %s, naming both', async (algorithm, problemType) => {
      const body = jobRequest({ algorithm, problem_type: problemType });
      const response = await testApp.http().post(JOBS).set(psk()).send(body).expect(422);
      expect(response.body.detail).toHaveLength(1);
      expect(response.body.detail[0]).toMatchObject({
        type: 'value_error',
        loc: ['body'],
        input: body,
        ctx: { error: {} },
      });
      expect(response.body.detail[0].msg).toContain(`algorithm '${algorithm}'`);
      expect(response.body.detail[0].msg).toContain(`problem_type '${problemType}'`);
      expect(await testApp.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs')).toEqual([{ n: 0 }]);
    });

    it.each([
      ['lightgbm_classifier', 'binary_classification'],
      ['xgboost_classifier', 'multiclass_classification'],
      ['vw_classifier', 'binary_classification'],
      ['lightgbm_regressor', 'regression'],
      ['xgboost_regressor', 'regression'],
      ['vw_regressor', 'regression'],
      ['lightgbm_ranker', 'ranking'],
      ['xgboost_ranker', 'ranking'],
      ['isolation_forest', 'anomaly_detection'],
      ['vw_contextual_bandit', 'contextual_bandit'],
    ])('should accept algorithm %s for problem_type %s', async (algorithm, problemType) => {
      const body = jobRequest({ algorithm, problem_type: problemType, ...problemColumns(problemType) });
      await testApp.http().post(JOBS).set(psk()).send(body).expect(201);
    });

    it('should require label_column except for anomaly detection', async () => {
      const body = jobRequest({ label_column: null });
      const refused = await testApp.http().post(JOBS).set(psk()).send(body).expect(422);
      expect(refused.body.detail[0]).toMatchObject({ type: 'value_error', loc: ['body'] });
      expect(refused.body.detail[0].msg).toContain('label_column is required');
      const anomaly = jobRequest({
        label_column: undefined,
        algorithm: 'isolation_forest',
        problem_type: 'anomaly_detection',
      });
      await testApp.http().post(JOBS).set(psk()).send(anomaly).expect(201);
    });

    it('should refuse feature_columns holding the label or a column twice, naming the index, and change nothing', async () => {
      await testApp.reset();
      const label = await testApp
        .http()
        .post(JOBS)
        .set(psk())
        .send(jobRequest({ feature_columns: ['tenure', 'churned'] }))
        .expect(422);
      expect(label.body.detail).toEqual([
        {
          type: 'value_error',
          loc: ['body', 'feature_columns', 1],
          msg: "Value error, feature_columns must not contain the label column 'churned'",
          input: 'churned',
          ctx: { error: {} },
        },
      ]);
      const twice = await testApp
        .http()
        .post(JOBS)
        .set(psk())
        .send(jobRequest({ feature_columns: ['a', 'b', 'a', 'b'] }))
        .expect(422);
      expect(twice.body.detail.map((item: { loc: unknown[]; msg: string }) => [item.loc, item.msg])).toEqual([
        [['body', 'feature_columns', 2], "Value error, duplicate column 'a' (also at index 0)"],
        [['body', 'feature_columns', 3], "Value error, duplicate column 'b' (also at index 1)"],
      ]);
      const empty = await testApp
        .http()
        .post(JOBS)
        .set(psk())
        .send(jobRequest({ feature_columns: ['a', ''] }))
        .expect(422);
      expect(empty.body.detail[0]).toMatchObject({ type: 'string_too_short', loc: ['body', 'feature_columns', 1] });
      expect((await testApp.http().get(JOBS).set(psk()).expect(200)).body.items).toEqual([]);
    });

    it.each(['not a table; drop', 'a.b.c.d', 'public.', '.t', '1abc', 'sch-ema.t', '"a"b', 'a."b.c"', 'tab le', "t'"])(
      'should refuse source_table %j as not an identifier',
      async (sourceTable) => {
        const response = await testApp
          .http()
          .post(JOBS)
          .set(psk())
          .send(jobRequest({ source_table: sourceTable }))
          .expect(422);
        expect(response.body.detail).toEqual([
          expect.objectContaining({
            type: 'string_pattern_mismatch',
            loc: ['body', 'source_table'],
            input: sourceTable,
          }),
        ]);
      },
    );

    it.each([
      'churn',
      '_t1',
      'marketing.churn_features',
      'hive.marketing.churn',
      '"Marketing"."2024_churn"',
      'cat."Sch".t',
    ])('should accept source_table %j', async (sourceTable) => {
      const created = await testApp
        .http()
        .post(JOBS)
        .set(psk())
        .send(jobRequest({ source_table: sourceTable }))
        .expect(201);
      expect(created.body.source_table).toBe(sourceTable);
    });

    it('should report every invalid field in declaration order', async () => {
      const response = await testApp
        .http()
        .post(`${JOBS}?auto_trigger=maybe`)
        .set(psk())
        .send({
          name: '',
          domain: 5,
          source_table: 't',
          feature_columns: ['a', 3],
          problem_type: 'x',
          algorithm: 'y',
          preset: 'slow',
          feature_engineering_job_id: 'nope',
        })
        .expect(422);
      expect(response.body.detail.map((item: { type: string; loc: unknown[] }) => [item.type, item.loc])).toEqual([
        ['bool_parsing', ['query', 'auto_trigger']],
        ['string_too_short', ['body', 'name']],
        ['string_type', ['body', 'domain']],
        ['string_type', ['body', 'feature_columns', 1]],
        ['enum', ['body', 'problem_type']],
        ['enum', ['body', 'algorithm']],
        ['enum', ['body', 'preset']],
        ['uuid_parsing', ['body', 'feature_engineering_job_id']],
      ]);
    });
  });

  describe('when the DAG folder cannot be written', () => {
    let broken: TestApp;
    let blocker: string;

    beforeAll(async () => {
      blocker = join(mkdtempSync(join(tmpdir(), 'automl-blocked-')), 'not-a-dir');
      writeFileSync(blocker, 'a file where the DAG folder should be');
      broken = await startTestApp({ AIRFLOW_DAGS_DIR: join(blocker, 'dags') });
    });

    afterAll(() => broken.close());

    it('should answer 503 and leave no half-created job', async () => {
      const response = await broken.http().post(JOBS).set(psk()).send(jobRequest()).expect(503);
      expect(response.body).toEqual({
        error: 'Could not write the DAG file to the DAG folder; try again later',
        code: 503,
      });
      expect(await broken.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs')).toEqual([{ n: 0 }]);
    });
  });

  describe('GET /jobs/{job_id}', () => {
    it('should answer the stored job, and 404 for an unknown one', async () => {
      const job = await createJob(testApp);
      const response = await testApp.http().get(`${JOBS}/${job.job_id}`).set(bearer(keycloak.token())).expect(200);
      expect(response.body).toEqual(job);
      const missing = await testApp.http().get(`${JOBS}/9c0ffee0-0000-4000-8000-000000000000`).set(psk()).expect(404);
      expect(missing.body).toEqual({ error: 'Training job 9c0ffee0-0000-4000-8000-000000000000 not found', code: 404 });
    });
  });

  describe('GET /jobs (listing)', () => {
    const TOTAL = 130;
    let created: Record<string, any>[];

    beforeAll(async () => {
      await testApp.reset();
      created = [];
      for (let i = 0; i < TOTAL; i++) {
        const regression = i % 3 === 0;
        created.push(
          await createJob(
            testApp,
            {
              name: i % 10 === 0 ? `Churn_100%_${i}` : `job ${i}`,
              domain: i % 2 === 0 ? 'marketing' : 'finance',
              owner: i % 5 === 0 ? 'bob' : 'alice',
              problem_type: regression ? 'regression' : 'binary_classification',
              algorithm: regression ? 'xgboost_regressor' : 'lightgbm_classifier',
            },
            i % 4 !== 0,
          ),
        );
      }
      for (const job of created.slice(0, 7)) {
        await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
        job.status = 'running';
      }
    });

    async function pages(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
      const ids: string[] = [];
      let cursor: string | null = null;
      let count = 0;
      do {
        const url: string = `${JOBS}?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const response = await testApp.http().get(url).set(psk()).expect(200);
        ids.push(...response.body.items.map((job: { job_id: string }) => job.job_id));
        cursor = response.body.next_cursor;
        count++;
      } while (cursor && count < 100);
      return { ids, pages: count };
    }

    const newestFirst = (jobs: Record<string, any>[]) => [...jobs].reverse().map((job) => job.job_id);

    it('should page through every job newest first without gaps or repeats', async () => {
      const { ids, pages: pageCount } = await pages('', 17);
      expect(ids).toEqual(newestFirst(created));
      expect(pageCount).toBe(Math.ceil(TOTAL / 17));
    });

    it('should default to 50 per page and answer null next_cursor on the last page', async () => {
      const first = await testApp.http().get(JOBS).set(psk()).expect(200);
      expect(first.body.items).toHaveLength(50);
      expect(typeof first.body.next_cursor).toBe('string');
      const all = await testApp.http().get(`${JOBS}?limit=500`).set(psk()).expect(200);
      expect(all.body.items).toHaveLength(TOTAL);
      expect(all.body.next_cursor).toBeNull();
    });

    it.each([
      ['&domain=finance', (job: any) => job.domain === 'finance'],
      ['&owner=bob', (job: any) => job.owner === 'bob'],
      ['&problem_type=regression', (job: any) => job.problem_type === 'regression'],
      ['&algorithm=lightgbm_classifier', (job: any) => job.algorithm === 'lightgbm_classifier'],
      ['&status=ready', (job: any) => job.status === 'ready'],
      ['&q=100%25_', (job: any) => job.name.includes('100%_')],
      [
        '&q=CHURN&domain=marketing&owner=bob',
        (job: any) => /churn/i.test(job.name) && job.domain === 'marketing' && job.owner === 'bob',
      ],
    ])('should filter with %s across pages', async (query, predicate) => {
      const expected = newestFirst(created.filter(predicate));
      expect(expected.length).toBeGreaterThan(0);
      expect((await pages(query, 7)).ids).toEqual(expected);
    });

    it('should leave rendered_dag null in listing items and keep it on GET /jobs/{id}', async () => {
      const listed = (await testApp.http().get(`${JOBS}?limit=5`).set(psk()).expect(200)).body.items;
      expect(listed).toHaveLength(5);
      for (const item of listed) expect(item).toMatchObject({ rendered_dag: null, airflow_dag_id: expect.any(String) });
      const one = (await testApp.http().get(`${JOBS}/${listed[0].job_id}`).set(psk()).expect(200)).body;
      expect(one.rendered_dag).toEqual(expect.stringContaining('JOB_SPEC = json.loads('));
      expect(created.find((job) => job.job_id === one.job_id)!.rendered_dag).toBe(one.rendered_dag);
    });

    it('should filter by the current status', async () => {
      const running = await pages('&status=running', 3);
      expect(new Set(running.ids)).toEqual(new Set(created.slice(0, 7).map((job) => job.job_id)));
    });

    it('should filter on several statuses at once', async () => {
      const both = await pages('&status=running&status=ready', 9);
      expect(both.ids).toEqual(
        newestFirst(created.filter((job) => job.status === 'running' || job.status === 'ready')),
      );
      expect(both.ids.length).toBeGreaterThan(7);
      const bad = await testApp.http().get(`${JOBS}?status=running&status=done`).set(psk()).expect(422);
      expect(bad.body.detail).toEqual([
        expect.objectContaining({ type: 'enum', loc: ['query', 'status', 1], input: 'done' }),
      ]);
    });

    it('should filter on created_after (inclusive) and created_before (exclusive), across pages', async () => {
      const from = created[40];
      const to = created[90];
      const ids = (
        await pages(
          `&created_after=${encodeURIComponent(from.created_at)}&created_before=${encodeURIComponent(to.created_at)}`,
          11,
        )
      ).ids;
      expect(ids).toEqual(
        newestFirst(created.filter((job) => job.created_at >= from.created_at && job.created_at < to.created_at)),
      );
      expect(ids).toContain(from.job_id);
      expect(ids).not.toContain(to.job_id);
      // A date is midnight UTC; an offset is honoured.
      expect((await pages('&created_after=2999-01-01', 50)).ids).toEqual([]);
      expect((await pages('&created_before=2000-01-01T01:00:00%2B01:00', 50)).ids).toEqual([]);
      for (const bad of ['yesterday', '2026-02-30', '2026-11-28T10:00:00']) {
        const refused = await testApp.http().get(`${JOBS}?created_after=${bad}`).set(psk()).expect(422);
        expect(refused.body.detail).toEqual([
          expect.objectContaining({ type: 'datetime_from_date_parsing', loc: ['query', 'created_after'], input: bad }),
        ]);
      }
    });

    it('should sort oldest first on request, page through it, and refuse a cursor of the other order', async () => {
      const oldest = await pages('&sort=created_at', 13);
      expect(oldest.ids).toEqual(created.map((job) => job.job_id));
      expect((await pages('&sort=-created_at', 13)).ids).toEqual(newestFirst(created));
      const first = await testApp.http().get(`${JOBS}?sort=created_at&limit=5`).set(psk()).expect(200);
      const mixed = await testApp.http().get(`${JOBS}?limit=5&cursor=${first.body.next_cursor}`).set(psk()).expect(422);
      expect(mixed.body.detail[0]).toMatchObject({ type: 'value_error', loc: ['query', 'cursor'] });
      await testApp.http().get(`${JOBS}?sort=name`).set(psk()).expect(422);
    });

    it('should refuse a forged cursor and an out-of-range limit with 422', async () => {
      const cursor = await testApp.http().get(`${JOBS}?cursor=not-a-cursor`).set(psk()).expect(422);
      expect(cursor.body.detail).toEqual([
        expect.objectContaining({ type: 'value_error', loc: ['query', 'cursor'], input: 'not-a-cursor' }),
      ]);
      const limit = await testApp.http().get(`${JOBS}?limit=501`).set(psk()).expect(422);
      expect(limit.body.detail).toEqual([
        {
          type: 'less_than_equal',
          loc: ['query', 'limit'],
          msg: 'Input should be less than or equal to 500',
          input: '501',
          ctx: { le: 500 },
        },
      ]);
    });
  });
});

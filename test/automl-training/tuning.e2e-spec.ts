import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoMLAlgorithm, Preset } from '../../src/automl-training/domain/automl-training.enums';
import { BUDGETS, TUNING_LIMITS } from '../../src/automl-training/dag/training-presets';
import { AddTuningBudget1795850000000 } from '../../src/database/migrations/1795850000000-AddTuningBudget';
import { renderedJobSpec } from '../utils/dag-python';
import { createJob, jobRequest } from '../utils/jobs';
import { psk, rawRequest, startTestApp, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';
const MODEL_TYPE_MSG = 'Input should be a valid dictionary or object to extract fields from';

describe('a job budget users can set (tuning in the create request)', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  beforeEach(() => testApp.reset());

  afterAll(() => testApp.close());

  const create = (body: unknown, headers: Record<string, string> = {}) =>
    testApp
      .http()
      .post(JOBS)
      .set({ ...psk(), ...headers })
      .send(body as object);
  const jobCount = async () =>
    (await testApp.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs'))[0].n as number;
  const dagFiles = () => readdirSync(testApp.config.airflow.dagsDir).filter((name) => name.endsWith('.py'));
  // jobRequest() is LightGBM with the fast preset.
  const fast = BUDGETS.lightgbm[Preset.Fast];

  describe('bounds and types: 422 with pydantic v2 items, nothing stored', () => {
    const at = (field: string) => ['body', 'tuning', field];
    const cases: [string, unknown, unknown[]][] = [
      [
        'trials below 1',
        { trials: 0 },
        [
          {
            type: 'greater_than_equal',
            loc: at('trials'),
            msg: 'Input should be greater than or equal to 1',
            input: 0,
            ctx: { ge: 1 },
          },
        ],
      ],
      [
        'trials negative',
        { trials: -5 },
        [
          {
            type: 'greater_than_equal',
            loc: at('trials'),
            msg: 'Input should be greater than or equal to 1',
            input: -5,
            ctx: { ge: 1 },
          },
        ],
      ],
      [
        'trials over 1000',
        { trials: 1001 },
        [
          {
            type: 'less_than_equal',
            loc: at('trials'),
            msg: 'Input should be less than or equal to 1000',
            input: 1001,
            ctx: { le: 1000 },
          },
        ],
      ],
      [
        'minutes below 1',
        { time_budget_minutes: 0 },
        [
          {
            type: 'greater_than_equal',
            loc: at('time_budget_minutes'),
            msg: 'Input should be greater than or equal to 1',
            input: 0,
            ctx: { ge: 1 },
          },
        ],
      ],
      [
        'minutes over 1440',
        { time_budget_minutes: 1441 },
        [
          {
            type: 'less_than_equal',
            loc: at('time_budget_minutes'),
            msg: 'Input should be less than or equal to 1440',
            input: 1441,
            ctx: { le: 1440 },
          },
        ],
      ],
      [
        'both out of bounds, in field order',
        { time_budget_minutes: 99999, trials: -1 },
        [
          {
            type: 'greater_than_equal',
            loc: at('trials'),
            msg: 'Input should be greater than or equal to 1',
            input: -1,
            ctx: { ge: 1 },
          },
          {
            type: 'less_than_equal',
            loc: at('time_budget_minutes'),
            msg: 'Input should be less than or equal to 1440',
            input: 99999,
            ctx: { le: 1440 },
          },
        ],
      ],
      [
        'fractional trials',
        { trials: 2.5 },
        [{ type: 'int_type', loc: at('trials'), msg: 'Input should be a valid integer', input: 2.5 }],
      ],
      [
        'trials as a string',
        { trials: '5' },
        [{ type: 'int_type', loc: at('trials'), msg: 'Input should be a valid integer', input: '5' }],
      ],
      [
        'trials as a boolean',
        { trials: true },
        [{ type: 'int_type', loc: at('trials'), msg: 'Input should be a valid integer', input: true }],
      ],
      [
        'trials as a list',
        { trials: [3] },
        [{ type: 'int_type', loc: at('trials'), msg: 'Input should be a valid integer', input: [3] }],
      ],
      [
        'fractional minutes',
        { time_budget_minutes: 2.5 },
        [{ type: 'int_type', loc: at('time_budget_minutes'), msg: 'Input should be a valid integer', input: 2.5 }],
      ],
      [
        'minutes as an object',
        { time_budget_minutes: { m: 1 } },
        [{ type: 'int_type', loc: at('time_budget_minutes'), msg: 'Input should be a valid integer', input: { m: 1 } }],
      ],
      [
        'tuning as a string',
        'fast',
        [{ type: 'model_attributes_type', loc: ['body', 'tuning'], msg: MODEL_TYPE_MSG, input: 'fast' }],
      ],
      [
        'tuning as a number',
        5,
        [{ type: 'model_attributes_type', loc: ['body', 'tuning'], msg: MODEL_TYPE_MSG, input: 5 }],
      ],
      [
        'tuning as a list',
        [10, 5],
        [{ type: 'model_attributes_type', loc: ['body', 'tuning'], msg: MODEL_TYPE_MSG, input: [10, 5] }],
      ],
      [
        'tuning as a boolean',
        true,
        [{ type: 'model_attributes_type', loc: ['body', 'tuning'], msg: MODEL_TYPE_MSG, input: true }],
      ],
    ];

    it.each(cases)('should refuse %s', async (_, tuning, detail) => {
      const response = await create(jobRequest({ tuning })).expect(422);
      expect(response.body).toEqual({ detail });
      expect(await jobCount()).toBe(0);
      expect(dagFiles()).toEqual([]);
    });

    it('should report tuning items with the other fields, in declaration order', async () => {
      const { name: _name, ...body } = jobRequest({ tuning: { trials: 0 }, feature_engineering_job_id: 'x' });
      const response = await create(body).expect(422);
      expect(response.body.detail.map((item: { type: string; loc: unknown[] }) => [item.type, item.loc])).toEqual([
        ['missing', ['body', 'name']],
        ['greater_than_equal', ['body', 'tuning', 'trials']],
        ['uuid_parsing', ['body', 'feature_engineering_job_id']],
      ]);
      expect(await jobCount()).toBe(0);
    });

    it('should refuse a NaN or infinite value as no integer', async () => {
      for (const value of ['NaN', 'Infinity']) {
        const body = JSON.stringify(jobRequest()).replace(/}$/, `, "tuning": {"trials": ${value}}}`);
        const response = await rawRequest(
          testApp,
          'POST',
          JOBS,
          { ...psk(), 'Content-Type': 'application/json' },
          Buffer.from(body),
        );
        const detail = (response.body as { detail?: { type: string; loc: unknown[] }[] }).detail;
        expect({ value, status: response.status, items: detail?.map(({ type, loc }) => ({ type, loc })) }).toEqual({
          value,
          status: 422,
          items: [{ type: 'int_type', loc: ['body', 'tuning', 'trials'] }],
        });
      }
      expect(await jobCount()).toBe(0);
    });

    it('should accept the bounds themselves', async () => {
      const { trials, time_budget_minutes: minutes } = TUNING_LIMITS;
      for (const tuning of [
        { trials: trials.ge, time_budget_minutes: minutes.ge },
        { trials: trials.le, time_budget_minutes: minutes.le },
      ]) {
        const job = await createJob(testApp, { tuning });
        expect(job.tuning).toEqual(tuning);
      }
    });
  });

  describe('the budget a job runs with: the override over its preset', () => {
    it('should merge a partial override with the preset, and show it on create, GET, the listing and the DAG', async () => {
      const trialsOnly = await createJob(testApp, { tuning: { trials: 7 } });
      const minutesOnly = await createJob(testApp, { tuning: { time_budget_minutes: 3 } }, false);
      const both = await createJob(testApp, {
        algorithm: 'xgboost_classifier',
        preset: 'best_quality',
        tuning: { trials: 12, time_budget_minutes: 30 },
      });
      const expected = new Map<string, unknown>([
        [trialsOnly.job_id, { trials: 7, time_budget_minutes: fast.time_budget_minutes }],
        [minutesOnly.job_id, { trials: fast.trials, time_budget_minutes: 3 }],
        [both.job_id, { trials: 12, time_budget_minutes: 30 }],
      ]);
      for (const created of [trialsOnly, minutesOnly, both]) {
        const tuning = expected.get(created.job_id);
        expect(created.tuning).toEqual(tuning);
        expect(renderedJobSpec(created.rendered_dag).tuning).toEqual(tuning);
        const file = readFileSync(join(testApp.config.airflow.dagsDir, `${created.airflow_dag_id}.py`), 'utf8');
        expect(renderedJobSpec(file).tuning).toEqual(tuning);
        const fetched = await testApp.http().get(`${JOBS}/${created.job_id}`).set(psk()).expect(200);
        expect(fetched.body.tuning).toEqual(tuning);
      }
      const listing = await testApp.http().get(JOBS).set(psk()).expect(200);
      expect(
        new Map(listing.body.items.map((item: { job_id: string; tuning: unknown }) => [item.job_id, item.tuning])),
      ).toEqual(expected);
    });

    it('should take the preset for an absent, null or empty override, null values, and ignore unknown keys', async () => {
      for (const tuning of [
        undefined,
        null,
        {},
        { trials: null, time_budget_minutes: null },
        { max_trials: 3, minutes: 1 },
      ]) {
        const created = await createJob(testApp, tuning === undefined ? {} : { tuning });
        expect({ tuning, job: created.tuning }).toEqual({ tuning, job: fast });
        const spec = renderedJobSpec(created.rendered_dag);
        expect({ tuning, spec: spec.tuning }).toEqual({ tuning, spec: fast });
      }
      const ignored = await createJob(testApp, { tuning: { trials: 4, extra: 'x' } });
      expect(renderedJobSpec(ignored.rendered_dag).tuning).toEqual({
        trials: 4,
        time_budget_minutes: fast.time_budget_minutes,
      });
    });

    it("should give each algorithm family its own preset's values where the override is silent", async () => {
      const created = await createJob(testApp, {
        algorithm: AutoMLAlgorithm.IsolationForest,
        problem_type: 'anomaly_detection',
        label_column: null,
        preset: 'balanced',
        tuning: { time_budget_minutes: 2 },
      });
      expect(created.tuning).toEqual({
        trials: BUDGETS.isolation_forest[Preset.Balanced].trials,
        time_budget_minutes: 2,
      });
    });

    it('should keep the budget a job was created with (stored), and show the preset for a row without one', async () => {
      const created = await createJob(testApp, { tuning: { trials: 9 } });
      await testApp.dataSource.query(
        'UPDATE automl_training_jobs SET tuning_trials = NULL, tuning_time_budget_minutes = NULL WHERE job_id = $1',
        [created.job_id],
      );
      const fetched = await testApp.http().get(`${JOBS}/${created.job_id}`).set(psk()).expect(200);
      expect(fetched.body.tuning).toEqual(fast);
    });

    it('should fill existing rows, in the migration, with the budgets their DAGs were rendered with', async () => {
      const jobs = [
        await createJob(testApp, { preset: 'fast' }),
        await createJob(testApp, {
          algorithm: 'xgboost_regressor',
          problem_type: 'regression',
          preset: 'best_quality',
        }),
        await createJob(testApp, { algorithm: 'vw_classifier', preset: 'balanced' }),
      ];
      const migration = new AddTuningBudget1795850000000();
      const queryRunner = testApp.dataSource.createQueryRunner();
      try {
        await migration.down(queryRunner);
        await migration.up(queryRunner);
      } finally {
        await queryRunner.release();
      }
      const tunings = await Promise.all(
        jobs.map(async (job) => (await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(200)).body.tuning),
      );
      expect(tunings).toEqual([
        { trials: 20, time_budget_minutes: 10 },
        { trials: 150, time_budget_minutes: 240 },
        { trials: 100, time_budget_minutes: 20 },
      ]);
    });
  });

  describe('Idempotency-Key: tuning is part of the request', () => {
    it('should replay the same tuning and refuse a different one with 409, creating nothing', async () => {
      const first = await create(jobRequest({ tuning: { trials: 5, time_budget_minutes: 2 } }), {
        'Idempotency-Key': 'tuning-key',
      }).expect(201);
      // Key order and unknown keys do not make another request; the values do.
      const again = await create(jobRequest({ tuning: { time_budget_minutes: 2, trials: 5, note: 'ignored' } }), {
        'Idempotency-Key': 'tuning-key',
      }).expect(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body.job_id).toBe(first.body.job_id);
      for (const tuning of [{ trials: 6, time_budget_minutes: 2 }, { trials: 5 }, undefined]) {
        const body = tuning === undefined ? jobRequest() : jobRequest({ tuning });
        const response = await create(body, { 'Idempotency-Key': 'tuning-key' }).expect(409);
        expect(response.body).toEqual({
          error: 'This Idempotency-Key was already used with a different request; use a new key',
          code: 409,
        });
      }
      expect(await jobCount()).toBe(1);
    });
  });
});

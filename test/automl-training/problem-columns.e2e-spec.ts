import { renderedJobSpec } from '../utils/dag-python';
import { jobRequest, problemColumns } from '../utils/jobs';
import { psk, startTestApp, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';

const RANKING = { algorithm: 'lightgbm_ranker', problem_type: 'ranking' };
const BANDIT = { algorithm: 'vw_contextual_bandit', problem_type: 'contextual_bandit' };

/** The create request's problem-type columns, their 422s, storage and the DAG's JOB_SPEC. */
describe('problem-type columns of the create request', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  beforeEach(() => testApp.reset());

  afterAll(() => testApp.close());

  async function refused(body: Record<string, unknown>) {
    const response = await testApp.http().post(JOBS).set(psk()).send(body).expect(422);
    expect(await testApp.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs')).toEqual([{ n: 0 }]);
    return response.body.detail as { type: string; loc: unknown[]; msg: string; input: unknown; ctx?: unknown }[];
  }

  const storedColumns = (jobId: string) =>
    testApp.dataSource.query(
      `SELECT group_column, action_column, propensity_column, reward_column, cost_column
         FROM automl_training_jobs WHERE job_id = $1`,
      [jobId],
    );

  it('should refuse a ranking job without group_column, naming the field', async () => {
    for (const groupColumn of [undefined, null]) {
      const detail = await refused(jobRequest({ ...RANKING, group_column: groupColumn }));
      expect(detail).toEqual([
        {
          type: 'value_error',
          loc: ['body', 'group_column'],
          msg: "Value error, group_column is required for problem_type 'ranking'",
          input: null,
          ctx: { error: {} },
        },
      ]);
    }
  });

  it.each(['action_column', 'propensity_column'])(
    'should refuse a contextual bandit without %s, naming the field',
    async (field) => {
      const detail = await refused(
        jobRequest({ ...BANDIT, ...problemColumns('contextual_bandit'), [field]: undefined }),
      );
      expect(detail).toEqual([
        expect.objectContaining({
          type: 'value_error',
          loc: ['body', field],
          msg: `Value error, ${field} is required for problem_type 'contextual_bandit'`,
        }),
      ]);
    },
  );

  it('should refuse a contextual bandit with neither reward_column nor cost_column', async () => {
    const detail = await refused(jobRequest({ ...BANDIT, action_column: 'a', propensity_column: 'p' }));
    expect(detail).toEqual([
      expect.objectContaining({
        type: 'value_error',
        loc: ['body', 'reward_column'],
        msg: "Value error, reward_column or cost_column is required for problem_type 'contextual_bandit' (exactly one of them)",
      }),
    ]);
  });

  it('should refuse a contextual bandit with both reward_column and cost_column', async () => {
    const detail = await refused(
      jobRequest({ ...BANDIT, ...problemColumns('contextual_bandit'), cost_column: 'cost' }),
    );
    expect(detail).toEqual([
      expect.objectContaining({
        type: 'value_error',
        loc: ['body', 'cost_column'],
        input: 'cost',
        msg: 'Value error, reward_column and cost_column are exclusive: give exactly one of them',
      }),
    ]);
  });

  it('should report every missing bandit column at once, in declaration order', async () => {
    const detail = await refused(jobRequest(BANDIT));
    expect(detail.map((item) => item.loc)).toEqual([
      ['body', 'action_column'],
      ['body', 'propensity_column'],
      ['body', 'reward_column'],
    ]);
  });

  it('should refuse a column another problem type uses, naming it', async () => {
    const detail = await refused(jobRequest({ group_column: 'query_id', cost_column: 'cost' }));
    expect(detail).toEqual([
      expect.objectContaining({
        loc: ['body', 'group_column'],
        input: 'query_id',
        msg: "Value error, group_column applies only to problem_type 'ranking', not 'binary_classification'",
      }),
      expect.objectContaining({
        loc: ['body', 'cost_column'],
        msg: "Value error, cost_column applies only to problem_type 'contextual_bandit', not 'binary_classification'",
      }),
    ]);
  });

  it('should check the columns as strings of 1 to 500 characters', async () => {
    const detail = await refused(jobRequest({ ...RANKING, group_column: '' }));
    expect(detail).toEqual([expect.objectContaining({ type: 'string_too_short', loc: ['body', 'group_column'] })]);
    const long = await refused(
      jobRequest({ ...BANDIT, ...problemColumns('contextual_bandit'), action_column: 'x'.repeat(501) }),
    );
    expect(long).toEqual([
      expect.objectContaining({ type: 'string_too_long', loc: ['body', 'action_column'], ctx: { max_length: 500 } }),
    ]);
    const typed = await refused(jobRequest({ ...RANKING, group_column: 7 }));
    expect(typed).toEqual([expect.objectContaining({ type: 'string_type', loc: ['body', 'group_column'] })]);
  });

  it('should store a ranking job’s group column and carry it in the DAG’s JOB_SPEC', async () => {
    const created = await testApp
      .http()
      .post(JOBS)
      .set(psk())
      .send(jobRequest({ ...RANKING, group_column: 'session "id"' }))
      .expect(201);
    expect(await storedColumns(created.body.job_id)).toEqual([
      {
        group_column: 'session "id"',
        action_column: null,
        propensity_column: null,
        reward_column: null,
        cost_column: null,
      },
    ]);
    expect(renderedJobSpec(created.body.rendered_dag)).toMatchObject({
      problem_type: 'ranking',
      group_column: 'session "id"',
      action_column: null,
      propensity_column: null,
      reward_column: null,
      cost_column: null,
    });
  });

  it.each([
    ['reward_column', 'clicked'],
    ['cost_column', 'regret'],
  ])('should store a contextual bandit with %s and carry its columns in the DAG’s JOB_SPEC', async (field, value) => {
    const body = jobRequest({ ...BANDIT, action_column: 'arm', propensity_column: 'p_logged', [field]: value });
    const created = await testApp.http().post(JOBS).set(psk()).send(body).expect(201);
    const expected = {
      group_column: null,
      action_column: 'arm',
      propensity_column: 'p_logged',
      reward_column: null,
      cost_column: null,
      [field]: value,
    };
    expect(await storedColumns(created.body.job_id)).toEqual([expected]);
    expect(renderedJobSpec(created.body.rendered_dag)).toMatchObject({
      problem_type: 'contextual_bandit',
      ...expected,
    });
  });

  it('should carry null problem columns for every other problem type', async () => {
    const created = await testApp.http().post(JOBS).set(psk()).send(jobRequest()).expect(201);
    expect(renderedJobSpec(created.body.rendered_dag)).toMatchObject({
      group_column: null,
      action_column: null,
      propensity_column: null,
      reward_column: null,
      cost_column: null,
    });
  });
});

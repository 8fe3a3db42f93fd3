import { IdempotencyStore } from '../../src/automl-training/idempotency/idempotency.store';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { jobRequest } from '../utils/jobs';
import { bearer, psk, startTestAppWithKeycloak, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';

describe('POST /jobs with Idempotency-Key', () => {
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ keycloak, testApp, close: stop } = await startTestAppWithKeycloak());
  });

  beforeEach(() => testApp.reset());

  afterAll(() => stop());

  const jobCount = async () =>
    (await testApp.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs'))[0].n as number;
  const create = (key: string, body = jobRequest(), credential: Record<string, string> = psk()) =>
    testApp
      .http()
      .post(JOBS)
      .set({ ...credential, 'Idempotency-Key': key })
      .send(body);

  it('should answer a repeat with the first job, marked as replayed', async () => {
    const first = await create('key-1').expect(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await create('key-1').expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.job_id).toBe(first.body.job_id);
    expect(await jobCount()).toBe(1);
  });

  it('should refuse the same key with a different body with 409, creating nothing', async () => {
    await create('key-2').expect(201);
    const response = await create('key-2', jobRequest({ name: 'another' })).expect(409);
    expect(response.body).toEqual({
      error: 'This Idempotency-Key was already used with a different request; use a new key',
      code: 409,
    });
    expect(await jobCount()).toBe(1);
  });

  it('should create exactly one job for 100 concurrent identical requests', async () => {
    const responses = await Promise.all(Array.from({ length: 100 }, () => create('storm-key')));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(201));
    expect(new Set(responses.map((r) => r.body.job_id)).size).toBe(1);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(99);
    expect(await jobCount()).toBe(1);
  });

  it('should keep keys per caller', async () => {
    const { owner: _owner, ...body } = jobRequest();
    const alice = await create(
      'shared',
      body,
      bearer(keycloak.token({ sub: 'a', preferred_username: 'alice' })),
    ).expect(201);
    const bob = await create('shared', body, bearer(keycloak.token({ sub: 'b', preferred_username: 'bob' }))).expect(
      201,
    );
    expect(alice.body.job_id).not.toBe(bob.body.job_id);
  });

  it('should give a key back when its create failed, and forget expired keys', async () => {
    const { owner: _owner, ...noOwner } = jobRequest();
    await create('retry-key', noOwner).expect(422);
    await create('retry-key').expect(201);

    await testApp.dataSource.query(
      `UPDATE automl_training_idempotency_keys SET expires_at = now() - interval '1 second'`,
    );
    const fresh = await create('retry-key', jobRequest({ name: 'after expiry' })).expect(201);
    expect(fresh.headers['idempotent-replayed']).toBeUndefined();
    await testApp.dataSource.query(
      `UPDATE automl_training_idempotency_keys SET expires_at = now() - interval '1 second'`,
    );
    expect(await testApp.app.get(IdempotencyStore).deleteExpired()).toBe(1);
    expect(await jobCount()).toBe(2);
  });

  it('should refuse a malformed key with 422', async () => {
    const response = await create('x'.repeat(256)).expect(422);
    expect(response.body.detail[0]).toMatchObject({ type: 'value_error', loc: ['header', 'idempotency-key'] });
  });
});

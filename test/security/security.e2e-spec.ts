import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob, jobRequest, writeback } from '../utils/jobs';
import {
  bearer,
  LogCapture,
  psk,
  ROTATED_PSK,
  startTestApp,
  startTestAppWithKeycloak,
  TEST_PSK,
  TestApp,
} from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';

/**
 * Object-level access rule (documented in docs/api.md, "Who sees what"): the platform PSK and
 * users with an admin role (ADMIN_ROLES, default automl-admin) reach every
 * job; any other bearer user only the jobs they own. Others' jobs are "not
 * found", never "forbidden", so ids cannot be probed.
 */
describe('object-level authorization (BOLA)', () => {
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;
  let bobsJob: Record<string, any>;

  beforeAll(async () => {
    ({ keycloak, testApp, close: stop } = await startTestAppWithKeycloak());
    const { owner: _owner, ...body } = jobRequest();
    const created = await testApp.http().post(JOBS).set(bob()).send(body).expect(201);
    bobsJob = created.body;
    await createJob(testApp, { owner: 'alice' });
  });

  afterAll(() => stop());

  const bob = () => bearer(keycloak.token({ preferred_username: 'bob' }));
  const alice = () => bearer(keycloak.token({ preferred_username: 'alice' }));
  const admin = () => bearer(keycloak.token({ preferred_username: 'root', realm_access: { roles: ['automl-admin'] } }));
  const clientAdmin = () =>
    bearer(
      keycloak.token({
        preferred_username: 'ops',
        resource_access: { 'automl-frontend': { roles: ['automl-admin'] } },
      }),
    );

  it("should answer another owner's job as not found on every route", async () => {
    const id = bobsJob.job_id;
    await testApp.http().get(`${JOBS}/${id}`).set(alice()).expect(404);
    await testApp.http().get(`${JOBS}/${id}/history`).set(alice()).expect(404);
    await testApp.http().post(`${JOBS}/${id}/trigger`).set(alice()).expect(404);
    await testApp.http().post(`${JOBS}/${id}/cancel`).set(alice()).expect(404);
    await testApp.http().delete(`${JOBS}/${id}`).set(alice()).expect(404);
    const statuses = await testApp.http().get(`${JOBS}/status?ids=${id}`).set(alice()).expect(200);
    expect(statuses.body.items).toEqual([]);
    const stored = await testApp.http().get(`${JOBS}/${id}`).set(bob()).expect(200);
    expect(stored.body.status).toBe('queued');
  });

  it("should list only the caller's own jobs, whatever owner filter is asked", async () => {
    const own = await testApp.http().get(JOBS).set(alice()).expect(200);
    expect(own.body.items.map((job: { owner: string }) => job.owner)).toEqual(['alice']);
    const probe = await testApp.http().get(`${JOBS}?owner=bob`).set(alice()).expect(200);
    expect(probe.body).toEqual({ items: [], next_cursor: null });
  });

  it('should let admins (realm or client role) and the platform PSK reach every job', async () => {
    for (const credential of [admin(), clientAdmin(), psk()]) {
      await testApp.http().get(`${JOBS}/${bobsJob.job_id}`).set(credential).expect(200);
      const all = await testApp.http().get(JOBS).set(credential).expect(200);
      expect(all.body.items).toHaveLength(2);
    }
  });

  it('should refuse creating a job for another owner unless admin', async () => {
    const response = await testApp
      .http()
      .post(JOBS)
      .set(alice())
      .send(jobRequest({ owner: 'bob' }))
      .expect(403);
    expect(response.body).toEqual({ error: 'Only an admin may create a job for another owner', code: 403 });
    await testApp
      .http()
      .post(JOBS)
      .set(admin())
      .send(jobRequest({ owner: 'bob' }))
      .expect(201);
  });
});

describe('transport hardening', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ AUTH_FAILURE_LIMIT: '5' });
  });

  afterAll(() => testApp.close());

  it('should send security headers and no framework banner', async () => {
    const response = await testApp.http().get(`${JOBS}?limit=1`).set(psk()).expect(200);
    expect(response.headers['x-powered-by']).toBeUndefined();
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(response.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('should answer 429 with Retry-After once a client address fails authentication too often, still serving its valid credentials', async () => {
    for (let i = 0; i < 5; i++)
      await testApp
        .http()
        .get(JOBS)
        .set(psk(`guess-${i}`))
        .expect(401);
    const blocked = await testApp.http().get(JOBS).set(psk('guess-6')).expect(429);
    expect(blocked.body).toEqual({ error: 'Too many failed authentications; try again later', code: 429 });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    await testApp.http().get(JOBS).set(psk()).expect(200);
  });
});

describe('secrets in logs', () => {
  it('should never log a PSK or a token, valid or not, whatever happens', async () => {
    const logs = new LogCapture();
    const keycloak = await KeycloakDouble.start();
    const testApp = await startTestApp(
      { ...keycloak.env(), AIRFLOW_URL: 'http://127.0.0.1:9', AIRFLOW_TIMEOUT_MS: '300' },
      logs,
    );
    const token = keycloak.token();
    const foreign = keycloak.token({}, { keyid: 'unknown-kid' });
    try {
      const job = await createJob(testApp);
      await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
      await testApp.http().get(JOBS).set(psk('wrong-but-secret-looking-key')).expect(401);
      await testApp.http().get(JOBS).set(bearer(token)).expect(200);
      await testApp.http().get(JOBS).set(bearer(foreign)).expect(401);
      await testApp.http().get(`${JOBS}/status?ids=${job.job_id}`).set(psk(ROTATED_PSK)).expect(200);
      await testApp.http().post(`${JOBS}/${job.job_id}/cancel`).set(bearer(token)).expect(503);
      await keycloak.stop();
      // JWKS down: bearer requests fail fast with 503 (within 2 s), PSK requests are untouched.
      const started = Date.now();
      const down = await testApp
        .http()
        .get(JOBS)
        .set(bearer(keycloak.token({}, { keyid: 'another-kid' })))
        .expect(503);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(down.body).toEqual({ error: 'The identity provider could not be reached; try again', code: 503 });
      await testApp.http().get(JOBS).set(psk()).expect(200);
    } finally {
      await testApp.close();
    }
    const text = logs.raw.join('\n');
    expect(logs.lines.filter((line) => line.req).length).toBeGreaterThanOrEqual(8);
    for (const secret of [TEST_PSK, ROTATED_PSK, 'wrong-but-secret-looking-key', token, foreign, 'airflow-secret']) {
      expect(text).not.toContain(secret);
    }
  });
});

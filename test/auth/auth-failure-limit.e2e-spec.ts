import { generateKeyPairSync } from 'node:crypto';
import { Client } from 'pg';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { usesPostgres } from '../setup/test-database';
import { createJob, writeback } from '../utils/jobs';
import { bearer, LogCapture, psk, startTestApp, TEST_PSK, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';
const LIMITED = { error: 'Too many failed authentications; try again later', code: 429 };

/** `count` requests, `concurrency` at a time; resolves every status in order. */
async function statuses(
  count: number,
  concurrency: number,
  send: (i: number) => PromiseLike<{ status: number }>,
): Promise<number[]> {
  const result: number[] = [];
  for (let start = 0; start < count; start += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, count - start) }, (_, i) => send(start + i));
    result.push(...(await Promise.all(batch)).map((response) => response.status));
  }
  return result;
}

const tally = (values: number[]) =>
  values.reduce<Record<number, number>>((counts, v) => ({ ...counts, [v]: (counts[v] ?? 0) + 1 }), {});

async function authFailures(testApp: TestApp): Promise<Record<string, number>> {
  const text = (await testApp.http().get('/metrics').expect(200)).text;
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^automl_auth_failures_total\{reason="(\w+)"\} (\d+)$/gm))
    counts[match[1]] = Number(match[2]);
  return counts;
}

function expectLimited(response: { status: number; body: unknown; headers: Record<string, string> }): void {
  expect(response.status).toBe(429);
  expect(response.body).toEqual(LIMITED);
  const retryAfter = Number(response.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

/**
 * Failures, not callers, are limited: a valid credential is served
 * whatever its address failed before; failures are counted per client address
 * in the database and answered 429 past AUTH_FAILURE_LIMIT.
 */
describe('auth failure limit', () => {
  describe('one address failing 200 times', () => {
    const LIMIT = 30;
    const CONCURRENCY = 20;
    const logs = new LogCapture();
    let keycloak: KeycloakDouble;
    let testApp: TestApp;
    let jobId: string;
    const refusals = () => logs.lines.filter((line) => line.msg === 'Authentication refused');
    const foreignToken = () =>
      keycloak.token({}, { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey });

    beforeAll(async () => {
      keycloak = await KeycloakDouble.start();
      testApp = await startTestApp({ ...keycloak.env(), AUTH_FAILURE_LIMIT: String(LIMIT) }, logs);
      jobId = (await createJob(testApp)).job_id;
    });

    afterAll(async () => {
      await testApp.close();
      await keycloak.stop();
    });

    (usesPostgres() ? it : it.skip)(
      'should serve valid credentials without touching the failure table, and answer a failure 401 within 5 s however slow its write',
      async () => {
        const locker = new Client({
          connectionString: testApp.config.database.kind === 'postgres' ? testApp.config.database.url : '',
        });
        await locker.connect();
        try {
          await locker.query('BEGIN');
          await locker.query('LOCK TABLE automl_training_auth_failures IN ACCESS EXCLUSIVE MODE');
          const sent = Date.now();
          const failing = testApp
            .http()
            .get(`${JOBS}/${jobId}`)
            .set(psk('wrong-key-while-locked'))
            .then((response) => response);
          // While nothing can read or write the table, valid PSK and bearer requests still answer at once.
          await testApp.http().get(`${JOBS}/${jobId}`).set(psk()).expect(200);
          await testApp.http().get(`${JOBS}/${jobId}`).set(bearer(keycloak.token())).expect(200);
          expect(Date.now() - sent).toBeLessThan(2_000);
          // The failure waits for its write, but not longer than the answer deadline.
          expect((await failing).status).toBe(401);
          expect(Date.now() - sent).toBeGreaterThanOrEqual(4_900);
          expect(Date.now() - sent).toBeLessThan(8_000);
        } finally {
          await locker.query('COMMIT');
          await locker.end();
        }
        // Counted once the write landed.
        const deadline = Date.now() + 5_000;
        let rows: unknown[] = [];
        while (Date.now() < deadline && rows.length === 0) {
          rows = await testApp.dataSource.query('SELECT client, failures FROM automl_training_auth_failures');
          if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(rows).toEqual([{ client: '127.0.0.1', failures: 1 }]);
      },
    );

    it('should count missing and invalid credentials under their reasons, and not a valid one of the wrong kind', async () => {
      const before = await authFailures(testApp);
      await testApp.http().get(JOBS).expect(401);
      const badToken = await testApp.http().get(JOBS).set(bearer(foreignToken())).expect(401);
      expect(badToken.headers['www-authenticate']).toBe('Bearer error="invalid_token", APIKey');
      await testApp.http().get(JOBS).set(psk('nope')).expect(401);
      // A valid bearer token on the PSK-only writeback is a 403, not an authentication failure.
      await testApp
        .http()
        .put(`${JOBS}/${jobId}/status`)
        .set(bearer(keycloak.token()))
        .send({ status: 'running' })
        .expect(403);
      const after = await authFailures(testApp);
      expect(after).toEqual({
        missing: (before.missing ?? 0) + 1,
        invalid_token: (before.invalid_token ?? 0) + 1,
        invalid_psk: (before.invalid_psk ?? 0) + 1,
      });
    });

    it('should answer the first AUTH_FAILURE_LIMIT failures 401 and the rest 429, then still serve a valid PSK writeback and a valid bearer token; a forged X-Forwarded-For changes nothing without TRUST_PROXY', async () => {
      await testApp.dataSource.query('DELETE FROM automl_training_auth_failures');
      const metricsBefore = await authFailures(testApp);
      const logsBefore = refusals().length;
      const wrongKeys = Array.from({ length: 200 }, (_, i) => `wrong-psk-${i}-secret-looking`);
      const answers = await statuses(200, CONCURRENCY, (i) =>
        testApp.http().put(`${JOBS}/${jobId}/status`).set(psk(wrongKeys[i])).send({ status: 'running' }),
      );
      expect(tally(answers)).toEqual({ 401: LIMIT, 429: 200 - LIMIT });

      // A valid credential from the same address is served as if nothing had happened.
      const written = await writeback(testApp, jobId, { status: 'running' }).expect(200);
      expect(written.body.status).toBe('running');
      const read = await testApp.http().get(`${JOBS}/${jobId}`).set(bearer(keycloak.token())).expect(200);
      expect(read.body.status).toBe('running');

      // Further failures of every kind are still refused with 429 and Retry-After.
      expectLimited(
        await testApp.http().put(`${JOBS}/${jobId}/status`).set(psk('one-more-wrong')).send({ status: 'complete' }),
      );
      expectLimited(await testApp.http().get(`${JOBS}/${jobId}`).set(bearer(foreignToken())));
      expectLimited(await testApp.http().get(`${JOBS}/${jobId}`));
      // Without TRUST_PROXY a forged X-Forwarded-For changes nothing: still this address, still limited.
      expectLimited(
        await testApp
          .http()
          .get(`${JOBS}/${jobId}`)
          .set({ ...psk('forged-xff'), 'X-Forwarded-For': '203.0.113.99' }),
      );
      const stored = await testApp.http().get(`${JOBS}/${jobId}`).set(psk()).expect(200);
      expect(stored.body.status).toBe('running');

      // Once the address is known to be over the limit, its failures are refused without writing the database.
      const [row] = await testApp.dataSource.query(
        'SELECT failures FROM automl_training_auth_failures WHERE client = $1',
        ['127.0.0.1'],
      );
      expect(row.failures).toBeGreaterThan(LIMIT);
      expect(row.failures).toBeLessThanOrEqual(LIMIT + 2 * CONCURRENCY);

      const metrics = await authFailures(testApp);
      expect({ invalid_psk: metrics.invalid_psk - (metricsBefore.invalid_psk ?? 0), limited: metrics.limited }).toEqual(
        {
          invalid_psk: LIMIT,
          limited: 200 - LIMIT + 4,
        },
      );
      expect(refusals()).toHaveLength(logsBefore + 200 + 4);
      expect(refusals().every((line) => line.client === '127.0.0.1')).toBe(true);
    });

    it('should hold a 429 back AUTH_FAILURE_DELAY_MS (500 by default) while a valid request from the same address is answered at once', async () => {
      const sent = Date.now();
      const limited = testApp
        .http()
        .get(`${JOBS}/${jobId}`)
        .set(psk('still-wrong'))
        .then((response) => ({ response, ms: Date.now() - sent }));
      const valid = await testApp.http().get(`${JOBS}/${jobId}`).set(psk()).expect(200);
      expect(valid.body.job_id).toBe(jobId);
      expect(Date.now() - sent).toBeLessThan(450);
      const { response, ms } = await limited;
      expectLimited(response);
      expect(ms).toBeGreaterThanOrEqual(490);
      expect(ms).toBeLessThan(3_000);
    });

    it('should log one line per refused request, with reason, client and status, and no credential', async () => {
      const refused = refusals();
      expect(refused.find((line) => line.method === 'PUT')).toMatchObject({
        level: 40,
        reason: 'invalid_psk',
        client: '127.0.0.1',
        status: 401,
        method: 'PUT',
        path: `${JOBS}/${jobId}/status`,
        correlation_id: expect.any(String),
      });
      expect(refused.filter((line) => line.status === 429).every((line) => line.reason === 'limited')).toBe(true);
      const text = logs.raw.join('\n');
      for (const secret of [TEST_PSK, 'wrong-psk-', 'one-more-wrong', 'forged-xff']) expect(text).not.toContain(secret);
    });
  });

  describe('client address behind proxies', () => {
    const LIMIT = 5;
    const fail = (testApp: TestApp, forwardedFor?: string) =>
      testApp
        .http()
        .get(JOBS)
        .set({ ...psk('wrong'), ...(forwardedFor ? { 'X-Forwarded-For': forwardedFor } : {}) });

    it('should count clients named by X-Forwarded-For apart when TRUST_PROXY names the proxy', async () => {
      const logs = new LogCapture();
      const testApp = await startTestApp({ AUTH_FAILURE_LIMIT: String(LIMIT), TRUST_PROXY: '127.0.0.1' }, logs);
      try {
        for (let i = 0; i < LIMIT; i++) expect((await fail(testApp, '203.0.113.1')).status).toBe(401);
        expectLimited(await fail(testApp, '203.0.113.1'));
        // Another client behind the same proxy has its own count, and the limited one keeps its valid access.
        expect((await fail(testApp, '203.0.113.2')).status).toBe(401);
        await testApp
          .http()
          .get(JOBS)
          .set({ ...psk(), 'X-Forwarded-For': '203.0.113.1' })
          .expect(200);
        // Only the entry the trusted proxy appended counts: a forged one to its left changes nothing.
        expectLimited(await fail(testApp, '198.51.100.7, 203.0.113.1'));
        const clients = logs.lines.filter((line) => line.msg === 'Authentication refused').map((line) => line.client);
        expect(clients).toEqual([...Array(LIMIT + 1).fill('203.0.113.1'), '203.0.113.2', '203.0.113.1']);
      } finally {
        await testApp.close();
      }
    });
  });

  (usesPostgres() ? describe : describe.skip)('two instances on one database', () => {
    const LIMIT = 10;
    let a: TestApp;
    let b: TestApp;

    beforeAll(async () => {
      a = await startTestApp({ AUTH_FAILURE_LIMIT: String(LIMIT) });
      b = await startTestApp({
        AUTH_FAILURE_LIMIT: String(LIMIT),
        DATABASE_URL: a.config.database.kind === 'postgres' ? a.config.database.url : '',
      });
    });

    afterAll(async () => {
      await b.close();
      await a.close();
    });

    it('should share one count: failures spread over both reach the limit as if sent to one', async () => {
      const answers = await statuses(LIMIT, 2, (i) =>
        [a, b][i % 2]
          .http()
          .get(JOBS)
          .set(psk(`wrong-${i}`)),
      );
      expect(answers).toEqual(Array(LIMIT).fill(401));
      expectLimited(await a.http().get(JOBS).set(psk('wrong-a')));
      expectLimited(await b.http().get(JOBS).set(psk('wrong-b')));
      await a.http().get(JOBS).set(psk()).expect(200);
      await b.http().get(JOBS).set(psk()).expect(200);
      const [row] = await a.dataSource.query('SELECT failures FROM automl_training_auth_failures WHERE client = $1', [
        '127.0.0.1',
      ]);
      expect(row.failures).toBe(LIMIT + 2);
    });
  });
});

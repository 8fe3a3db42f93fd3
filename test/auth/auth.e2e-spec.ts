import { createHmac, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { CLIENT_ID, KeycloakDouble } from '../doubles/keycloak.double';
import { createJob, jobRequest } from '../utils/jobs';
import { bearer, psk, ROTATED_PSK, startTestApp, startTestAppWithKeycloak, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';

function base64url(value: object | string): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

describe('authentication', () => {
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;
  let jobId: string;

  beforeAll(async () => {
    ({ keycloak, testApp, close: stop } = await startTestAppWithKeycloak());
    jobId = (await createJob(testApp)).job_id;
  });

  afterAll(() => stop());

  const get = (headers: Record<string, string>) => testApp.http().get(`${JOBS}/${jobId}`).set(headers);

  describe('Keycloak bearer tokens', () => {
    it('should accept a valid RS256 access token', async () => {
      await get(bearer(keycloak.token())).expect(200);
    });

    const refused: [string, () => string][] = [
      [
        'alg none',
        () => {
          const claims = jwt.decode(keycloak.token()) as object;
          return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
        },
      ],
      [
        'HS256 signed with the public key',
        () => {
          const claims = jwt.decode(keycloak.token()) as object;
          const header = base64url({ alg: 'HS256', typ: 'JWT', kid: keycloak.activeKey.kid });
          const body = base64url(claims);
          const signature = createHmac('sha256', keycloak.publicKeyPem())
            .update(`${header}.${body}`)
            .digest('base64url');
          return `${header}.${body}.${signature}`;
        },
      ],
      ['a wrong issuer', () => keycloak.token({ iss: 'http://127.0.0.1:1/realms/other' })],
      [
        'an expired token',
        () => keycloak.token({ exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 420 }),
      ],
      ['a wrong audience and azp', () => keycloak.token({ aud: 'account', azp: 'someone-else' })],
      ['an unknown kid', () => keycloak.token({}, { keyid: 'no-such-key' })],
      [
        'a foreign key with a known kid',
        () => keycloak.token({}, { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }),
      ],
      ['an ID token', () => keycloak.token({ typ: 'ID', aud: CLIENT_ID })],
      ['a refresh token', () => keycloak.token({ typ: 'Refresh' })],
      ['garbage', () => 'not.a.jwt'],
    ];

    it.each(refused)('should refuse %s with 401 ErrorResponse and WWW-Authenticate', async (_name, token) => {
      const response = await get(bearer(token())).expect(401);
      expect(response.body).toEqual({ error: expect.stringMatching(/^Invalid bearer token/), code: 401 });
      expect(response.headers['www-authenticate']).toBe('Bearer error="invalid_token", APIKey');
    });

    it('should accept a token whose audience names the client even when azp differs', async () => {
      await get(bearer(keycloak.token({ aud: ['account', CLIENT_ID], azp: 'other-frontend' }))).expect(200);
    });

    it('should follow key rotation: a token signed by a new kid is verified after one JWKS refetch', async () => {
      await get(bearer(keycloak.token())).expect(200);
      const before = keycloak.jwksRequests;
      keycloak.rotate();
      await get(bearer(keycloak.token())).expect(200);
      await get(bearer(keycloak.token())).expect(200);
      expect(keycloak.jwksRequests - before).toBe(1);
    });

    it('should answer 503 within 2 s while the JWKS endpoint is slow, leaving PSK requests unaffected', async () => {
      keycloak.jwksDelayMs = 5_000;
      try {
        keycloak.rotate();
        const started = Date.now();
        const [slow, pskAnswer] = await Promise.all([get(bearer(keycloak.token())), get(psk())]);
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(slow.status).toBe(503);
        expect(pskAnswer.status).toBe(200);
      } finally {
        keycloak.jwksDelayMs = 0;
      }
    });

    it('should default the owner of a created job to preferred_username', async () => {
      const { owner: _owner, ...body } = jobRequest();
      const response = await testApp
        .http()
        .post(JOBS)
        .set(bearer(keycloak.token({ preferred_username: 'carol' })))
        .send(body)
        .expect(201);
      expect(response.body.owner).toBe('carol');
      const history = await testApp.http().get(`${JOBS}/${response.body.job_id}/history`).set(psk()).expect(200);
      expect(history.body.items[0]).toMatchObject({ source: 'user', actor: 'carol' });
    });
  });

  describe('with a browser-facing issuer and an internal JWKS URL', () => {
    let split: TestApp;

    beforeAll(async () => {
      split = await startTestApp({
        KEYCLOAK_URL: 'http://sso.example.test:8080',
        KEYCLOAK_INTERNAL_URL: keycloak.baseUrl,
        KEYCLOAK_REALM: 'rapid',
      });
    });

    afterAll(() => split.close());

    it('should verify tokens issued for the public URL with keys fetched from the internal one', async () => {
      const token = keycloak.token({ iss: 'http://sso.example.test:8080/realms/rapid' });
      await split.http().get(`${JOBS}?limit=1`).set(bearer(token)).expect(200);
      await split.http().get(`${JOBS}?limit=1`).set(bearer(keycloak.token())).expect(401);
    });
  });

  describe('pre-shared keys', () => {
    it('should accept every configured key (rotation)', async () => {
      await get(psk()).expect(200);
      await get(psk(ROTATED_PSK)).expect(200);
    });

    it.each([
      ['a wrong key', 'wrong-key'],
      ['a key of another length', 'x'.repeat(300)],
      ['a prefix of a valid key', 'test-psk'],
    ])('should refuse %s with 401 and WWW-Authenticate: APIKey', async (_name, key) => {
      const response = await testApp
        .http()
        .put(`${JOBS}/${jobId}/status`)
        .set(psk(key))
        .send({ status: 'running' })
        .expect(401);
      expect(response.body).toEqual({ error: 'Invalid PSK', code: 401 });
      expect(response.headers['www-authenticate']).toBe('APIKey');
    });
  });

  describe('per-route credential kinds', () => {
    it('should refuse a valid bearer token on the PSK-only writeback with 403', async () => {
      const response = await testApp
        .http()
        .put(`${JOBS}/${jobId}/status`)
        .set(bearer(keycloak.token()))
        .send({ status: 'running' })
        .expect(403);
      expect(response.body).toEqual({
        error: 'This route does not accept bearer tokens; use the Authorization-PSK header',
        code: 403,
      });
      const stored = await testApp.http().get(`${JOBS}/${jobId}`).set(psk()).expect(200);
      expect(stored.body.status).toBe('queued');
    });

    it('should refuse an invalid bearer token on the PSK-only writeback with 401', async () => {
      await testApp
        .http()
        .put(`${JOBS}/${jobId}/status`)
        .set(bearer('not.a.jwt'))
        .send({ status: 'running' })
        .expect(401);
    });

    it('should refuse a missing credential with 401 naming the schemes the route accepts', async () => {
      const writeback = await testApp.http().put(`${JOBS}/${jobId}/status`).send({ status: 'running' }).expect(401);
      expect(writeback.body).toEqual({ error: 'Not authenticated', code: 401 });
      expect(writeback.headers['www-authenticate']).toBe('APIKey');
      const read = await testApp.http().get(`${JOBS}/${jobId}`).expect(401);
      expect(read.headers['www-authenticate']).toBe('Bearer, APIKey');
      await testApp.http().get(`${JOBS}/${jobId}`).set('Authorization', 'Basic dXNlcjpwYXNz').expect(401);
    });

    it('should let a valid accepted credential win when both headers arrive', async () => {
      await testApp
        .http()
        .put(`${JOBS}/${jobId}/status`)
        .set({ ...psk(), ...bearer('not.a.jwt') })
        .send({ status: 'queued' })
        .expect(200);
      await get({ ...psk('wrong'), ...bearer(keycloak.token()) }).expect(200);
    });
  });

  describe('without Keycloak configured', () => {
    let bare: TestApp;

    beforeAll(async () => {
      bare = await startTestApp();
    });

    afterAll(() => bare.close());

    it('should refuse bearer tokens with 401 saying bearer auth is off, and still accept the PSK', async () => {
      const response = await bare.http().get(`${JOBS}/${jobId}`).set(bearer(keycloak.token())).expect(401);
      expect(response.body.error).toContain('Bearer authentication is not configured');
      await bare.http().get(`${JOBS}?limit=1`).set(psk()).expect(200);
    });

    it('should leave another app in the same process verifying bearer tokens with its own realm', async () => {
      await get(bearer(keycloak.token())).expect(200);
      await bare.http().get(`${JOBS}?limit=1`).set(bearer(keycloak.token())).expect(401);
    });
  });
});

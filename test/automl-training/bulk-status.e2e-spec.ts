import { bearer, psk, startTestAppWithKeycloak, TestApp } from '../utils/test-app';
import { createJob, writeback } from '../utils/jobs';
import { KeycloakDouble } from '../doubles/keycloak.double';

const STATUS = '/api/automl/train/jobs/status';
const UNKNOWN = '7d5f0f0e-9b1c-4c1e-8f51-6b6f6a0c0c01';

describe('GET /jobs/status (bulk reconciled statuses)', () => {
  let keycloak: KeycloakDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ keycloak, testApp, close: stop } = await startTestAppWithKeycloak());
  });

  beforeEach(() => testApp.reset());

  afterAll(() => stop());

  it('should answer each known id once, in first-asked order, and leave unknown ids out', async () => {
    const a = await createJob(testApp);
    const b = await createJob(testApp, {}, false);
    await writeback(testApp, a.job_id, { status: 'failed', error_message: 'OOM' }).expect(200);
    const response = await testApp
      .http()
      .get(`${STATUS}?ids=${b.job_id}&ids=${UNKNOWN}&ids=${a.job_id}&ids=${b.job_id}&ids=${a.job_id.toUpperCase()}`)
      .set(psk())
      .expect(200);
    expect(response.body.items).toEqual([
      { job_id: b.job_id, status: 'ready', error_message: null, updated_at: b.updated_at },
      { job_id: a.job_id, status: 'failed', error_message: 'OOM', updated_at: expect.any(String) },
    ]);
  });

  it('should answer empty items when no ids are given', async () => {
    await createJob(testApp);
    const response = await testApp.http().get(STATUS).set(psk()).expect(200);
    expect(response.body).toEqual({ items: [] });
  });

  it('should ignore bracketed ids forms that FastAPI treats as other keys', async () => {
    const a = await createJob(testApp);
    const response = await testApp.http().get(`${STATUS}?ids[]=${a.job_id}&ids[0]=x`).set(psk()).expect(200);
    expect(response.body).toEqual({ items: [] });
  });

  it('should refuse more than 1000 ids with a 422 too_long item', async () => {
    const ids = Array.from({ length: 1001 }, (_, i) => `00000000-0000-4000-8000-${i.toString().padStart(12, '0')}`);
    const response = await testApp
      .http()
      .get(`${STATUS}?${ids.map((id) => `ids=${id}`).join('&')}`)
      .set(psk())
      .expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'too_long',
          loc: ['query', 'ids'],
          msg: 'List should have at most 1000 items after validation, not 1001',
          input: ids,
          ctx: { field_type: 'List', max_length: 1000, actual_length: 1001 },
        },
      ],
    });
  });

  it('should accept exactly 1000 ids', async () => {
    const a = await createJob(testApp);
    const ids = [
      a.job_id,
      ...Array.from({ length: 999 }, (_, i) => `00000000-0000-4000-8000-${i.toString().padStart(12, '0')}`),
    ];
    const response = await testApp
      .http()
      .get(`${STATUS}?${ids.map((id) => `ids=${id}`).join('&')}`)
      .set(psk())
      .expect(200);
    expect(response.body.items.map((item: { job_id: string }) => item.job_id)).toEqual([a.job_id]);
  });

  it('should accept a bearer token or a PSK, and refuse neither', async () => {
    const a = await createJob(testApp);
    const url = `${STATUS}?ids=${a.job_id}`;
    await testApp.http().get(url).set(bearer(keycloak.token())).expect(200);
    await testApp.http().get(url).set(psk()).expect(200);
    const none = await testApp.http().get(url).expect(401);
    expect(none.headers['www-authenticate']).toBe('Bearer, APIKey');
  });
});

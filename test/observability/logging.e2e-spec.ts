import { AirflowDouble } from '../doubles/airflow.double';
import { createJob } from '../utils/jobs';
import { LogCapture, psk, startTestAppWithAirflow, TEST_PSK, TestApp } from '../utils/test-app';

describe('request logs and correlation ids', () => {
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;
  const logs = new LogCapture();

  beforeAll(async () => {
    ({ airflow, testApp, close: stop } = await startTestAppWithAirflow({ logDestination: logs }));
  });

  afterAll(() => stop());

  it('should log one JSON line per request with method, route, status, duration and correlation id, redacting credentials', async () => {
    const job = await createJob(testApp);
    const response = await testApp
      .http()
      .get(`/api/automl/train/jobs/${job.job_id}`)
      .set({ ...psk(), 'x-correlation-id': 'trace-abc.123' })
      .expect(200);
    expect(response.headers['x-correlation-id']).toBe('trace-abc.123');
    // The request line is written when the response finishes, which may be just after the client has it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const line = logs.lines.find((entry) => entry.correlation_id === 'trace-abc.123');
    expect(line).toMatchObject({
      level: 30,
      route: '/api/automl/train/jobs/:job_id',
      req: { method: 'GET', url: `/api/automl/train/jobs/${job.job_id}` },
      res: { status: 200 },
      duration_ms: expect.any(Number),
    });
    expect(logs.raw.join('\n')).not.toContain(TEST_PSK);
    // Each key once: JSON.parse would hide a duplicate (the last one wins), log shippers may not.
    const raw = logs.raw[logs.lines.indexOf(line!)];
    const keys = [...raw.matchAll(/"([a-z_]+)":/g)].map((match) => match[1]).filter((key) => key in line!);
    expect(keys).toEqual([...new Set(keys)]);
  });

  it('should make a correlation id when none (or a malformed one) is given, and pass it to Airflow', async () => {
    const job = await createJob(testApp);
    airflow.parse();
    const response = await testApp
      .http()
      .get(`/api/automl/train/jobs/status?ids=${job.job_id}`)
      .set({ ...psk(), 'x-correlation-id': 'bad id with spaces' })
      .expect(200);
    const id = response.headers['x-correlation-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(airflow.requests.filter((r) => r.path.includes('/dagRuns/list')).at(-1)?.correlationId).toBe(id);
  });
});

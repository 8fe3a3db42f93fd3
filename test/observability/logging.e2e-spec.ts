import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirflowDouble } from '../doubles/airflow.double';
import { createJob } from '../utils/jobs';
import { LogCapture, psk, startTestApp, TEST_PSK, TestApp } from '../utils/test-app';

describe('request logs and correlation ids', () => {
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let dagsDir: string;
  const logs = new LogCapture();

  beforeAll(async () => {
    dagsDir = mkdtempSync(join(tmpdir(), 'automl-logs-'));
    airflow = await AirflowDouble.start({ version: 'v2', dagsDir });
    testApp = await startTestApp(airflow.env(), logs);
  });

  afterAll(async () => {
    await testApp.close();
    await airflow.stop();
    rmSync(dagsDir, { recursive: true, force: true });
  });

  it('should log one JSON line per request with method, route, status, duration and correlation id, redacting credentials', async () => {
    const job = await createJob(testApp);
    const response = await testApp
      .http()
      .get(`/api/automl/train/jobs/${job.job_id}`)
      .set({ ...psk(), 'x-correlation-id': 'trace-abc.123' })
      .expect(200);
    expect(response.headers['x-correlation-id']).toBe('trace-abc.123');
    // pino-http writes the line when the response finishes, which may be just after the client has it.
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

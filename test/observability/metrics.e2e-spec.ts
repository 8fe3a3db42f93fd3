import { AirflowDouble } from '../doubles/airflow.double';
import { createJob, writeback } from '../utils/jobs';
import { psk, startTestAppWithAirflow, TestApp } from '../utils/test-app';

describe('GET /metrics', () => {
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ airflow, testApp, close: stop } = await startTestAppWithAirflow());
  });

  afterAll(() => stop());

  it('should expose request, job, writeback, reconcile, Airflow and breaker metrics after traffic', async () => {
    const job = await createJob(testApp);
    const other = await createJob(testApp);
    airflow.parse();
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    await writeback(testApp, job.job_id, { status: 'queued' }).expect(409);
    await testApp.http().get(`/api/automl/train/jobs/status?ids=${other.job_id}`).set(psk()).expect(200);

    const response = await testApp.http().get('/metrics').expect(200);
    expect(response.headers['content-type']).toContain('text/plain');
    const text = response.text;
    for (const expected of [
      'http_requests_total{method="PUT",route="/api/automl/train/jobs/:job_id/status",status="200"} 2',
      'http_requests_total{method="PUT",route="/api/automl/train/jobs/:job_id/status",status="409"} 1',
      'http_request_duration_seconds_bucket{le="0.5",method="POST",route="/api/automl/train/jobs",status="201"} 2',
      'automl_jobs{status="running"} 1',
      'automl_jobs{status="queued"} 1',
      'automl_writebacks_total{result="advanced"} 1',
      'automl_writebacks_total{result="repeated"} 1',
      'automl_writebacks_total{result="refused"} 1',
      'automl_reconcile_batch_size_count 1',
      'automl_airflow_request_duration_seconds_count{operation="listRuns",outcome="ok"} 1',
      'automl_airflow_circuit_open 0',
      'process_resident_memory_bytes',
    ]) {
      expect(text).toContain(expected);
    }
  });
});

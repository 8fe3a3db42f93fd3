import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { usesPostgres } from '../setup/test-database';
import { EventStreamClient } from '../utils/event-stream';
import { createJob } from '../utils/jobs';
import { AirflowTestApp, baseUrl, psk, startTestApp, startTestAppWithAirflow, TestApp } from '../utils/test-app';

const PERIOD_MS = 300;

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${timeoutMs} ms`);
}

const statusOf = async (testApp: TestApp, jobId: string) =>
  (await testApp.http().get(`/api/automl/train/jobs/${jobId}`).set(psk()).expect(200)).body as {
    status: string;
    error_message: string | null;
  };

describe('background reconciliation', () => {
  let a: AirflowTestApp;

  beforeAll(async () => {
    a = await startTestAppWithAirflow({ env: { RECONCILE_INTERVAL_MS: String(PERIOD_MS) } });
  });

  afterAll(() => a.close());

  it('should fail a run Airflow marked failed without any callback within about one period', async () => {
    const job = await createJob(a.testApp);
    a.airflow.parse();
    a.airflow.setRunState(job.airflow_dag_id, 'failed');
    await until(async () => (await statusOf(a.testApp, job.job_id)).status === 'failed', PERIOD_MS * 4);
    const history = await a.testApp.http().get(`/api/automl/train/jobs/${job.job_id}/history`).set(psk()).expect(200);
    expect(history.body.items.at(-1)).toMatchObject({
      from_status: 'queued',
      to_status: 'failed',
      source: 'reconcile',
    });
  });

  it('should fail a queued job whose DAG Airflow still has not parsed after DAG_PARSE_TIMEOUT_MS', async () => {
    const job = await createJob(a.testApp);
    await a.testApp.dataSource.query(
      `UPDATE automl_training_jobs SET created_at = now() - interval '11 minutes' WHERE job_id = $1`,
      [job.job_id],
    );
    await until(async () => (await statusOf(a.testApp, job.job_id)).status === 'failed', PERIOD_MS * 4);
    const stored = await statusOf(a.testApp, job.job_id);
    expect(stored.status).toBe('failed');
    expect(stored.error_message).toBe(
      `Airflow has not parsed DAG ${job.airflow_dag_id} within 10 minutes; check the DAG folder and Airflow's import errors`,
    );
  });

  it("should delete again a deleted job's DAG that Airflow re-created from a parse under way when its file went, and leave the others alone", async () => {
    const [recreated, gone] = [await createJob(a.testApp), await createJob(a.testApp)];
    a.airflow.parse();
    const file = join(a.testApp.config.airflow.dagsDir, `${recreated.airflow_dag_id}.py`);
    const text = readFileSync(file, 'utf8');
    for (const job of [recreated, gone])
      await a.testApp.http().delete(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(204);
    expect(a.airflow.dag(recreated.airflow_dag_id)).toBeUndefined();
    // What the real dag-processor does when it collects a parse that read the file before the service removed it.
    writeFileSync(file, text);
    a.airflow.parse();
    unlinkSync(file);
    a.airflow.parse(); // its file gone: the DAG stays, stale
    expect(a.airflow.dag(recreated.airflow_dag_id)).toMatchObject({ stale: true });
    const deletes = a.airflow.count('DELETE', `/dags/${recreated.airflow_dag_id}`);
    await until(async () => a.airflow.dag(recreated.airflow_dag_id) === undefined, PERIOD_MS * 4);
    expect(a.airflow.count('DELETE', `/dags/${recreated.airflow_dag_id}`)).toBe(deletes + 1);
    expect(existsSync(file)).toBe(false);
    // The one that stayed gone is only looked at, never deleted twice.
    await new Promise((r) => setTimeout(r, PERIOD_MS * 2));
    expect(a.airflow.count('DELETE', `/dags/${gone.airflow_dag_id}`)).toBe(1);
    expect(a.airflow.count('GET', `/dags/${gone.airflow_dag_id}`)).toBeGreaterThan(0);
  });

  (usesPostgres() ? describe : describe.skip)('with two instances on one database', () => {
    let b: TestApp;

    beforeAll(async () => {
      b = await startTestApp({
        ...a.keycloak.env(),
        ...a.airflow.env(),
        DATABASE_URL: a.testApp.config.database.kind === 'postgres' ? a.testApp.config.database.url : '',
        RECONCILE_INTERVAL_MS: String(PERIOD_MS),
      });
    });

    afterAll(() => b.close());

    it('should show a run Airflow failed without any callback as failed on a stream open on the other instance within one period', async () => {
      const job = await createJob(a.testApp);
      a.airflow.parse();
      const url = await baseUrl(b);
      const client = await EventStreamClient.open(`${url}/api/automl/train/jobs/events?ids=${job.job_id}`, psk());
      try {
        const failedAt = Date.now();
        a.airflow.setRunState(job.airflow_dag_id, 'failed');
        await client.until(
          (c) => c.events.some((event) => event.data.to === 'failed'),
          PERIOD_MS * 4,
          'the failed event',
        );
        const latency = Date.now() - failedAt;
        expect(client.events.at(-1)!.data).toMatchObject({
          job_id: job.job_id,
          from: 'queued',
          to: 'failed',
          status: 'failed',
        });
        // Within one reconcile period, plus the feed's read and a margin for a busy CI machine.
        expect(latency).toBeLessThan(PERIOD_MS + 400);
      } finally {
        await client.close();
      }
    });

    it('should let one instance lead: one Airflow batch request per period, not two', async () => {
      await createJob(b);
      a.airflow.parse();
      await new Promise((r) => setTimeout(r, PERIOD_MS * 2));
      const before = a.airflow.count('POST', '/dagRuns/list');
      const windowMs = PERIOD_MS * 10;
      await new Promise((r) => setTimeout(r, windowMs));
      const batches = a.airflow.count('POST', '/dagRuns/list') - before;
      expect(batches).toBeGreaterThanOrEqual(7);
      expect(batches).toBeLessThanOrEqual(12);
    });
  });
});

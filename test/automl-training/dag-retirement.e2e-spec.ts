import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainingRuntime } from '../../src/automl-training/dag/dag-renderer';
import { DagRetirer } from '../../src/automl-training/dag/dag-retirer';
import { createJob, writeback } from '../utils/jobs';
import { AirflowTestApp, psk, startTestAppWithAirflow } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';
const RETENTION_MS = 1_500;

/** A terminal job's DAG file leaves the DAG folder after DAG_RETENTION_MS; a retry deploys it again. */
describe('DAG retirement', () => {
  let a: AirflowTestApp;
  let retirer: DagRetirer;

  beforeAll(async () => {
    a = await startTestAppWithAirflow({ env: { DAG_RETENTION_MS: String(RETENTION_MS), RECONCILE_INTERVAL_MS: '0' } });
    retirer = a.testApp.app.get(DagRetirer);
    // Its timer stopped: the test sweeps by hand (tick), so it knows what each sweep did.
    await retirer.onApplicationShutdown();
  });

  afterAll(() => a.close());

  beforeEach(() => a.testApp.reset());

  const fileOf = (dagId: string) => join(a.dagsDir, `${dagId}.py`);
  const finish = async (jobId: string, status: 'complete' | 'failed') => {
    await writeback(a.testApp, jobId, { status: 'running' }).expect(200);
    await writeback(a.testApp, jobId, status === 'failed' ? { status, error_message: 'OOM' } : { status }).expect(200);
  };
  const retiredAt = async (jobId: string) =>
    (await a.testApp.dataSource.query('SELECT dag_retired_at FROM automl_training_jobs WHERE job_id = $1', [jobId]))[0]
      .dag_retired_at as Date | null;

  it('should write the runtime once, keep it off the parser, and make each DAG file small', async () => {
    const jobs = [await createJob(a.testApp), await createJob(a.testApp, { name: 'second' })];
    const runtime = trainingRuntime();
    expect(readFileSync(join(a.dagsDir, runtime.fileName), 'utf8')).toBe(runtime.source);
    expect(readFileSync(join(a.dagsDir, '.airflowignore'), 'utf8').split('\n')).toContain('automl_runtime_*');
    expect(readdirSync(a.dagsDir).filter((name) => name.startsWith('automl_runtime_'))).toEqual([runtime.fileName]);
    for (const job of jobs) {
      const source = readFileSync(fileOf(job.airflow_dag_id), 'utf8');
      expect(source).toContain(`from ${runtime.module} import DAG, TrainingJob`);
      expect(Buffer.byteLength(source)).toBeLessThanOrEqual(3_072);
    }
  });

  it('should retire the files of jobs terminal for longer than the retention only, and keep them readable', async () => {
    const complete = await createJob(a.testApp, { name: 'complete' });
    const failed = await createJob(a.testApp, { name: 'failed' });
    const live = await createJob(a.testApp, { name: 'live' });
    const manual = await createJob(a.testApp, { name: 'manual' }, false);
    a.airflow.parse();
    a.airflow.writeTaskLog(complete.airflow_dag_id, 'train', ['trained'], { state: 'success' });
    await finish(complete.job_id, 'complete');
    await finish(failed.job_id, 'failed');
    expect(await retirer.tick()).toBe(0);

    await new Promise((r) => setTimeout(r, RETENTION_MS + 200));
    const recent = await createJob(a.testApp, { name: 'recent' });
    await finish(recent.job_id, 'complete');
    expect(await retirer.tick()).toBe(2);
    expect([complete, failed, live, manual, recent].map((job) => existsSync(fileOf(job.airflow_dag_id)))).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    expect(await retiredAt(complete.job_id)).toBeInstanceOf(Date);
    expect(await retirer.tick()).toBe(0);

    // The job itself is unchanged: its DAG source, its listing item, its logs in Airflow.
    const one = await a.testApp.http().get(`${JOBS}/${complete.job_id}`).set(psk()).expect(200);
    expect(one.body).toMatchObject({ status: 'complete', rendered_dag: complete.rendered_dag });
    const list = await a.testApp.http().get(`${JOBS}?limit=10`).set(psk()).expect(200);
    expect(
      list.body.items.map((item: { job_id: string; rendered_dag: unknown }) => [item.job_id, item.rendered_dag]),
    ).toContainEqual([complete.job_id, null]);
    const logs = await a.testApp.http().get(`${JOBS}/${complete.job_id}/logs`).set(psk()).expect(200);
    expect(logs.body.tasks.find((task: { task_id: string }) => task.task_id === 'train').lines.join('\n')).toContain(
      'trained',
    );
  });

  it('should deploy a retired DAG again from the stored DAG when a failed job is retried, and retire it again later', async () => {
    const job = await createJob(a.testApp);
    a.airflow.parse();
    await finish(job.job_id, 'failed');
    await new Promise((r) => setTimeout(r, RETENTION_MS + 200));
    expect(await retirer.tick()).toBe(1);
    expect(existsSync(fileOf(job.airflow_dag_id))).toBe(false);

    const retried = await a.testApp.http().post(`${JOBS}/${job.job_id}/trigger`).set(psk()).expect(200);
    expect(retried.body).toMatchObject({ status: 'queued', error_message: null });
    expect(readFileSync(fileOf(job.airflow_dag_id), 'utf8')).toBe(job.rendered_dag);
    expect(await retiredAt(job.job_id)).toBeNull();
    expect(a.airflow.runsOf(job.airflow_dag_id)).toHaveLength(2);
    // Not terminal any more: the sweep leaves it, however long ago it first finished.
    expect(await retirer.tick()).toBe(0);
    await finish(job.job_id, 'failed');
    await new Promise((r) => setTimeout(r, RETENTION_MS + 200));
    expect(await retirer.tick()).toBe(1);
    expect(existsSync(fileOf(job.airflow_dag_id))).toBe(false);
  });

  it('should delete a retired job as any other', async () => {
    const job = await createJob(a.testApp);
    a.airflow.parse();
    await finish(job.job_id, 'complete');
    await new Promise((r) => setTimeout(r, RETENTION_MS + 200));
    expect(await retirer.tick()).toBe(1);
    await a.testApp.http().delete(`${JOBS}/${job.job_id}`).set(psk()).expect(204);
    await a.testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(404);
  });
});

import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Preset } from '../../src/automl-training/domain/automl-training.enums';
import { DagJob, DagRenderer, MAX_CONTAINER_SPEC_BYTES } from '../../src/automl-training/dag/dag-renderer';
import { loadAppConfig } from '../../src/config/app.config';
import { dagJob, renderedJobSpec, writeTrainingRuntime } from '../utils/dag-python';
import { createJob, jobRequest } from '../utils/jobs';
import { baseUrl, psk, startTestApp, TEST_PSK, TestApp } from '../utils/test-app';

/**
 * The rendered DAG's train and callback code, run by python3 through
 * test/utils/python/dag_harness.py (Airflow stubbed when not installed) with
 * test/utils/python/fake_trainer.py as TRAINING_COMMAND: what the trainer
 * receives, how it is stopped, and what the callbacks send to a real service.
 */
const HARNESS = resolve(__dirname, '../utils/python/dag_harness.py');
const FAKE_TRAINER = resolve(__dirname, '../utils/python/fake_trainer.py');
const trainingCommand = (mode: string) => `python3 ${FAKE_TRAINER} ${mode}`;

const SOURCE_PASSWORD = 'src-p@ss/word';
const MLFLOW_PASSWORD = 'mlflow-secret-42';
const CONNECTIONS = {
  automl_source: {
    conn_type: 'postgres',
    host: 'db.internal',
    port: 5432,
    schema: 'warehouse',
    login: 'reader',
    password: SOURCE_PASSWORD,
  },
  automl_mlflow: { conn_type: 'http', host: 'mlflow.internal', port: 5000, login: 'ml', password: MLFLOW_PASSWORD },
};
const VARIABLES = { automl_training_psk: TEST_PSK };
/** The worker's own secrets: none may reach the trainer. */
const WORKER_SECRETS = {
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: 'postgresql://airflow:metadb-secret@127.0.0.1/airflow',
  AIRFLOW__CORE__FERNET_KEY: 'fernet-secret-key',
  AWS_SECRET_ACCESS_KEY: 'aws-secret',
  PYTHONPATH: '/opt/worker/lib',
};
/** The harness's whole environment (so the expected trainer environment is known exactly). */
const HARNESS_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), LANG: 'C.UTF-8', TZ: 'UTC' };

type Answer = Record<string, any>;

/** Runs the harness asynchronously: the service under test answers the DAG's callbacks meanwhile. */
function harness(request: Record<string, unknown>, raw?: string): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const child = spawn('python3', [HARNESS], { env: HARNESS_ENV, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`dag_harness exited ${code}: ${Buffer.concat(err).toString()}`));
      resolveAnswer(JSON.parse(Buffer.concat(out).toString()));
    });
    child.stdin.end(raw ?? JSON.stringify(request));
  });
}

describe('the rendered DAG run by python3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'automl-dag-train-'));
  writeTrainingRuntime(dir);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function renderTo(
    env: Record<string, string>,
    job: DagJob = dagJob({ preset: Preset.Fast }),
  ): { path: string; source: string; containerSpecBytes: number | null } {
    const renderer = new DagRenderer(
      loadAppConfig({ NODE_ENV: 'test', API_PSK: TEST_PSK, DATABASE_URL: 'pglite://memory', ...env }),
    );
    const rendered = renderer.render(job);
    const path = join(dir, `${rendered.dagId}.py`);
    writeFileSync(path, rendered.source);
    return { path, source: rendered.source, containerSpecBytes: rendered.containerSpecBytes };
  }

  const base = { connections: CONNECTIONS, variables: VARIABLES, worker_env: WORKER_SECRETS };

  describe('command path', () => {
    it('should hand the trainer its spec in a private file and only the allowlisted environment plus the Connections’ values', async () => {
      const { path, source } = renderTo({ TRAINING_COMMAND: trainingCommand('dump') });
      const worker_env = { ...WORKER_SECRETS, AUTOML_TRAINER_MAX_MEMORY: '2G' }; // the worker's limit for its jobs
      const answer = await harness({ ...base, worker_env, dag: path, scenario: 'train' });
      expect(answer.error).toBeNull();
      const { env, spec } = answer.result;
      expect(Object.keys(env).sort()).toEqual(
        [
          'AUTOML_JOB_SPEC_PATH',
          'AUTOML_RESULT_PATH',
          'AUTOML_SOURCE_URL',
          'AUTOML_TRAINER_MAX_MEMORY',
          'HOME',
          'LANG',
          'MLFLOW_TRACKING_PASSWORD',
          'MLFLOW_TRACKING_URI',
          'MLFLOW_TRACKING_USERNAME',
          'PATH',
          'TMPDIR',
          'TZ',
        ].sort(),
      );
      expect(env).toMatchObject({
        AUTOML_SOURCE_URL: 'postgresql://reader:src-p%40ss%2Fword@db.internal:5432/warehouse',
        MLFLOW_TRACKING_URI: 'http://mlflow.internal:5000',
        MLFLOW_TRACKING_USERNAME: 'ml',
        MLFLOW_TRACKING_PASSWORD: MLFLOW_PASSWORD,
        LANG: 'C.UTF-8',
        AUTOML_TRAINER_MAX_MEMORY: '2G',
      });
      expect(spec).toEqual(renderedJobSpec(source));
      // Airflow's log masker knows the secrets, so no task log line (the trainer's relayed output included) shows them.
      if (answer.stubbed_airflow) expect(answer.masked).toEqual([env.AUTOML_SOURCE_URL, MLFLOW_PASSWORD]);
      expect(answer.result.spec_file_mode).toBe(0o600);
      expect(answer.result.spec_dir_mode).toBe(0o700);
      expect(env.AUTOML_JOB_SPEC_PATH.startsWith(env.TMPDIR)).toBe(true);
      // The private directory is gone once the task ends.
      expect(answer.left_in_tmpdir).toEqual([]);
      // The result is the task's XCom, as the trainer wrote it.
      expect(answer.result).toMatchObject({ mlflow_run_id: 'run-fake', model_version: '7', objective: 'roc_auc' });
    });

    it('should contain no secret: the PSK, passwords and URLs are read at run time', async () => {
      const { source } = renderTo({ TRAINING_COMMAND: trainingCommand('dump') });
      for (const secret of [
        TEST_PSK,
        SOURCE_PASSWORD,
        MLFLOW_PASSWORD,
        'db.internal',
        'mlflow.internal',
        ...Object.values(WORKER_SECRETS),
      ]) {
        expect({ secret, found: source.includes(secret) }).toEqual({ secret, found: false });
      }
      expect(source).toContain('SOURCE_CONN_ID = "automl_source"');
      expect(source).toContain('MLFLOW_CONN_ID = "automl_mlflow"');
      expect(source).toContain('DASK_CONN_ID = "automl_dask"');
      const renamed = renderTo({
        AIRFLOW_SOURCE_CONN_ID: 'warehouse_ro',
        AIRFLOW_MLFLOW_CONN_ID: 'mlflow_prod',
        AIRFLOW_DASK_CONN_ID: 'dask_prod',
      }).source;
      expect(renamed).toContain('SOURCE_CONN_ID = "warehouse_ro"');
      expect(renamed).toContain('MLFLOW_CONN_ID = "mlflow_prod"');
      expect(renamed).toContain('DASK_CONN_ID = "dask_prod"');
    });

    it('should deliver a 5000 × 500-character feature list intact', async () => {
      // 500 characters each (code points, as the API counts): non-ASCII, astral, quote and backslash included.
      const featureColumns = Array.from(
        { length: 5000 },
        (_, i) => `${String(i).padStart(4, '0')}é😀"\\${randomBytes(246).toString('hex')}`,
      );
      expect(featureColumns.every((column) => [...column].length === 500)).toBe(true);
      const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('dump') }, dagJob({ featureColumns }));
      const answer = await harness({ ...base, dag: path, scenario: 'train' });
      expect(answer.error).toBeNull();
      expect(answer.result.spec.feature_columns).toEqual(featureColumns);
    });

    it('should write back running from the train task, give the complete callback short bounded retries and the train task its own operator', async () => {
      const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('dump') });
      const { tasks, writebacks, stubbed_airflow: stubbed } = await harness({ ...base, dag: path, scenario: 'train' });
      // `running` once the train task holds its slot, from the task itself: no task before it.
      expect(writebacks).toEqual(['running']);
      if (!stubbed) return; // a real Airflow holds no recorded arguments; the real-Airflow suite covers it
      expect(Object.keys(tasks).sort()).toEqual(['report_complete', 'train']);
      expect(tasks.report_complete).toEqual(
        expect.objectContaining({
          retries: 3,
          retry_delay: 10,
          retry_exponential_backoff: true,
          max_retry_delay: 30,
          execution_timeout: 60,
        }),
      );
      expect(tasks.train).toMatchObject({ operator: 'TrainingOperator', execution_timeout: (10 + 30) * 60 });
      // Unconfigured: Airflow's default pool and queue.
      for (const task of Object.values(tasks) as Record<string, unknown>[]) {
        expect([task.pool, task.queue]).toEqual([undefined, undefined]);
      }
    });

    it('should bound the train task by the budget plus TRAINING_TIMEOUT_MARGIN_MINUTES and put it in the pool and its preset’s queue', async () => {
      const env = {
        TRAINING_COMMAND: trainingCommand('dump'),
        TRAINING_TIMEOUT_MARGIN_MINUTES: '7',
        TRAINING_POOL: 'automl_training',
        TRAINING_QUEUE: 'train',
        TRAINING_QUEUE_BY_PRESET: 'best_quality=train-large',
      };
      const cases = [
        { job: dagJob({ preset: Preset.Fast }), queue: 'train', budget: 10 },
        { job: dagJob({ preset: Preset.BestQuality }), queue: 'train-large', budget: 180 },
        {
          job: dagJob({ preset: Preset.BestQuality, tuningTimeBudgetMinutes: 1440 }),
          queue: 'train-large',
          budget: 1440,
        },
      ];
      for (const { job, queue, budget } of cases) {
        const { path, source } = renderTo(env, job);
        expect(source).toContain('TRAINING_POOL = "automl_training"');
        const { tasks, stubbed_airflow: stubbed } = await harness({ ...base, dag: path, scenario: 'train' });
        if (!stubbed) return;
        expect(tasks.train).toMatchObject({
          operator: 'TrainingOperator',
          execution_timeout: (budget + 7) * 60,
          pool: 'automl_training',
          pool_slots: 1,
          queue,
        });
        // The complete callback is light: it takes no training slot and runs on any worker of the default queue.
        expect(tasks.report_complete.pool).toBeUndefined();
        expect(tasks.report_complete.queue).toBeUndefined();
      }
    });
  });

  describe('stopping the trainer', () => {
    it.each(['airflow3', 'airflow2'])(
      'should forward SIGTERM (%s handler) and leave no process behind',
      async (handler) => {
        const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('sleep') });
        const answer = await harness({ ...base, dag: path, scenario: 'stop', handler });
        expect(answer.error).toMatch(handler === 'airflow3' ? /training stopped: the task was terminated/ : /SIGTERM/);
        expect(answer).toMatchObject({ trainer_got_sigterm: true, trainer_alive: false, grandchild_alive: false });
        expect(answer.stop_seconds).toBeLessThan(5);
      },
    );

    it('should SIGKILL a trainer that ignores SIGTERM once the grace period is over', async () => {
      const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('stubborn') });
      const answer = await harness({ ...base, dag: path, scenario: 'stop', grace_seconds: 1 });
      expect(answer).toMatchObject({ trainer_got_sigterm: true, trainer_alive: false, grandchild_alive: false });
      expect(answer.error).toContain('killed by SIGKILL');
      expect(answer.stop_seconds).toBeGreaterThanOrEqual(1);
      expect(answer.stop_seconds).toBeLessThan(5);
    });

    it('should stop the trainer when the execution timeout fires inside the task', async () => {
      const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('sleep') });
      const answer = await harness({ ...base, dag: path, scenario: 'timeout', timeout_seconds: 0.5 });
      expect(answer.error).toContain('TaskTimeout');
      expect(answer).toMatchObject({ trainer_got_sigterm: true, trainer_alive: false, grandchild_alive: false });
    });

    it('should hold a kill that comes while the trainer is started or stopped, and start no trainer once killed', async () => {
      const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('sleep') });
      const answer = await harness({ ...base, dag: path, scenario: 'held' });
      expect(answer.calls).toEqual(['end of section', 'handler']);
      expect(answer.error).toBe('RuntimeError: training stopped: the task was terminated before the trainer started');
      expect(answer.trainer_started).toBe(false);
    });

    it('should take the trainer down with the task process when that is SIGKILLed', async () => {
      const { path } = renderTo({ TRAINING_COMMAND: trainingCommand('sleep') });
      const child: ChildProcess = spawn('python3', [HARNESS], { env: HARNESS_ENV, stdio: ['pipe', 'pipe', 'inherit'] });
      child.stdin!.end(JSON.stringify({ ...base, dag: path, scenario: 'orphan' }));
      const line = await new Promise<string>((resolveLine, reject) => {
        let buffered = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          if (buffered.includes('\n')) resolveLine(buffered.split('\n')[0]);
        });
        child.on('exit', () => reject(new Error('harness exited before the trainer started')));
      });
      const { pids } = JSON.parse(line) as { pids: { trainer: number; grandchild: number } };
      try {
        child.kill('SIGKILL');
        const deadline = Date.now() + 5_000;
        while (alive(pids.trainer) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(alive(pids.trainer)).toBe(false);
      } finally {
        // The trainer's own children are its to stop (the contract's SIGTERM handling); the test cleans up.
        for (const pid of [pids.trainer, pids.grandchild]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      }
    });
  });

  describe('container path (TRAINING_IMAGE)', () => {
    it('should give the pod the gzip+base64 spec and the XCom result path, and the secrets only when the task runs', async () => {
      const { path, source, containerSpecBytes } = renderTo({ TRAINING_IMAGE: 'registry.local/automl-trainer:1' });
      const answer = await harness({ ...base, dag: path, scenario: 'container' });
      expect(answer).toMatchObject({
        operator_class: 'TrainingPodOperator',
        rendered_env_names: ['AUTOML_JOB_SPEC_GZ_B64', 'AUTOML_RESULT_PATH'],
        result_path: '/airflow/xcom/return.json',
        spec_intact: true,
        task_kwargs: expect.objectContaining({ image: 'registry.local/automl-trainer:1', do_xcom_push: true }),
      });
      expect(answer.executed_env).toMatchObject({
        AUTOML_SOURCE_URL: 'postgresql://reader:src-p%40ss%2Fword@db.internal:5432/warehouse',
        MLFLOW_TRACKING_URI: 'http://mlflow.internal:5000',
        MLFLOW_TRACKING_PASSWORD: MLFLOW_PASSWORD,
      });
      for (const secret of [SOURCE_PASSWORD, MLFLOW_PASSWORD, TEST_PSK]) expect(source).not.toContain(secret);
      // What the service measured for its size check is exactly what the pod gets.
      expect(answer.encoded_length).toBe(containerSpecBytes);
    });
  });

  describe('callbacks against the service', () => {
    let testApp: TestApp;
    let url: string;

    beforeAll(async () => {
      testApp = await startTestApp({ TRAINING_COMMAND: trainingCommand('fail') });
      url = await baseUrl(testApp);
    });

    afterAll(() => testApp.close());

    const dagOf = (job: Record<string, any>) => {
      const path = join(dir, `${job.airflow_dag_id}.py`);
      writeFileSync(path, job.rendered_dag);
      return path;
    };

    it('should fail a callback at once, naming the service’s answer, when the PSK is wrong', async () => {
      const job = await createJob(testApp);
      const answer = await harness({
        ...base,
        variables: { automl_training_psk: 'not-the-right-key-0000' },
        dag: dagOf(job),
        scenario: 'report_running',
        callback_url: `${url}/api/automl/train/jobs/${job.job_id}/status`,
      });
      expect(answer.error).toMatch(/^WritebackRefused: writeback 'running' refused with HTTP 401: .*"code":401/);
      expect(answer.seconds).toBeLessThan(5);
      expect(
        (await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200)).body.status,
      ).toBe('queued');
    });

    it('should write back failed with the trainer’s last stderr line as the error', async () => {
      const job = await createJob(testApp);
      const answer = await harness({
        ...base,
        dag: dagOf(job),
        scenario: 'report_failure',
        callback_url: `${url}/api/automl/train/jobs/${job.job_id}/status`,
      });
      expect(answer.error).toBe("column 'x' not found in table public.t (trainer exit code 1)");
      const stored = await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set(psk()).expect(200);
      expect(stored.body).toMatchObject({
        status: 'failed',
        error_message: "train: column 'x' not found in table public.t (trainer exit code 1)",
      });
    });

    it('should write back complete with the result summary, keeping only metrics the service accepts', async () => {
      const job = await createJob(testApp);
      const longName = 'm'.repeat(251);
      const result = `{"mlflow_run_id": "run-9", "registered_model_name": "marketing.churn_model", "model_version": 7,
        "objective": "roc_auc", "metrics": {"roc_auc": 0.91, "log_loss": 0.3, "undefined_f1": NaN, "note": "x",
        "flag": true, "${longName}": 1}, "trials_run": 3, "best_params": {"num_leaves": 31}, "time_used_seconds": 12.5}`;
      const request = {
        ...base,
        dag: dagOf(job),
        scenario: 'report_complete',
        callback_url: `${url}/api/automl/train/jobs/${job.job_id}/status`,
      };
      const raw = JSON.stringify({ ...request, result: '__RESULT__' }).replace('"__RESULT__"', result);
      expect(await harness({}, raw)).toMatchObject({ reported: true });
      const stored = await testApp.dataSource.query(
        'SELECT status, mlflow_run_id, registered_model_name, model_version, objective, metrics FROM automl_training_jobs WHERE job_id = $1',
        [job.job_id],
      );
      expect(stored).toEqual([
        {
          status: 'complete',
          mlflow_run_id: 'run-9',
          registered_model_name: 'marketing.churn_model',
          model_version: '7',
          objective: 'roc_auc',
          metrics: { roc_auc: 0.91, log_loss: 0.3 },
        },
      ]);
    });
  });

  describe('the API and the container path’s size limit', () => {
    let testApp: TestApp;

    beforeAll(async () => {
      testApp = await startTestApp({ TRAINING_IMAGE: 'registry.local/automl-trainer:1', BODY_LIMIT: '8mb' });
    });

    afterAll(() => testApp.close());

    const hexColumns = (count: number) => Array.from({ length: count }, () => randomBytes(250).toString('hex'));

    it('should refuse up front a job whose encoded spec would not fit in one environment variable', async () => {
      const response = await testApp
        .http()
        .post('/api/automl/train/jobs')
        .set(psk())
        .send(jobRequest({ feature_columns: hexColumns(5000) }))
        .expect(422);
      expect(response.body.detail).toHaveLength(1);
      expect(response.body.detail[0]).toMatchObject({ type: 'value_error', loc: ['body', 'feature_columns'] });
      expect(response.body.detail[0].msg).toContain(
        `over the ${MAX_CONTAINER_SPEC_BYTES}-byte limit of one environment variable`,
      );
      expect(await testApp.dataSource.query('SELECT count(*)::int AS n FROM automl_training_jobs')).toEqual([{ n: 0 }]);
    });

    it('should accept a spec just under the limit, and the DAG should hand it to the pod intact', async () => {
      // About 128 000 encoded bytes: incompressible 500-character columns, ~340 bytes each once encoded.
      let columns = hexColumns(300);
      const renderer = new DagRenderer(testApp.config);
      const estimate = (featureColumns: string[]) => renderer.render(dagJob({ featureColumns })).containerSpecBytes!;
      while (estimate([...columns, ...hexColumns(5)]) < MAX_CONTAINER_SPEC_BYTES - 1_000)
        columns = [...columns, ...hexColumns(5)];
      const created = await testApp
        .http()
        .post('/api/automl/train/jobs')
        .set(psk())
        .send(jobRequest({ feature_columns: columns }))
        .expect(201);
      const path = join(dir, `${created.body.airflow_dag_id}.py`);
      writeFileSync(path, created.body.rendered_dag);
      const answer = await harness({ ...base, dag: path, scenario: 'container' });
      expect(answer.spec_intact).toBe(true);
      expect(answer.encoded_length).toBeGreaterThan(MAX_CONTAINER_SPEC_BYTES - 2_000);
      expect(answer.encoded_length).toBeLessThanOrEqual(MAX_CONTAINER_SPEC_BYTES);
    });
  });
});

function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const state = readFileSync(stat, 'utf8').split(')').pop()!.trim().split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './net';
import { sleep, treeRssMiB } from './real-airflow';
import { ROOT } from './service-main';

/** The trainer's cached venv (trainer/requirements.lock: the trainer and a full MLflow, server included). */
export function trainerVenv(): string {
  return execFileSync(join(ROOT, 'scripts', 'pyenv.sh'), ['trainer', join(ROOT, 'trainer', 'requirements.lock')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

/**
 * TRAINING_COMMAND that runs this checkout's trainer from its cached venv. The DAG passes the trainer only an
 * allowlisted environment, so the source path goes in through `env` rather than the worker's PYTHONPATH.
 */
export function trainingCommand(venv = trainerVenv()): string {
  return `env PYTHONPATH=${join(ROOT, 'trainer', 'src')} ${join(venv, 'bin', 'python')} -m automl_trainer`;
}

/** Loads scikit-learn's breast cancer data into `table` of the database at `sqlalchemyUrl` (scripts/sample_table.py). */
export function loadSampleTable(sqlalchemyUrl: string, table: string, venv = trainerVenv()): string {
  return execFileSync(join(venv, 'bin', 'python'), [join(ROOT, 'scripts', 'sample_table.py'), sqlalchemyUrl, table], {
    encoding: 'utf8',
  }).trim();
}

/** MLflow's REST API, for looking at what the trainer recorded. */
export class MlflowRest {
  constructor(readonly url: string) {}

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** GET on MLflow's REST API; the parsed body, or null on 404. */
  async get(path: string, query: Record<string, string>): Promise<any> {
    const answer = await fetch(`${this.url}/api/2.0/mlflow/${path}?${new URLSearchParams(query)}`);
    if (answer.status === 404) return null;
    const text = await answer.text();
    if (!answer.ok) {
      // MLflow answers an unknown run or version with 404, or with 400 RESOURCE_DOES_NOT_EXIST.
      if (text.includes('RESOURCE_DOES_NOT_EXIST')) return null;
      throw new Error(`MLflow ${path}: ${answer.status} ${text}`);
    }
    return JSON.parse(text);
  }

  /** Paths of every file a run logged under `path` (`report/…`), from `artifacts/list` recursively. */
  async artifactPaths(runId: string, path: string): Promise<string[]> {
    const listed = await this.get('artifacts/list', { run_id: runId, path });
    const entries: { path: string; is_dir: boolean }[] = listed?.files ?? [];
    const nested = await Promise.all(
      entries.map((entry) => (entry.is_dir ? this.artifactPaths(runId, entry.path) : [entry.path])),
    );
    return nested.flat();
  }

  /** Runs tagged with the job id (the trainer tags `automl.job_id`). */
  async runsOfJob(jobId: string): Promise<{ info: { run_id: string; status: string } }[]> {
    const answer = await fetch(`${this.url}/api/2.0/mlflow/runs/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        experiment_ids: await this.experimentIds(),
        filter: `tags."automl.job_id" = '${jobId}'`,
        max_results: 10,
      }),
    });
    if (!answer.ok) throw new Error(`MLflow runs/search: ${answer.status} ${await answer.text()}`);
    return ((await answer.json()) as { runs?: { info: { run_id: string; status: string } }[] }).runs ?? [];
  }

  private async experimentIds(): Promise<string[]> {
    const answer = await fetch(`${this.url}/api/2.0/mlflow/experiments/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ max_results: 1000 }),
    });
    return (((await answer.json()) as { experiments?: { experiment_id: string }[] }).experiments ?? []).map(
      (e) => e.experiment_id,
    );
  }
}

/**
 * A real MLflow tracking server on loopback, from the trainer's venv: the registry in SQLite and proxied
 * artifacts under `dir`; its own process group; one uvicorn worker and no job runner (what fits two cores).
 */
export class MlflowServer extends MlflowRest {
  private constructor(
    private readonly child: ChildProcess,
    url: string,
    private readonly dir: string,
  ) {
    super(url);
  }

  static async start(dir: string, venv = trainerVenv()): Promise<MlflowServer> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const log = openSync(join(dir, 'server.log'), 'a');
    const child = spawn(
      join(venv, 'bin', 'mlflow'),
      [
        'server',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        '1',
        '--backend-store-uri',
        `sqlite:///${join(dir, 'mlflow.db')}`,
        '--artifacts-destination',
        join(dir, 'artifacts'),
      ],
      {
        stdio: ['ignore', log, log],
        detached: true,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? dir,
          LANG: 'C.UTF-8',
          // MLflow 3's server-side job runner (used by GenAI features, never by this project) starts a Huey consumer
          // with workers of its own: about 1.5 GiB RSS at rest on this machine. Without it the server is 2 processes.
          MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
        },
      },
    );
    closeSync(log);
    const server = new MlflowServer(child, `http://127.0.0.1:${port}`, dir);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`MLflow server exited: ${server.logTail()}`);
      const ok = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(2_000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return server;
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`MLflow server not up after 120 s: ${server.logTail()}`);
      }
      await sleep(500);
    }
  }

  /** Resident memory of the server and its workers, in MiB. */
  rssMiB(): number {
    return this.child.pid === undefined ? 0 : treeRssMiB(this.child.pid);
  }

  logTail(): string {
    return readFileSync(join(this.dir, 'server.log'), 'utf8').split('\n').slice(-30).join('\n');
  }

  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined) return;
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-pid, name);
      } catch {
        // gone
      }
    };
    signal('SIGTERM');
    for (let i = 0; i < 50 && this.child.exitCode === null && this.child.signalCode === null; i++) await sleep(200);
    signal('SIGKILL');
  }
}

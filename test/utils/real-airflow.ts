import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './net';
import { ROOT } from './service-main';
import { withClient } from './source-database';
import { startTestApp, TestApp } from './test-app';

/** The committed lock of Airflow 3 (and its providers) that `scripts/pyenv.sh` installs, cached by hash. */
export const AIRFLOW_LOCK = join(ROOT, 'deploy', 'airflow', 'requirements.lock');
export const AIRFLOW_USERNAME = 'admin';

/**
 * The settings every Airflow of this project runs with (tests, `npm run stack`, docker-compose.yml; a test
 * holds the compose file to them): LocalExecutor, no examples, DAGs unpaused at creation (else triggered
 * runs stay queued), new DAG files found within a second or two instead of 5 minutes.
 */
export const AIRFLOW_SETTINGS: Record<string, string> = {
  AIRFLOW__CORE__EXECUTOR: 'LocalExecutor',
  AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
  AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: 'False',
  AIRFLOW__CORE__PARALLELISM: '4',
  AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL: '1',
  AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL: '1',
  AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL: '2',
  AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD: '10',
};

/** Path of the cached Airflow venv (built from the lock on first use: about 1.5 min, then instant). */
export function airflowVenv(): string {
  return execFileSync(join(ROOT, 'scripts', 'pyenv.sh'), ['airflow', AIRFLOW_LOCK], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export interface RealAirflowOptions {
  /** DAG folder the dag-processor watches (the service's AIRFLOW_DAGS_DIR). */
  dagsDir: string;
  /** AIRFLOW_HOME: config, logs, the passwords file, process logs. */
  home: string;
  /** A PostgreSQL server URL (any database): Airflow's metadata gets its own database there, dropped by stop(). */
  adminDatabaseUrl: string;
  /** Database name; default a unique `automl_airflow_<random>`. */
  databaseName?: string;
  /** Admin password written into the simple auth manager's passwords file before start; default random. */
  password?: string;
  /** Extra environment for every Airflow process (e.g. PATH for the training command). */
  env?: Record<string, string>;
  /** CeleryExecutor instead of the LocalExecutor: the broker and the workers to start beside the three services. */
  celery?: CeleryOptions;
}

/** A Celery worker of the stack: its queues, its task slots and the hostname its task instances report. */
export interface CeleryWorker {
  name: string;
  queues: string[];
  concurrency: number;
}

export interface CeleryOptions {
  /** e.g. redis://127.0.0.1:6379/5 (a database of its own: queues are named by queue name). */
  brokerUrl: string;
  workers: CeleryWorker[];
}

/**
 * Seconds Redis gives a Celery worker to acknowledge a task before it delivers it again (and the original is
 * terminated, apache/airflow#62218): above the longest training task, a 1 440-minute budget plus the default
 * 30-minute margin (88 200 s).
 */
export const CELERY_VISIBILITY_TIMEOUT_S = 90_000;

/**
 * What the CeleryExecutor adds to AIRFLOW_SETTINGS, on every component: the broker, results in the metadata
 * database, one task per worker slot fetched at a time, acknowledged when it ends, and the visibility timeout.
 */
export function celerySettings(brokerUrl: string, metadataUrl: string): Record<string, string> {
  return {
    AIRFLOW__CORE__EXECUTOR: 'CeleryExecutor',
    AIRFLOW__CELERY__BROKER_URL: brokerUrl,
    AIRFLOW__CELERY__RESULT_BACKEND: `db+${metadataUrl}`,
    AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER: '1',
    AIRFLOW__CELERY__TASK_ACKS_LATE: 'True',
    AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT: String(CELERY_VISIBILITY_TIMEOUT_S),
    AIRFLOW__OPERATORS__DEFAULT_QUEUE: 'default',
  };
}

interface AirflowProcess {
  name: string;
  child: ChildProcess;
}

/** Timings of a start, in milliseconds. */
export interface StartTimings {
  venvMs: number;
  migrateMs: number;
  healthyMs: number;
}

/** Where a running real Airflow is and how to log in (what test workers get from global-setup). */
export interface RealAirflowInfo {
  url: string;
  username: string;
  password: string;
  dagsDir: string;
  home: string;
  /** Process ids of api-server, scheduler and dag-processor (each a process-group leader). */
  pids: Record<string, number>;
  /** The MLflow tracking server started next to it (test global-setup). */
  mlflowUrl: string;
}

/** REST access to a real Airflow 3 as its admin: what tests and the local stack use to set it up and look at it. */
export class AirflowRest {
  private token: string | null = null;

  constructor(
    readonly url: string,
    readonly username: string,
    readonly password: string,
  ) {}

  /** An admin bearer token from `POST /auth/token` (cached). */
  async bearer(): Promise<string> {
    if (this.token) return this.token;
    const response = await fetch(`${this.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: this.username, password: this.password }),
    });
    if (response.status !== 201) throw new Error(`POST /auth/token: ${response.status} ${await response.text()}`);
    this.token = ((await response.json()) as { access_token: string }).access_token;
    return this.token;
  }

  /** An authenticated REST call; returns status and parsed body. */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${await this.bearer()}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? safeJson(text) : undefined };
  }

  /** Creates or replaces a Variable through the REST API, as an operator would. */
  async setVariable(key: string, value: string): Promise<void> {
    await this.api('DELETE', `/api/v2/variables/${encodeURIComponent(key)}`);
    const answer = await this.api('POST', '/api/v2/variables', { key, value });
    if (answer.status !== 201)
      throw new Error(`POST /api/v2/variables: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  /** Creates or replaces a Connection through the REST API. */
  async setConnection(connection: {
    connection_id: string;
    conn_type: string;
    host?: string;
    port?: number;
    login?: string;
    password?: string;
    schema?: string;
    extra?: string;
  }): Promise<void> {
    await this.api('DELETE', `/api/v2/connections/${encodeURIComponent(connection.connection_id)}`);
    const answer = await this.api('POST', '/api/v2/connections', connection);
    if (answer.status !== 201)
      throw new Error(`POST /api/v2/connections: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  /**
   * What an operator sets before the first job, through the REST API: the Variable holding the callback PSK
   * and the Connections the training task reads (source database `sourceUrl`, a postgres:// URL naming its
   * database; the MLflow server at `mlflowUrl`), under the service's default names.
   */
  async configureForService(psk: string, sourceUrl: string, mlflowUrl: string): Promise<void> {
    const source = new URL(sourceUrl);
    const mlflow = new URL(mlflowUrl);
    await this.setVariable('automl_training_psk', psk);
    await this.setConnection({
      connection_id: 'automl_source',
      conn_type: 'postgres',
      host: source.hostname,
      port: Number(source.port || 5432),
      login: decodeURIComponent(source.username),
      ...(source.password ? { password: decodeURIComponent(source.password) } : {}),
      schema: source.pathname.slice(1),
    });
    await this.setConnection({
      connection_id: 'automl_mlflow',
      conn_type: 'http',
      host: mlflow.hostname,
      port: Number(mlflow.port),
      schema: mlflow.protocol.replace(':', ''),
    });
  }

  /** Waits until `GET /api/v2/dags/{dagId}` answers `want` (200: parsed; 404: gone). */
  async waitDag(dagId: string, want: 200 | 404, timeoutMs = 60_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = await this.api('GET', `/api/v2/dags/${encodeURIComponent(dagId)}`);
      if (answer.status === want) return answer.body;
      if (Date.now() > deadline) throw new Error(`DAG ${dagId}: still ${answer.status} after ${timeoutMs} ms`);
      await sleep(500);
    }
  }
}

/**
 * A real Apache Airflow 3 on loopback, without Docker: api-server, scheduler
 * and dag-processor as separate processes (LocalExecutor), metadata in its own
 * PostgreSQL database, the simple auth manager with a preset admin password, a
 * shared JWT secret and fast DAG discovery. Each process is a process-group
 * leader, so stop() also ends task processes the executor forked.
 */
export class RealAirflow extends AirflowRest {
  private readonly processes: AirflowProcess[] = [];
  timings: StartTimings = { venvMs: 0, migrateMs: 0, healthyMs: 0 };

  private constructor(
    readonly options: Required<Omit<RealAirflowOptions, 'env' | 'celery'>> & {
      env: Record<string, string>;
      celery?: CeleryOptions;
    },
    readonly venv: string,
    readonly port: number,
    readonly env: Record<string, string>,
  ) {
    super(`http://127.0.0.1:${port}`, AIRFLOW_USERNAME, options.password);
  }

  get databaseUrl(): string {
    const url = new URL(this.options.adminDatabaseUrl);
    url.pathname = `/${this.options.databaseName}`;
    return url.toString();
  }

  /** Environment that points the service at this Airflow (v2 API, token auth). */
  serviceEnv(): Record<string, string> {
    return {
      AIRFLOW_URL: this.url,
      AIRFLOW_API_VERSION: 'v2',
      AIRFLOW_USERNAME: this.username,
      AIRFLOW_PASSWORD: this.password,
      AIRFLOW_DAGS_DIR: this.options.dagsDir,
    };
  }

  static async start(options: RealAirflowOptions): Promise<RealAirflow> {
    const started = Date.now();
    const venv = airflowVenv();
    const venvMs = Date.now() - started;
    const full = {
      databaseName: `automl_airflow_${randomBytes(5).toString('hex')}`,
      password: randomBytes(12).toString('base64url'),
      env: {},
      ...options,
    };
    mkdirSync(full.home, { recursive: true });
    mkdirSync(full.dagsDir, { recursive: true });
    const port = await freePort();
    const url = new URL(full.adminDatabaseUrl);
    url.protocol = 'postgresql+psycopg2:';
    url.pathname = `/${full.databaseName}`;
    const passwordsFile = join(full.home, 'simple_auth_manager_passwords.json');
    // Written before the api-server starts: it keeps the entries of configured users instead of generating passwords.
    writeFileSync(passwordsFile, JSON.stringify({ [AIRFLOW_USERNAME]: full.password }), { mode: 0o600 });
    const env: Record<string, string> = {
      PATH: `${venv}/bin:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: process.env.HOME ?? full.home,
      LANG: 'C.UTF-8',
      TZ: 'UTC',
      AIRFLOW_HOME: full.home,
      AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: url.toString(),
      ...AIRFLOW_SETTINGS,
      AIRFLOW__CORE__DAGS_FOLDER: full.dagsDir,
      AIRFLOW__CORE__FERNET_KEY: `${randomBytes(32).toString('base64url')}=`,
      AIRFLOW__CORE__AUTH_MANAGER: 'airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager',
      AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS: `${AIRFLOW_USERNAME}:admin`,
      AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: passwordsFile,
      AIRFLOW__CORE__EXECUTION_API_SERVER_URL: `http://127.0.0.1:${port}/execution/`,
      AIRFLOW__API__HOST: '127.0.0.1',
      AIRFLOW__API__PORT: String(port),
      AIRFLOW__API__WORKERS: '1',
      AIRFLOW__API__BASE_URL: `http://127.0.0.1:${port}/`,
      // HS512 (Airflow's JWT algorithm) wants a key of at least 64 bytes; a shorter one draws PyJWT's InsecureKeyLengthWarning.
      AIRFLOW__API_AUTH__JWT_SECRET: randomBytes(64).toString('base64url'),
      AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME: '0.5',
      AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK: 'False',
      AIRFLOW__LOGGING__LOGGING_LEVEL: 'INFO',
      ...(full.celery ? celerySettings(full.celery.brokerUrl, url.toString()) : {}),
      ...full.env,
    };
    const airflow = new RealAirflow(full, venv, port, env);
    airflow.timings.venvMs = venvMs;
    const migrateStarted = Date.now();
    await withClient(full.adminDatabaseUrl, (client) => client.query(`CREATE DATABASE "${full.databaseName}"`));
    try {
      execFileSync(join(venv, 'bin', 'airflow'), ['db', 'migrate'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 300_000,
      });
      airflow.timings.migrateMs = Date.now() - migrateStarted;
      for (const name of ['api-server', 'scheduler', 'dag-processor']) airflow.spawn(name);
      for (const worker of full.celery?.workers ?? []) await airflow.spawnWorker(worker);
      const healthyStarted = Date.now();
      await airflow.waitHealthy(180_000);
      airflow.healthy = true;
      airflow.timings.healthyMs = Date.now() - healthyStarted;
    } catch (error) {
      await airflow.stop();
      throw error;
    }
    return airflow;
  }

  /**
   * A Celery worker as on a host of its own: its own working directory, temporary files and task logs (served on
   * a port of its own), sharing only the DAG folder, the metadata database and the broker with the rest. Its task
   * instances report `worker.name` as their hostname (`[core] hostname_callable`, a module in its directory).
   */
  private async spawnWorker(worker: CeleryWorker): Promise<void> {
    const dir = join(this.options.home, 'workers', worker.name);
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    writeFileSync(
      join(dir, 'automl_worker_identity.py'),
      '"""This worker\'s hostname for its task instances."""\n\n\ndef hostname() -> str:\n    return ' +
        JSON.stringify(worker.name) +
        '\n',
    );
    const env = {
      ...this.env,
      PYTHONPATH: dir,
      TMPDIR: join(dir, 'tmp'),
      AIRFLOW__CORE__HOSTNAME_CALLABLE: 'automl_worker_identity.hostname',
      AIRFLOW__LOGGING__BASE_LOG_FOLDER: join(dir, 'logs'),
      AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT: String(await freePort()),
    };
    const args = ['celery', 'worker', '-q', worker.queues.join(','), '--concurrency', String(worker.concurrency)];
    this.spawn(`worker-${worker.name}`, [...args, '--celery-hostname', `${worker.name}@%h`], env, dir);
  }

  private spawn(name: string, args: string[] = [name], env = this.env, cwd?: string): void {
    const log = openSync(join(this.options.home, `${name}.log`), 'a');
    const child = spawn(join(this.venv, 'bin', 'airflow'), args, {
      env,
      cwd,
      stdio: ['ignore', log, log],
      detached: true,
    });
    closeSync(log);
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      this.exits.push(`${name} exited (${code ?? signal}) at ${new Date().toISOString()}`);
      // Once up, a crashed component is started again, as systemd or Kubernetes would (seen: the
      // dag-processor of 3.3.2 exits on a StaleDataError when a DAG row it is updating is deleted
      // through the REST API at that moment). `restarts` keeps the record.
      if (this.healthy && this.restarts.length < 5) {
        this.restarts.push(`${name} exited (${code ?? signal}) at ${new Date().toISOString()}; started again`);
        this.processes.splice(
          this.processes.findIndex((p) => p.child === child),
          1,
        );
        this.spawn(name, args, env, cwd);
      }
    });
    this.processes.push({ name, child });
  }

  private stopping = false;
  private healthy = false;
  private readonly exits: string[] = [];
  /** Components that crashed after start and were started again. */
  readonly restarts: string[] = [];

  /** The tail of one process's log (for failure messages). */
  logTail(name: string, lines = 40): string {
    const file = join(this.options.home, `${name}.log`);
    if (!existsSync(file)) return '';
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  }

  /** Waits until the API answers and reports the metadatabase, scheduler and dag-processor healthy. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exits.length > 0)
        throw new Error(`Airflow failed to start: ${this.exits.join(', ')}\n${this.logTail('api-server')}`);
      try {
        const response = await fetch(`${this.url}/api/v2/monitor/health`, { signal: AbortSignal.timeout(2_000) });
        const body = (await response.json()) as Record<string, { status?: string }>;
        last = JSON.stringify(body);
        if (
          response.ok &&
          ['metadatabase', 'scheduler', 'dag_processor'].every((part) => body[part]?.status === 'healthy')
        )
          return;
      } catch (error) {
        last = String(error);
      }
      await sleep(500);
    }
    throw new Error(`Airflow not healthy after ${timeoutMs} ms: ${last}`);
  }

  /** Resident memory of every process of the stack (the three services, their workers and task processes), in MiB. */
  rssMiB(): { total: number; byProcess: Record<string, number> } {
    const byProcess: Record<string, number> = {};
    let total = 0;
    for (const { name, child } of this.processes) {
      if (child.pid === undefined) continue;
      const kib = descendants(child.pid).reduce((sum, pid) => sum + rssKiB(pid), 0);
      byProcess[name] = Math.round(kib / 1024);
      total += kib;
    }
    return { total: Math.round(total / 1024), byProcess };
  }

  /** The three service processes' ids by name. */
  processPids(): Record<string, number> {
    return Object.fromEntries(
      this.processes.filter(({ child }) => child.pid !== undefined).map(({ name, child }) => [name, child.pid!]),
    );
  }

  /** Every process id of the stack, task processes included. */
  pids(): number[] {
    return this.processes.flatMap(({ child }) => (child.pid === undefined ? [] : descendants(child.pid)));
  }

  /** Stops every process group (SIGTERM, then SIGKILL after 10 s) and drops the metadata database. */
  async stop(): Promise<void> {
    this.stopping = true;
    const alive = () => this.processes.filter(({ child }) => child.exitCode === null && child.signalCode === null);
    for (const { child } of alive()) signalGroup(child, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive().length > 0 && Date.now() < deadline) await sleep(200);
    for (const { child } of this.processes) signalGroup(child, 'SIGKILL');
    // The broker database's queues and results go with the stack (Celery names its keys by queue name).
    if (this.options.celery) {
      const flush = 'import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()';
      try {
        execFileSync(join(this.venv, 'bin', 'python'), ['-c', flush, this.options.celery.brokerUrl], {
          stdio: 'ignore',
        });
      } catch {
        // Redis gone: nothing left to flush.
      }
    }
    await withClient(this.options.adminDatabaseUrl, (client) =>
      client.query(`DROP DATABASE IF EXISTS "${this.options.databaseName}" WITH (FORCE)`),
    ).catch(() => undefined);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone.
  }
}

/** `pid` and every process below it, from /proc. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // Exited meanwhile.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...(parents.get(next) ?? []));
  }
  return out;
}

/** The command line of a process, or null when it is gone. */
export function commandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return null;
  }
}

/** Resident memory of `pid` and every process below it, in MiB. */
export function treeRssMiB(pid: number): number {
  return Math.round(descendants(pid).reduce((sum, each) => sum + rssKiB(each), 0) / 1024);
}

function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Removes a directory tree, ignoring errors (for afterAll). */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/**
 * The service under test against a real Airflow: its own free port (and PUBLIC_URL, which the DAGs call back), and
 * Airflow deadlines for two busy cores, where a real Airflow call can wait seconds on the scheduler's row locks;
 * `env` adds the Airflow, Keycloak and training settings.
 */
export async function startServiceOn(env: Record<string, string>): Promise<TestApp> {
  const port = await freePort();
  return startTestApp({
    AIRFLOW_TIMEOUT_MS: '30000',
    RECONCILE_BUDGET_MS: '20000',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    ...env,
  });
}

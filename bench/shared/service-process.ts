import { ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../test/utils/net';
import { ROOT, SERVICE_MAIN } from '../../test/utils/service-main';

export { freePort };

export interface RunningProcess {
  url: string;
  pid: number;
  /** Milliseconds from spawn until the service answered (our service: /health/live; the FastAPI reference: /openapi.json). */
  startMs: number;
  /** Peak resident set size so far (VmHWM), in MiB. */
  peakRssMiB(): number;
  stop(): Promise<void>;
  /** Where the server's output goes, when it is kept (the FastAPI reference's access log). */
  logFile?: string;
}

function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round((kb / 1024) * 10) / 10;
}

/** Polls `check` (a rejection counts as false) until it holds; throws after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what = 'service did not start',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} in time`);
}

function handle(child: ChildProcess, url: string, started: number): RunningProcess {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    url,
    pid: child.pid!,
    startMs: Date.now() - started,
    peakRssMiB: () => {
      if (exited())
        throw new Error(
          `${url}: the server process ${child.pid} has ended (exit code ${child.exitCode}, signal ${child.signalCode})`,
        );
      return peakRss(child.pid!);
    },
    stop: () =>
      new Promise((resolve) => {
        if (exited()) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The built service (the file `npm start` runs) in a child process; `nodeArgs`
 * go to node before it (e.g. `--cpu-prof`).
 */
export async function startService(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  main = SERVICE_MAIN,
): Promise<RunningProcess> {
  const port = await freePort();
  const started = Date.now();
  const child = spawn(process.execPath, [...nodeArgs, main], {
    cwd: env.CWD ?? ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ...env },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  // The first answer: the liveness probe (the OpenAPI document is built on its first request, not at start).
  await waitUntil(async () => (await fetch(`${url}/health/live`)).ok, 60_000);
  return handle(child, url, started);
}

/** The raw node:http + pg baseline server in a child process. */
export async function startBaseline(databaseUrl: string, poolSize: number): Promise<RunningProcess> {
  const started = Date.now();
  const child = fork(join(__dirname, '..', 'references', 'baseline-server.js'), [], {
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, POOL_SIZE: String(poolSize) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (message: { port: number }) => resolve(message.port)),
  );
  return handle(child, `http://127.0.0.1:${port}`, started);
}

/**
 * The FastAPI reference of the writeback (bench/references/fastapi/app.py) under uvicorn with
 * uvloop and httptools, one worker, access log on (uvicorn's default, written to
 * `logFile`), in the cached venv of bench/references/fastapi/requirements.lock (built on first use).
 * With one worker uvicorn serves in the process it starts in, so `pid` is the server.
 */
export async function startFastApi(databaseUrl: string, poolSize: number, psk: string): Promise<RunningProcess> {
  const { stdout } = await promisify(execFile)(
    join(ROOT, 'scripts', 'pyenv.sh'),
    ['fastapi-bench', 'bench/references/fastapi/requirements.lock'],
    {
      cwd: ROOT,
      maxBuffer: 1 << 20,
      timeout: 600_000,
    },
  );
  const venv = stdout.trim().split('\n').pop()!;
  const port = await freePort();
  const logDir = mkdtempSync(join(tmpdir(), 'automl-bench-fastapi-'));
  const logFile = join(logDir, 'uvicorn.log');
  const log = openSync(logFile, 'w');
  const started = Date.now();
  const child = spawn(
    join(venv, 'bin', 'python'),
    [
      ...['-m', 'uvicorn', 'app:app', '--app-dir', join(ROOT, 'bench', 'references', 'fastapi')],
      ...['--loop', 'uvloop', '--http', 'httptools', '--workers', '1', '--host', '127.0.0.1', '--port', String(port)],
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: databaseUrl,
        API_PSK: psk,
        POOL_SIZE: String(poolSize),
        // Keep the checkout clean (no __pycache__ next to app.py).
        PYTHONDONTWRITEBYTECODE: '1',
      },
      stdio: ['ignore', log, log],
    },
  );
  closeSync(log);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new Error(`uvicorn exited (${code}) before answering; see ${logFile}:\n${readFileSync(logFile, 'utf8')}`)),
    ),
  );
  exited.catch(() => undefined);
  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([waitUntil(async () => (await fetch(`${url}/openapi.json`)).ok, 60_000), exited]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const running = handle(child, url, started);
  return {
    ...running,
    logFile,
    stop: async () => {
      await running.stop();
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

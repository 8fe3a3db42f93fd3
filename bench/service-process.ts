import { ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../test/utils/net';
import { ROOT, SERVICE_MAIN } from '../test/utils/service-main';

export { freePort };

export interface RunningProcess {
  url: string;
  pid: number;
  /** Milliseconds from spawn until the service answered. */
  startMs: number;
  /** Peak resident set size so far (VmHWM), in MiB. */
  peakRssMiB(): number;
  stop(): Promise<void>;
}

function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round((kb / 1024) * 10) / 10;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('service did not start in time');
}

function handle(child: ChildProcess, url: string, started: number): RunningProcess {
  return {
    url,
    pid: child.pid!,
    startMs: Date.now() - started,
    peakRssMiB: () => peakRss(child.pid!),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The built service (the file `npm start` runs) in a child process; `nodeArgs`
 * go to node before it (e.g. `--cpu-prof`).
 */
export async function startService(env: Record<string, string>, nodeArgs: string[] = []): Promise<RunningProcess> {
  const port = await freePort();
  const started = Date.now();
  const child = spawn(process.execPath, [...nodeArgs, SERVICE_MAIN], {
    cwd: env.CWD ?? ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ...env },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(async () => (await fetch(`${url}/openapi.json`)).ok, 60_000);
  return handle(child, url, started);
}

/** The raw node:http + pg baseline server in a child process. */
export async function startBaseline(databaseUrl: string, poolSize: number): Promise<RunningProcess> {
  const started = Date.now();
  const child = fork(join(__dirname, 'baseline-server.js'), [], {
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, POOL_SIZE: String(poolSize) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve) => child.once('message', (message: { port: number }) => resolve(message.port)));
  return handle(child, `http://127.0.0.1:${port}`, started);
}

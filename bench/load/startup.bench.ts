import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PSK } from '../shared/bench-app';
import { freePort, startService } from '../shared/service-process';
import { ROOT } from '../../test/utils/service-main';

const RUNS = Number(process.env.STARTUP_RUNS ?? 3);

export interface StartupBenchResult {
  /** `npm start` (through npm, prestart included) until /health/live answers, on a built checkout with existing PGlite data; each run. */
  npmStartMs: number[];
  /** The built dist/main.js on a fresh PGlite data dir until /health/live answers; each run. */
  coldStartEmbeddedMs: number[];
  /** Medians of the two, in seconds. */
  npmStartSeconds: number;
  coldStartEmbeddedSeconds: number;
}

async function answered(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await fetch(url).then(
        (response) => response.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no answer from ${url}`);
}

/** `npm start` in the checkout, as a developer runs it, on `dataDir`; milliseconds to the first answer. */
async function npmStart(dataDir: string, dagsDir: string): Promise<number> {
  const port = await freePort();
  const started = Date.now();
  const child = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    // Own process group, so npm, its shell and the service stop together.
    detached: true,
    stdio: 'ignore',
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      PORT: String(port),
      API_PSK: BENCH_PSK,
      DATABASE_URL: `pglite://${dataDir}`,
      AIRFLOW_DAGS_DIR: dagsDir,
    },
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  try {
    await answered(`http://127.0.0.1:${port}/health/live`, 120_000);
    return Date.now() - started;
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (ms: number) => Math.round(ms / 10) / 100;

/**
 * Start-up: `npm start` to first answer on a built checkout whose
 * PGlite data dir exists (a first `npm start` creates it, the next ones are
 * timed), and the cold start of dist/main.js on a fresh PGlite data dir.
 * STARTUP_RUNS (default 3) of each; the medians are the figures.
 */
export async function benchStartup(): Promise<StartupBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'automl-bench-startup-'));
  try {
    const dataDir = join(work, 'npm-start-db');
    const dagsDir = join(work, 'dags');
    await npmStart(dataDir, dagsDir); // builds if the checkout is not built, and creates the data dir
    const npmStartMs: number[] = [];
    for (let run = 0; run < RUNS; run++) npmStartMs.push(await npmStart(dataDir, dagsDir));

    const coldStartEmbeddedMs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const cwd = join(work, `cold-${run}`);
      const service = await startService({
        API_PSK: BENCH_PSK,
        DATABASE_URL: `pglite://${join(cwd, 'db')}`,
        CWD: work,
      });
      coldStartEmbeddedMs.push(service.startMs);
      await service.stop();
    }
    return {
      npmStartMs,
      coldStartEmbeddedMs,
      npmStartSeconds: seconds(median(npmStartMs)),
      coldStartEmbeddedSeconds: seconds(median(coldStartEmbeddedMs)),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchStartup().then(
    (result) => {
      console.table([
        {
          figure: '`npm start` to first answer (/health/live), built checkout, existing PGlite data (s, median)',
          value: result.npmStartSeconds,
          runs: result.npmStartMs.join(', '),
        },
        {
          figure: 'cold start to first answer (/health/live), fresh PGlite data dir (s, median)',
          value: result.coldStartEmbeddedSeconds,
          runs: result.coldStartEmbeddedMs.join(', '),
        },
      ]);
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BENCH_PSK, createBenchDatabase } from '../shared/bench-app';
import { freePort, waitUntil } from '../shared/service-process';
import { ROOT, SERVICE_MAIN } from '../../test/utils/service-main';

/**
 * Module-load accounting (npm run bench:modules): starts the built service as
 * production does (node dist/main.js, NODE_ENV=production, PostgreSQL, Airflow
 * configured) on a database a first start has already migrated, with a
 * require hook preloaded (bench/diagnostics/module-accounting-hook.js); once it answers,
 * prints per top-level package the time spent requiring it and the RSS and
 * heap growth that caused, then the packages by their own (self) cost, and
 * totals. MODULES_DB=pglite runs it on the embedded database instead;
 * MODULES_HEAP_SNAPSHOT=<file> also writes a heap snapshot at that moment.
 */

const HOOK = join(__dirname, 'module-accounting-hook.js');
const MiB = 2 ** 20;

interface Figures {
  ms: number;
  rss: number;
  heap: number;
  files: number;
}

interface Report {
  sinceHookMs: number;
  files: number;
  rssAtStart: number;
  heapAtStart: number;
  rssNow: number;
  heapNow: number;
  external: number;
  arrayBuffers: number;
  packages: Record<string, { self: Figures; top: Figures & { loads: number } }>;
}

const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const ms = (value: number) => Math.round(value * 10) / 10;

async function run(
  env: Record<string, string>,
  nodeArgs: string[],
): Promise<{ answerMs: number; report: Report | null }> {
  const port = await freePort();
  const started = Date.now();
  const child = spawn(process.execPath, [...nodeArgs, SERVICE_MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/health/live`)).ok, 60_000);
    const answerMs = Date.now() - started;
    const out = env.MODULE_ACCOUNTING_OUT;
    if (!out) return { answerMs, report: null };
    child.kill('SIGUSR2');
    await waitUntil(async () => existsSync(out) && readFileSync(out, 'utf8').endsWith('}'), 30_000, 'no module report');
    if (env.MODULE_ACCOUNTING_HEAP_SNAPSHOT)
      await waitUntil(async () => existsSync(env.MODULE_ACCOUNTING_HEAP_SNAPSHOT), 60_000, 'no heap snapshot');
    return { answerMs, report: JSON.parse(readFileSync(out, 'utf8')) as Report };
  } finally {
    await new Promise<void>((done) => {
      if (child.exitCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'automl-modules-'));
  const pglite = process.env.MODULES_DB === 'pglite';
  const database = pglite ? null : await createBenchDatabase();
  try {
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      API_PSK: BENCH_PSK,
      DATABASE_URL: database ? database.url : `pglite://${join(work, 'db')}`,
      AIRFLOW_URL: 'http://127.0.0.1:9',
      AIRFLOW_USERNAME: 'airflow',
      AIRFLOW_PASSWORD: 'airflow',
      AIRFLOW_DAGS_DIR: join(work, 'dags'),
      LOG_LEVEL: 'warn',
    };
    await run(env, []); // creates the schema: the measured start finds existing data, as a restart does
    const out = join(work, 'report.json');
    const snapshot = process.env.MODULES_HEAP_SNAPSHOT ? resolve(process.env.MODULES_HEAP_SNAPSHOT) : '';
    const { answerMs, report } = await run(
      { ...env, MODULE_ACCOUNTING_OUT: out, ...(snapshot ? { MODULE_ACCOUNTING_HEAP_SNAPSHOT: snapshot } : {}) },
      ['-r', HOOK],
    );
    if (!report) throw new Error('no report');
    const entries = Object.entries(report.packages);
    const top = entries
      .filter(([, p]) => p.top.loads > 0)
      .sort(([, a], [, b]) => b.top.ms - a.top.ms)
      .map(([name, p]) => ({
        'top-level package': name,
        'require ms': ms(p.top.ms),
        'RSS Δ MiB': mib(p.top.rss),
        'heap Δ MiB': mib(p.top.heap),
        files: p.top.files,
      }));
    const self = entries
      .sort(([, a], [, b]) => b.self.ms - a.self.ms)
      .slice(0, 25)
      .map(([name, p]) => ({
        'package (own code only)': name,
        'self ms': ms(p.self.ms),
        'RSS Δ MiB': mib(p.self.rss),
        'heap Δ MiB': mib(p.self.heap),
        files: p.self.files,
      }));
    const requireMs =
      entries.reduce((sum, [name, p]) => sum + (name === '(app)' ? 0 : p.top.ms), 0) +
      (report.packages['(app)']?.self.ms ?? 0);
    console.log(
      `\nconfiguration: ${pglite ? 'embedded PGlite' : 'PostgreSQL'}, NODE_ENV=production, Airflow v2 configured, existing data; Node ${process.version}`,
    );
    console.log(
      '\nTime, RSS and heap growth while requiring each package the app requires (its dependencies included):',
    );
    console.table(top);
    console.log('Packages by their own cost (dependencies excluded), top 25; (app) is dist/:');
    console.table(self);
    console.table([
      { figure: 'spawn to first answer (/health/live)', value: `${answerMs} ms` },
      { figure: 'preload hook to report', value: `${ms(report.sinceHookMs)} ms` },
      { figure: 'in require (all packages + app code)', value: `${ms(requireMs)} ms` },
      { figure: 'modules loaded', value: String(report.files) },
      { figure: 'RSS at preload → after first answer', value: `${mib(report.rssAtStart)} → ${mib(report.rssNow)} MiB` },
      {
        figure: 'heap used at preload → after first answer',
        value: `${mib(report.heapAtStart)} → ${mib(report.heapNow)} MiB`,
      },
      { figure: 'external | array buffers', value: `${mib(report.external)} | ${mib(report.arrayBuffers)} MiB` },
    ]);
    if (snapshot) console.log(`heap snapshot: ${snapshot}`);
  } finally {
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

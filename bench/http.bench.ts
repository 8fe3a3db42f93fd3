import autocannon from 'autocannon';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { encodeCursor } from '../src/automl-training/job-cursor';
import { BENCH_PSK, createBenchDatabase } from './bench-app';
import { startBaseline, startService } from './service-process';

const POOL_SIZE = 10;
const WRITEBACK_JOBS = 120_000;
const LISTING_JOBS = 100_000;
const HEADERS = { 'Authorization-PSK': BENCH_PSK, 'content-type': 'application/json' };

export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

export function figures(result: autocannon.Result): LoadFigures {
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export async function seedJobs(databaseUrl: string, count: number): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO automl_training_jobs (job_id, name, domain, owner, source_table, label_column, problem_type, algorithm, preset,
                                         status, auto_trigger, created_by, created_at, updated_at, version)
       SELECT gen_random_uuid(), 'job ' || i, 'bench', 'bench', 'bench.table', 'y', 'regression', 'lightgbm_regressor', 'balanced',
              'queued', true, 'bench', now() - make_interval(secs => i), now(), 1
         FROM generate_series(1, $1) AS i`,
      [count],
    );
    await client.query('ANALYZE automl_training_jobs');
  } finally {
    await client.end();
  }
}

export async function query<T>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Moves a different queued job to running on every request, as DAG start callbacks do. */
export function writebackLoad(url: string, ids: string[], seconds: number): Promise<autocannon.Result> {
  let next = 0;
  return autocannon({
    url,
    connections: 50,
    duration: seconds,
    method: 'PUT',
    headers: HEADERS,
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          path: `/api/automl/train/jobs/${ids[next++ % ids.length]}/status`,
          body: '{"status":"running"}',
        }),
      },
    ],
  });
}

/** CPU time (user + system) in clock ticks of a process, read from /proc. */
export function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU ticks of every PostgreSQL server process on this machine (the benchmark's database server). */
function postgresTicks(): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').startsWith('postgres')) ticks += cpuTicks(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return ticks;
}

/** CPU milliseconds per request spent by the server under test and by PostgreSQL. */
export interface CpuPerRequest {
  serverMs: number;
  postgresMs: number;
}

/** Runs `load` while counting the CPU the server process and PostgreSQL spend (Linux /proc, 100 ticks/s). */
export async function withCpu(pid: number, load: () => Promise<autocannon.Result>): Promise<{ figures: LoadFigures; cpu: CpuPerRequest }> {
  const server = cpuTicks(pid);
  const postgres = postgresTicks();
  const result = await load();
  const requests = result.requests.total;
  const perRequest = (ticks: number) => Math.round(((ticks * 10) / requests) * 1000) / 1000;
  return {
    figures: figures(result),
    cpu: { serverMs: perRequest(cpuTicks(pid) - server), postgresMs: perRequest(postgresTicks() - postgres) },
  };
}

export interface HttpBenchResult {
  writeback: { service: LoadFigures; baseline: LoadFigures; ratio: number; cpu: { service: CpuPerRequest; baseline: CpuPerRequest } };
  listing: { first: LoadFigures; deep: LoadFigures; ratio: number };
  peakRssMiB: number;
  coldStartEmbeddedMs: number;
  coldStartPostgresMs: number;
}

export async function benchHttp(): Promise<HttpBenchResult> {
  const embeddedDir = mkdtempSync(join(tmpdir(), 'automl-bench-cold-'));
  const embedded = await startService({ API_PSK: BENCH_PSK, DATABASE_URL: `pglite://${join(embeddedDir, 'db')}`, CWD: embeddedDir });
  const coldStartEmbeddedMs = embedded.startMs;
  await embedded.stop();
  rmSync(embeddedDir, { recursive: true, force: true });

  const database = await createBenchDatabase();
  const dagsDir = mkdtempSync(join(tmpdir(), 'automl-bench-dags-'));
  const service = await startService({
    NODE_ENV: 'production',
    API_PSK: BENCH_PSK,
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: String(POOL_SIZE),
    AIRFLOW_DAGS_DIR: dagsDir,
    ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
  });
  try {
    await seedJobs(database.url, WRITEBACK_JOBS);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map((row) => row.job_id);
    await writebackLoad(service.url, ids.slice(-2_000), 2);
    const serviceRun = await withCpu(service.pid, () => writebackLoad(service.url, ids.slice(0, 60_000), 10));

    const baseline = await startBaseline(database.url, POOL_SIZE);
    try {
      await writebackLoad(baseline.url, ids.slice(-4_000, -2_000), 2);
      const baselineRun = await withCpu(baseline.pid, () => writebackLoad(baseline.url, ids.slice(60_000, 118_000), 10));

      await query(database.url, 'TRUNCATE automl_training_job_transitions, automl_training_jobs');
      await seedJobs(database.url, LISTING_JOBS);
      const [deepest] = await query<{ created_at: Date; job_id: string }>(
        database.url,
        'SELECT created_at, job_id FROM automl_training_jobs ORDER BY created_at DESC, job_id DESC OFFSET $1 LIMIT 1',
        [LISTING_JOBS - 100],
      );
      const cursor = encodeCursor({ createdAt: deepest.created_at, jobId: deepest.job_id });
      const listing = (path: string) =>
        autocannon({ url: `${service.url}${path}`, connections: 10, duration: 5, headers: HEADERS }).then(figures);
      await listing('/api/automl/train/jobs?limit=50');
      const first = await listing('/api/automl/train/jobs?limit=50');
      const deep = await listing(`/api/automl/train/jobs?limit=50&cursor=${encodeURIComponent(cursor)}`);

      return {
        writeback: {
          service: serviceRun.figures,
          baseline: baselineRun.figures,
          ratio: Math.round((serviceRun.figures.requestsPerSecond / baselineRun.figures.requestsPerSecond) * 100) / 100,
          cpu: { service: serviceRun.cpu, baseline: baselineRun.cpu },
        },
        listing: { first, deep, ratio: Math.round((first.requestsPerSecond / deep.requestsPerSecond) * 100) / 100 },
        peakRssMiB: service.peakRssMiB(),
        coldStartEmbeddedMs,
        coldStartPostgresMs: service.startMs,
      };
    } finally {
      await baseline.stop();
    }
  } finally {
    await service.stop();
    await database.drop();
    rmSync(dagsDir, { recursive: true, force: true });
  }
}

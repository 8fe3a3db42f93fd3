import autocannon from 'autocannon';
import { readdirSync, readFileSync } from 'node:fs';
import { Client } from 'pg';
import { BENCH_PSK } from './bench-app';

/**
 * The writeback load and what it is measured with, shared by the load benchmarks and the diagnostics:
 * queued jobs seeded in bulk, the PUT …/status load (50 connections, a different job each request),
 * autocannon's figures, and the CPU the server and PostgreSQL spend per request (Linux /proc).
 */

export const HEADERS = { 'Authorization-PSK': BENCH_PSK, 'content-type': 'application/json' };

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

/**
 * CPU ticks of every PostgreSQL server process on this machine (the benchmark's database server), plus those of
 * the backends that have ended: the postmaster's cutime + cstime, so a backend that exits during a run (another
 * client disconnecting) does not take its ticks out of the sum and make it go negative.
 */
function postgresTicks(): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
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
export async function withCpu(
  pid: number,
  load: () => Promise<autocannon.Result>,
): Promise<{ figures: LoadFigures; cpu: CpuPerRequest }> {
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

import autocannon from 'autocannon';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCursor } from '../../src/automl-training/jobs/job-cursor';
import { BENCH_PSK, createBenchDatabase } from '../shared/bench-app';
import { RunningProcess, startBaseline, startFastApi, startService } from '../shared/service-process';
import {
  CpuPerRequest,
  figures,
  HEADERS,
  LoadFigures,
  query,
  seedJobs,
  withCpu,
  writebackLoad,
} from '../shared/writeback-load';

const POOL_SIZE = 10;
/** Queued jobs per server for the writeback: its check, 2 s warm-up and 10 s run each take fresh ones. */
const WRITEBACK_WARM_JOBS = 8_000;
const WRITEBACK_RUN_JOBS = 45_000;
const WRITEBACK_SERVERS = ['service', 'baseline', 'fastapi'] as const;
const WRITEBACK_JOBS = WRITEBACK_SERVERS.length * (1 + WRITEBACK_WARM_JOBS + WRITEBACK_RUN_JOBS);
const LISTING_JOBS = 100_000;

type WritebackServer = (typeof WRITEBACK_SERVERS)[number];

/**
 * One writeback before the load, on a queued job: 200, the job now running, and
 * (for the FastAPI reference) the same top-level keys as ours, so it does the same
 * work. The bare baseline returns its raw row (RETURNING *): status only.
 */
async function checkWriteback(
  server: WritebackServer,
  url: string,
  jobId: string,
  keys: string[] | null,
): Promise<string[]> {
  const response = await fetch(`${url}/api/automl/train/jobs/${jobId}/status`, {
    method: 'PUT',
    headers: HEADERS,
    body: '{"status":"running"}',
  });
  const text = await response.text();
  if (response.status !== 200 || !text.includes('"status":"running"')) {
    throw new Error(
      `writeback check, ${server}: expected 200 with "status":"running", got ${response.status}: ${text.slice(0, 500)}`,
    );
  }
  const got = Object.keys(JSON.parse(text) as object).sort();
  if (keys && got.join() !== keys.join()) {
    throw new Error(
      `writeback check, ${server}: top-level keys differ from ours:\n  ours: ${keys.join(', ')}\n  ${server}: ${got.join(', ')}`,
    );
  }
  return got;
}

/** a ÷ b, rounded to 2 decimals. */
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

export interface HttpBenchResult {
  writeback: {
    service: LoadFigures;
    baseline: LoadFigures;
    fastapi: LoadFigures;
    /** Throughput, ours ÷ the bare baseline. */
    ratio: number;
    /** Throughput, ours ÷ FastAPI. */
    fastapiRatio: number;
    cpu: { service: CpuPerRequest; baseline: CpuPerRequest; fastapi: CpuPerRequest };
    /** Server CPU per writeback, ours ÷ the baseline's and ours ÷ FastAPI's. */
    cpuRatio: { baseline: number; fastapi: number };
    /** The FastAPI reference: its peak RSS (VmHWM) and the access log lines it wrote. */
    fastapiPeakRssMiB: number;
    fastapiAccessLogLines: number;
  };
  listing: { first: LoadFigures; deep: LoadFigures; ratio: number };
  peakRssMiB: number;
  coldStartEmbeddedMs: number;
  coldStartPostgresMs: number;
}

export async function benchHttp(): Promise<HttpBenchResult> {
  const embeddedDir = mkdtempSync(join(tmpdir(), 'automl-bench-cold-'));
  const embedded = await startService({
    API_PSK: BENCH_PSK,
    DATABASE_URL: `pglite://${join(embeddedDir, 'db')}`,
    CWD: embeddedDir,
  });
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
  let baseline: RunningProcess | null = null;
  let fastapi: RunningProcess | null = null;
  try {
    baseline = await startBaseline(database.url, POOL_SIZE);
    fastapi = await startFastApi(database.url, POOL_SIZE, BENCH_PSK);
    await seedJobs(database.url, WRITEBACK_JOBS);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map(
      (row) => row.job_id,
    );
    const servers: Record<WritebackServer, RunningProcess> = { service, baseline, fastapi };
    // Interleaved, on one database: each server checked, warmed 2 s, then measured 10 s, each on its own queued jobs.
    const runs = {} as Record<WritebackServer, { figures: LoadFigures; cpu: CpuPerRequest }>;
    let ourKeys: string[] | null = null;
    for (const [index, name] of WRITEBACK_SERVERS.entries()) {
      const server = servers[name];
      const slice = ids.slice(index * (1 + WRITEBACK_WARM_JOBS + WRITEBACK_RUN_JOBS));
      const keys = await checkWriteback(name, server.url, slice[0], name === 'fastapi' ? ourKeys : null);
      if (name === 'service') ourKeys = keys;
      await writebackLoad(server.url, slice.slice(1, 1 + WRITEBACK_WARM_JOBS), 2);
      const runIds = slice.slice(1 + WRITEBACK_WARM_JOBS, 1 + WRITEBACK_WARM_JOBS + WRITEBACK_RUN_JOBS);
      runs[name] = await withCpu(server.pid, () => writebackLoad(server.url, runIds, 10));
      const total = runs[name].figures.requestsPerSecond * 10;
      if (total > runIds.length) {
        console.warn(
          `writeback, ${name}: about ${total} requests on ${runIds.length} queued jobs (repeats after that): raise WRITEBACK_RUN_JOBS`,
        );
      }
    }
    const fastapiPeakRssMiB = fastapi.peakRssMiB();
    const fastapiAccessLogLines = readFileSync(fastapi.logFile!, 'utf8')
      .split('\n')
      .filter((line) => line.includes('"PUT /api/automl/train/jobs/')).length;

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
        service: runs.service.figures,
        baseline: runs.baseline.figures,
        fastapi: runs.fastapi.figures,
        ratio: ratio(runs.service.figures.requestsPerSecond, runs.baseline.figures.requestsPerSecond),
        fastapiRatio: ratio(runs.service.figures.requestsPerSecond, runs.fastapi.figures.requestsPerSecond),
        cpu: { service: runs.service.cpu, baseline: runs.baseline.cpu, fastapi: runs.fastapi.cpu },
        cpuRatio: {
          baseline: ratio(runs.service.cpu.serverMs, runs.baseline.cpu.serverMs),
          fastapi: ratio(runs.service.cpu.serverMs, runs.fastapi.cpu.serverMs),
        },
        fastapiPeakRssMiB,
        fastapiAccessLogLines,
      },
      listing: { first, deep, ratio: ratio(first.requestsPerSecond, deep.requestsPerSecond) },
      peakRssMiB: service.peakRssMiB(),
      coldStartEmbeddedMs,
      coldStartPostgresMs: service.startMs,
    };
  } finally {
    await fastapi?.stop();
    await baseline?.stop();
    await service.stop();
    await database.drop();
    rmSync(dagsDir, { recursive: true, force: true });
  }
}

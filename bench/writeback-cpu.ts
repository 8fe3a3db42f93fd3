import { BENCH_PSK, createBenchDatabase } from './bench-app';
import { query, seedJobs, withCpu, writebackLoad } from './http.bench';
import { startBaseline, startService } from './service-process';

/**
 * `npm run bench:cpu`: a quick look at one figure while changing the hot path, the server CPU per
 * writeback (and req/s) of the built service, then of the raw node:http + pg baseline, each warmed
 * 2 s and measured 8 s at 50 connections. `npm run bench` gives the figures that count.
 */
async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const service = await startService({
    NODE_ENV: 'production',
    API_PSK: BENCH_PSK,
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '10',
    ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
  });
  try {
    await seedJobs(database.url, 50_000);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map((row) => row.job_id);
    await writebackLoad(service.url, ids.slice(-3_000), 2);
    const ours = await withCpu(service.pid, () => writebackLoad(service.url, ids.slice(0, 25_000), 8));
    console.log(`service:  ${ours.figures.requestsPerSecond} req/s, server ${ours.cpu.serverMs} ms + PostgreSQL ${ours.cpu.postgresMs} ms CPU per writeback, peak RSS ${service.peakRssMiB()} MiB`);
    if (process.env.BENCH_BASELINE !== 'off') {
      const baseline = await startBaseline(database.url, 10);
      try {
        await writebackLoad(baseline.url, ids.slice(-6_000, -3_000), 2);
        const raw = await withCpu(baseline.pid, () => writebackLoad(baseline.url, ids.slice(25_000, 47_000), 8));
        console.log(`baseline: ${raw.figures.requestsPerSecond} req/s, server ${raw.cpu.serverMs} ms + PostgreSQL ${raw.cpu.postgresMs} ms CPU per writeback`);
        console.log(`ratios: throughput ${(ours.figures.requestsPerSecond / raw.figures.requestsPerSecond).toFixed(2)}, server CPU ${(ours.cpu.serverMs / raw.cpu.serverMs).toFixed(2)}`);
      } finally {
        await baseline.stop();
      }
    }
  } finally {
    await service.stop();
    await database.drop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

import { BENCH_PSK, createBenchDatabase } from '../shared/bench-app';
import { CpuPerRequest, LoadFigures, query, seedJobs, withCpu, writebackLoad } from '../shared/writeback-load';
import { RunningProcess, startBaseline, startService } from '../shared/service-process';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const JOBS_PER_RUN = 14_000;

/**
 * `npm run bench:cpu`: a quick look at one figure while changing the hot path, the server CPU per
 * writeback (and req/s): the built service and the raw node:http + pg baseline, in ROUNDS interleaved
 * rounds (each warmed 2 s, measured 6 s, 50 connections), medians printed. With
 * BENCH_COMPARE=<another checkout's dist/main.js> that build runs in the same rounds too (e.g. the
 * commit before a change). `npm run bench` gives the figures that count.
 */
async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const env = {
    NODE_ENV: 'production',
    API_PSK: BENCH_PSK,
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '10',
    ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
  };
  const servers: { name: string; process: RunningProcess }[] = [{ name: 'service', process: await startService(env) }];
  if (process.env.BENCH_COMPARE)
    servers.push({ name: 'compared', process: await startService(env, [], process.env.BENCH_COMPARE) });
  if (process.env.BENCH_BASELINE !== 'off')
    servers.push({ name: 'baseline', process: await startBaseline(database.url, 10) });
  const results = new Map<string, { figures: LoadFigures; cpu: CpuPerRequest }[]>();
  try {
    await seedJobs(database.url, JOBS_PER_RUN * servers.length * ROUNDS + 5_000);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map(
      (row) => row.job_id,
    );
    let next = 0;
    const take = (count: number) => ids.slice(next, (next += count));
    for (let round = 0; round < ROUNDS; round++) {
      for (const { name, process: server } of servers) {
        await writebackLoad(server.url, take(1_500), 2);
        const run = await withCpu(server.pid, () => writebackLoad(server.url, take(JOBS_PER_RUN - 1_500), 6));
        results.set(name, [...(results.get(name) ?? []), run]);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    for (const { name, process: server } of servers) {
      const runs = results.get(name)!;
      console.log(
        `${name.padEnd(9)} ${median(runs.map((r) => r.figures.requestsPerSecond))} req/s, server ${median(runs.map((r) => r.cpu.serverMs))} ms ` +
          `(${runs.map((r) => r.cpu.serverMs).join(', ')}) + PostgreSQL ${median(runs.map((r) => r.cpu.postgresMs))} ms CPU per writeback, peak RSS ${server.peakRssMiB()} MiB`,
      );
    }
  } finally {
    for (const { process: server } of servers) await server.stop();
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

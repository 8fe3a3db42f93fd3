import { runStorm } from '../../test/storm/storm';
import { BENCH_PSK, startBenchApp } from '../shared/bench-app';

/**
 * Full-size storm (npm run storm): 20 000 writebacks over 500 jobs from 100
 * clients while bulk status is polled and 20 event streams are open.
 */
async function main(): Promise<void> {
  const service = await startBenchApp({ DATABASE_POOL_SIZE: '20', STREAM_MAX_PER_CREDENTIAL: '100' });
  try {
    const report = await runStorm({
      baseUrl: service.url,
      psk: BENCH_PSK,
      jobs: Number(process.env.STORM_JOBS ?? 500),
      writebacks: Number(process.env.STORM_WRITEBACKS ?? 20_000),
      clients: Number(process.env.STORM_CLIENTS ?? 100),
      streams: Number(process.env.STORM_STREAMS ?? 20),
    });
    console.log(JSON.stringify({ ...report, problems: report.problems.slice(0, 20), problemCount: report.problems.length }, null, 2));
    process.exitCode = report.problems.length === 0 ? 0 : 1;
  } finally {
    await service.close();
  }
}

void main();

import { runStorm } from '../../test/storm/storm';
import { BENCH_PSK, startBenchApp } from '../shared/bench-app';
import { keepResults, resultsFile } from '../shared/results';

/**
 * Full-size storm (npm run storm): 20 000 writebacks over 500 jobs from 100
 * clients while bulk status is polled and 20 event streams are open. Prints the
 * report and keeps it under "storm" in bench/faults/results.json.
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
    const kept = { ...report, problems: report.problems.slice(0, 20), problemCount: report.problems.length };
    console.log(JSON.stringify(kept, null, 2));
    keepResults(resultsFile('faults'), { storm: { passed: report.problems.length === 0, report: kept } });
    process.exitCode = report.problems.length === 0 ? 0 : 1;
  } finally {
    await service.close();
  }
}

void main();

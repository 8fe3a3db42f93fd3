import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_PSK, createBenchDatabase } from '../shared/bench-app';
import { figures, query, seedJobs, writebackLoad } from '../shared/writeback-load';
import { summariseProfile } from './profile-summary';
import { startService } from '../shared/service-process';

const OUT = join(__dirname, 'profiles');

/**
 * `npm run bench:profile`: the built service under the writeback load of
 * `npm run bench` (50 connections, 8 s), with V8's CPU profiler on. Writes a
 * .cpuprofile to bench/diagnostics/profiles/ (not kept in git; open it in
 * Chrome DevTools or speedscope). Figures are lower than the benchmark's:
 * profiling costs.
 */
async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const database = await createBenchDatabase();
  const service = await startService({ NODE_ENV: 'production', API_PSK: BENCH_PSK, DATABASE_URL: database.url }, [
    '--cpu-prof',
    `--cpu-prof-dir=${OUT}`,
  ]);
  try {
    await seedJobs(database.url, 40_000);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map(
      (row) => row.job_id,
    );
    console.log('writeback under the profiler:', figures(await writebackLoad(service.url, ids.slice(0, 30_000), 8)));
  } finally {
    // The service shuts down cleanly on SIGTERM, and V8 writes the profile as it exits.
    await service.stop();
    await database.drop();
  }
  const newest = readdirSync(OUT)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(OUT, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  console.log(`profile written to ${newest}`);
  const summary = summariseProfile(newest);
  console.log(
    `busy ${summary.busyMs} ms (idle ${summary.idleShare} % of the profile); by package (Node internals count for their caller):`,
  );
  console.table(summary.byOwner);
  console.log('by function (self time):');
  console.table(summary.byFunction);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

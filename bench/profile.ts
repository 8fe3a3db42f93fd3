import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_PSK, createBenchDatabase } from './bench-app';
import { figures, query, seedJobs, writebackLoad } from './http.bench';
import { freePort } from './service-process';

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'bench-results', 'profiles');

/**
 * `npm run bench:profile`: the built service under the writeback load of
 * `npm run bench` (50 connections, 8 s), with V8's CPU profiler on. Writes a
 * .cpuprofile to bench-results/profiles/ (open it in Chrome DevTools or
 * speedscope). Figures are lower than the benchmark's: profiling costs.
 */
async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const database = await createBenchDatabase();
  const port = await freePort();
  const service = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${OUT}`, join(ROOT, 'dist', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), NODE_ENV: 'production', API_PSK: BENCH_PSK, DATABASE_URL: database.url },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => service.once('exit', () => resolve()));
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let tries = 0; !(await fetch(`${url}/openapi.json`).then((r) => r.ok, () => false)); tries++) {
      if (tries > 600) throw new Error('the service did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await seedJobs(database.url, 40_000);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map((row) => row.job_id);
    console.log('writeback under the profiler:', figures(await writebackLoad(url, ids.slice(0, 30_000), 8)));
  } finally {
    // SIGINT: the service shuts down cleanly, and V8 writes the profile on exit.
    service.kill('SIGINT');
    await exited;
    await database.drop();
  }
  console.log(`profile written to ${OUT}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

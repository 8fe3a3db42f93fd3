import autocannon from 'autocannon';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync } from 'node:fs';
import { Client } from 'pg';
import { BENCH_PSK, createBenchDatabase } from '../shared/bench-app';
import { keepResults, resultsFile } from '../shared/results';
import { startService } from '../shared/service-process';

/**
 * Fault test: restarts the machine's PostgreSQL (pg_ctlcluster) while the
 * service is under load. Runs only with ALLOW_PG_RESTART=1, since it stops
 * the database every other client on the machine uses. Passes when no
 * request took more than 5 s, every failure was a 503, readiness went down
 * during the outage, and the service answered again by itself afterwards.
 * Prints the report and keeps it under "pg-restart" in bench/faults/results.json.
 */
async function main(): Promise<void> {
  if (process.env.ALLOW_PG_RESTART !== '1') {
    console.log("skipped: set ALLOW_PG_RESTART=1 to let this script restart the machine's PostgreSQL");
    return;
  }
  const version = readdirSync('/etc/postgresql')[0];
  const database = await createBenchDatabase();
  const service = await startService({ NODE_ENV: 'production', API_PSK: BENCH_PSK, DATABASE_URL: database.url });
  const client = new Client({ connectionString: database.url });
  await client.connect();
  await client.query(
    `INSERT INTO automl_training_jobs (job_id, name, domain, owner, source_table, label_column, problem_type, algorithm, preset,
                                       status, auto_trigger, created_by, created_at, updated_at, version)
     SELECT gen_random_uuid(), 'job ' || i, 'f', 'f', 't', 'y', 'regression', 'lightgbm_regressor', 'balanced', 'queued', true, 'f', now(), now(), 1
       FROM generate_series(1, 200) AS i`,
  );
  const ids = (await client.query('SELECT job_id FROM automl_training_jobs')).rows.map((row) => row.job_id as string);
  await client.end();

  const readiness: { at: number; status: number }[] = [];
  const started = Date.now();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const status = await fetch(`${service.url}/health/ready`, { signal: AbortSignal.timeout(5_000) })
        .then((r) => r.status)
        .catch(() => 0);
      readiness.push({ at: Date.now() - started, status });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const codes = new Map<number, number>();
  let next = 0;
  const loadDone = new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: service.url,
        connections: 20,
        duration: 20,
        timeout: 10,
        headers: { 'Authorization-PSK': BENCH_PSK },
        requests: [
          { setupRequest: (request) => ({ ...request, path: `/api/automl/train/jobs/${ids[next++ % ids.length]}` }) },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client: unknown, statusCode: number) =>
      codes.set(statusCode, (codes.get(statusCode) ?? 0) + 1),
    );
  });
  // Asynchronous: the load and the readiness poller must keep running while PostgreSQL is down.
  await new Promise((r) => setTimeout(r, 5_000));
  console.log(`restarting PostgreSQL ${version}/main at +${Date.now() - started} ms`);
  await promisify(execFile)('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart']);
  console.log(`PostgreSQL back at +${Date.now() - started} ms`);
  const result = await loadDone;
  polling = false;
  await poller;

  const down = readiness.filter((r) => r.status !== 200);
  const lastDown = down.at(-1)?.at ?? 0;
  const recovered = readiness.some((r) => r.status === 200 && r.at > lastDown);
  const report = {
    requests: result.requests.total,
    codes: Object.fromEntries(codes),
    maxLatencyMs: result.latency.max,
    timeouts: result.timeouts,
    readinessDownSamples: down.length,
    readinessDownWindowMs: down.length ? [down[0].at, lastDown] : null,
    recovered,
  };
  console.log(JSON.stringify(report, null, 2));
  const onlyOkOr503 = [...codes.keys()].every((code) => code === 200 || code === 503);
  const ok = report.maxLatencyMs <= 5_000 && report.timeouts === 0 && onlyOkOr503 && down.length > 0 && recovered;
  await service.stop();
  await database.drop();
  keepResults(resultsFile('faults'), { 'pg-restart': { passed: ok, report } });
  console.log(ok ? 'PASS' : 'FAIL');
  process.exitCode = ok ? 0 : 1;
}

void main();

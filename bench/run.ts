import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { benchBulkStatus } from './bulk-status.bench';
import { benchHttp, LoadFigures } from './http.bench';

const load = (f: LoadFigures) => `${f.requestsPerSecond} req/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms${f.non2xx || f.errors ? `, ${f.non2xx} non-2xx, ${f.errors} errors` : ''}`;

/** Runs every benchmark once (npm run bench); prints a table and writes bench-results/latest.json. */
async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const http = await benchHttp();
  const bulk = await benchBulkStatus();
  const rows = [
    {
      benchmark: 'writeback throughput: service ÷ raw node:http + pg UPDATE … RETURNING (50 connections)',
      ratio: http.writeback.ratio,
      goal: '≥ 0.6',
      met: http.writeback.ratio >= 0.6 ? 'yes' : 'NO',
    },
    {
      benchmark: `bulk status: 1000 ids ÷ 1 id (Airflow double at 50 ms): ${bulk.manyIdsMs} ms ÷ ${bulk.oneIdMs} ms`,
      ratio: bulk.ratio,
      goal: '≤ 3',
      met: bulk.ratio <= 3 ? 'yes' : 'NO',
    },
    {
      benchmark: 'listing: a page 99 900 jobs deep ÷ the first page (100 000 jobs, time per request)',
      ratio: http.listing.ratio,
      goal: '≤ 1.5',
      met: http.listing.ratio <= 1.5 ? 'yes' : 'NO',
    },
  ];
  const details = [
    { run: 'writeback, service', figures: load(http.writeback.service) },
    { run: 'writeback, raw baseline', figures: load(http.writeback.baseline) },
    { run: 'listing, first page', figures: load(http.listing.first) },
    { run: 'listing, deep page', figures: load(http.listing.deep) },
    { run: 'bulk status', figures: `${bulk.airflowRequestsPerCall} Airflow request(s) per call` },
    { run: 'service peak RSS (VmHWM)', figures: `${http.peakRssMiB} MiB` },
    { run: 'cold start to first answer, embedded PGlite (fresh data dir)', figures: `${http.coldStartEmbeddedMs} ms` },
    { run: 'cold start to first answer, PostgreSQL (fresh database, migrations)', figures: `${http.coldStartPostgresMs} ms` },
  ];
  console.log(`\nmachine: ${machine}\n`);
  console.table(rows);
  console.table(details);
  mkdirSync(join(__dirname, '..', 'bench-results'), { recursive: true });
  const file = join(__dirname, '..', 'bench-results', 'latest.json');
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), machine, ratios: rows, http, bulk }, null, 2));
  console.log(`results: ${file}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

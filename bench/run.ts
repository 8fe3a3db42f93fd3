import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { benchBulkStatus } from './bulk-status.bench';

/** Runs every benchmark once; prints a table and writes bench-results/latest.json. */
async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const bulk = await benchBulkStatus();
  const rows = [
    {
      benchmark: bulk.name,
      figure: `${bulk.manyIdsMs} ms ÷ ${bulk.oneIdMs} ms`,
      ratio: bulk.ratio,
      goal: bulk.goal,
      met: bulk.ratio <= 3 ? 'yes' : 'NO',
      note: `${bulk.airflowRequestsPerCall} Airflow request(s) per call`,
    },
  ];
  console.log(`\nmachine: ${machine}\n`);
  console.table(rows);
  mkdirSync(join(__dirname, '..', 'bench-results'), { recursive: true });
  const file = join(__dirname, '..', 'bench-results', 'latest.json');
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), machine, results: [bulk] }, null, 2));
  console.log(`results: ${file}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

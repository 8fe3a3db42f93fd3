import { cpus, totalmem } from 'node:os';
import { AuthFloodBenchResult, benchAuthFlood } from './auth-flood.bench';
import { benchBulkStatus, BulkStatusResult } from './bulk-status.bench';
import { benchEventStreams, EventStreamBenchResult } from './event-stream.bench';
import { benchHistory, HistoryBenchResult } from './history.bench';
import { benchHttp, HttpBenchResult } from './http.bench';
import { keepResults, resultsFile } from '../shared/results';
import { LoadFigures } from '../shared/writeback-load';
import { benchStartup, StartupBenchResult } from './startup.bench';

const load = (f: LoadFigures) =>
  `${f.requestsPerSecond} req/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms${f.non2xx || f.errors ? `, ${f.non2xx} non-2xx, ${f.errors} errors` : ''}`;

interface Row {
  benchmark: string;
  ratio: number;
  goal: string;
  met: string;
}

/** A benchmark's goal rows and its other figures, as printed. */
type Table = { rows: Row[]; details: { run: string; figures: string }[] };

const atLeast = (benchmark: string, ratio: number, goal: number): Row => ({
  benchmark,
  ratio,
  goal: `≥ ${goal}`,
  met: ratio >= goal ? 'yes' : 'NO',
});
const atMost = (benchmark: string, ratio: number, goal: number): Row => ({
  benchmark,
  ratio,
  goal: `≤ ${goal}`,
  met: ratio <= goal ? 'yes' : 'NO',
});

function httpRows(http: HttpBenchResult): Table {
  const { writeback } = http;
  const cpu = (c: { serverMs: number; postgresMs: number }) =>
    `server ${c.serverMs} ms + PostgreSQL ${c.postgresMs} ms`;
  return {
    rows: [
      atLeast(
        'writeback throughput: service ÷ FastAPI original (pydantic 2, uvloop + httptools, access log on; 50 connections)',
        writeback.fastapiRatio,
        1.2,
      ),
      atLeast(
        'writeback throughput: service ÷ raw node:http + pg UPDATE … RETURNING (50 connections)',
        writeback.ratio,
        0.6,
      ),
      atMost('server CPU per writeback: service ÷ raw node:http + pg baseline', writeback.cpuRatio.baseline, 2.5),
      atMost('service peak RSS (VmHWM) after the bench, on PostgreSQL, in MiB (not a ratio)', http.peakRssMiB, 120),
      atMost(
        'listing: a page 99 900 jobs deep ÷ the first page (100 000 jobs, time per request)',
        http.listing.ratio,
        1.5,
      ),
    ],
    details: [
      { run: 'writeback, service', figures: load(writeback.service) },
      { run: 'writeback, raw baseline', figures: load(writeback.baseline) },
      { run: 'writeback, FastAPI original', figures: load(writeback.fastapi) },
      {
        run: 'writeback CPU per request, service | baseline | FastAPI',
        figures: `${cpu(writeback.cpu.service)} | ${cpu(writeback.cpu.baseline)} | ${cpu(writeback.cpu.fastapi)}`,
      },
      { run: 'server CPU per writeback, service ÷ FastAPI', figures: `${writeback.cpuRatio.fastapi}` },
      {
        run: 'FastAPI original: peak RSS (VmHWM), access log',
        figures: `${writeback.fastapiPeakRssMiB} MiB; ${writeback.fastapiAccessLogLines} access log lines written`,
      },
      { run: 'listing, first page', figures: load(http.listing.first) },
      { run: 'listing, deep page', figures: load(http.listing.deep) },
      { run: 'service peak RSS (VmHWM)', figures: `${http.peakRssMiB} MiB` },
      {
        run: 'cold start to first answer (/health/live), embedded PGlite (fresh data dir)',
        figures: `${http.coldStartEmbeddedMs} ms`,
      },
      {
        run: 'cold start to first answer (/health/live), PostgreSQL (fresh database, migrations)',
        figures: `${http.coldStartPostgresMs} ms`,
      },
    ],
  };
}

function bulkRows(bulk: BulkStatusResult): Table {
  return {
    rows: [
      atMost(
        `bulk status: 1000 ids ÷ 1 id (Airflow double at 50 ms): ${bulk.manyIdsMs} ms ÷ ${bulk.oneIdMs} ms`,
        bulk.ratio,
        2,
      ),
    ],
    details: [{ run: 'bulk status', figures: `${bulk.airflowRequestsPerCall} Airflow request(s) per call` }],
  };
}

function historyRows(history: HistoryBenchResult): Table {
  const { small, large } = history;
  return {
    rows: [
      atMost(
        `history: listing page of 500, 100 000 jobs ÷ 1 000: ${large.listingMs} ms ÷ ${small.listingMs} ms`,
        history.listingRatio,
        1.5,
      ),
      atMost(
        `history: bulk status of 1000 ids, 100 000 jobs ÷ 1 000: ${large.bulkMs} ms ÷ ${small.bulkMs} ms`,
        history.bulkRatio,
        1.5,
      ),
      atMost(
        `history: listing page of 500, 100 000 jobs with DAG text ÷ without: ${large.listingMs} ms ÷ ${history.largeWithoutDagTextListingMs} ms`,
        history.dagTextRatio,
        1.3,
      ),
    ],
    details: [
      {
        run: 'history: reconciler tick (100 in flight), 100 000 jobs ÷ 1 000',
        figures: `${large.reconcileTickMs} ms ÷ ${small.reconcileTickMs} ms = ${history.reconcileTickRatio}`,
      },
      {
        run: "history: the page in SQL, 100 000 jobs, SELECT * (before) | the listing's columns",
        figures: `${history.selectAllMs} ms | ${history.selectListingColumnsMs} ms`,
      },
      {
        run: 'history: jobs table with 100 000 jobs',
        figures: `${history.tableMiB} MiB (${history.dagTextBytesPerJob} bytes of DAG text a job)`,
      },
    ],
  };
}

function streamRows(streams: EventStreamBenchResult): Table {
  return {
    rows: [
      atLeast(
        `writeback throughput with ${streams.streams} event streams open ÷ with none (50 connections)`,
        streams.ratio,
        0.8,
      ),
    ],
    details: [
      { run: 'writeback, no streams (before | after)', figures: streams.withoutStreams.map(load).join(' | ') },
      { run: `writeback, ${streams.streams} streams open`, figures: load(streams.withStreams) },
      {
        run: `events delivered to ${streams.streams} streams`,
        figures:
          `${streams.eventsPerSecond} events/s; ${streams.deliveredShare} of ${streams.streams} × ${streams.eventsExpectedPerStream} ` +
          `transitions; commit to client p50 ${streams.deliveryP50Ms} ms, p99 ${streams.deliveryP99Ms} ms`,
      },
      {
        run: 'CPU per writeback, no streams | 200 streams',
        figures:
          `server ${streams.cpu.withoutStreams.serverMs} ms + PostgreSQL ${streams.cpu.withoutStreams.postgresMs} ms | ` +
          `server ${streams.cpu.withStreams.serverMs} ms + PostgreSQL ${streams.cpu.withStreams.postgresMs} ms + stream consumers ${streams.cpu.withStreams.consumersMs} ms`,
      },
    ],
  };
}

function authRows(auth: AuthFloodBenchResult): Table {
  return {
    rows: [
      atLeast(
        'valid writebacks (2xx/s) during the worst flood of bad credentials ÷ alone (50 + 50 connections)',
        auth.worstRatio,
        0.5,
      ),
    ],
    details: [
      { run: 'valid writebacks alone (before | after)', figures: auth.alone.map(load).join(' | ') },
      ...auth.during.flatMap((run) => [
        { run: `valid writebacks during flood: ${run.flood}`, figures: load(run.valid) },
        {
          run: `  the flood: ${run.flood}`,
          figures:
            `${run.floodFigures.requestsPerSecond} req/s (p50 ${run.floodFigures.p50Ms} ms, p99 ${run.floodFigures.p99Ms} ms), ` +
            `${Object.entries(run.floodFigures.statuses)
              .map(([code, count]) => `${count} × ${code}`)
              .join(', ')}; ` +
            (run.floodFigures.failuresWritten === null
              ? 'no shared count'
              : `${run.floodFigures.failuresWritten} failures written to the shared count`),
        },
      ]),
    ],
  };
}

function startupRows(startup: StartupBenchResult): Table {
  return {
    rows: [
      atMost(
        '`npm start` to first answer (/health/live), built checkout, existing PGlite data (s, median)',
        startup.npmStartSeconds,
        3,
      ),
      atMost(
        'cold start to first answer (/health/live), fresh PGlite data dir (s, median)',
        startup.coldStartEmbeddedSeconds,
        3,
      ),
    ],
    details: [
      { run: '`npm start` to first answer, each run', figures: `${startup.npmStartMs.join(', ')} ms` },
      { run: 'cold start, fresh PGlite data dir, each run', figures: `${startup.coldStartEmbeddedMs.join(', ')} ms` },
    ],
  };
}

/**
 * Runs the benchmarks once (npm run bench; BENCH_ONLY=http,bulk,history,streams,auth,startup picks
 * some); prints a table and keeps each benchmark's goals and figures in bench/load/results.json
 * (bench/shared/results.ts: a run replaces the benchmarks it ran and keeps the others).
 */
async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const only = new Set(
    (process.env.BENCH_ONLY ?? 'http,bulk,history,streams,auth,startup').split(',').map((name) => name.trim()),
  );
  const entries: Record<string, { goals: Row[]; figures: object }> = {};
  const tables: Table[] = [];
  const run = async <T extends object>(name: string, bench: () => Promise<T>, table: (figures: T) => Table) => {
    if (!only.has(name)) return;
    const figures = await bench();
    const rows = table(figures);
    entries[name] = { goals: rows.rows, figures };
    tables.push(rows);
  };
  await run('http', benchHttp, httpRows);
  await run('bulk', benchBulkStatus, bulkRows);
  await run('history', benchHistory, historyRows);
  await run('streams', benchEventStreams, streamRows);
  await run('auth', benchAuthFlood, authRows);
  await run('startup', benchStartup, startupRows);
  console.log(`\nmachine: ${machine}\n`);
  console.table(tables.flatMap((table) => table.rows));
  console.table(tables.flatMap((table) => table.details));
  const file = resultsFile('load');
  keepResults(file, entries);
  console.log(`results: ${file}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

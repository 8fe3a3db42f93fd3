import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { BackgroundReconciler } from '../../src/automl-training/reconcile/background-reconciler';
import { DagRenderer, trainingRuntime } from '../../src/automl-training/dag/dag-renderer';
import { AirflowDouble } from '../../test/doubles/airflow.double';
import { dagJob } from '../../test/utils/dag-python';
import { BENCH_PSK, median, startBenchApp } from '../shared/bench-app';
import { query } from '../shared/writeback-load';

const SMALL = 1_000;
const LARGE = 100_000;
const IN_FLIGHT = 100;
const PAGE = 500;
const BULK_IDS = 1_000;

export interface HistoryFigures {
  listingMs: number;
  bulkMs: number;
  reconcileTickMs: number;
}

export interface HistoryBenchResult {
  small: HistoryFigures;
  large: HistoryFigures;
  /** The listing page on the large history once its rows hold no DAG text. */
  largeWithoutDagTextListingMs: number;
  listingRatio: number;
  bulkRatio: number;
  reconcileTickRatio: number;
  dagTextRatio: number;
  /** The page's query in SQL on the large history: every column ÷ the listing's columns. */
  selectAllMs: number;
  selectListingColumnsMs: number;
  tableMiB: number;
  dagTextBytesPerJob: number;
}

/**
 * A platform's history: the listing page (500), bulk status (1000 ids) and a
 * background reconciler tick with 1 000 jobs, then with 100 000 (the 99 000
 * added are older and terminal, each with ~24 KB of DAG text, the size DAG
 * files had before they were thin), then with the same rows holding no DAG
 * text. The Airflow double answers at once, so the figures are the service's
 * and the database's. 100 jobs are in flight throughout (the reconciler's work).
 */
export async function benchHistory(): Promise<HistoryBenchResult> {
  const dagsDir = mkdtempSync(join(tmpdir(), 'automl-bench-history-'));
  const airflow = await AirflowDouble.start({ version: 'v2', dagsDir });
  const service = await startBenchApp({
    ...airflow.env(),
    AIRFLOW_DAGS_DIR: dagsDir,
    RECONCILE_INTERVAL_MS: '0',
    DAG_RETENTION_MS: '0',
  });
  const databaseUrl = service.config.database.kind === 'postgres' ? service.config.database.url : '';
  const headers = { 'Authorization-PSK': BENCH_PSK };
  // Yesterday's DAG files: a thin file and the runtime it imports, in one text (~24 KB, compressible as real ones).
  const renderer = new DagRenderer(service.config);
  const dagText = `${renderer.render(dagJob({ featureColumns: null })).source}\n${trainingRuntime().source}`;
  try {
    await insertJobs(databaseUrl, 0, SMALL, dagText);
    const small = await measure(service.url, headers, databaseUrl, service.app.get(BackgroundReconciler));
    await insertJobs(databaseUrl, SMALL, LARGE - SMALL, dagText);
    const large = await measure(service.url, headers, databaseUrl, service.app.get(BackgroundReconciler));
    const [{ mib }] = await query<{ mib: number }>(
      databaseUrl,
      `SELECT pg_total_relation_size('automl_training_jobs') / 1048576.0 AS mib`,
    );
    const selectAllMs = await sqlTime(
      databaseUrl,
      `SELECT * FROM automl_training_jobs WHERE deleted_at IS NULL ORDER BY created_at DESC, job_id DESC LIMIT ${PAGE}`,
    );
    const selectListingColumnsMs = await sqlTime(
      databaseUrl,
      `SELECT job_id, name, domain, owner, source_table, label_column, feature_columns, problem_type, algorithm, preset, status,
              auto_trigger, mlflow_run_id, mlflow_experiment_name, registered_model_name, airflow_dag_id, airflow_dag_url,
              airflow_run_id, error_message, feature_engineering_job_id, group_column, action_column, propensity_column,
              reward_column, cost_column, model_version, objective, metrics, started_at, finished_at, dag_retired_at,
              created_by, created_at, updated_at, deleted_at, version
         FROM automl_training_jobs WHERE deleted_at IS NULL ORDER BY created_at DESC, job_id DESC LIMIT ${PAGE}`,
    );
    await query(databaseUrl, 'UPDATE automl_training_jobs SET rendered_dag = NULL');
    await query(databaseUrl, 'VACUUM (FULL, ANALYZE) automl_training_jobs');
    const withoutDagText = await listingTime(service.url, headers);
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    return {
      small,
      large,
      largeWithoutDagTextListingMs: withoutDagText,
      listingRatio: ratio(large.listingMs, small.listingMs),
      bulkRatio: ratio(large.bulkMs, small.bulkMs),
      reconcileTickRatio: ratio(large.reconcileTickMs, small.reconcileTickMs),
      dagTextRatio: ratio(large.listingMs, withoutDagText),
      selectAllMs,
      selectListingColumnsMs,
      tableMiB: Math.round(mib),
      dagTextBytesPerJob: Buffer.byteLength(dagText),
    };
  } finally {
    await service.close();
    await airflow.stop();
    rmSync(dagsDir, { recursive: true, force: true });
  }
}

/**
 * `count` jobs numbered from `from`, older as the number grows: the first IN_FLIGHT are queued with a
 * run (created in the last minutes), the rest complete or failed long ago.
 */
async function insertJobs(databaseUrl: string, from: number, count: number, dagText: string): Promise<void> {
  for (let start = from; start < from + count; start += 10_000) {
    const end = Math.min(from + count, start + 10_000);
    await query(
      databaseUrl,
      `INSERT INTO automl_training_jobs (job_id, name, domain, owner, source_table, label_column, problem_type, algorithm, preset,
                                         status, auto_trigger, rendered_dag, mlflow_experiment_name, registered_model_name,
                                         airflow_dag_id, airflow_dag_url, airflow_run_id, created_by, created_at, updated_at,
                                         started_at, finished_at, version)
       SELECT id, 'job ' || i, 'bench', 'bench', 'bench.table', 'y', 'regression', 'lightgbm_regressor', 'balanced',
              CASE WHEN i < $3 THEN 'queued' WHEN i % 10 = 0 THEN 'failed' ELSE 'complete' END, true,
              $4::text || i, '/automl/bench/job', 'bench.job', 'automl_training_' || replace(id::text, '-', '_'),
              'http://airflow/dags/x', CASE WHEN i < $3 THEN 'manual__bench' END, 'bench',
              now() - make_interval(secs => i), now() - make_interval(secs => i),
              CASE WHEN i >= $3 THEN now() - make_interval(secs => i) END, CASE WHEN i >= $3 THEN now() - make_interval(secs => i) END, 3
         FROM (SELECT i, gen_random_uuid() AS id FROM generate_series($1::int, $2::int - 1) AS i) AS n`,
      [start, end, IN_FLIGHT, dagText],
    );
  }
  await query(databaseUrl, 'ANALYZE automl_training_jobs');
}

async function measure(
  url: string,
  headers: Record<string, string>,
  databaseUrl: string,
  reconciler: BackgroundReconciler,
): Promise<HistoryFigures> {
  const listingMs = await listingTime(url, headers);
  const ids = (
    await query<{ job_id: string }>(
      databaseUrl,
      `SELECT job_id FROM automl_training_jobs ORDER BY random() LIMIT ${BULK_IDS}`,
    )
  ).map((row) => row.job_id);
  const bulk = async () => {
    const started = process.hrtime.bigint();
    const response = await fetch(`${url}/api/automl/train/jobs/status?${ids.map((id) => `ids=${id}`).join('&')}`, {
      headers,
    });
    const body = (await response.json()) as { items: unknown[] };
    if (response.status !== 200 || body.items.length !== ids.length)
      throw new Error(`bulk status answered ${response.status}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const tick = async () => {
    const started = process.hrtime.bigint();
    const report = await reconciler.tick();
    if (!report || report.checked !== IN_FLIGHT)
      throw new Error(`the reconciler checked ${report?.checked} jobs, not ${IN_FLIGHT}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  return { listingMs, bulkMs: await medianOf(20, bulk), reconcileTickMs: await medianOf(20, tick) };
}

async function listingTime(url: string, headers: Record<string, string>): Promise<number> {
  return medianOf(30, async () => {
    const started = process.hrtime.bigint();
    const response = await fetch(`${url}/api/automl/train/jobs?limit=${PAGE}`, { headers });
    const body = (await response.json()) as { items: unknown[] };
    if (response.status !== 200 || body.items.length !== PAGE) throw new Error(`listing answered ${response.status}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  });
}

async function sqlTime(databaseUrl: string, sql: string): Promise<number> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await medianOf(20, async () => {
      const started = process.hrtime.bigint();
      await client.query(sql);
      return Number(process.hrtime.bigint() - started) / 1e6;
    });
  } finally {
    await client.end();
  }
}

async function medianOf(rounds: number, run: () => Promise<number>): Promise<number> {
  await run();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await run());
  return Math.round(median(samples) * 100) / 100;
}

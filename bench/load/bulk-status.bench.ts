import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirflowDouble } from '../../test/doubles/airflow.double';
import { BENCH_PSK, median, startBenchApp } from '../shared/bench-app';

const JOBS = 1000;
const AIRFLOW_LATENCY_MS = 50;
const ROUNDS_ONE = 30;
const ROUNDS_MANY = 15;

export interface BulkStatusResult {
  name: string;
  oneIdMs: number;
  manyIdsMs: number;
  ratio: number;
  goal: string;
  airflowRequestsPerCall: number;
}

/**
 * Bulk status for 1000 non-terminal jobs ÷ for 1 job, with the Airflow double
 * answering every request in 50 ms: how much the batch costs beyond Airflow's
 * own latency (goal ≤ 2).
 */
export async function benchBulkStatus(): Promise<BulkStatusResult> {
  const dagsDir = mkdtempSync(join(tmpdir(), 'automl-bench-dags-'));
  const airflow = await AirflowDouble.start({ version: 'v2', dagsDir });
  const service = await startBenchApp({ ...airflow.env(), AIRFLOW_DAGS_DIR: dagsDir });
  const headers = { 'Authorization-PSK': BENCH_PSK, 'content-type': 'application/json' };
  try {
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const response = await fetch(`${service.url}/api/automl/train/jobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          name: `bench ${i}`,
          domain: 'bench',
          owner: 'bench',
          source_table: 'bench.table',
          label_column: 'y',
          problem_type: 'regression',
          algorithm: 'lightgbm_regressor',
        }),
      });
      ids.push(((await response.json()) as { job_id: string }).job_id);
    }
    airflow.parse();
    airflow.latencyMs = AIRFLOW_LATENCY_MS;

    const time = async (subset: string[]) => {
      const url = `${service.url}/api/automl/train/jobs/status?${subset.map((id) => `ids=${id}`).join('&')}`;
      const started = process.hrtime.bigint();
      const response = await fetch(url, { headers });
      const body = (await response.json()) as { items: unknown[] };
      if (response.status !== 200 || body.items.length !== subset.length)
        throw new Error(`bad answer ${response.status}`);
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    await time(ids.slice(0, 1));
    await time(ids);
    const before = airflow.requests.length;
    const one = median(await sequence(ROUNDS_ONE, () => time(ids.slice(0, 1))));
    const many = median(await sequence(ROUNDS_MANY, () => time(ids)));
    const perCall = (airflow.requests.length - before) / (ROUNDS_ONE + ROUNDS_MANY);
    return {
      name: `bulk status: ${JOBS} ids ÷ 1 id (Airflow double at ${AIRFLOW_LATENCY_MS} ms)`,
      oneIdMs: round(one),
      manyIdsMs: round(many),
      ratio: round(many / one),
      goal: '≤ 2',
      airflowRequestsPerCall: perCall,
    };
  } finally {
    await service.close();
    await airflow.stop();
    rmSync(dagsDir, { recursive: true, force: true });
  }
}

async function sequence(rounds: number, run: () => Promise<number>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await run());
  return samples;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

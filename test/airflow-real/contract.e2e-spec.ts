import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirflowApi } from '../../src/automl-training/airflow/airflow-api';
import { AirflowV2Api } from '../../src/automl-training/airflow/airflow-v2.api';
import { AirflowSpecValidator } from '../doubles/airflow-spec.validator';
import { AirflowDouble } from '../doubles/airflow.double';
import { AirflowRest, sleep } from '../utils/real-airflow';
import { ROOT } from '../utils/service-main';
import { describeRealAirflow, realAirflowInfo, realAirflowRest } from './real-airflow-env';
import { Exchange, RecordingProxy, shapeDiff, shapeOf } from './recording-proxy';

const MANUAL = 'automl_contract_manual';
const AUTO = 'automl_contract_auto';
const MISSING = 'automl_contract_missing';
const RUN = 'contract-run-1';
const RUN_2 = 'contract-run-2';

/** A real DAG file that the double's parser reads too (DAG_ID and AUTO_TRIGGER lines). */
function dagFile(dagId: string, autoTrigger: boolean, command: string): string {
  return [
    `DAG_ID = "${dagId}"`,
    `AUTO_TRIGGER = ${autoTrigger ? 'True' : 'False'}`,
    'from datetime import datetime',
    'from airflow.sdk import DAG',
    'from airflow.providers.standard.operators.bash import BashOperator',
    'with DAG(dag_id=DAG_ID, schedule="@once" if AUTO_TRIGGER else None, start_date=datetime(2024, 1, 1), catchup=False,',
    '         is_paused_upon_creation=False, max_active_runs=1, tags=["automl-training"]):',
    `    BashOperator(task_id="work", bash_command=${JSON.stringify(command)})`,
    '',
  ].join('\n');
}

interface Target {
  name: 'double' | 'real';
  proxy: RecordingProxy;
  client: AirflowApi;
  /** Makes the DAG processor see the folder (double: parse(); real: wait until both DAGs answer 200). */
  parse(): Promise<void>;
  /** Waits until the @once DAG's scheduled run exists. */
  scheduledRun(): Promise<void>;
  /** Waits until no run of `dagId` is queued or running (the real scheduler finishes an @once run's `true`). */
  settled(dagId: string): Promise<void>;
  /** Waits until the task `work` of the run is running (double: it starts now). */
  taskRunning(dagId: string, runId: string): Promise<void>;
  dagsDir: string;
}

// Generous: on two busy cores a real Airflow call can wait many seconds on the scheduler (seen: 25 s).
const signal = () => ({ signal: AbortSignal.timeout(60_000) });

/** A raw request through the proxy, with or without the client's token. */
async function raw(target: Target, method: string, path: string, body?: unknown, token?: string): Promise<number> {
  const response = await fetch(`${target.proxy.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.text();
  return response.status;
}

/**
 * The same AirflowClient (AirflowV2Api) calls, and a few raw requests the
 * client's error paths depend on, sent to the Airflow double and to a real
 * Airflow 3.3 through recording proxies; status codes and response shapes must
 * agree, and every real response must fit the spec the double is held to.
 */
describeRealAirflow('Airflow double vs real Airflow 3: the same client calls', () => {
  const info = realAirflowInfo();
  let rest: AirflowRest;
  let double: AirflowDouble;
  let doubleDir: string;
  const targets: Target[] = [];
  /** Per target: the outcome of each step as the client saw it, and the exchanges each step made. */
  const outcomes: Record<string, { step: string; outcome: unknown; exchanges: Exchange[] }[]> = {
    double: [],
    real: [],
  };

  async function step(name: string, run: (target: Target) => Promise<unknown>): Promise<void> {
    for (const target of targets) {
      const mark = target.proxy.exchanges.length;
      let outcome: unknown;
      try {
        outcome = await run(target);
      } catch (error) {
        outcome = { error: (error as Error).constructor.name, status: (error as { status?: number }).status };
      }
      outcomes[target.name].push({ step: name, outcome, exchanges: target.proxy.since(mark) });
    }
  }

  beforeAll(async () => {
    rest = realAirflowRest(info!);
    doubleDir = mkdtempSync(join(tmpdir(), 'airflow-contract-double-'));
    double = await AirflowDouble.start({
      version: 'v2',
      dagsDir: doubleDir,
      username: info!.username,
      password: info!.password,
    });
    const doubleProxy = await RecordingProxy.start(double.url);
    const realProxy = await RecordingProxy.start(info!.url);
    targets.push(
      {
        name: 'double',
        proxy: doubleProxy,
        client: new AirflowV2Api(doubleProxy.url, info!.username, info!.password),
        dagsDir: doubleDir,
        parse: async () => void double.parse(),
        scheduledRun: async () => undefined,
        settled: async () => undefined,
        taskRunning: async (dagId) => void double.writeTaskLog(dagId, 'work', ['sleeping'], { state: 'running' }),
      },
      {
        name: 'real',
        proxy: realProxy,
        client: new AirflowV2Api(realProxy.url, info!.username, info!.password),
        dagsDir: info!.dagsDir,
        parse: async () => {
          await rest.waitDag(MANUAL, 200);
          await rest.waitDag(AUTO, 200);
        },
        scheduledRun: async () => {
          for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(500)) {
            const runs = await rest.api('GET', `/api/v2/dags/${AUTO}/dagRuns`);
            if (runs.body?.total_entries > 0) return;
          }
          throw new Error('the @once DAG got no scheduled run within 60 s');
        },
        settled: async (dagId) => {
          for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(500)) {
            const runs = await rest.api('GET', `/api/v2/dags/${dagId}/dagRuns`);
            const states: string[] = (runs.body?.dag_runs ?? []).map((run: { state: string }) => run.state);
            if (states.every((state) => state === 'success' || state === 'failed')) return;
          }
          throw new Error(`runs of ${dagId} did not finish within 90 s`);
        },
        taskRunning: async (dagId, runId) => {
          for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(500)) {
            const tasks = await rest.api('GET', `/api/v2/dags/${dagId}/dagRuns/${runId}/taskInstances`);
            if ((tasks.body?.task_instances ?? []).some((task: { state: string }) => task.state === 'running')) return;
          }
          throw new Error(`no task of ${dagId}/${runId} was running within 90 s`);
        },
      },
    );
    for (const target of targets) {
      writeFileSync(join(target.dagsDir, `${MANUAL}.py`), dagFile(MANUAL, false, 'sleep 120'));
      writeFileSync(join(target.dagsDir, `${AUTO}.py`), dagFile(AUTO, true, 'true'));
    }
    await Promise.all(targets.map((target) => target.parse()));
    await Promise.all(targets.map((target) => target.scheduledRun()));
  }, 120_000);

  afterAll(async () => {
    for (const target of targets) {
      for (const file of [MANUAL, AUTO]) rmSync(join(target.dagsDir, `${file}.py`), { force: true });
      await target.proxy.stop();
    }
    await rest?.api('DELETE', `/api/v2/dags/${MANUAL}`);
    await rest?.api('DELETE', `/api/v2/dags/${AUTO}`);
    await double?.stop();
    rmSync(doubleDir, { recursive: true, force: true });
  });

  it('should answer every client call with the same status and response shape', async () => {
    const token = async (target: Target) => {
      const answer = await fetch(`${target.proxy.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: info!.username, password: info!.password }),
      });
      return ((await answer.json()) as { access_token: string }).access_token;
    };
    await step('POST /auth/token with a wrong password', (t) =>
      raw(t, 'POST', '/auth/token', { username: info!.username, password: 'wrong-password' }),
    );
    await step('GET /api/v2/dags/{id} without a token', (t) => raw(t, 'GET', `/api/v2/dags/${MANUAL}`));
    await step('GET /api/v2/dags/{id} with an invalid token', (t) =>
      raw(t, 'GET', `/api/v2/dags/${MANUAL}`, undefined, 'not-a-jwt'),
    );
    await step('healthy()', (t) => t.client.healthy(signal()));
    await step('getDag(unknown)', (t) => t.client.getDag(MISSING, signal()));
    await step('getDag(parsed)', (t) => t.client.getDag(MANUAL, signal()));
    await step('setPaused(true)', (t) => t.client.setPaused(MANUAL, true, signal()));
    await step('setPaused(false)', (t) => t.client.setPaused(MANUAL, false, signal()));
    await step('triggerRun', async (t) => {
      const run = await t.client.triggerRun(MANUAL, RUN, { job_id: 'contract' }, 'contract test', signal());
      return { dagId: run.dagId, runId: run.runId };
    });
    await step('triggerRun again (409 → existing run)', async (t) => {
      const run = await t.client.triggerRun(MANUAL, RUN, { job_id: 'contract' }, 'contract test', signal());
      return { dagId: run.dagId, runId: run.runId };
    });
    await step('POST dagRuns without logical_date', async (t) =>
      raw(t, 'POST', `/api/v2/dags/${MANUAL}/dagRuns`, { dag_run_id: 'x' }, await token(t)),
    );
    await step('POST dagRuns with an unknown key', async (t) =>
      raw(
        t,
        'POST',
        `/api/v2/dags/${MANUAL}/dagRuns`,
        { logical_date: null, execution_date: '2024-01-01T00:00:00Z' },
        await token(t),
      ),
    );
    await step('POST dagRuns of an unknown DAG', async (t) =>
      raw(t, 'POST', `/api/v2/dags/${MISSING}/dagRuns`, { logical_date: null }, await token(t)),
    );
    await step('listRuns (one batch request)', async (t) => {
      const runs = await t.client.listRuns([MANUAL, AUTO, MISSING], signal());
      return runs
        .map((run) => ({ dagId: run.dagId, hasSortKey: typeof run.sortKey === 'string' }))
        .sort((a, b) => a.dagId.localeCompare(b.dagId));
    });
    await step('setRunFailed', (t) => t.client.setRunFailed(MANUAL, RUN, signal()));
    await step('PATCH an unknown run', async (t) =>
      raw(t, 'PATCH', `/api/v2/dags/${MANUAL}/dagRuns/nope`, { state: 'failed' }, await token(t)),
    );
    // Airflow refuses to delete a DAG while a task instance of it runs; the service's AirflowClient then fails the run.
    await step('triggerRun (a task that runs)', async (t) => {
      const run = await t.client.triggerRun(MANUAL, RUN_2, { job_id: 'contract' }, 'contract test', signal());
      await t.taskRunning(MANUAL, RUN_2);
      return { dagId: run.dagId, runId: run.runId };
    });
    await step('listTaskStates (one batch request; the asked runs only)', (t) =>
      t.client.listTaskStates(
        'work',
        [
          { dagId: MANUAL, runId: RUN_2 },
          { dagId: AUTO, runId: RUN_2 },
          { dagId: MANUAL, runId: 'nope' },
        ],
        signal(),
      ),
    );
    await step('listTaskStates of a task the DAG does not have', (t) =>
      t.client.listTaskStates('absent', [{ dagId: MANUAL, runId: RUN_2 }], signal()),
    );
    await step('deleteDag while its task runs (409)', (t) => t.client.deleteDag(MANUAL, signal()));
    await step('setRunFailed (fails the running task)', (t) => t.client.setRunFailed(MANUAL, RUN_2, signal()));
    await step('deleteDag once the run failed', (t) => t.client.deleteDag(MANUAL, signal()));
    for (const target of targets) await target.settled(AUTO);
    await step('deleteDag', (t) => t.client.deleteDag(AUTO, signal()));
    await step('deleteDag(unknown)', (t) => t.client.deleteDag(MISSING, signal()));

    const validator = AirflowSpecValidator.v2();
    const compared: string[] = [];
    const drift: string[] = [];
    const offSpec: string[] = [];
    outcomes.double.forEach((doubleStep, index) => {
      const realStep = outcomes.real[index];
      const calls = doubleStep.exchanges.map((e) => `${e.method} ${e.path} → ${e.status}`).join(', ');
      compared.push(`${doubleStep.step}: ${calls}`);
      if (JSON.stringify(doubleStep.outcome) !== JSON.stringify(realStep.outcome)) {
        drift.push(
          `${doubleStep.step}: client saw ${JSON.stringify(doubleStep.outcome)} from the double, ${JSON.stringify(realStep.outcome)} from Airflow`,
        );
      }
      if (doubleStep.exchanges.length !== realStep.exchanges.length) {
        drift.push(
          `${doubleStep.step}: ${doubleStep.exchanges.length} requests to the double, ${realStep.exchanges.length} to Airflow`,
        );
        return;
      }
      doubleStep.exchanges.forEach((d, i) => {
        const r = realStep.exchanges[i];
        const where = `${doubleStep.step}: ${d.method} ${d.path}`;
        if (d.status !== r.status) drift.push(`${where}: status ${d.status} from the double, ${r.status} from Airflow`);
        else
          drift.push(
            ...shapeDiff(shapeOf(d.body), shapeOf(r.body))
              // What a task's rendered_fields hold are its operator's template fields, which the double does not model.
              .filter((diff) => !diff.includes('.rendered_fields.'))
              .map((diff) => `${where}: ${diff}`),
          );
        const template = templateOf(r.path);
        if (template && r.status < 500) {
          const errors = validator.responseErrors(
            template,
            r.method.toLowerCase(),
            r.status,
            r.body,
            template === '/auth/token' ? 'airflow-v2-auth' : undefined,
          );
          offSpec.push(...errors.map((error) => `${r.method} ${template} → ${r.status}: ${error}`));
        }
      });
    });
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    writeFileSync(
      join(ROOT, 'test-artifacts', 'airflow-contract.json'),
      JSON.stringify({ compared, drift, offSpec, outcomes }, null, 2),
    );
    process.stdout.write(`contract: compared (double and real Airflow)\n  ${compared.join('\n  ')}\n`);
    expect(drift).toEqual([]);
    expect(offSpec).toEqual([]);
    // The three refused requests above are recorded as request violations on purpose; responses must have none.
    expect(double.violations.filter((violation) => !violation.startsWith('request '))).toEqual([]);
  }, 300_000);

  /** Until the real dag-processor has seen the file gone (Airflow 3 marks the DAG `is_stale`). */
  async function waitStale(dagId: string): Promise<void> {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(500)) {
      if ((await rest.api('GET', `/api/v2/dags/${dagId}`)).body?.is_stale === true) return;
    }
    throw new Error(`${dagId} not stale within 30 s of its file going`);
  }

  it('should bring a deleted DAG back on the next parse while its file is there, keep it stale once the file is gone, and not bring it back after the file is removed and the DAG deleted (both)', async () => {
    const deleted: Record<string, number[]> = {};
    for (const target of targets) {
      // The previous test deleted AUTO in Airflow while its file stayed.
      if (target.name === 'double') await target.parse();
      else await rest.waitDag(AUTO, 200, 30_000);
      const back = (await target.client.getDag(AUTO, signal())) !== null;
      // Back means scheduled again (@once, its runs went with the DAG): a run of `true` may be under way. It needs
      // its file to start (without it Airflow 3 reschedules the task, "Dag not found during start up", and the run
      // never ends), and Airflow refuses (409) to delete a DAG while a task of it runs: let it finish, then remove
      // the file and delete.
      await target.settled(AUTO);
      unlinkSync(join(target.dagsDir, `${AUTO}.py`));
      // Its file gone, the DAG stays, stale: absent to getDag, there with includeStale (what the background
      // reconciler looks for when a deleted job's DAG was re-created).
      if (target.name === 'double') await target.parse();
      else await waitStale(AUTO);
      const stale =
        (await target.client.getDag(AUTO, signal())) === null &&
        (await target.client.getDag(AUTO, { ...signal(), includeStale: true })) !== null;
      await target.client.deleteDag(AUTO, signal()).catch(async (error: { status?: number }) => {
        if (error.status !== 409) throw error;
        await target.settled(AUTO);
        await target.client.deleteDag(AUTO, signal());
      });
      if (target.name === 'double') await target.parse();
      else await sleep(6_000); // three parse intervals
      const gone = (await target.client.getDag(AUTO, signal())) === null;
      deleted[target.name] = [Number(back), Number(stale), Number(gone)];
    }
    expect(deleted).toEqual({ double: [1, 1, 1], real: [1, 1, 1] });
  }, 90_000);
});

/** The spec's path template for a recorded path (only the endpoints this test calls). */
function templateOf(path: string): string | null {
  if (path === '/auth/token') return '/auth/token';
  if (path === '/api/v2/monitor/health') return '/api/v2/monitor/health';
  if (/^\/api\/v2\/dags\/~\/dagRuns\/list$/.test(path)) return '/api/v2/dags/{dag_id}/dagRuns/list';
  if (/^\/api\/v2\/dags\/~\/dagRuns\/~\/taskInstances\/list$/.test(path))
    return '/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list';
  if (/^\/api\/v2\/dags\/[^/]+\/dagRuns\/[^/]+$/.test(path)) return '/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}';
  if (/^\/api\/v2\/dags\/[^/]+\/dagRuns$/.test(path)) return '/api/v2/dags/{dag_id}/dagRuns';
  if (/^\/api\/v2\/dags\/[^/]+$/.test(path)) return '/api/v2/dags/{dag_id}';
  return null;
}

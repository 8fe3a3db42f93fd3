import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../utils/net';
import { ROOT, SERVICE_MAIN as MAIN } from '../utils/service-main';
import { AirflowDouble } from '../doubles/airflow.double';
import { EventStreamClient } from '../utils/event-stream';

const PSK = 'shutdown-psk-0123456789abcdef';


describe('graceful shutdown', () => {
  let airflow: AirflowDouble;
  let dagsDir: string;
  let child: ChildProcess;
  let output = '';
  let url: string;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  beforeAll(async () => {
    if (!existsSync(MAIN)) execFileSync('npx', ['nest', 'build'], { cwd: ROOT, stdio: 'ignore' });
    dagsDir = mkdtempSync(join(tmpdir(), 'automl-shutdown-'));
    airflow = await AirflowDouble.start({ version: 'v2', dagsDir });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [MAIN], {
      cwd: dagsDir,
      env: { PATH: process.env.PATH ?? '', PORT: String(port), NODE_ENV: 'production', API_PSK: PSK, DATABASE_URL: 'pglite://memory', ...airflow.env() },
    });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
    for (let i = 0; i < 200; i++) {
      if (await fetch(`${url}/health/live`).then((r) => r.ok).catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`service did not start: ${output}`);
  });

  afterAll(async () => {
    child.kill('SIGKILL');
    await airflow.stop();
    rmSync(dagsDir, { recursive: true, force: true });
  });

  it('should finish a request in flight on SIGTERM, end open event streams, refuse new requests, close the database and exit', async () => {
    const headers = { 'Authorization-PSK': PSK, 'content-type': 'application/json' };
    const created = await fetch(`${url}/api/automl/train/jobs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'n', domain: 'd', owner: 'o', source_table: 't', label_column: 'y', problem_type: 'regression', algorithm: 'lightgbm_regressor' }),
    });
    const job = (await created.json()) as { job_id: string };
    airflow.parse();
    airflow.latencyMs = 1_200;

    const stream = await EventStreamClient.open(`${url}/api/automl/train/jobs/events`, { 'Authorization-PSK': PSK });
    const inFlight = fetch(`${url}/api/automl/train/jobs/status?ids=${job.job_id}`, { headers });
    await new Promise((r) => setTimeout(r, 300));
    const stopping = Date.now();
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const refused = await fetch(`${url}/health/live`).then(() => 'answered', () => 'refused');

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { items: unknown[] }).items).toHaveLength(1);
    expect(refused).toBe('refused');
    await stream.ended;
    const exit = await exited;
    expect(Date.now() - stopping).toBeLessThan(5_000);
    expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
    expect(output).not.toMatch(/"level":50|Error:/);
  });
});

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
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        NODE_ENV: 'production',
        API_PSK: PSK,
        DATABASE_URL: 'pglite://memory',
        ...airflow.env(),
      },
    });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
    // Up to 60 s: embedded PGlite's first start takes 20 s and more when the machine's cores are busy.
    for (let i = 0; i < 600; i++) {
      if (
        await fetch(`${url}/health/live`)
          .then((r) => r.ok)
          .catch(() => false)
      )
        return;
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
      body: JSON.stringify({
        name: 'n',
        domain: 'd',
        owner: 'o',
        source_table: 't',
        label_column: 'y',
        problem_type: 'regression',
        algorithm: 'lightgbm_regressor',
      }),
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
    const refused = await fetch(`${url}/health/live`).then(
      () => 'answered',
      () => 'refused',
    );

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { items: unknown[] }).items).toHaveLength(1);
    expect(refused).toBe('refused');
    await stream.ended;
    const exit = await exited;
    expect(Date.now() - stopping).toBeLessThan(5_000);
    expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
    expect(output).not.toMatch(/"level":50|Error:/);
    const messages = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContainEqual(expect.stringMatching(/^Received SIGTERM: /));
    expect(messages).toContainEqual(expect.stringMatching(/^Shut down on SIGTERM in \d+ ms$/));
  });

  it('should log at start-up the paths each controller really serves', () => {
    const messages = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    const controllers = messages.filter((msg) => / \{\/.*\}:$/.test(msg));
    expect(controllers.sort()).toEqual([
      'AutomlTrainingController {/api/automl/train/jobs}:',
      'HealthController {/health}:',
      'MetricsController {/metrics}:',
    ]);
    const mapped = messages
      .filter((msg) => msg.startsWith('Mapped {'))
      .map((msg) => msg.slice('Mapped {'.length).split(',')[0]);
    expect(mapped).toEqual(
      expect.arrayContaining(['/health/live', '/health/ready', '/metrics', '/api/automl/train/jobs/:job_id/history']),
    );
    // Every mapped route lies under the path its controller line announced.
    const prefixes = controllers.map((line) => line.slice(line.indexOf('{') + 1, line.indexOf('}')));
    for (const path of mapped)
      expect({ path, under: prefixes.some((prefix) => path.startsWith(prefix)) }).toEqual({ path, under: true });
  });
});

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../utils/net';
import { ROOT, SERVICE_MAIN as MAIN } from '../utils/service-main';

/** Runs the built service the way `npm start` does, in `cwd`, with exactly `env` (plus PATH). */
function run(
  cwd: string,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, [MAIN], { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, output: () => output, exited };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('timed out');
}

describe('starting the service', () => {
  let cwd: string;

  beforeAll(() => {
    if (!existsSync(MAIN)) execFileSync('npx', ['nest', 'build'], { cwd: ROOT, stdio: 'ignore' });
  });

  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), 'automl-start-'));
  });

  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  it('should serve /docs on the embedded database under .data/ with no configuration, printing a generated PSK once', async () => {
    const port = await freePort();
    const service = run(cwd, { PORT: String(port) });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/docs/`)).status === 200, 45_000);
      const docs = await fetch(`http://127.0.0.1:${port}/docs/`);
      expect(await docs.text()).toContain('swagger-ui');
      expect(existsSync(join(cwd, '.data', 'pglite'))).toBe(true);

      const printed = service.output().match(/Authorization-PSK: (\S+)/g) ?? [];
      expect(printed).toHaveLength(1);
      const key = printed[0]!.split(': ')[1];
      const listing = await fetch(`http://127.0.0.1:${port}/api/automl/train/jobs`, {
        headers: { 'Authorization-PSK': key },
      });
      expect(listing.status).toBe(200);
      expect(await listing.json()).toEqual({ items: [], next_cursor: null });

      // No Airflow configured: said once at start, and in readiness (which it does not fail).
      const warning =
        'No Airflow configured (AIRFLOW_URL unset): jobs are stored but stay queued until an Airflow is configured';
      expect(service.output().split(warning)).toHaveLength(2);
      // Where its data and DAG files are, and the command that brings a whole platform.
      expect(service.output()).toContain(
        `Data: embedded PostgreSQL (PGlite) in ${join(cwd, '.data', 'pglite')}; DAG files written to ${join(cwd, '.data', 'dags')}`,
      );
      expect(service.output()).toContain('npm run stack');
      const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { details: { airflow: unknown } }).details.airflow).toEqual({
        status: 'up',
        configured: false,
        message: expect.stringContaining(warning),
      });
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });

  it('should refuse to start in production without API_PSK, with one line naming the variable', async () => {
    const service = run(cwd, { NODE_ENV: 'production', DATABASE_URL: 'pglite://memory' });
    expect(await service.exited).toBe(78);
    const lines = service.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('API_PSK');
  });

  it('should refuse a bad variable with one line naming it and what was expected', async () => {
    const service = run(cwd, { PORT: 'eighty', DATABASE_URL: 'pglite://memory' });
    expect(await service.exited).toBe(78);
    expect(service.output().trim()).toBe(
      'Invalid configuration: PORT: expected an integer port between 0 and 65535 (got "eighty")',
    );
  });
});

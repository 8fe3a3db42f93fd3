import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirflowSpecValidator } from './airflow-spec.validator';
import { AirflowDouble } from './airflow.double';

describe.each(['v1', 'v2'] as const)('Airflow double (%s) against the official spec', (version) => {
  let dagsDir: string;
  let airflow: AirflowDouble;
  let auth: Record<string, string>;
  const base = () => `${airflow.url}/api/${version}`;

  beforeAll(async () => {
    dagsDir = mkdtempSync(join(tmpdir(), 'airflow-double-'));
    writeFileSync(join(dagsDir, 'one.py'), 'DAG_ID = "one"\nAUTO_TRIGGER = True\n');
    writeFileSync(join(dagsDir, 'two.py'), 'DAG_ID = "two"\nAUTO_TRIGGER = False\n');
    airflow = await AirflowDouble.start({ version, dagsDir });
    airflow.parse();
    if (version === 'v1') {
      auth = { Authorization: `Basic ${Buffer.from('airflow:airflow-secret').toString('base64')}` };
    } else {
      const response = await fetch(`${airflow.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'airflow', password: 'airflow-secret' }),
      });
      expect(response.status).toBe(201);
      auth = { Authorization: `Bearer ${((await response.json()) as { access_token: string }).access_token}` };
    }
  });

  afterAll(async () => {
    await airflow.stop();
    rmSync(dagsDir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base()}${path}`, {
      method,
      headers: { ...auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };

  it('should serve every endpoint the service uses with spec-valid bodies', async () => {
    expect((await call('GET', '/dags/one')).status).toBe(200);
    expect(
      (await call('PATCH', `/dags/two${version === 'v1' ? '?update_mask=is_paused' : ''}`, { is_paused: true })).body
        .is_paused,
    ).toBe(true);
    const trigger = {
      dag_run_id: 'r1',
      conf: { a: 1 },
      note: 'n',
      ...(version === 'v2' ? { logical_date: null } : {}),
    };
    expect((await call('POST', '/dags/two/dagRuns', trigger)).status).toBe(200);
    expect((await call('POST', '/dags/two/dagRuns', trigger)).status).toBe(409);
    expect((await call('GET', '/dags/two/dagRuns/r1')).body.state).toBe('queued');
    expect((await call('PATCH', '/dags/two/dagRuns/r1', { state: 'failed' })).body.state).toBe('failed');
    const listed = await call('POST', '/dags/~/dagRuns/list', { dag_ids: ['one', 'two'], page_limit: 10 });
    expect(listed.body.total_entries).toBe(2);
    expect((await call('GET', '/dags/missing')).status).toBe(404);
    expect((await call('DELETE', '/dags/one')).status).toBe(204);
    expect(airflow.violations).toEqual([]);
  });

  it('should refuse requests the real API refuses', async () => {
    const unauthenticated = await fetch(`${base()}/dags/two`);
    expect(unauthenticated.status).toBe(401);
    if (version === 'v2') {
      // Airflow 3 requires logical_date (nullable) and forbids unknown keys.
      expect((await call('POST', '/dags/two/dagRuns', { dag_run_id: 'r2' })).status).toBe(422);
      expect(
        (await call('POST', '/dags/two/dagRuns', { logical_date: null, execution_date: '2024-01-01T00:00:00Z' }))
          .status,
      ).toBe(422);
      airflow.violations.length = 0;
    }
  });

  it('should have a validator that rejects bodies off the spec', () => {
    const validator = version === 'v1' ? AirflowSpecValidator.v1() : AirflowSpecValidator.v2();
    const path =
      version === 'v1' ? '/dags/{dag_id}/dagRuns/{dag_run_id}' : '/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}';
    expect(validator.responseErrors(path, 'get', 200, { dag_id: 5, state: 'exploded' }).length).toBeGreaterThan(0);
  });
});

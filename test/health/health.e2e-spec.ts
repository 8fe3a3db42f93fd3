import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirflowDouble } from '../doubles/airflow.double';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { usesPostgres, withAdminClient } from '../setup/test-database';
import { startTestApp, TestApp } from '../utils/test-app';

describe('health probes', () => {
  let keycloak: KeycloakDouble;
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let dagsDir: string;

  beforeAll(async () => {
    dagsDir = mkdtempSync(join(tmpdir(), 'automl-health-'));
    keycloak = await KeycloakDouble.start();
    airflow = await AirflowDouble.start({ version: 'v2', dagsDir });
    testApp = await startTestApp({ ...keycloak.env(), ...airflow.env() });
  });

  afterAll(async () => {
    await testApp.close();
    await airflow.stop();
    await keycloak.stop();
    rmSync(dagsDir, { recursive: true, force: true });
  });

  it('should answer liveness without credentials', async () => {
    expect((await testApp.http().get('/health/live').expect(200)).body).toEqual({ status: 'ok' });
  });

  it('should be ready with the database up, reporting Airflow and JWKS reachability as details', async () => {
    const response = await testApp.http().get('/health/ready').expect(200);
    expect(response.body).toMatchObject({
      status: 'ok',
      details: {
        database: { status: 'up' },
        airflow: { status: 'up', configured: true, reachable: true, breaker: 'closed' },
        keycloak_jwks: { status: 'up', configured: true, reachable: true },
      },
    });
  });

  it('should stay ready, saying so in the details, while Airflow hangs', async () => {
    airflow.hang = true;
    try {
      const started = Date.now();
      const response = await testApp.http().get('/health/ready').expect(200);
      expect(Date.now() - started).toBeLessThan(2_500);
      expect(response.body.details.airflow).toMatchObject({ reachable: false });
    } finally {
      airflow.hang = false;
    }
  });

  (usesPostgres() ? it : it.skip)('should report not ready while the database refuses connections, and ready again after', async () => {
    const database = new URL(testApp.config.database.kind === 'postgres' ? testApp.config.database.url : '').pathname.slice(1);
    const setConnections = (allow: boolean) =>
      withAdminClient(async (client) => {
        await client.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS ${allow}`);
        if (!allow) await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
      });
    await setConnections(false);
    try {
      const response = await testApp.http().get('/health/ready').expect(503);
      expect(response.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
      await testApp.http().get('/health/live').expect(200);
    } finally {
      await setConnections(true);
    }
    await testApp.http().get('/health/ready').expect(200);
  });
});

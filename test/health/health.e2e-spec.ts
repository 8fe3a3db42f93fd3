import { AirflowDouble } from '../doubles/airflow.double';
import { usesPostgres } from '../setup/test-database';
import { startTestAppWithAirflow, TestApp, whileDatabaseRefusesConnections } from '../utils/test-app';

describe('health probes', () => {
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ airflow, testApp, close: stop } = await startTestAppWithAirflow());
  });

  afterAll(() => stop());

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

  (usesPostgres() ? it : it.skip)(
    'should report not ready while the database refuses connections, and ready again after',
    async () => {
      await whileDatabaseRefusesConnections(testApp, async () => {
        const response = await testApp.http().get('/health/ready').expect(503);
        expect(response.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
        await testApp.http().get('/health/live').expect(200);
      });
      await testApp.http().get('/health/ready').expect(200);
    },
  );
});

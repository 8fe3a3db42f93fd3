import { AirflowRest, RealAirflowInfo } from '../utils/real-airflow';
import { testDatabaseUrl, usesPostgres } from '../setup/test-database';

/** Environment variable through which global-setup hands the running Airflow to test workers. */
export const REAL_AIRFLOW_ENV = 'AUTOML_REAL_AIRFLOW';

/** `AIRFLOW_E2E=off` is the only way to skip the real-Airflow tests; global-setup then says so loudly. */
export function realAirflowDisabled(): boolean {
  return process.env.AIRFLOW_E2E === 'off';
}

/** The PostgreSQL server Airflow's metadata database goes on: TEST_DATABASE_URL's, or AIRFLOW_TEST_DATABASE_URL. */
export function airflowAdminDatabaseUrl(): string {
  const url = process.env.AIRFLOW_TEST_DATABASE_URL ?? (usesPostgres() ? testDatabaseUrl() : undefined);
  if (!url) {
    throw new Error(
      'The real-Airflow e2e tests need PostgreSQL (Airflow metadata, the training table): set TEST_DATABASE_URL=postgres://… ' +
        '(or AIRFLOW_TEST_DATABASE_URL), or AIRFLOW_E2E=off to skip them.',
    );
  }
  return url;
}

/** The Airflow global-setup started, for a test worker; null when the tests are disabled. */
export function realAirflowInfo(): RealAirflowInfo | null {
  const raw = process.env[REAL_AIRFLOW_ENV];
  if (!raw) {
    if (realAirflowDisabled()) return null;
    throw new Error(
      `${REAL_AIRFLOW_ENV} is not set: run this file through the jest 'airflow' project (its global-setup starts Airflow)`,
    );
  }
  return JSON.parse(raw) as RealAirflowInfo;
}

export function realAirflowRest(info: RealAirflowInfo): AirflowRest {
  return new AirflowRest(info.url, info.username, info.password);
}

/** `describe`, or `describe.skip` when AIRFLOW_E2E=off (global-setup printed that they are skipped). */
export function describeRealAirflow(name: string, body: () => void): void {
  (realAirflowDisabled() ? describe.skip : describe)(name, body);
}

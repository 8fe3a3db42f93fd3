import { load } from 'js-yaml';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentVariables } from '../../src/config/env.validation';
import { loadAppConfig } from '../../src/config/app.config';
import { AIRFLOW_SETTINGS } from '../utils/real-airflow';

const ROOT = join(__dirname, '..', '..');

describe('docker-compose.yml', () => {
  const compose = load(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { environment?: Record<string, string>; volumes?: string[]; ports?: string[] }>;
  };

  it('should configure the service only with variables it knows, and values its validation accepts', () => {
    const environment = compose.services.automl.environment!;
    const known = new Set(
      Object.keys(new EnvironmentVariables()).concat(Object.getOwnPropertyNames(EnvironmentVariables.prototype)),
    );
    const declared = readFileSync(join(ROOT, 'src', 'config', 'env.validation.ts'), 'utf8');
    for (const name of Object.keys(environment)) {
      expect({ name, declared: known.has(name) || declared.includes(`${name}?:`) }).toEqual({ name, declared: true });
    }
    const config = loadAppConfig(environment);
    expect(config.auth.keycloak).toMatchObject({
      issuer: 'http://localhost:8080/realms/rapid',
      jwksUri: 'http://keycloak:8080/realms/rapid/protocol/openid-connect/certs',
    });
    expect(config.airflow).toMatchObject({ apiVersion: 'v2', dagsDir: '/dags' });
    // The job's MLflow links are for the browser: MLflow's port as published on the host.
    expect(config.mlflow.uiUrl).toBe('http://localhost:5000');
    expect(compose.services.mlflow.ports).toContain('5000:5000');
  });

  it('should give Airflow the PSK Variable the DAGs read and share the DAG folder with the service', () => {
    expect(compose.services.airflow.environment!.AIRFLOW_VAR_AUTOML_TRAINING_PSK).toBe(
      compose.services.automl.environment!.API_PSK,
    );
    expect(compose.services.airflow.volumes).toContain('dags:/opt/airflow/dags');
    expect(compose.services.automl.volumes).toContain('dags:/dags');
  });

  it('should run Airflow with the settings of npm run stack and the real-Airflow tests, and the Connections the DAG reads', () => {
    const airflow = compose.services.airflow.environment!;
    for (const [name, value] of Object.entries(AIRFLOW_SETTINGS)) {
      expect({ name, value: airflow[name]?.toLowerCase() }).toEqual({ name, value: value.toLowerCase() });
    }
    const config = loadAppConfig(compose.services.automl.environment!);
    expect(airflow[`AIRFLOW_CONN_${config.airflow.sourceConnId.toUpperCase()}`]).toMatch(/^postgres:\/\//);
    expect(JSON.parse(airflow[`AIRFLOW_CONN_${config.airflow.mlflowConnId.toUpperCase()}`])).toMatchObject({
      conn_type: 'http',
      host: 'mlflow',
    });
  });

  it("should give the trainer a read-only role on a database apart from the service's, and Airflow a JWT secret HS512 accepts", () => {
    const source = new URL(
      compose.services.airflow.environment![
        `AIRFLOW_CONN_${loadAppConfig(compose.services.automl.environment!).airflow.sourceConnId.toUpperCase()}`
      ],
    );
    const service = new URL(compose.services.automl.environment!.DATABASE_URL);
    expect({ user: source.username, database: source.pathname }).toEqual({
      user: 'automl_reader',
      database: '/automl_source',
    });
    expect(source.username).not.toBe(service.username);
    expect(source.pathname).not.toBe(service.pathname);
    expect(compose.services.postgres.volumes).toContain('./deploy/postgres:/docker-entrypoint-initdb.d:ro');
    const init = readFileSync(join(ROOT, 'deploy', 'postgres', '10-source-database.sql'), 'utf8');
    expect(init).toContain('CREATE ROLE automl_reader LOGIN');
    expect(init).toContain('ALTER ROLE automl_reader SET default_transaction_read_only = on');
    expect(init).toContain(`REVOKE CONNECT, TEMPORARY ON DATABASE ${service.pathname.slice(1)} FROM PUBLIC`);
    expect(
      Buffer.byteLength(compose.services.airflow.environment!.AIRFLOW__API_AUTH__JWT_SECRET),
    ).toBeGreaterThanOrEqual(64);
  });

  it('should import a rapid realm whose client is the one the service expects', () => {
    const realm = JSON.parse(readFileSync(join(ROOT, 'deploy', 'keycloak', 'rapid-realm.json'), 'utf8'));
    expect(realm.realm).toBe('rapid');
    expect(realm.clients.map((client: { clientId: string }) => client.clientId)).toContain(
      compose.services.automl.environment!.KEYCLOAK_CLIENT_ID,
    );
  });
});

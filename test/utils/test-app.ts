import 'reflect-metadata';
import { INestApplication } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { Test } from '@nestjs/testing';
import { getDataSourceToken } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { configureApp } from '../../src/app.setup';
import { createHttpAdapter } from '../../src/common/http/http-adapter';
import { AppConfig, loadAppConfig } from '../../src/config/app.config';
import { AirflowDouble } from '../doubles/airflow.double';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { databaseUrl, TEMPLATE_ENV, testDatabaseUrl, usesPostgres, withAdminClient } from '../setup/test-database';

export const TEST_PSK = 'test-psk-0123456789abcdef';
export const ROTATED_PSK = 'rotated-psk-fedcba9876543210';

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  dataSource: DataSource;
  http: () => ReturnType<typeof request>;
  /** Empties every table (each test starts from a known state). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** A fresh database for one test file: a clone of the migrated template, or an in-memory PGlite. */
async function freshDatabaseUrl(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!usesPostgres()) return { url: testDatabaseUrl(), drop: async () => undefined };
  const template = process.env[TEMPLATE_ENV];
  if (!template) throw new Error('global-setup did not create a template database');
  const name = `${template}_f${randomBytes(4).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  return {
    url: databaseUrl(name),
    drop: () =>
      withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/**
 * Boots the real AppModule with the production pipeline (configureApp) on a
 * loopback port; `env` adds or overrides environment variables.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  logDestination?: DestinationStream,
): Promise<TestApp> {
  const database = await freshDatabaseUrl();
  const dagsDir = mkdtempSync(join(tmpdir(), 'automl-dags-'));
  const config = loadAppConfig({
    NODE_ENV: 'test',
    AIRFLOW_DAGS_DIR: dagsDir,
    API_PSK: `${TEST_PSK},${ROTATED_PSK}`,
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '20',
    AUTH_FAILURE_LIMIT: '10000',
    LOG_LEVEL: logDestination ? 'debug' : 'silent',
    // Background reconciliation off unless a test turns it on (it would add Airflow requests to counts).
    RECONCILE_INTERVAL_MS: '0',
    ...env,
  });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.forRoot(config, { logDestination })],
  }).compile();
  const app = moduleRef.createNestApplication(createHttpAdapter(), { bodyParser: false, bufferLogs: true });
  configureApp(app, config);
  // PORT set: a known port (when PUBLIC_URL must name it before start, e.g. for a real Airflow's DAG callbacks).
  await app.listen(env.PORT ? Number(env.PORT) : 0, '127.0.0.1');
  const dataSource = app.get<DataSource>(getDataSourceToken());
  return {
    app,
    config,
    dataSource,
    http: () => request(app.getHttpServer()),
    reset: async () => {
      await dataSource.query(
        'TRUNCATE automl_training_job_transitions, automl_training_jobs, automl_training_idempotency_keys, automl_training_auth_failures RESTART IDENTITY CASCADE',
      );
    },
    close: async () => {
      await app.close();
      await database.drop();
      rmSync(dagsDir, { recursive: true, force: true });
    },
  };
}

/** The app's loopback base URL, for clients other than supertest (raw sockets, streams, fuzzers). */
export async function baseUrl(testApp: TestApp): Promise<string> {
  return (await testApp.app.getUrl()).replace('[::1]', '127.0.0.1');
}

export const psk = (key = TEST_PSK) => ({ 'Authorization-PSK': key });
export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Sends exact bytes (superagent would re-encode a Buffer as JSON); resolves status and parsed body. */
export async function rawRequest(
  testApp: TestApp,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; body: unknown }> {
  const url = new URL(path, await testApp.app.getUrl());
  const response = await fetch(url, { method, headers, body });
  return { status: response.status, body: await response.json() };
}

/** A test app whose bearer tokens come from its own Keycloak double; `close` stops both. */
export async function startTestAppWithKeycloak(
  env: Record<string, string> = {},
): Promise<{ keycloak: KeycloakDouble; testApp: TestApp; close(): Promise<void> }> {
  const keycloak = await KeycloakDouble.start();
  const testApp = await startTestApp({ ...keycloak.env(), ...env });
  return {
    keycloak,
    testApp,
    close: async () => {
      await testApp.close();
      await keycloak.stop();
    },
  };
}

/** A pino destination that keeps every log line, parsed. */
export class LogCapture implements DestinationStream {
  readonly lines: Record<string, any>[] = [];
  readonly raw: string[] = [];

  write(line: string): void {
    this.raw.push(line);
    this.lines.push(JSON.parse(line));
  }
}

/**
 * Runs `during` while PostgreSQL refuses the app's database: existing
 * connections are terminated and new ones refused, then allowed again.
 * PostgreSQL only (PGlite is in-process).
 */
export async function whileDatabaseRefusesConnections(testApp: TestApp, during: () => Promise<void>): Promise<void> {
  if (testApp.config.database.kind !== 'postgres') throw new Error('needs PostgreSQL');
  const database = new URL(testApp.config.database.url).pathname.slice(1);
  const allow = (allowed: boolean) =>
    withAdminClient(async (client) => {
      await client.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS ${allowed}`);
      if (!allowed)
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
    });
  await allow(false);
  try {
    await during();
  } finally {
    await allow(true);
  }
}

export interface AirflowTestApp {
  testApp: TestApp;
  airflow: AirflowDouble;
  keycloak: KeycloakDouble;
  dagsDir: string;
  close(): Promise<void>;
}

/**
 * A test app wired to its own Airflow double (sharing a temporary DAG folder)
 * and Keycloak double; `close` stops all of them.
 */
export async function startTestAppWithAirflow(
  options: { version?: 'v1' | 'v2'; env?: Record<string, string>; logDestination?: DestinationStream } = {},
): Promise<AirflowTestApp> {
  const dagsDir = mkdtempSync(join(tmpdir(), 'automl-airflow-'));
  const keycloak = await KeycloakDouble.start();
  const airflow = await AirflowDouble.start({ version: options.version ?? 'v2', dagsDir });
  const testApp = await startTestApp({ ...keycloak.env(), ...airflow.env(), ...options.env }, options.logDestination);
  return {
    testApp,
    airflow,
    keycloak,
    dagsDir,
    close: async () => {
      await testApp.close();
      await airflow.stop();
      await keycloak.stop();
      rmSync(dagsDir, { recursive: true, force: true });
    },
  };
}

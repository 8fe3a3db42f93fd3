import 'reflect-metadata';
import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Client } from 'pg';
import pino from 'pino';
import { AppModule } from '../../src/app.module';
import { configureApp } from '../../src/app.setup';
import { createHttpAdapter } from '../../src/common/http/http-adapter';
import { AppConfig, loadAppConfig } from '../../src/config/app.config';
import { RunningProcess, startService } from './service-process';

export const BENCH_PSK = 'bench-psk-0123456789abcdef';

/** PostgreSQL server for benchmarks (a fresh database is created on it and dropped after). */
const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchApp {
  app: INestApplication;
  config: AppConfig;
  url: string;
  close(): Promise<void>;
}

async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

let databases = 0;

/** A fresh, empty database on the benchmark server. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `automl_bench_${process.pid}_${Date.now().toString(36)}_${databases++}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/**
 * The built service in a child process as in production (pool of 10, request
 * logs at BENCH_LOG_LEVEL or info) on `databaseUrl`; `env` adds or overrides.
 */
export function startProductionService(databaseUrl: string, env: Record<string, string> = {}): Promise<RunningProcess> {
  return startService({
    NODE_ENV: 'production',
    API_PSK: BENCH_PSK,
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '10',
    ...env,
    ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
  });
}

/** Starts the service in this process, as in production (same module and pipeline), on a fresh PostgreSQL database. */
export async function startBenchApp(env: Record<string, string>): Promise<BenchApp> {
  const database = await createBenchDatabase();
  const config = loadAppConfig({ NODE_ENV: 'production', API_PSK: BENCH_PSK, DATABASE_URL: database.url, ...env });
  // Request logs are written as in production, but to /dev/null so they do not bury the results table.
  const logDestination = pino.destination({ dest: '/dev/null', sync: false });
  const app = await NestFactory.create(AppModule.forRoot(config, { logDestination }), createHttpAdapter(), {
    bodyParser: false,
    logger: ['error'],
  });
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  return {
    app,
    config,
    url: (await app.getUrl()).replace('[::1]', '127.0.0.1'),
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

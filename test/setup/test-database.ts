import { Client } from 'pg';

/**
 * Where e2e tests keep their data. TEST_DATABASE_URL names a PostgreSQL server
 * (any database on it; tests create and drop their own); unset or
 * `pglite://memory` runs every app on a fresh in-memory embedded database.
 */
export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'pglite://memory';
}

export function usesPostgres(): boolean {
  return /^postgres(ql)?:\/\//.test(testDatabaseUrl());
}

export function databaseUrl(name: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export const TEMPLATE_ENV = 'AUTOML_TEST_TEMPLATE_DB';

import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { resolveDatabase, runMigrations } from '../../src/database/database.config';
import { databaseUrl, TEMPLATE_ENV, usesPostgres, withAdminClient } from './test-database';

/**
 * With PostgreSQL: create a template database once per run and apply the real
 * migrations to it; each test file clones it (CREATE DATABASE … TEMPLATE).
 */
export default async function globalSetup(): Promise<void> {
  if (!usesPostgres()) return;
  const template = `automl_test_${process.pid}_${Date.now().toString(36)}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${template}"`));
  const { options } = await resolveDatabase({
    kind: 'postgres',
    url: databaseUrl(template),
    poolSize: 2,
    migrationsRun: true,
  });
  const dataSource = new DataSource(options);
  await dataSource.initialize();
  await runMigrations(dataSource);
  await dataSource.destroy();
  process.env[TEMPLATE_ENV] = template;
}

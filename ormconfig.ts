import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadAppConfig } from './src/config/app.config';
import { resolveDatabase } from './src/database/database.config';

/**
 * DataSource for the TypeORM CLI (`npm run migration:run`, `migration:generate`).
 * Built by the same function as the app's; with a pglite:// DATABASE_URL the
 * embedded server is started for the duration of the command.
 */
export const dataSource: Promise<DataSource> = resolveDatabase(loadAppConfig().database).then(
  ({ options }) => new DataSource(options),
);

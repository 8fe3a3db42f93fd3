import { DataSource, DataSourceOptions, MigrationExecutor } from 'typeorm';
import { DatabaseConfig } from '../config/app.config';
import { TrainingJobTransitionEntity } from '../automl-training/persistence/training-job-transition.entity';
import { TrainingJobEntity } from '../automl-training/persistence/training-job.entity';
import { IdempotencyKeyEntity } from '../automl-training/idempotency/idempotency-key.entity';
import { ADVISORY_LOCK_KEYS } from '../automl-training/leadership/lock-keys';
import { AuthFailureEntity } from '../common/auth/auth-failure.entity';
import type { EmbeddedPostgres } from './embedded-postgres';
import { MIGRATIONS } from './migrations';
import { makeTemplate, migratedTemplatePath } from './pglite-template';

export const ENTITIES = [TrainingJobEntity, TrainingJobTransitionEntity, IdempotencyKeyEntity, AuthFailureEntity];

export interface ResolvedDatabase {
  options: DataSourceOptions;
  /** Present when the database is embedded: must be stopped after the DataSource is destroyed. */
  embedded: EmbeddedPostgres | null;
}

/**
 * The one place DataSource options are built, used by the app module and by
 * ormconfig.ts (the TypeORM CLI), so the two can never disagree.
 * Schema changes only through migrations: `synchronize` is always false.
 */
export async function resolveDatabase(config: DatabaseConfig): Promise<ResolvedDatabase> {
  // Loaded only when configured: PGlite and its socket server are of no use on PostgreSQL.
  const embedded =
    config.kind === 'pglite'
      ? await (
          await import('./embedded-postgres')
        ).EmbeddedPostgres.start({ dataDir: config.dataDir, migrationsRun: config.migrationsRun })
      : null;
  const url = embedded ? embedded.url : config.kind === 'postgres' ? config.url : '';
  const options: DataSourceOptions = {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
    migrationsRun: false,
    logging: ['error'],
    // PGlite has one session: a single pooled connection keeps transactions apart.
    extra: {
      max: config.kind === 'postgres' ? config.poolSize : 1,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
    },
  };
  return { options, embedded };
}

/**
 * Runs pending migrations under a PostgreSQL advisory lock, on one query
 * runner, so replicas starting together never race and the embedded
 * database's single connection is never asked for twice.
 */
export async function runMigrations(dataSource: DataSource): Promise<void> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    await queryRunner.connect();
    await queryRunner.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.migrations]);
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = 'each';
      await executor.executePendingMigrations();
    } finally {
      await queryRunner.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.migrations]);
    }
  } finally {
    await queryRunner.release();
  }
}

/**
 * Makes the migrated PGlite template (pglite-template.ts) of this build if
 * missing: a data dir seeded from the base template with every migration
 * applied. Run by the build (scripts/build.js); false if it could not be made.
 */
export async function buildMigratedTemplate(): Promise<boolean> {
  const template = migratedTemplatePath();
  if (!template) return false;
  try {
    return await makeTemplate(template, async (dir) => {
      const { options, embedded } = await resolveDatabase({ kind: 'pglite', dataDir: dir, migrationsRun: false });
      const dataSource = new DataSource(options);
      try {
        await dataSource.initialize();
        await runMigrations(dataSource);
      } finally {
        if (dataSource.isInitialized) await dataSource.destroy();
        await embedded?.stop();
      }
    });
  } catch {
    return false;
  }
}

import 'reflect-metadata';
import { resolve } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppConfig, loadAppConfig } from './config/app.config';
import { ConfigurationError } from './config/env.validation';
import { EmbeddedPostgres } from './database/embedded-postgres';

function announceGeneratedPsk(config: AppConfig): void {
  if (!config.auth.pskGenerated) return;
  // Printed once, to the terminal only, so a developer can call the API; never logged again.
  process.stdout.write(
    `\nNo API_PSK configured: generated a PSK for this process (development only):\n\n  Authorization-PSK: ${config.auth.psks[0]}\n\n`,
  );
}

/** Where the jobs are kept, without credentials. */
function whereData(config: AppConfig): string {
  const database = config.database;
  if (database.kind === 'pglite') {
    return database.dataDir
      ? `embedded PostgreSQL (PGlite) in ${resolve(database.dataDir)}`
      : 'embedded PostgreSQL (PGlite) in memory, gone at exit';
  }
  try {
    const url = new URL(database.url);
    return `PostgreSQL at ${url.host}${url.pathname}`;
  } catch {
    return 'PostgreSQL at DATABASE_URL';
  }
}

async function bootstrap(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadAppConfig();
  } catch (error) {
    if (error instanceof ConfigurationError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  // The embedded database starts in a worker thread while this one loads the app's modules (about a second),
  // which are therefore required only now.
  if (config.database.kind === 'pglite') EmbeddedPostgres.prestart(config.database);
  const [
    { Logger },
    { NestFactory },
    { AppModule },
    { configureApp },
    { createHttpAdapter },
    { AIRFLOW_NOT_CONFIGURED },
  ] = await Promise.all([
    import('@nestjs/common'),
    import('@nestjs/core'),
    import('./app.module'),
    import('./app.setup'),
    import('./common/http/http-adapter'),
    import('./automl-training/airflow/airflow.errors'),
  ]);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), createHttpAdapter(), {
    bodyParser: false,
    bufferLogs: true,
  });
  configureApp(app, config);
  await app.listen(config.port);
  const url = await app.getUrl();
  const logger = new Logger('Bootstrap');
  logger.log(`Listening on ${url.replace('[::1]', 'localhost')}; Swagger UI at /docs`);
  logger.log(`Data: ${whereData(config)}; DAG files written to ${config.airflow.dagsDir}`);
  if (!config.airflow.url) {
    logger.warn(
      `${AIRFLOW_NOT_CONFIGURED}. For the whole platform on this machine (Airflow 3, MLflow, the trainer and this service, wired): npm run stack`,
    );
  }
  announceGeneratedPsk(config);
}

void bootstrap();

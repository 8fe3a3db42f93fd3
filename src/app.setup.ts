import { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Logger as Pino } from 'pino';
import { AppLogger, ROOT_LOGGER } from './common/http/logging';
import { inSequence, requestObserver } from './common/http/request-observer';
import { MetricsService } from './metrics/metrics.service';
import { rawBody } from './common/http/raw-body.middleware';
import { securityHeaders } from './common/http/security-headers';
import { setupSwagger } from './common/openapi/swagger.setup';
import { AppConfig } from './config/app.config';

/**
 * Everything main.ts does to the app that tests must get too. The app must be
 * created with `bodyParser: false`: bodies are read raw and decoded per route.
 */
export function configureApp(app: INestApplication, config: AppConfig): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  // No ETags: API answers change with every writeback, and hashing each body costs CPU (FastAPI sends none).
  express.set('etag', false);
  express.set('query parser', 'simple');
  // Who the client is (request.ip, used by the auth failure limit): X-Forwarded-For only through trusted proxies.
  express.set('trust proxy', config.trustProxy);
  app.useLogger(app.get(AppLogger));
  // One middleware layer: correlation id, security headers, the raw body, then the request's async context.
  express.use(
    requestObserver(
      app.get<Pino>(ROOT_LOGGER),
      app.get(MetricsService),
      inSequence(securityHeaders(config), rawBody(config.bodyLimit)),
    ),
  );
  // Probes live at the root, where Kubernetes and the Dockerfile's HEALTHCHECK expect them; the API's
  // /api prefix is AutomlTrainingModule's route path (AppModule).
  // process.exit rather than re-raising the signal: pino's 'exit' handler then flushes the last log lines.
  app.enableShutdownHooks(undefined, { useProcessExit: true });
  setupSwagger(app, config);
}

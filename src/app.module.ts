import { DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, RouterModule } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import type { DestinationStream } from 'pino';
import { AppLogger, createRootLogger, ROOT_LOGGER } from './common/http/logging';
import { AutomlTrainingModule } from './automl-training/automl-training.module';
import { AuthFailureLimiter } from './common/auth/auth-failure.limiter';
import { AuthGuard } from './common/auth/auth.guard';
import { KeycloakJwtStrategy } from './common/auth/keycloak-jwt.strategy';
import { PskStrategy } from './common/auth/psk.strategy';
import { ErrorResponseFilter } from './common/errors/error-response.filter';
import { RouteTable } from './common/http/route-table';
import { ShutdownLog } from './common/http/shutdown-log';
import { BodyDecodeGuard } from './common/validation/body-decode.guard';
import { RequestValidationGuard } from './common/validation/request-validation.guard';
import { APP_CONFIG, AppConfig } from './config/app.config';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';

/**
 * Configuration is validated once, before Nest starts (loadAppConfig: one
 * line naming each bad variable), then held by @nestjs/config; the typed
 * AppConfig is injected as APP_CONFIG.
 */
@Global()
@Module({})
class AppConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [ConfigModule.forRoot({ ignoreEnvFile: true, ignoreEnvVars: true, load: [() => ({ app: config })] })],
      providers: [
        {
          provide: APP_CONFIG,
          useFactory: (configService: ConfigService) => configService.getOrThrow<AppConfig>('app'),
          inject: [ConfigService],
        },
      ],
      exports: [APP_CONFIG],
    };
  }
}

/** The process's pino logger (ROOT_LOGGER) and Nest's LoggerService on it (AppLogger), for every module. */
@Global()
@Module({})
class AppLoggerModule {
  static forRoot(config: AppConfig, destination?: DestinationStream): DynamicModule {
    return {
      module: AppLoggerModule,
      providers: [{ provide: ROOT_LOGGER, useValue: createRootLogger(config, destination) }, AppLogger],
      exports: [ROOT_LOGGER, AppLogger],
    };
  }
}

/**
 * Root module. Global guards and filter are APP_* providers so tests that
 * build this module get exactly the production pipeline. Guard order
 * matters: the body is decoded before authentication, as FastAPI does, and
 * the request is validated after it.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, options: { logDestination?: DestinationStream } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        AppLoggerModule.forRoot(config, options.logDestination),
        DatabaseModule.forRoot(config.database),
        MetricsModule,
        PassportModule,
        AutomlTrainingModule,
        HealthModule,
        // The API lives under /api; probes and metrics at the root. A module path rather than a global prefix
        // with exclusions, so Nest's start-up lines name the paths actually served.
        RouterModule.register([{ path: 'api', module: AutomlTrainingModule }]),
      ],
      providers: [
        PskStrategy,
        KeycloakJwtStrategy,
        AuthFailureLimiter,
        RouteTable,
        ShutdownLog,
        { provide: APP_GUARD, useClass: BodyDecodeGuard },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_GUARD, useClass: RequestValidationGuard },
        { provide: APP_FILTER, useClass: ErrorResponseFilter },
      ],
    };
  }
}

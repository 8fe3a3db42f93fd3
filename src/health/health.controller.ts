import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { Response } from 'express';
import { AirflowClient } from '../automl-training/airflow/airflow.client';
import { AIRFLOW_NOT_CONFIGURED } from '../automl-training/airflow/airflow.errors';
import { Public } from '../common/auth/auth.decorator';
import { APP_CONFIG, AppConfig } from '../config/app.config';

const PROBE_TIMEOUT_MS = 1_000;

/**
 * Kubernetes probes. Liveness: the process answers. Readiness: the database
 * answers within 1 s; Airflow and the Keycloak JWKS are reported as details
 * but never fail readiness (bulk status answers from the database without
 * Airflow, and PSK callers need no Keycloak).
 */
@ApiExcludeController()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly airflow: AirflowClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('live')
  @Public()
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @Public()
  async ready(@Res({ passthrough: true }) response: Response): Promise<unknown> {
    try {
      return await this.health.check([
        () => this.database.pingCheck('database', { timeout: PROBE_TIMEOUT_MS }),
        () => this.airflowDetails(),
        () => this.jwksDetails(),
      ]);
    } catch (error) {
      response.status(503);
      return (error as { getResponse?: () => unknown }).getResponse?.() ?? { status: 'error' };
    }
  }

  private async airflowDetails() {
    const indicator = this.indicators.check('airflow');
    if (!this.airflow.configured) return indicator.up({ configured: false, message: AIRFLOW_NOT_CONFIGURED });
    return indicator.up({ configured: true, ...(await this.airflow.probe(PROBE_TIMEOUT_MS)) });
  }

  private async jwksDetails() {
    const indicator = this.indicators.check('keycloak_jwks');
    const keycloak = this.config.auth.keycloak;
    if (!keycloak) return indicator.up({ configured: false });
    const reachable = await fetch(keycloak.jwksUri, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
      .then((answer) => answer.ok)
      .catch(() => false);
    return indicator.up({ configured: true, reachable });
  }
}

import { DomainError } from '../../common/errors/domain.error';

/** Airflow could not be reached in time, answered 5xx, or the breaker is open. */
export class AirflowUnavailableError extends DomainError {
  constructor(reason: string) {
    super('unavailable', `Airflow is unavailable (${reason}); try again shortly`);
  }
}

/** Said at start (a warning) and in /health/ready's details when AIRFLOW_URL is unset. */
export const AIRFLOW_NOT_CONFIGURED =
  'No Airflow configured (AIRFLOW_URL unset): jobs are stored but stay queued until an Airflow is configured; trigger and cancel answer 503';

export class AirflowNotConfiguredError extends DomainError {
  constructor() {
    super('unavailable', 'Airflow is not configured on this service (AIRFLOW_URL unset)');
  }
}

/** Airflow answered a 4xx; `detail` is its problem-details text. */
export class AirflowRequestError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`Airflow answered ${status}: ${detail}`);
  }
}

/** Airflow answered 404: the DAG, run or task asked for is not there. */
export function isNotFound(error: unknown): error is AirflowRequestError {
  return error instanceof AirflowRequestError && error.status === 404;
}

/** Airflow's error text from a v1 problem-details body or a v2 FastAPI body. */
export function airflowDetail(body: unknown, fallback: string): string {
  if (body && typeof body === 'object') {
    const { detail, title } = body as { detail?: unknown; title?: unknown };
    if (typeof detail === 'string') return detail;
    if (detail && typeof detail === 'object') {
      const message =
        (detail as { message?: unknown; reason?: unknown }).message ?? (detail as { reason?: unknown }).reason;
      if (typeof message === 'string') return message;
      return JSON.stringify(detail).slice(0, 500);
    }
    if (typeof title === 'string') return title;
  }
  return fallback;
}

/** An Airflow 4xx answered to one of our requests, as the error our caller sees. */
export function refusedByAirflow(error: AirflowRequestError): DomainError {
  if (error.status === 401 || error.status === 403) {
    return new DomainError(
      'unavailable',
      "Airflow refused the service's credentials; check AIRFLOW_USERNAME/AIRFLOW_PASSWORD",
    );
  }
  return new DomainError('conflict', `Airflow refused the request: ${error.detail}`);
}

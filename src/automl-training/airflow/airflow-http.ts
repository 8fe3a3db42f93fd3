import type { Middleware } from 'openapi-fetch';
import { CORRELATION_HEADER, currentCorrelationId } from '../../common/http/correlation';
import { airflowDetail, AirflowRequestError } from './airflow.errors';

/** Airflow answered 5xx: counts as an outage for the breaker. */
export class AirflowServerError extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(`Airflow answered ${status}: ${detail}`);
  }
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The body of a successful openapi-fetch call; Airflow's 4xx/5xx become typed errors. */
export function unwrap<T>(result: FetchResult<T>, allow404 = false): T | null {
  const { response } = result;
  if (response.ok) return (result.data ?? null) as T | null;
  if (allow404 && response.status === 404) return null;
  const detail = airflowDetail(result.error, response.statusText);
  if (response.status >= 500) throw new AirflowServerError(response.status, detail);
  throw new AirflowRequestError(response.status, detail);
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Passes the current request's correlation id on to Airflow. */
export const correlationMiddleware: Middleware = {
  onRequest({ request }) {
    const id = currentCorrelationId();
    if (id) request.headers.set(CORRELATION_HEADER, id);
    return request;
  },
};

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

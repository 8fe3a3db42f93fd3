import { AsyncLocalStorage } from 'node:async_hooks';

export const CORRELATION_HEADER = 'x-correlation-id';
export const ACCEPTED_CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What a log line or an Airflow call needs of the request being served. */
export interface RequestContext {
  id: string;
  method: string;
  url: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Serves `next` with `context` as the current request: the only async context kept per request. */
export function runInRequest(context: RequestContext, next: () => void): void {
  storage.run(context, next);
}

/** The request being served, if any. */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** The correlation id of the request being served, if any. */
export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.id;
}

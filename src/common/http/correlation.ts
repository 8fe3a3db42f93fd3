import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

export const CORRELATION_HEADER = 'x-correlation-id';
const ACCEPTED = /^[A-Za-z0-9._:-]{1,128}$/;
const storage = new AsyncLocalStorage<string>();

/**
 * Takes the caller's `x-correlation-id` (or makes one), echoes it in the
 * response, and keeps it for the rest of the request: in the request log
 * line and on every call to Airflow.
 */
export function correlation(): RequestHandler {
  return (req, res, next) => {
    const offered = req.headers[CORRELATION_HEADER];
    const id = typeof offered === 'string' && ACCEPTED.test(offered) ? offered : randomUUID();
    (req as { id?: string }).id = id;
    res.setHeader(CORRELATION_HEADER, id);
    storage.run(id, next);
  };
}

/** The correlation id of the request being served, if any. */
export function currentCorrelationId(): string | undefined {
  return storage.getStore();
}

import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger as Pino } from 'pino';
import { MetricsService } from '../../metrics/metrics.service';
import { ACCEPTED_CORRELATION_ID, CORRELATION_HEADER, RequestContext, runInRequest } from './correlation';
import { pathOf } from './logging';

type RoutedRequest = Request & { id?: string };

/** The route template Express matched (`/api/automl/train/jobs/:job_id`), or `unmatched`. */
export function routeOf(req: Request): string {
  const path = (req.route as { path?: string } | undefined)?.path;
  return path ? `${req.baseUrl}${path}` : 'unmatched';
}

/** Runs `first`, then `second`, as one middleware (an error from `first` goes to `next`). */
export function inSequence(first: RequestHandler, second: RequestHandler): RequestHandler {
  return (req, res, next) => first(req, res, (error?: unknown) => (error ? next(error) : second(req, res, next)));
}

/** What the observer keeps of a request until its response is done: also the request's async context. */
interface Observed extends RequestContext {
  started: bigint;
  req: RoutedRequest;
  logger: Pino;
  metrics: MetricsService;
}

const OBSERVED = Symbol('observed request');
type ObservedResponse = Response & { [OBSERVED]?: Observed };

// One listener function for every response (`this` is the response): nothing allocated per request for them.
function onFinish(this: ObservedResponse): void {
  complete(this, true);
}

function onClose(this: ObservedResponse): void {
  complete(this, false);
}

function complete(res: ObservedResponse, finished: boolean): void {
  const observed = res[OBSERVED];
  if (!observed) return;
  res[OBSERVED] = undefined;
  res.off('finish', onFinish);
  res.off('close', onClose);
  const { req, logger, url } = observed;
  const seconds = Number(process.hrtime.bigint() - observed.started) / 1e9;
  const route = routeOf(req);
  const status = res.statusCode;
  if (finished) observed.metrics.httpRequest(req.method, route, status, seconds);
  if (url.startsWith('/health/')) return;
  const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
  if (!logger.isLevelEnabled(level)) return;
  const line: Record<string, unknown> = {
    req: { method: req.method, url: pathOf(url) },
    correlation_id: observed.id,
    res: { status },
    ...(status >= 500 ? { err: new Error(`failed with status code ${status}`) } : {}),
    duration_ms: Math.round(seconds * 1000),
    route,
  };
  logger[level](line, `${req.method} ${status}`);
}

/**
 * The one app-level middleware: takes the caller's `x-correlation-id` (or
 * makes one) and echoes it in the response, runs `before` (security headers,
 * reading the body), then serves the rest of the request in the one async
 * context it keeps (the correlation id of log lines and Airflow calls:
 * entered once the body is read, so no stream callback has to carry it).
 * Once the response is finished it records the request's metrics and writes
 * its one log line (method, path, status, duration, route, correlation id;
 * probes under /health/ are not logged).
 */
export function requestObserver(logger: Pino, metrics: MetricsService, before: RequestHandler): RequestHandler {
  return (req: RoutedRequest, res: ObservedResponse, next) => {
    const offered = req.headers[CORRELATION_HEADER];
    const id = typeof offered === 'string' && ACCEPTED_CORRELATION_ID.test(offered) ? offered : randomUUID();
    const observed: Observed = {
      id,
      method: req.method,
      url: req.originalUrl ?? req.url,
      started: process.hrtime.bigint(),
      req,
      logger,
      metrics,
    };
    req.id = id;
    res.setHeader(CORRELATION_HEADER, id);
    res[OBSERVED] = observed;
    res.on('finish', onFinish);
    res.on('close', onClose);
    before(req, res, (error?: unknown) => (error ? next(error) : runInRequest(observed, next)));
  };
}

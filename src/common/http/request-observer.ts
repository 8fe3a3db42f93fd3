import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger as Pino } from 'pino';
import { MetricsService } from '../../metrics/metrics.service';
import { ACCEPTED_CORRELATION_ID, CORRELATION_HEADER, runInRequest } from './correlation';
import { pathOf } from './logging';

type RoutedRequest = Request & { id?: string };

/** The route template Express matched (`/api/automl/train/jobs/:job_id`), or `unmatched`. */
export function routeOf(req: Request): string {
  const path = (req.route as { path?: string } | undefined)?.path;
  return path ? `${req.baseUrl}${path}` : 'unmatched';
}

/**
 * The first middleware: takes the caller's `x-correlation-id` (or makes one),
 * echoes it in the response and keeps it for the rest of the request (log
 * lines, calls to Airflow); once the response is finished it records the
 * request's metrics and writes its one log line (method, path, status,
 * duration, route, correlation id; probes under /health/ are not logged).
 * One async context and one pair of listeners per request.
 */
export function requestObserver(logger: Pino, metrics: MetricsService): RequestHandler {
  return (req: RoutedRequest, res: Response, next) => {
    const started = process.hrtime.bigint();
    const offered = req.headers[CORRELATION_HEADER];
    const id = typeof offered === 'string' && ACCEPTED_CORRELATION_ID.test(offered) ? offered : randomUUID();
    const url = req.originalUrl ?? req.url;
    req.id = id;
    res.setHeader(CORRELATION_HEADER, id);
    let done = false;
    const complete = (event: 'finish' | 'close') => {
      if (done) return;
      done = true;
      res.off('finish', onFinish);
      res.off('close', onClose);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeOf(req);
      const status = res.statusCode;
      if (event === 'finish') metrics.httpRequest(req.method, route, status, seconds);
      if (url.startsWith('/health/')) return;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const line: Record<string, unknown> = {
        req: { method: req.method, url: pathOf(url) },
        correlation_id: id,
        res: { status },
        ...(status >= 500 ? { err: new Error(`failed with status code ${status}`) } : {}),
        duration_ms: Math.round(seconds * 1000),
        route,
      };
      logger[level](line, `${req.method} ${status}`);
    };
    const onFinish = () => complete('finish');
    const onClose = () => complete('close');
    res.on('finish', onFinish);
    res.on('close', onClose);
    runInRequest({ id, method: req.method, url }, next);
  };
}

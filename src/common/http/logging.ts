import { RequestMethod } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppConfig } from '../../config/app.config';

/** Headers whose values never reach a log line. */
const REDACTED = [
  'req.headers.authorization',
  'req.headers["authorization-psk"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

type RoutedRequest = IncomingMessage & { id?: string; route?: { path?: string }; baseUrl?: string; originalUrl?: string };

function routeOf(req: IncomingMessage): string {
  const routed = req as RoutedRequest;
  return routed.route?.path ? `${routed.baseUrl ?? ''}${routed.route.path}` : 'unmatched';
}

/**
 * Structured JSON logs (pino): one line per request with method, route,
 * status, duration and correlation id; credentials redacted; pretty output
 * in development.
 */
export function loggerParams(config: AppConfig, destination?: DestinationStream): Params {
  const pretty = config.env === 'development' && !destination;
  return {
    // Every route, in Express 5's wildcard syntax (nestjs-pino's default `*` makes Nest warn and convert it).
    forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }],
    pinoHttp: [
      {
        level: config.logLevel,
        redact: { paths: REDACTED, censor: '[redacted]' },
        genReqId: (req: IncomingMessage) => (req as RoutedRequest).id ?? 'none',
        customAttributeKeys: { responseTime: 'duration_ms' },
        // Bound when the request starts, so every line logged while serving it carries the correlation id.
        customProps: (req: IncomingMessage) => ({ correlation_id: (req as RoutedRequest).id }),
        // The route is known only once the router has matched: added to the final line alone.
        customSuccessObject: (req: IncomingMessage, _res: ServerResponse, line: object) => ({ ...line, route: routeOf(req) }),
        customErrorObject: (req: IncomingMessage, _res: ServerResponse, _error: Error, line: object) => ({ ...line, route: routeOf(req) }),
        serializers: {
          req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url.split('?')[0] }),
          res: (res: { statusCode: number }) => ({ status: res.statusCode }),
        },
        customSuccessMessage: (req: IncomingMessage, res: ServerResponse) => `${req.method} ${res.statusCode}`,
        customErrorMessage: (req: IncomingMessage, res: ServerResponse) => `${req.method} ${res.statusCode}`,
        customLogLevel: (_req: IncomingMessage, res: ServerResponse, error?: Error) =>
          error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
        autoLogging: { ignore: (req: IncomingMessage) => (req.url ?? '').startsWith('/health/') },
        transport: pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
      },
      destination as DestinationStream,
    ],
  } as Params;
}

import helmet from 'helmet';
import type { Request, RequestHandler, Response } from 'express';
import { AppConfig } from '../../config/app.config';

/**
 * Helmet's headers (HSTS, nosniff, frame denial, no referrer leaks…) with a
 * CSP that Swagger UI at /docs works under: its scripts are files, its
 * styles inline, and its OAuth flow talks to Keycloak. None depends on the
 * request, so helmet runs once, at start, and each response gets the headers
 * it set.
 */
export function securityHeaders(config: AppConfig): RequestHandler {
  const keycloak = config.auth.keycloak ? [new URL(config.auth.keycloak.issuer).origin] : [];
  const middleware = helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'", ...keycloak],
        formAction: ["'self'", ...keycloak],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: null,
      },
    },
    crossOriginEmbedderPolicy: false,
  });
  const headers: [string, string][] = [];
  let ran = false;
  const recorder = {
    setHeader: (name: string, value: string | number) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  middleware({ headers: {} } as Request, recorder as unknown as Response, (error?: unknown) => {
    if (error) throw error;
    ran = true;
  });
  if (!ran || headers.length === 0) throw new Error('helmet did not set its headers synchronously');
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}

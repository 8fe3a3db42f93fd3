import helmet from 'helmet';
import type { RequestHandler } from 'express';
import { AppConfig } from '../../config/app.config';

/**
 * Helmet's headers (HSTS, nosniff, frame denial, no referrer leaks…) with a
 * CSP that Swagger UI at /docs works under: its scripts are files, its
 * styles inline, and its OAuth flow talks to Keycloak.
 */
export function securityHeaders(config: AppConfig): RequestHandler {
  const keycloak = config.auth.keycloak ? [new URL(config.auth.keycloak.issuer).origin] : [];
  return helmet({
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
}

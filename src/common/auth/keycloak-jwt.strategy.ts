import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import type { StrategyOptionsWithoutRequest } from 'passport-jwt';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import type { Principal } from './principal';

export class BearerNotConfiguredError extends Error {
  constructor() {
    super('Bearer authentication is not configured on this service (KEYCLOAK_URL/KEYCLOAK_REALM unset)');
  }
}

export class TokenClaimError extends Error {}

interface KeycloakClaims {
  sub?: string;
  exp?: number;
  typ?: string;
  azp?: string;
  aud?: string | string[];
  preferred_username?: string;
  realm_access?: { roles?: string[] };
  resource_access?: Record<string, { roles?: string[] }>;
}

/** Seconds of clock skew tolerated on exp/nbf/iat (Keycloak tokens live ~5 min). */
const CLOCK_TOLERANCE_SECONDS = 30;

/** The passport callbacks a strategy settles one authentication with (passport gives them per request). */
export interface StrategyCall {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  error(error: unknown): void;
  redirect(url: string, status?: number): void;
  pass(): void;
}

interface PassportStrategyInstance {
  authenticate(this: StrategyCall, request: Request, options: object): void;
}

/**
 * Keycloak access tokens: RS256 only, keys from the realm's JWKS (cached,
 * rate-limited refetch on an unknown `kid`, short timeout), exact issuer,
 * expiry; `azp` or `aud` must name KEYCLOAK_CLIENT_ID when it is set.
 * ID and refresh tokens (`typ` ID/Refresh/Offline) are refused.
 *
 * passport-jwt's Strategy does the token work; it and jwks-rsa are loaded
 * only when Keycloak is configured (a PSK-only deployment never needs them).
 */
@Injectable()
export class KeycloakJwtStrategy {
  private readonly clientId: string | null;
  private readonly adminRoles: string[];
  private readonly strategy: PassportStrategyInstance | null;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const keycloak = config.auth.keycloak;
    this.clientId = keycloak?.clientId ?? null;
    this.adminRoles = config.auth.adminRoles;
    this.strategy = null;
    if (!keycloak) return;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ExtractJwt, Strategy } = require('passport-jwt') as typeof import('passport-jwt');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { passportJwtSecret } = require('jwks-rsa') as typeof import('jwks-rsa');
    const options: StrategyOptionsWithoutRequest = {
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      algorithms: ['RS256'],
      issuer: keycloak.issuer,
      jsonWebTokenOptions: { clockTolerance: CLOCK_TOLERANCE_SECONDS },
      secretOrKeyProvider: passportJwtSecret({
        jwksUri: keycloak.jwksUri,
        cache: true,
        cacheMaxEntries: 10,
        cacheMaxAge: 10 * 60_000,
        rateLimit: true,
        jwksRequestsPerMinute: 10,
        timeout: 1_500,
      }),
    };
    this.strategy = new Strategy(
      options,
      (claims: KeycloakClaims, done: (error: unknown, user?: Principal | false) => void) => {
        let principal: Principal;
        try {
          principal = this.validate(claims);
        } catch (error) {
          return done(error, false);
        }
        done(null, principal);
      },
    ) as unknown as PassportStrategyInstance;
  }

  /** Authenticates the request's bearer token, settling `call` (a per-request object, as passport makes). */
  authenticate(call: StrategyCall, request: Request): void {
    if (!this.strategy) return call.fail(new BearerNotConfiguredError());
    const bound = Object.assign(Object.create(this.strategy) as PassportStrategyInstance, call);
    bound.authenticate.call(bound as unknown as StrategyCall, request, { session: false });
  }

  validate(claims: KeycloakClaims): Principal {
    if (claims.typ !== undefined && claims.typ !== 'Bearer') {
      throw new TokenClaimError(`a ${claims.typ} token is not an access token`);
    }
    if (!claims.sub && !claims.preferred_username) throw new TokenClaimError('the token names no subject');
    if (this.clientId) {
      const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
      if (claims.azp !== this.clientId && !audiences.includes(this.clientId)) {
        throw new TokenClaimError('the token was not issued for this service');
      }
    }
    const roles = [
      ...(claims.realm_access?.roles ?? []),
      ...(this.clientId ? (claims.resource_access?.[this.clientId]?.roles ?? []) : []),
    ];
    return {
      kind: 'keycloak',
      subject: claims.sub ?? claims.preferred_username!,
      username: claims.preferred_username ?? null,
      roles,
      admin: roles.some((role) => this.adminRoles.includes(role)),
      validUntil: typeof claims.exp === 'number' ? (claims.exp + CLOCK_TOLERANCE_SECONDS) * 1000 : null,
    };
  }
}

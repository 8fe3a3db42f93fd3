import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { passportJwtSecret } from 'jwks-rsa';
import { ExtractJwt, Strategy, StrategyOptionsWithoutRequest } from 'passport-jwt';
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

/**
 * Keycloak access tokens: RS256 only, keys from the realm's JWKS (cached,
 * rate-limited refetch on an unknown `kid`, short timeout), exact issuer,
 * expiry; `azp` or `aud` must name KEYCLOAK_CLIENT_ID when it is set.
 * ID and refresh tokens (`typ` ID/Refresh/Offline) are refused.
 */
@Injectable()
export class KeycloakJwtStrategy extends PassportStrategy(Strategy, 'keycloak-jwt') {
  private readonly clientId: string | null;
  private readonly adminRoles: string[];

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const keycloak = config.auth.keycloak;
    const options: StrategyOptionsWithoutRequest = {
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      algorithms: ['RS256'],
      issuer: keycloak?.issuer,
      jsonWebTokenOptions: { clockTolerance: CLOCK_TOLERANCE_SECONDS },
      secretOrKeyProvider: keycloak
        ? passportJwtSecret({
            jwksUri: keycloak.jwksUri,
            cache: true,
            cacheMaxEntries: 10,
            cacheMaxAge: 10 * 60_000,
            rateLimit: true,
            jwksRequestsPerMinute: 10,
            timeout: 1_500,
          })
        : (_request, _token, done) => done(new BearerNotConfiguredError()),
    };
    super(options);
    this.clientId = keycloak?.clientId ?? null;
    this.adminRoles = config.auth.adminRoles;
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

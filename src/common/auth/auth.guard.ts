import { CanActivate, ExecutionContext, Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AuthFailureReason, MetricsService } from '../../metrics/metrics.service';
import { AuthenticationError, DomainError, PermissionDeniedError, TooManyFailuresError } from '../errors/domain.error';
import { AuthFailureLimiter } from './auth-failure.limiter';
import { AUTH_METHODS, AuthMethod } from './auth.decorator';
import { BearerNotConfiguredError, KeycloakJwtStrategy, TokenClaimError } from './keycloak-jwt.strategy';
import type { Principal } from './principal';
import { PSK_HEADER, PskStrategy } from './psk.strategy';

const CHALLENGE: Record<AuthMethod, string> = {
  [AuthMethod.Psk]: 'APIKey',
  [AuthMethod.Bearer]: 'Bearer',
};
const BEARER = /^bearer\s+\S/i;
/** Most 429 answers held back at once (each holds a socket and a timer). */
const MAX_HELD = 1_000;

type Outcome = { ok: true; principal: Principal } | { ok: false; reason: string; unavailable?: boolean };

/** A missing or invalid credential, with the reason the failure metric counts it under. */
class CredentialRefused extends AuthenticationError {
  constructor(
    readonly why: Exclude<AuthFailureReason, 'limited'>,
    message: string,
    challenges: string[],
  ) {
    super(message, challenges);
  }
}

/**
 * Global guard: every route must declare @Auth(...) or @Public() (deny by
 * default). Presented credentials are checked in a fixed order (PSK, then
 * bearer); the first valid credential the route accepts wins. A valid
 * credential of a kind the route does not accept is a 403; no credential or
 * only invalid ones a 401 with WWW-Authenticate.
 *
 * Failures, not callers, are limited: a valid credential is served whatever
 * its address has failed before (nothing is read or written for it); each
 * failure is counted per client address (AuthFailureLimiter, shared by every
 * replica), and past AUTH_FAILURE_LIMIT in a minute the failing requests get
 * 429 with Retry-After instead of 401, held back AUTH_FAILURE_DELAY_MS. Every
 * refusal is counted by reason and logged once, without the credential.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger(AuthGuard.name);
  private readonly limitedDelayMs: number;
  /** 429 answers being held right now (see refuse). */
  private held = 0;

  constructor(
    private readonly reflector: Reflector,
    private readonly psk: PskStrategy,
    private readonly keycloak: KeycloakJwtStrategy,
    private readonly failures: AuthFailureLimiter,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.limitedDelayMs = config.auth.limitedDelayMs;
  }

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const methods = this.reflector.getAllAndOverride<AuthMethod[] | undefined>(AUTH_METHODS, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (methods === undefined) throw new PermissionDeniedError('This route declares no access rule');
    if (methods.length === 0) return true;

    const request = context.switchToHttp().getRequest<Request & { user?: Principal }>();
    // The DAG callbacks' path, answered synchronously: a PSK is presented first and the route takes it.
    const psk = request.headers[PSK_HEADER];
    if (typeof psk === 'string' && psk.length > 0 && methods.includes(AuthMethod.Psk)) {
      const principal = this.psk.validate(psk);
      if (principal) {
        request.user = principal;
        return true;
      }
    }
    return this.authenticateOrRefuse(methods, request);
  }

  private async authenticateOrRefuse(methods: AuthMethod[], request: Request & { user?: Principal }): Promise<boolean> {
    try {
      return await this.authenticateRequest(methods, request);
    } catch (error) {
      if (error instanceof CredentialRefused) throw await this.refuse(request, error);
      throw error;
    }
  }

  /** Counts a failed authentication of the request's client: 401 as given, or 429 once the client is over the limit. */
  private async refuse(request: Request, refused: CredentialRefused): Promise<DomainError> {
    const client = clientAddress(request);
    const verdict = await this.failures.recordFailure(client);
    const reason: AuthFailureReason = verdict.limited ? 'limited' : refused.why;
    const error = verdict.limited ? new TooManyFailuresError(verdict.retryAfterSeconds) : refused;
    this.metrics.authFailure(reason);
    this.logger.warn({
      msg: 'Authentication refused',
      reason,
      client,
      status: verdict.limited ? 429 : 401,
      method: request.method,
      path: request.path,
    });
    // A client over the limit that keeps failing (a DAG with a rotated-out PSK, a script in a loop) gets its 429
    // after AUTH_FAILURE_DELAY_MS: a closed-loop flood then waits on its own sockets instead of taking the CPU
    // that valid callers need. At most MAX_HELD answers are held at once; past that they go at once.
    if (verdict.limited && this.limitedDelayMs > 0 && this.held < MAX_HELD) {
      this.held++;
      await new Promise((resolve) => setTimeout(resolve, this.limitedDelayMs));
      this.held--;
    }
    return error;
  }

  private async authenticateRequest(methods: AuthMethod[], request: Request & { user?: Principal }): Promise<boolean> {
    const presented = presentedMethods(request);
    const challenges = methods.map((method) => CHALLENGE[method]);
    if (presented.length === 0) throw new CredentialRefused('missing', 'Not authenticated', challenges);

    let validButRefused: AuthMethod | null = null;
    let firstFailure: { method: AuthMethod; outcome: Extract<Outcome, { ok: false }> } | null = null;
    for (const method of presented) {
      const outcome = await this.authenticate(method, request);
      if (outcome.ok && methods.includes(method)) {
        request.user = outcome.principal;
        return true;
      }
      if (outcome.ok) validButRefused ??= method;
      else firstFailure ??= { method, outcome };
    }
    if (firstFailure?.outcome.unavailable) throw new DomainError('unavailable', firstFailure.outcome.reason);
    if (validButRefused && !firstFailure) {
      throw new PermissionDeniedError(
        validButRefused === AuthMethod.Bearer
          ? 'This route does not accept bearer tokens; use the Authorization-PSK header'
          : 'This route does not accept a PSK; use a Keycloak bearer token',
      );
    }
    const failure = firstFailure!;
    const challenge = failure.method === AuthMethod.Bearer ? 'Bearer error="invalid_token"' : CHALLENGE[failure.method];
    throw new CredentialRefused(
      failure.method === AuthMethod.Psk ? 'invalid_psk' : 'invalid_token',
      failure.outcome.reason,
      [challenge, ...challenges.filter((c) => c !== CHALLENGE[failure.method])],
    );
  }

  /**
   * The strategies are called directly, without passport's per-request middleware: the PSK is one constant-time
   * comparison; the bearer token goes through passport-jwt's strategy on a per-call object whose success, fail
   * and error settle the outcome (what passport.authenticate does, minus its multi-strategy and session machinery).
   */
  private authenticate(method: AuthMethod, request: Request): Outcome | Promise<Outcome> {
    if (method === AuthMethod.Psk) {
      const principal = this.psk.validate(request.headers[PSK_HEADER] as string);
      return principal ? { ok: true, principal } : this.failure(method, undefined);
    }
    return new Promise((resolve) => {
      this.keycloak.authenticate(
        {
          success: (user: unknown) => resolve({ ok: true, principal: user as Principal }),
          fail: (info?: unknown) => resolve(this.failure(method, info)),
          error: (error: unknown) => resolve(this.failure(method, error)),
          redirect: () => resolve(this.failure(method, undefined)),
          pass: () => resolve(this.failure(method, undefined)),
        },
        request,
      );
    });
  }

  private failure(method: AuthMethod, cause: unknown): Extract<Outcome, { ok: false }> {
    if (method === AuthMethod.Psk) return { ok: false, reason: 'Invalid PSK' };
    if (cause instanceof BearerNotConfiguredError) return { ok: false, reason: cause.message };
    if (cause instanceof TokenClaimError) return { ok: false, reason: `Invalid bearer token: ${cause.message}` };
    const name = (cause as { name?: string } | undefined)?.name;
    switch (name) {
      case 'TokenExpiredError':
        return { ok: false, reason: 'Invalid bearer token: the token has expired' };
      case 'NotBeforeError':
        return { ok: false, reason: 'Invalid bearer token: the token is not valid yet' };
      case 'SigningKeyNotFoundError':
        return { ok: false, reason: 'Invalid bearer token: signed by an unknown key' };
      case 'JsonWebTokenError':
        return { ok: false, reason: 'Invalid bearer token: bad signature, algorithm, issuer or format' };
      case 'JwksError':
      case 'JwksRateLimitError':
      case 'AbortError':
      case 'TimeoutError':
        this.logger.warn(`JWKS fetch failed: ${name}`);
        return { ok: false, reason: 'The identity provider could not be reached; try again', unavailable: true };
      default:
        // Duck-typed: socket errors may come from another realm than this module's Error.
        if (isNetworkError(cause)) {
          this.logger.warn(`JWKS fetch failed: ${(cause as { code?: string }).code ?? (cause as Error).message}`);
          return { ok: false, reason: 'The identity provider could not be reached; try again', unavailable: true };
        }
        return { ok: false, reason: 'Invalid bearer token' };
    }
  }
}

const NETWORK_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_\w+)$/;

function isNetworkError(cause: unknown): boolean {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  return (
    (typeof code === 'string' && NETWORK_CODES.test(code)) ||
    (typeof message === 'string' && /socket hang up|timeout/i.test(message))
  );
}

/** The client's address as Express sees it (TRUST_PROXY decides whether X-Forwarded-For counts), IPv4-mapped IPv6 unwrapped. */
function clientAddress(request: Request): string {
  const address = request.ip ?? request.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

function presentedMethods(request: Request): AuthMethod[] {
  const methods: AuthMethod[] = [];
  const psk = request.headers[PSK_HEADER];
  if (typeof psk === 'string' && psk.length > 0) methods.push(AuthMethod.Psk);
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && BEARER.test(authorization)) methods.push(AuthMethod.Bearer);
  return methods;
}

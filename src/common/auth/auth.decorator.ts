import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiSecurity } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Principal } from './principal';

export enum AuthMethod {
  Psk = 'psk',
  Bearer = 'bearer',
}

export const AUTH_METHODS = 'auth-methods';
export const PSK_SCHEME = 'APIKeyHeader';
export const BEARER_SCHEME = 'OAuth2AuthorizationCodeBearer';

/**
 * The only way a route declares who may call it: the credential kinds it
 * accepts, enforced by AuthGuard and published as OpenAPI security. Each
 * ApiSecurity adds a separate requirement (OR), bearer first, as seed 003
 * lists them. When both headers arrive, the PSK is tried first: it is local
 * and cheap, and a valid accepted credential wins.
 */
export function Auth(...methods: AuthMethod[]) {
  const security = [
    ...(methods.includes(AuthMethod.Bearer) ? [ApiSecurity(BEARER_SCHEME)] : []),
    ...(methods.includes(AuthMethod.Psk) ? [ApiSecurity(PSK_SCHEME)] : []),
  ];
  return applyDecorators(SetMetadata(AUTH_METHODS, methods), ...security);
}

/** A route open to anyone (documentation, health). */
export const Public = () => SetMetadata(AUTH_METHODS, []);

export const CurrentPrincipal = createParamDecorator((_: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<Request & { user?: Principal }>().user;
  if (!principal) throw new Error('CurrentPrincipal used on a route without @Auth');
  return principal;
});

export type DomainErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'too_many_requests'
  | 'unavailable';

/**
 * Base of every expected failure. Services throw these; one filter maps the
 * kind to an HTTP status and renders the contract's ErrorResponse.
 */
export class DomainError extends Error {
  /** When set, answered as a Retry-After header. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly kind: DomainErrorKind,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A missing or invalid credential; `challenges` become the WWW-Authenticate header. */
export class AuthenticationError extends DomainError {
  constructor(
    message: string,
    readonly challenges: string[],
  ) {
    super('unauthorized', message);
  }
}

export class PermissionDeniedError extends DomainError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** Too many failed authentications from one client address. */
export class TooManyFailuresError extends DomainError {
  constructor(override readonly retryAfterSeconds: number) {
    super('too_many_requests', 'Too many failed authentications; try again later');
  }
}

export function statusOf(kind: DomainErrorKind): number {
  switch (kind) {
    case 'bad_request':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not_found':
      return 404;
    case 'conflict':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'too_many_requests':
      return 429;
    case 'unavailable':
      return 503;
  }
}

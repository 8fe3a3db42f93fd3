import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { RouteTable } from '../http/route-table';
import { RequestValidationError } from '../validation/pydantic-errors';
import { isDatabaseUnavailable } from './database-unavailable';
import { AuthenticationError, DomainError, statusOf } from './domain.error';

/** The contract's ErrorResponse body. */
export function errorBody(message: string, code: number): { error: string; code: number } {
  return { error: message, code };
}

/**
 * The single place errors become HTTP responses: 422 `{"detail": [...]}` for
 * request validation (FastAPI's shape), `{"error","code"}` for everything
 * else. Unknown errors are logged and answered with a generic 500: no stack
 * trace, SQL or configuration ever reaches a client.
 */
@Catch()
export class ErrorResponseFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(private readonly routes: RouteTable) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (response.headersSent) return;
    if (exception instanceof RequestValidationError) {
      response.status(422).json({ detail: exception.items });
      return;
    }
    if (exception instanceof DomainError) {
      const status = statusOf(exception.kind);
      if (exception.retryAfterSeconds !== undefined)
        response.setHeader('Retry-After', String(exception.retryAfterSeconds));
      if (exception instanceof AuthenticationError && exception.challenges.length > 0) {
        response.setHeader('WWW-Authenticate', exception.challenges.join(', '));
      }
      response.status(status).json(errorBody(exception.message, status));
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404) {
        // FastAPI answers 405 with Allow when the path exists for other methods.
        const request = host.switchToHttp().getRequest<Request>();
        const allowed = this.routes.methodsFor(request.path);
        if (allowed.length > 0) {
          response.setHeader('Allow', allowed.join(', '));
          response.status(405).json(errorBody('Method Not Allowed', 405));
          return;
        }
      }
      const message = status === 404 ? 'Not Found' : httpMessage(exception);
      response.status(status).json(errorBody(message, status));
      return;
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn(`Database unavailable: ${(exception as Error).message}`);
      response.setHeader('Retry-After', '5');
      response.status(503).json(errorBody('The database is unavailable; try again shortly', 503));
      return;
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    response.status(500).json(errorBody('Internal Server Error', 500));
  }
}

function httpMessage(exception: HttpException): string {
  const body = exception.getResponse();
  if (typeof body === 'string') return body;
  const message = (body as { message?: unknown }).message;
  return typeof message === 'string' ? message : exception.message;
}

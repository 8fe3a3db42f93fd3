import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { Request } from 'express';

export const REQUEST_SCHEMA = 'request-schema';

export interface RequestSchema {
  params?: new () => object;
  query?: new () => object;
  body?: new () => object;
}

export interface ValidatedRequest {
  params: object;
  query: object;
  body: object;
}

/** Body as decoded by BodyDecodeGuard. */
export type DecodedBody = { kind: 'absent' } | { kind: 'json'; value: unknown } | { kind: 'text'; value: string };

export interface RequestState {
  decodedBody?: DecodedBody;
  validated?: ValidatedRequest;
}

export function requestState(request: Request): RequestState {
  const holder = request as Request & { automl?: RequestState };
  holder.automl ??= {};
  return holder.automl;
}

/**
 * Declares the classes a route's path, query and body are validated against.
 * All three are validated together and refused with one 422, as FastAPI does.
 */
export const ValidateRequest = (schema: RequestSchema) => SetMetadata(REQUEST_SCHEMA, schema);

function validatedPart(part: keyof ValidatedRequest) {
  return createParamDecorator((_: unknown, context: ExecutionContext) => {
    const validated = requestState(context.switchToHttp().getRequest<Request>()).validated;
    if (!validated) throw new Error(`Route reads validated ${part} but declares no @ValidateRequest`);
    return validated[part];
  });
}

export const ValidParams = validatedPart('params');
export const ValidQuery = validatedPart('query');
export const ValidBody = validatedPart('body');

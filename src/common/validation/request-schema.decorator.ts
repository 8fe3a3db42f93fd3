import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiParam, ApiParamOptions, ApiQuery, ApiQueryOptions } from '@nestjs/swagger';
import type { Request } from 'express';
import { fieldsOf, parameterOf } from './fields';

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
 * Also publishes every path and query field as an OpenAPI parameter, from the
 * same @Field declarations the validator reads, so the document cannot
 * forget a parameter or its limits.
 */
export const ValidateRequest = (schema: RequestSchema) =>
  applyDecorators(
    SetMetadata(REQUEST_SCHEMA, schema),
    ...(schema.params ? fieldsOf(schema.params) : []).map((field) =>
      ApiParam(withoutIn(parameterOf('path', field)) as unknown as ApiParamOptions),
    ),
    ...(schema.query ? fieldsOf(schema.query) : []).map((field) =>
      ApiQuery(withoutIn(parameterOf('query', field)) as unknown as ApiQueryOptions),
    ),
  );

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

function withoutIn(parameter: Record<string, unknown>): Record<string, unknown> {
  const { in: _in, ...rest } = parameter;
  return rest;
}

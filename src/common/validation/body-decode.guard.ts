import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DomainError } from '../errors/domain.error';
import { RequestValidationError } from './pydantic-errors';
import { JsonTooDeepError, parsePythonJson, PythonJsonDecodeError } from './python-json';
import { DecodedBody, REQUEST_SCHEMA, RequestSchema, requestState } from './request-schema.decorator';

const JSON_TYPE = /^application\/(json|[^;\s]+\+json)\s*(;|$)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Decodes the body of routes that declare one, exactly where FastAPI does:
 * before authentication, so malformed JSON is a 422 even without credentials.
 * Registered as the first global guard.
 */
@Injectable()
export class BodyDecodeGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const schema = this.reflector.get<RequestSchema | undefined>(REQUEST_SCHEMA, context.getHandler());
    const request = context.switchToHttp().getRequest<Request>();
    if (schema?.body) requestState(request).decodedBody = decodeBody(request);
    return true;
  }
}

export function decodeBody(request: Request): DecodedBody {
  const raw: unknown = request.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) return { kind: 'absent' };
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new DomainError('bad_request', 'There was an error parsing the body');
  }
  const contentType = request.headers['content-type'];
  // FastAPI ≥ 0.132 parses JSON only for application/json and application/*+json.
  if (!contentType || !JSON_TYPE.test(contentType)) return { kind: 'text', value: text };
  try {
    const value = parsePythonJson(text);
    return value === null ? { kind: 'absent' } : { kind: 'json', value };
  } catch (error) {
    if (error instanceof JsonTooDeepError) throw new DomainError('bad_request', 'There was an error parsing the body');
    if (!(error instanceof PythonJsonDecodeError)) throw error;
    throw new RequestValidationError([
      {
        type: 'json_invalid',
        loc: ['body', error.pos],
        msg: 'JSON decode error',
        input: {},
        ctx: { error: error.msg },
      },
    ]);
  }
}

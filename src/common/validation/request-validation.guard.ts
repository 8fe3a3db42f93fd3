import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { FieldEntry, fieldsOf } from './fields';
import { checkField, coerceField, FieldSpec, Loc, ValidationItem, RequestValidationError } from './pydantic-errors';
import { DecodedBody, REQUEST_SCHEMA, RequestSchema, requestState } from './request-schema.decorator';

/** A DTO may add pydantic "model validator" checks that run once its fields are valid. */
export interface ModelChecks {
  modelErrors(this: void, value: object, raw: Record<string, unknown>): ValidationItem[];
}

type DtoClass = new () => object;

/**
 * Validates path, query and body of a route together, after authentication
 * (the guard registered after AuthGuard) and before the handler, and refuses
 * them with one 422 whose items come in FastAPI's order: path, query, body.
 * A guard rather than an interceptor: with no interceptor at all, Nest skips
 * its per-request interceptor chain (rxjs, async-context binding).
 */
@Injectable()
export class RequestValidationGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const schema = this.reflector.get<RequestSchema | undefined>(REQUEST_SCHEMA, context.getHandler());
    if (!schema) return true;
    const request = context.switchToHttp().getRequest<Request>();
    const items: ValidationItem[] = [];
    const state = requestState(request);

    const params = schema.params
      ? validateObject(schema.params, request.params as Record<string, unknown>, ['path'], items)
      : {};
    const query = schema.query ? validateQuery(schema.query, queryValues(request, schema.query), items) : {};
    const body = schema.body ? validateBody(schema.body, state.decodedBody ?? { kind: 'absent' }, items) : {};
    if (items.length > 0) throw new RequestValidationError(items);
    state.validated = { params, query, body };
    return true;
  }
}

/**
 * Query values as Starlette sees them: from the raw query string, repeated
 * keys kept in order, blank values kept, no `ids[]` or `ids[0]` forms.
 * List fields take every value; scalar fields the last one.
 */
function queryValues(request: Request, dto: DtoClass): Record<string, unknown> {
  const url = request.originalUrl ?? request.url;
  const search = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const values: Record<string, unknown> = {};
  for (const { name, spec } of fieldsOf(dto)) {
    const all = search.getAll(name);
    if (all.length === 0) continue;
    values[name] = isList(spec) ? all : all[all.length - 1];
  }
  return values;
}

function isList(spec: FieldSpec): boolean {
  return spec.kind === 'uuid_list' || spec.kind === 'string_list' || spec.kind === 'enum_list';
}

/** The query's fields, then (when they are valid) the DTO's own cross-field checks. */
function validateQuery(dto: DtoClass, raw: Record<string, unknown>, items: ValidationItem[]): object {
  const before = items.length;
  const result = validateObject(dto, raw, ['query'], items);
  const checks = dto as unknown as Partial<ModelChecks>;
  if (items.length === before && checks.modelErrors) items.push(...checks.modelErrors(result, raw));
  return result;
}

function validateBody(dto: DtoClass, decoded: DecodedBody, items: ValidationItem[]): object {
  if (decoded.kind === 'absent') {
    items.push({ type: 'missing', loc: ['body'], msg: 'Field required', input: null });
    return {};
  }
  const value = decoded.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    items.push({
      type: 'model_attributes_type',
      loc: ['body'],
      msg: 'Input should be a valid dictionary or object to extract fields from',
      input: value,
    });
    return {};
  }
  const before = items.length;
  const raw = value as Record<string, unknown>;
  const result = validateObject(dto, raw, ['body'], items);
  const checks = dto as unknown as Partial<ModelChecks>;
  if (items.length === before && checks.modelErrors) items.push(...checks.modelErrors(result, raw));
  return result;
}

/** A DTO's fields with their `loc` under each prefix, worked out once per DTO and place. */
const compiled = new WeakMap<DtoClass, Map<string, { field: FieldEntry; loc: Loc }[]>>();

function fieldsAt(dto: DtoClass, prefix: Loc): { field: FieldEntry; loc: Loc }[] {
  let byPrefix = compiled.get(dto);
  if (!byPrefix) compiled.set(dto, (byPrefix = new Map()));
  const key = prefix.join('.');
  let entries = byPrefix.get(key);
  if (!entries) byPrefix.set(key, (entries = fieldsOf(dto).map((field) => ({ field, loc: [...prefix, field.name] }))));
  return entries;
}

/**
 * Each field checked by its pydantic rule (`checkField`, the rule its @Field declared), in declaration
 * order, a nested model's fields under its `loc`; the DTO instance holds the coerced values of the valid
 * fields (a nested model as an instance of its class: declaration order, unknown keys dropped).
 */
function validateObject(dto: DtoClass, raw: Record<string, unknown>, prefix: Loc, items: ValidationItem[]): object {
  const result = new dto() as Record<string, unknown>;
  for (const { field, loc } of fieldsAt(dto, prefix)) {
    const value = Object.prototype.hasOwnProperty.call(raw, field.name) ? raw[field.name] : undefined;
    // The shared `loc` goes into no item: a refused field is checked again for its items with a copy.
    if (checkField(field.spec, loc, value, raw).length > 0) items.push(...checkField(field.spec, [...loc], value, raw));
    else if (field.spec.kind === 'model' && value !== undefined && value !== null) {
      const before = items.length;
      const nested = validateObject(field.spec.model, value as Record<string, unknown>, loc, items);
      if (items.length === before) result[field.name] = nested;
    } else if (value !== undefined) result[field.name] = coerceField(field.spec, value);
  }
  return result;
}

import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteTable } from '../../src/common/http/route-table';
import { fieldsOf } from '../../src/common/validation/fields';
import { FieldSpec } from '../../src/common/validation/pydantic-errors';
import { REQUEST_SCHEMA, RequestSchema } from '../../src/common/validation/request-schema.decorator';
import { startTestApp, TestApp } from '../utils/test-app';

type Schema = Record<string, any>;
type Operation = { parameters?: Schema[]; requestBody?: Schema };

/** Operational routes the document leaves out on purpose (probes and metrics, @ApiExcludeController). */
const UNDOCUMENTED = /^(health\/|metrics$)/;

/**
 * What the validator enforces for one field, written independently of the
 * code that publishes it: the JSON Schema keywords a document must state for
 * a generated client to refuse what the service refuses.
 */
function enforced(spec: FieldSpec): { required: boolean; nullable: boolean; keywords: Schema } {
  const required = 'required' in spec ? spec.required : false;
  const nullable = 'nullable' in spec ? spec.nullable : false;
  switch (spec.kind) {
    case 'string':
      return {
        required,
        nullable,
        keywords: {
          type: 'string',
          minLength: spec.minLength,
          maxLength: spec.maxLength,
          pattern: spec.pattern?.source,
        },
      };
    case 'enum':
      return { required, nullable, keywords: { type: 'string', enum: [...spec.values] } };
    case 'enum_list':
      return {
        required: false,
        nullable: false,
        keywords: { type: 'array', maxItems: spec.maxItems, items: { type: 'string', enum: [...spec.values] } },
      };
    case 'uuid':
      return { required, nullable, keywords: { type: 'string', format: 'uuid' } };
    case 'date_time':
      return { required: false, nullable: false, keywords: { type: 'string', format: 'date-time' } };
    case 'string_list':
      return {
        required,
        nullable,
        keywords: {
          type: 'array',
          maxItems: spec.maxItems,
          items: { type: 'string', minLength: spec.itemMinLength, maxLength: spec.itemMaxLength },
        },
      };
    case 'uuid_list':
      return {
        required: false,
        nullable: false,
        keywords: { type: 'array', maxItems: spec.maxItems, items: { type: 'string', format: 'uuid' } },
      };
    case 'number_map':
      return {
        required,
        nullable,
        keywords: {
          type: 'object',
          maxProperties: spec.maxItems,
          propertyNames: { maxLength: spec.keyMaxLength },
          additionalProperties: { type: 'number' },
        },
      };
    case 'bool':
      return { required: false, nullable: false, keywords: { type: 'boolean' } };
    case 'int':
      return { required: false, nullable: false, keywords: { type: 'integer', minimum: spec.ge, maximum: spec.le } };
    case 'strict_int':
      return { required, nullable, keywords: { type: 'integer', minimum: spec.ge, maximum: spec.le } };
    case 'model':
      // Its own fields are checked against the component it references, as the body's are.
      return { required, nullable, keywords: { type: 'object' } };
  }
}

const defined = (keywords: Schema): Schema =>
  Object.fromEntries(
    Object.entries(keywords)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [
        key,
        value && typeof value === 'object' && !Array.isArray(value) ? defined(value) : value,
      ]),
  );

describe('every route documents exactly what it accepts', () => {
  let testApp: TestApp;
  let document: { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema> } };

  beforeAll(async () => {
    testApp = await startTestApp();
    document = (await testApp.http().get('/openapi.json').expect(200)).body;
  });

  afterAll(() => testApp.close());

  /** A document schema with $refs resolved and a nullable anyOf [T, null] reduced to T. */
  function resolve(schema: Schema): { schema: Schema; nullable: boolean } {
    let nullable = false;
    let current = schema;
    if (Array.isArray(current.anyOf)) {
      const others = current.anyOf.filter((option: Schema) => option.type !== 'null');
      nullable = others.length < current.anyOf.length;
      if (others.length === 1) current = { ...current, ...others[0], anyOf: undefined };
    }
    if (typeof current.$ref === 'string')
      current = { ...document.components.schemas[current.$ref.split('/').pop()!], ...current, $ref: undefined };
    if (current.items) current = { ...current, items: resolve(current.items).schema };
    return { schema: current, nullable };
  }

  /** The keywords of `keywords` as the document states them (only those keys). */
  function stated(schema: Schema, keywords: Schema): Schema {
    return Object.fromEntries(
      Object.keys(keywords).map((key) => [
        key,
        (key === 'items' || key === 'propertyNames' || key === 'additionalProperties') && schema[key]
          ? stated(schema[key], keywords[key])
          : schema[key],
      ]),
    );
  }

  function routes() {
    const table = testApp.app.get(RouteTable).routes();
    return table.map(({ method, path, handler, controller }) => ({
      route: `${method} /${path}`,
      documented: UNDOCUMENTED.test(path)
        ? undefined
        : document.paths[`/api/${path.replace(/:(\w+)/g, '{$1}')}`]?.[method.toLowerCase()],
      schema: (Reflect.getMetadata(REQUEST_SCHEMA, handler) ?? {}) as RequestSchema,
      handler,
      controller,
      undocumented: UNDOCUMENTED.test(path),
    }));
  }

  it('should find every API route in the document', () => {
    const all = routes();
    expect(all.length).toBeGreaterThanOrEqual(13);
    for (const { route, documented, undocumented } of all) {
      expect({ route, documented: undocumented || documented !== undefined }).toEqual({ route, documented: true });
    }
  });

  it('should declare every path and query field the validator reads, with its limits, and nothing else', () => {
    let checked = 0;
    for (const { route, documented, schema } of routes()) {
      if (!documented) continue;
      const declared = (documented.parameters ?? []).filter(
        (parameter) => parameter.in === 'path' || parameter.in === 'query',
      );
      const accepted = [
        ...(schema.params ? fieldsOf(schema.params).map((field) => ({ ...field, in: 'path' })) : []),
        ...(schema.query ? fieldsOf(schema.query).map((field) => ({ ...field, in: 'query' })) : []),
      ];
      expect({ route, names: declared.map((p) => `${p.in}:${p.name}`).sort() }).toEqual({
        route,
        names: accepted.map((field) => `${field.in}:${field.name}`).sort(),
      });
      for (const field of accepted) {
        const parameter = declared.find((p) => p.name === field.name && p.in === field.in)!;
        const rule = enforced(field.spec);
        const keywords = defined(rule.keywords);
        const { schema: resolved } = resolve(parameter.schema);
        expect({ route, parameter: field.name, required: parameter.required, ...stated(resolved, keywords) }).toEqual({
          route,
          parameter: field.name,
          required: field.in === 'path' || rule.required,
          ...keywords,
        });
        checked++;
      }
    }
    // job_id on six routes, the listing's eleven filters, and the others'.
    expect(checked).toBeGreaterThanOrEqual(20);
  });

  it('should declare every header a handler reads', () => {
    let headers = 0;
    for (const { route, documented, handler, controller } of routes()) {
      if (!documented) continue;
      const read = headersRead(controller, handler);
      const declared = (documented.parameters ?? [])
        .filter((p) => p.in === 'header')
        .map((p) => String(p.name).toLowerCase());
      expect({ route, headers: declared.sort() }).toEqual({ route, headers: read.sort() });
      headers += read.length;
    }
    expect(headers).toBe(2); // Idempotency-Key on create, Last-Event-ID on the event stream
  });

  it('should describe every body field the validator reads, with its limits and required list', () => {
    let checked = 0;
    for (const { route, documented, schema } of routes()) {
      if (!documented || !schema.body) {
        expect({ route, requestBody: documented?.requestBody }).toEqual({ route, requestBody: undefined });
        continue;
      }
      const ref = documented.requestBody!.content['application/json'].schema.$ref as string;
      const checkModel = (model: Schema, dto: Function, at: string): void => {
        const fields = fieldsOf(dto);
        expect({ route, at, properties: Object.keys(model.properties).sort() }).toEqual({
          route,
          at,
          properties: fields.map((f) => f.name).sort(),
        });
        expect({ route, at, required: [...(model.required ?? [])].sort() }).toEqual({
          route,
          at,
          required: fields
            .filter((f) => enforced(f.spec).required)
            .map((f) => f.name)
            .sort(),
        });
        for (const field of fields) {
          const rule = enforced(field.spec);
          const keywords = defined(rule.keywords);
          const { schema: resolved, nullable } = resolve(model.properties[field.name]);
          expect({ route, field: `${at}${field.name}`, nullable, ...stated(resolved, keywords) }).toEqual({
            route,
            field: `${at}${field.name}`,
            nullable: rule.nullable,
            ...keywords,
          });
          checked++;
          if (field.spec.kind === 'model') checkModel(resolved, field.spec.model, `${at}${field.name}.`);
        }
      };
      checkModel(document.components.schemas[ref.split('/').pop()!], schema.body, '');
    }
    expect(checked).toBeGreaterThanOrEqual(12);
  });
});

/** Header names (lower case) a handler takes with @Headers('name'). */
function headersRead(controller: Function, handler: Function): string[] {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, handler.name) ?? {}) as Record<
    string,
    { data?: unknown }
  >;
  return Object.entries(args)
    .filter(([key]) => Number(key.split(':')[0]) === RouteParamtypes.HEADERS)
    .map(([, value]) => String(value.data).toLowerCase());
}

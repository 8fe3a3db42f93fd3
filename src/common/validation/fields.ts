import { ApiProperty, ApiPropertyOptions } from '@nestjs/swagger';
import { FieldSpec } from './pydantic-errors';

const FIELDS = Symbol('pydantic:fields');

export interface FieldEntry {
  name: string;
  spec: FieldSpec;
  doc: Documentation;
}

/** FastAPI's default property title: `mlflow_run_id` → `Mlflow Run Id`. */
export function fieldTitle(name: string): string {
  return name
    .split('_')
    .map((word) => (word ? word[0].toUpperCase() + word.slice(1).toLowerCase() : word))
    .join(' ');
}

/** Fields of a DTO class in declaration order (pydantic reports errors in that order). */
export function fieldsOf(target: Function): FieldEntry[] {
  return (Reflect.getMetadata(FIELDS, target) as FieldEntry[] | undefined) ?? [];
}

export type Documentation = Omit<ApiPropertyOptions, 'type' | 'required' | 'nullable' | 'enum'> & {
  enum?: Record<string, string>;
  enumName?: string;
};

/** The JSON Schema keywords of the limits `checkField` applies to a string. */
function stringLimits(minLength?: number, maxLength?: number, pattern?: string): Record<string, unknown> {
  return {
    ...(minLength !== undefined ? { minLength } : {}),
    ...(maxLength !== undefined ? { maxLength } : {}),
    ...(pattern !== undefined ? { pattern } : {}),
  };
}

/**
 * The schema of a field's value as pydantic would publish it: type, format and
 * every limit the validator applies (nullable: anyOf [T, null], the limits on T).
 * Enums are a `$ref` to their named component.
 */
export function valueSchema(spec: FieldSpec, enumName?: string): Record<string, unknown> {
  const nullable = (schema: Record<string, unknown>) =>
    'nullable' in spec && spec.nullable ? { anyOf: [schema, { type: 'null' }] } : schema;
  switch (spec.kind) {
    case 'enum':
      return nullable(
        enumName ? { $ref: `#/components/schemas/${enumName}` } : { type: 'string', enum: [...spec.values] },
      );
    case 'enum_list':
      return {
        type: 'array',
        items: enumName ? { $ref: `#/components/schemas/${enumName}` } : { type: 'string', enum: [...spec.values] },
        ...(spec.maxItems !== undefined ? { maxItems: spec.maxItems } : {}),
      };
    case 'string':
      return nullable({ type: 'string', ...stringLimits(spec.minLength, spec.maxLength, spec.pattern?.source) });
    case 'uuid':
      return nullable({ type: 'string', format: 'uuid' });
    case 'date_time':
      return { type: 'string', format: 'date-time' };
    case 'string_list':
      return nullable({
        type: 'array',
        items: { type: 'string', ...stringLimits(spec.itemMinLength, spec.itemMaxLength) },
        ...(spec.maxItems !== undefined ? { maxItems: spec.maxItems } : {}),
      });
    case 'uuid_list':
      return { type: 'array', items: { type: 'string', format: 'uuid' }, maxItems: spec.maxItems };
    case 'number_map':
      return nullable({
        type: 'object',
        additionalProperties: { type: 'number' },
        propertyNames: { maxLength: spec.keyMaxLength },
        maxProperties: spec.maxItems,
      });
    case 'bool':
      return { type: 'boolean' };
    case 'int':
      return {
        type: 'integer',
        ...(spec.ge !== undefined ? { minimum: spec.ge } : {}),
        ...(spec.le !== undefined ? { maximum: spec.le } : {}),
      };
    case 'strict_int':
      return nullable({
        type: 'integer',
        ...(spec.ge !== undefined ? { minimum: spec.ge } : {}),
        ...(spec.le !== undefined ? { maximum: spec.le } : {}),
      });
    case 'model':
      return nullable({ $ref: `#/components/schemas/${spec.schemaName}` });
  }
}

function schemaFor(name: string, spec: FieldSpec, doc: Documentation): ApiPropertyOptions {
  const title = fieldTitle(name);
  const required = 'required' in spec ? spec.required : false;
  const { enum: enumType, enumName, ...rest } = doc;
  if (spec.kind === 'enum') {
    return { enum: enumType, enumName, required, ...(spec.nullable ? { nullable: true } : {}), ...rest };
  }
  if (spec.kind === 'enum_list') {
    return {
      enum: enumType,
      enumName,
      isArray: true,
      required,
      title,
      ...rest,
      ...(spec.maxItems !== undefined ? { maxItems: spec.maxItems } : {}),
    };
  }
  if (spec.kind === 'model') {
    // pydantic titles no property that is a model reference.
    return { required, ...rest, oneOf: undefined, ...valueSchema(spec) } as ApiPropertyOptions;
  }
  const schema = valueSchema(spec);
  // @nestjs/swagger takes oneOf/anyOf as given; `oneOf: undefined` stops it adding its own for nullable.
  return { required, title, ...rest, ...(schema.anyOf ? { oneOf: undefined } : {}), ...schema } as ApiPropertyOptions;
}

/**
 * The OpenAPI parameter of a path or query field, as FastAPI publishes it:
 * `description` on the parameter and in its schema, the schema titled.
 */
export function parameterOf(location: 'path' | 'query', { name, spec, doc }: FieldEntry): Record<string, unknown> {
  const { enum: _enumType, enumName, description, default: defaultValue, ...rest } = doc;
  const required = location === 'path' || ('required' in spec && spec.required);
  const value = valueSchema(spec, enumName);
  const schema = {
    ...value,
    ...(description !== undefined ? { description } : {}),
    ...(defaultValue !== undefined ? { default: defaultValue } : {}),
    ...(value.$ref === undefined ? { title: fieldTitle(name) } : {}),
    ...(rest as Record<string, unknown>),
  };
  return { name, in: location, required, ...(description !== undefined ? { description } : {}), schema };
}

/**
 * Declares one request field: its pydantic rule (checked by `checkField` in
 * RequestValidationGuard, reported with pydantic's exact items) and its
 * OpenAPI schema, in one place.
 */
export function Field(spec: FieldSpec, doc: Documentation = {}): PropertyDecorator {
  return (target, propertyKey) => {
    const name = String(propertyKey);
    Reflect.defineMetadata(FIELDS, [...fieldsOf(target.constructor), { name, spec, doc }], target.constructor);
    ApiProperty(schemaFor(name, spec, doc))(target, propertyKey);
  };
}

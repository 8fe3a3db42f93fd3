import { ApiProperty, ApiPropertyOptions } from '@nestjs/swagger';
import { registerDecorator, ValidationArguments } from 'class-validator';
import { checkField, FieldSpec } from './pydantic-errors';

const FIELDS = Symbol('pydantic:fields');

export interface FieldEntry {
  name: string;
  spec: FieldSpec;
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

type Documentation = Omit<ApiPropertyOptions, 'type' | 'required' | 'nullable' | 'enum'> & {
  enum?: Record<string, string>;
  enumName?: string;
};

function schemaFor(name: string, spec: FieldSpec, doc: Documentation): ApiPropertyOptions {
  const title = fieldTitle(name);
  const required = 'required' in spec ? spec.required : false;
  const { enum: enumType, enumName, ...rest } = doc;
  switch (spec.kind) {
    case 'enum':
      return { enum: enumType, enumName, required, ...(spec.nullable ? { nullable: true } : {}), ...rest };
    case 'string':
    case 'uuid': {
      const base = spec.kind === 'uuid' ? { type: 'string', format: 'uuid' } : { type: 'string' };
      if (spec.nullable) {
        return { required, title, ...rest, oneOf: undefined, anyOf: [base, { type: 'null' }] } as ApiPropertyOptions;
      }
      return { ...base, required, title, ...rest } as ApiPropertyOptions;
    }
    case 'string_list': {
      const list = { type: 'array', items: { type: 'string' } };
      if (spec.nullable) return { required, title, ...rest, anyOf: [list, { type: 'null' }] } as ApiPropertyOptions;
      return { ...list, required, title, ...rest } as ApiPropertyOptions;
    }
    case 'uuid_list':
      return { type: 'array', items: { type: 'string', format: 'uuid' }, required, title, ...rest } as ApiPropertyOptions;
    case 'number_map': {
      const map = { type: 'object', additionalProperties: { type: 'number' }, maxProperties: spec.maxItems };
      if (spec.nullable) return { required, title, ...rest, anyOf: [map, { type: 'null' }] } as ApiPropertyOptions;
      return { ...map, required, title, ...rest } as ApiPropertyOptions;
    }
    case 'bool':
      return { type: 'boolean', required, title, ...rest } as ApiPropertyOptions;
    case 'int':
      return { type: 'integer', required, title, ...rest } as ApiPropertyOptions;
  }
}

/**
 * Declares one request field: its pydantic rule (checked by class-validator,
 * reported with pydantic's exact items) and its OpenAPI schema, in one place.
 */
export function Field(spec: FieldSpec, doc: Documentation = {}): PropertyDecorator {
  return (target, propertyKey) => {
    const name = String(propertyKey);
    Reflect.defineMetadata(FIELDS, [...fieldsOf(target.constructor), { name, spec }], target.constructor);
    registerDecorator({
      name: 'pydantic',
      target: target.constructor,
      propertyName: name,
      constraints: [spec],
      options: { context: spec },
      validator: {
        validate: (value: unknown, args: ValidationArguments) => checkField(spec, [name], value, args.object).length === 0,
        defaultMessage: () => `${name} is invalid`,
      },
    });
    ApiProperty(schemaFor(name, spec, doc))(target, propertyKey);
  };
}

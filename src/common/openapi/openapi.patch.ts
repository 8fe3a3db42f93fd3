import type { OpenAPIObject } from '@nestjs/swagger';
import { ENUM_SCHEMA_DOCS } from '../../automl-training/domain/automl-training.enums';

type Schema = Record<string, unknown>;

/**
 * The one place where @nestjs/swagger's output is reshaped into what the
 * FastAPI original publishes (OpenAPI 3.1 as pydantic writes it):
 * - an enum property is a bare `$ref`, not `allOf: [{$ref}]`;
 * - every object component carries `title` = its name, and enum components
 *   their title and description;
 * - `ValidationError.input` is untyped (any JSON value);
 * - no document-level `contact`, and an explicit empty top-level `security`
 *   (security is declared per operation).
 */
export function patchOpenApi(document: OpenAPIObject): OpenAPIObject {
  const schemas = (document.components?.schemas ?? {}) as Record<string, Schema>;
  for (const [name, schema] of Object.entries(schemas)) {
    if (Array.isArray(schema.enum)) {
      Object.assign(schema, ENUM_SCHEMA_DOCS[name] ?? { title: name });
      continue;
    }
    if (schema.type === 'object' && schema.title === undefined) schema.title = name;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [key, property] of Object.entries(properties)) properties[key] = unwrapSingleAllOf(property);
  }
  const input = (schemas.ValidationError?.properties as Record<string, Schema> | undefined)?.input;
  if (input) delete input.type;
  delete (document.info as { contact?: unknown }).contact;
  document.security = [];
  return document;
}

function unwrapSingleAllOf(property: Schema): Schema {
  const allOf = property.allOf as Schema[] | undefined;
  if (!allOf || allOf.length !== 1 || typeof allOf[0].$ref !== 'string') return property;
  const { allOf: _allOf, ...rest } = property;
  return { ...allOf[0], ...rest };
}

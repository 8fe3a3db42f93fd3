import Ajv, { ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { load } from 'js-yaml';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Spec = { paths: Record<string, Record<string, any>>; servers?: { url: string }[] };

const FIXTURES = join(__dirname, '..', 'fixtures', 'airflow');

/**
 * Answers real Airflow gives that its own spec does not document, seen by
 * test/airflow-real/contract.e2e-spec.ts: Airflow 3.3.2's DELETE of a DAG
 * answers 204 with no body while its generated spec (3.3.2's too) lists 200,
 * and 409 `{"detail": "Task instances of dag with id: '…' are still running"}`
 * while a task instance of the DAG runs (v1 documents that 409; v2 does not).
 */
const KNOWN_UNDOCUMENTED = new Set(['delete /api/v2/dags/{dag_id} 204', 'delete /api/v2/dags/{dag_id} 409']);

/**
 * Validates request and response bodies against Airflow's official OpenAPI
 * documents (v1: OpenAPI 3.0 with `nullable`; v2: OpenAPI 3.1 / JSON Schema
 * 2020-12), by operation path template, method and status.
 */
export class AirflowSpecValidator {
  private readonly ajv: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(
    private readonly spec: Spec,
    private readonly id: string,
    draft2020: boolean,
    extra: { id: string; spec: Spec }[] = [],
  ) {
    this.ajv = draft2020
      ? new Ajv2020({ strict: false, allErrors: true, validateSchema: false })
      : new Ajv({ strict: false, allErrors: true, validateSchema: false });
    addFormats(this.ajv);
    this.ajv.addSchema(spec as object, id);
    for (const other of extra) this.ajv.addSchema(other.spec as object, other.id);
  }

  static v1(): AirflowSpecValidator {
    const spec = nullableToJsonSchema(load(readFileSync(join(FIXTURES, 'v1.yaml'), 'utf8'))) as Spec;
    return new AirflowSpecValidator(spec, 'airflow-v1', false);
  }

  static v2(): AirflowSpecValidator {
    const auth = load(readFileSync(join(FIXTURES, 'v2-simple-auth-manager.yaml'), 'utf8')) as Spec;
    return new AirflowSpecValidator(load(readFileSync(join(FIXTURES, 'v2.yaml'), 'utf8')) as Spec, 'airflow-v2', true, [
      { id: 'airflow-v2-auth', spec: auth },
    ]);
  }

  /** Errors of `body` against the operation's JSON request schema; [] when valid. */
  requestErrors(template: string, method: string, body: unknown, specId = this.id): string[] {
    const pointer = `${specId}#/paths/${escape(template)}/${method}/requestBody/content/application~1json/schema`;
    return this.run(pointer, body);
  }

  /**
   * The same errors as FastAPI/pydantic 422 items, as Airflow 3 answers them:
   * `missing` for an absent required key, `extra_forbidden` for an unknown one.
   */
  requestErrorItems(
    template: string,
    method: string,
    body: unknown,
    specId = this.id,
  ): { type: string; loc: (string | number)[]; msg: string; input: unknown }[] {
    const pointer = `${specId}#/paths/${escape(template)}/${method}/requestBody/content/application~1json/schema`;
    this.run(pointer, body);
    const errors = this.cache.get(pointer)?.errors ?? [];
    const at = (path: string) => path.split('/').filter(Boolean);
    const valueAt = (path: string[]) =>
      path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], body);
    return errors.map((error) => {
      const path = at(error.instancePath);
      const params = error.params as { missingProperty?: string; additionalProperty?: string };
      if (error.keyword === 'required' && params.missingProperty) {
        return {
          type: 'missing',
          loc: ['body', ...path, params.missingProperty],
          msg: 'Field required',
          input: valueAt(path),
        };
      }
      if (error.keyword === 'additionalProperties' && params.additionalProperty) {
        const key = [...path, params.additionalProperty];
        return {
          type: 'extra_forbidden',
          loc: ['body', ...key],
          msg: 'Extra inputs are not permitted',
          input: valueAt(key),
        };
      }
      return { type: 'value_error', loc: ['body', ...path], msg: error.message ?? 'invalid', input: valueAt(path) };
    });
  }

  /** Errors of `body` against the operation's response schema for `status`; [] when valid. */
  responseErrors(template: string, method: string, status: number, body: unknown, specId = this.id): string[] {
    if (KNOWN_UNDOCUMENTED.has(`${method} ${template} ${status}`)) return [];
    const operation = this.operation(template, method, specId);
    const response = operation.responses[String(status)] ?? operation.responses.default;
    if (!response) return [`status ${status} is not documented for ${method.toUpperCase()} ${template}`];
    const key = response.$ref
      ? response.$ref.split('/').pop()
      : String(status) in operation.responses
        ? String(status)
        : 'default';
    const base = response.$ref
      ? `${specId}#/components/responses/${key}`
      : `${specId}#/paths/${escape(template)}/${method}/responses/${key}`;
    const resolved = response.$ref ? this.componentResponse(key, specId) : response;
    const media = resolved.content && Object.keys(resolved.content).find((type: string) => type.includes('json'));
    if (!media) return [];
    return this.run(`${base}/content/${media.replace(/\//g, '~1')}/schema`, body);
  }

  private operation(template: string, method: string, specId: string): any {
    const spec = specId === this.id ? this.spec : (this.ajv.getSchema(specId)?.schema as Spec);
    const operation = spec.paths[template]?.[method];
    if (!operation) throw new Error(`${method.toUpperCase()} ${template} is not in ${specId}`);
    return operation;
  }

  private componentResponse(name: string, specId: string): any {
    const spec = (specId === this.id ? this.spec : this.ajv.getSchema(specId)?.schema) as {
      components: { responses: Record<string, any> };
    };
    return spec.components.responses[name];
  }

  private run(pointer: string, body: unknown): string[] {
    let validate = this.cache.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: pointer });
      this.cache.set(pointer, validate);
    }
    return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
  }
}

/**
 * OpenAPI 3.0's `nullable: true` as plain JSON Schema: `type: [T, "null"]`
 * where a type is given, else `anyOf: [schema, {type: "null"}]` (v1.yaml puts
 * nullable next to $ref and allOf, which Ajv cannot compile as is).
 */
function nullableToJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(nullableToJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const converted = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, nullableToJsonSchema(value)]));
  if (nullable !== true) return converted;
  if (typeof converted.type === 'string') {
    const enumValues = Array.isArray(converted.enum) ? { enum: [...converted.enum, null] } : {};
    return { ...converted, ...enumValues, type: [converted.type, 'null'] };
  }
  return { anyOf: [converted, { type: 'null' }] };
}

function escape(template: string): string {
  return template.replace(/~/g, '~0').replace(/\//g, '~1');
}

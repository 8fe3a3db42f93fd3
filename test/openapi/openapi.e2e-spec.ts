import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { startTestApp, TestApp } from '../utils/test-app';

type Doc = {
  info: unknown;
  security?: unknown;
  servers?: unknown;
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};

const SEEDS = ['seed-000-status-writeback.yaml', 'seed-003-bulk-statuses.yaml'];

function loadSeed(file: string): Doc {
  return load(readFileSync(join(__dirname, '..', 'fixtures', file), 'utf8')) as Doc;
}

/** Names of every component schema reachable from `node` through $ref. */
function referencedSchemas(node: unknown, schemas: Record<string, unknown>, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) node.forEach((item) => referencedSchemas(item, schemas, found));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') {
        const name = value.replace('#/components/schemas/', '');
        if (!found.has(name)) {
          found.add(name);
          referencedSchemas(schemas[name], schemas, found);
        }
      } else referencedSchemas(value, schemas, found);
    }
  }
  return found;
}

type ObjectSchema = { properties?: Record<string, unknown>; required?: string[] };

/**
 * Keywords the service may add to a schema or media type the seeds list:
 * the limits its validator enforced already (the parameters test ties each to
 * the validator), and examples. They state existing behaviour; they change no
 * field's name, type, format, title, description or requiredness.
 */
const ADDABLE_KEYWORDS = new Set(['minLength', 'maxLength', 'maxItems', 'minimum', 'maximum', 'pattern', 'example']);

/**
 * How `actual` departs from `seed`, as a list of paths: every seed field must
 * be present and equal (arrays element for element, `required` lists
 * included, so no addition can be required); the only extra keys allowed are
 * new entries of a `properties` map (new optional fields) and ADDABLE_KEYWORDS.
 */
function seedDepartures(seed: unknown, actual: unknown, path = '$'): string[] {
  if (Array.isArray(seed)) {
    if (!Array.isArray(actual) || actual.length !== seed.length)
      return [`${path}: expected ${JSON.stringify(seed)}, got ${JSON.stringify(actual)}`];
    return seed.flatMap((item, index) => seedDepartures(item, actual[index], `${path}[${index}]`));
  }
  if (seed && typeof seed === 'object') {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual))
      return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    const departures = Object.entries(seed).flatMap(([key, value]) =>
      seedDepartures(value, (actual as Record<string, unknown>)[key], `${path}.${key}`),
    );
    const inProperties = path.endsWith('.properties');
    for (const key of Object.keys(actual)) {
      if (key in seed || inProperties || ADDABLE_KEYWORDS.has(key)) continue;
      departures.push(`${path}.${key}: added`);
    }
    return departures;
  }
  return seed === actual ? [] : [`${path}: expected ${JSON.stringify(seed)}, got ${JSON.stringify(actual)}`];
}

describe('seedDepartures', () => {
  const seed = { type: 'object', required: ['a'], properties: { a: { type: 'string', title: 'A' } } };

  it('should accept the seed itself, new optional properties and validation keywords', () => {
    expect(seedDepartures(seed, seed)).toEqual([]);
    expect(
      seedDepartures(seed, {
        ...seed,
        properties: { a: { type: 'string', title: 'A', maxLength: 9 }, b: { type: 'integer' } },
      }),
    ).toEqual([]);
  });

  it('should refuse a changed or dropped seed field, a new required field and any other addition', () => {
    expect(seedDepartures(seed, { ...seed, properties: { a: { type: 'integer', title: 'A' } } })).toEqual([
      '$.properties.a.type: expected "string", got "integer"',
    ]);
    expect(seedDepartures(seed, { ...seed, properties: {} })).toEqual([
      '$.properties.a: expected an object, got undefined',
    ]);
    expect(seedDepartures(seed, { ...seed, required: ['a', 'b'], properties: { ...seed.properties, b: {} } })).toEqual([
      '$.required: expected ["a"], got ["a","b"]',
    ]);
    expect(
      seedDepartures(seed, { ...seed, properties: { a: { type: 'string', title: 'A', format: 'uuid' } } }),
    ).toEqual(['$.properties.a.format: added']);
  });
});

describe('OpenAPI document', () => {
  let testApp: TestApp;
  let document: Doc;

  beforeAll(async () => {
    // The seeds' OAuth URLs are the rapid realm's on sso-rapid.rapid.nx1cloud.com.
    testApp = await startTestApp({ KEYCLOAK_URL: 'https://sso-rapid.rapid.nx1cloud.com', KEYCLOAK_REALM: 'rapid' });
    const response = await testApp.http().get('/openapi.json').expect(200);
    document = response.body;
    writeFileSync(join(tmpdir(), 'automl-openapi.generated.json'), JSON.stringify(document, null, 2));
  });

  afterAll(() => testApp.close());

  describe.each(SEEDS)('%s', (file) => {
    const seed = loadSeed(file);
    const operations = Object.entries(seed.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );

    it.each(operations)('should keep every field of $method $path unchanged', ({ path, method, operation }) => {
      expect(seedDepartures(operation, document.paths[path]?.[method])).toEqual([]);
    });

    it('should keep every field of every component schema the operations reference; additions optional', () => {
      const names = referencedSchemas(seed.paths, seed.components.schemas);
      expect(names.size).toBeGreaterThan(2);
      for (const name of names) {
        expect({
          name,
          departures: seedDepartures(seed.components.schemas[name], document.components.schemas[name]),
        }).toEqual({
          name,
          departures: [],
        });
      }
    });

    it('should reproduce the security schemes, info, servers and top-level security', () => {
      for (const [name, scheme] of Object.entries(seed.components.securitySchemes)) {
        expect(document.components.securitySchemes[name]).toEqual(scheme);
      }
      expect(document.info).toEqual(seed.info);
      expect(document.servers ?? []).toEqual(seed.servers);
      expect(document.security).toEqual(seed.security);
    });
  });

  it('should be OpenAPI 3.1 and document every route with an operationId, summary and 422/ErrorResponse bodies', () => {
    expect((document as unknown as { openapi: string }).openapi).toBe('3.1.0');
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item) as [string, Record<string, any>][]) {
        expect({ path, method, operationId: typeof operation.operationId, summary: typeof operation.summary }).toEqual({
          path,
          method,
          operationId: 'string',
          summary: 'string',
        });
        expect(operation.security?.length).toBeGreaterThan(0);
        expect(operation.responses['422']?.content['application/json'].schema).toEqual({
          $ref: '#/components/schemas/HTTPValidationError',
        });
      }
    }
  });

  it('should give every error answer an example with its own status code, not the schema default 500', () => {
    const examples: string[] = [];
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item) as [string, Record<string, any>][]) {
        for (const [status, response] of Object.entries(operation.responses) as [string, any][]) {
          const media = response.content?.['application/json'];
          if (media?.schema?.$ref !== '#/components/schemas/ErrorResponse') continue;
          expect({ path, method, status, example: media.example }).toEqual({
            path,
            method,
            status,
            example: { error: expect.any(String), code: Number(status) },
          });
          examples.push(status);
        }
      }
    }
    expect(new Set(examples)).toEqual(new Set(['401', '403', '404', '409', '429', '503']));
  });

  it('should document the problem-column additions as optional properties', () => {
    const request = document.components.schemas.AutoMLTrainingRequest as ObjectSchema;
    const update = document.components.schemas.AutoMLTrainingStatusUpdate as ObjectSchema;
    const nullableString = { anyOf: [expect.objectContaining({ type: 'string' }), { type: 'null' }] };
    for (const field of ['group_column', 'action_column', 'propensity_column', 'reward_column', 'cost_column']) {
      expect({ field, schema: request.properties?.[field] }).toEqual({
        field,
        schema: expect.objectContaining(nullableString),
      });
      expect(request.required).not.toContain(field);
    }
    for (const field of ['model_version', 'objective']) {
      expect({ field, schema: update.properties?.[field] }).toEqual({
        field,
        schema: expect.objectContaining(nullableString),
      });
    }
    expect(update.properties?.metrics).toMatchObject({
      anyOf: [{ type: 'object', additionalProperties: { type: 'number' }, maxProperties: 100 }, { type: 'null' }],
    });
    expect(update.required).toEqual(['status']);
  });

  it('should add the job response fields of issues 13, 17 and 20 as optional and nullable', () => {
    const job = document.components.schemas.AutoMLTrainingJobResponse as ObjectSchema & {
      properties: Record<string, any>;
    };
    const seed = loadSeed(SEEDS[0]).components.schemas.AutoMLTrainingJobResponse as ObjectSchema;
    const added = Object.keys(job.properties).filter((name) => !(name in seed.properties!));
    expect(added.sort()).toEqual(
      [
        'label_column',
        'feature_columns',
        'group_column',
        'action_column',
        'propensity_column',
        'reward_column',
        'cost_column',
        'tuning',
        'started_at',
        'finished_at',
        'model_version',
        'objective',
        'metrics',
        'mlflow_run_url',
        'model_version_url',
        'airflow_run_id',
      ].sort(),
    );
    for (const name of added) {
      expect({ name, required: job.required?.includes(name), nullable: job.properties[name].anyOf?.at(-1) }).toEqual({
        name,
        required: false,
        nullable: { type: 'null' },
      });
    }
  });

  it('should serve Swagger UI at /docs', async () => {
    const response = await testApp.http().get('/docs/').expect(200);
    expect(response.text).toContain('swagger-ui');
  });
});

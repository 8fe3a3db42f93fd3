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

    it.each(operations)('should reproduce $method $path field for field', ({ path, method, operation }) => {
      expect(document.paths[path]?.[method]).toEqual(operation);
    });

    it('should reproduce every component schema the operations reference', () => {
      const names = referencedSchemas(seed.paths, seed.components.schemas);
      expect(names.size).toBeGreaterThan(2);
      for (const name of names) {
        expect({ name, schema: document.components.schemas[name] }).toEqual({ name, schema: seed.components.schemas[name] });
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

  it('should serve Swagger UI at /docs', async () => {
    const response = await testApp.http().get('/docs/').expect(200);
    expect(response.text).toContain('swagger-ui');
  });
});

import { Agent, request as httpRequest } from 'node:http';

/**
 * Generates malformed requests from the service's own OpenAPI document and
 * checks each answer against the contract: never 5xx; 422 is FastAPI's
 * `{"detail": [{type, loc, msg, ...}]}`; every other 4xx is ErrorResponse
 * `{"error": string, "code": status}`. Deterministic for a given seed.
 */
export interface FuzzTarget {
  baseUrl: string;
  /** Credentials to choose from (most requests use a valid one so validation is reached). */
  credentials: Record<string, string>[];
  /** Ids of jobs that exist, so some requests reach real rows. */
  knownIds: string[];
}

export interface FuzzFailure {
  request: string;
  status: number;
  body: string;
  reason: string;
}

type Operation = { method: string; path: string; parameters: { name: string; in: string }[]; hasBody: boolean };

/** mulberry32: small, seedable, good enough to pick cases. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY_STRINGS = [
  '',
  ' ',
  'null',
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
  '{12345678-1234-1234-1234-123456789012}',
  'urn:uuid:12345678-1234-1234-1234-123456789012',
  '12345678123412341234123456789012',
  "'; DROP TABLE automl_training_jobs; --",
  '../../etc/passwd',
  '%00',
  '\u0000',
  '\ud800',
  '😀'.repeat(50),
  'é\u0301\u200b\u202e',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'x'.repeat(10_000),
  '-1',
  '1e309',
  'NaN',
  'true',
  '[]',
  '{}',
];

const NASTY_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  [],
  {},
  [null],
  { $ne: 1 },
  { __proto__: { polluted: 1 } },
  'x'.repeat(100_000),
];

export class ContractFuzzer {
  private readonly random: () => number;
  readonly failures: FuzzFailure[] = [];
  readonly statusCounts = new Map<number, number>();
  private operations: Operation[] = [];

  constructor(
    private readonly target: FuzzTarget,
    readonly seed: number,
  ) {
    this.random = prng(seed);
  }

  async load(): Promise<void> {
    const document = (await (await fetch(`${this.target.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown }>>;
    };
    this.operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        parameters: operation.parameters ?? [],
        hasBody: operation.requestBody !== undefined,
      })),
    );
  }

  async run(count: number, concurrency = 8): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        await this.one();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  private chance(p: number): boolean {
    return this.random() < p;
  }

  private string(): string {
    if (this.chance(0.3) && this.target.knownIds.length > 0) return this.pick(this.target.knownIds);
    if (this.chance(0.2))
      return Array.from({ length: 1 + Math.floor(this.random() * 40) }, () =>
        String.fromCharCode(Math.floor(this.random() * 0xffff)),
      ).join('');
    return this.pick(NASTY_STRINGS);
  }

  private value(depth = 0): unknown {
    const roll = this.random();
    if (roll < 0.35) return this.string();
    if (roll < 0.6) return this.pick(NASTY_VALUES);
    if (roll < 0.75 && depth < 3)
      return Array.from({ length: Math.floor(this.random() * 4) }, () => this.value(depth + 1));
    if (depth < 3)
      return Object.fromEntries(
        Array.from({ length: Math.floor(this.random() * 4) }, () => [
          this.string().slice(0, 20),
          this.value(depth + 1),
        ]),
      );
    return this.random();
  }

  private validBody(path: string): Record<string, unknown> {
    if (path.endsWith('/status')) return { status: this.pick(['ready', 'queued', 'running', 'complete', 'failed']) };
    return {
      name: 'fuzz',
      domain: 'fuzz',
      owner: 'fuzz',
      source_table: 'fuzz.table',
      label_column: 'y',
      problem_type: 'regression',
      algorithm: 'lightgbm_regressor',
    };
  }

  private body(path: string): { contentType: string | null; payload: string } {
    const roll = this.random();
    if (roll < 0.1)
      return {
        contentType: 'application/json',
        payload: this.pick([
          '{bad',
          '{"a":1,}',
          '[',
          '',
          'null',
          '"x"',
          '[1,2]',
          '{"a":"\\ud800"}',
          `${'['.repeat(5000)}${']'.repeat(5000)}`,
        ]),
      };
    if (roll < 0.15)
      return {
        contentType: this.pick([
          'text/plain',
          'application/xml',
          'multipart/form-data',
          'application/x-www-form-urlencoded',
        ]),
        payload: 'status=running',
      };
    if (roll < 0.2) return { contentType: null, payload: JSON.stringify(this.validBody(path)) };
    const body: Record<string, unknown> = this.validBody(path);
    const mutations = 1 + Math.floor(this.random() * 3);
    for (let i = 0; i < mutations; i++) {
      const keys = [
        ...Object.keys(body),
        'mlflow_run_id',
        'error_message',
        'feature_columns',
        'preset',
        'tuning',
        'feature_engineering_job_id',
        'status',
        'job_id',
        '__proto__',
      ];
      const key = this.pick(keys);
      if (this.chance(0.3)) delete body[key];
      else if (key === 'tuning' && this.chance(0.5))
        body[key] = {
          trials: this.value(),
          time_budget_minutes: this.value(),
          [this.string().slice(0, 20)]: this.value(),
        };
      else body[key] = this.value();
    }
    return {
      contentType: 'application/json',
      payload: this.chance(0.05) ? JSON.stringify([body]) : JSON.stringify(body),
    };
  }

  /** A path segment: encoded text, sometimes with a raw invalid percent-escape. */
  private pathSegment(): string {
    const encoded = encodeURIComponent(this.string().replace(/[\ud800-\udfff]/g, '\ufffd'));
    return this.chance(0.05) ? `${encoded}${this.pick(['%FF', '%ED%A0%80', '%', '%zz'])}` : encoded;
  }

  private async one(): Promise<void> {
    const operation = this.pick(this.operations);
    let path = operation.path.replace('{job_id}', () => this.pathSegment());
    const query = new URLSearchParams();
    for (const parameter of operation.parameters.filter((p) => p.in === 'query')) {
      const repeats = this.chance(0.2) ? 1 + Math.floor(this.random() * 4) : this.chance(0.7) ? 1 : 0;
      for (let i = 0; i < repeats; i++)
        query.append(this.chance(0.1) ? `${parameter.name}[]` : parameter.name, this.string());
    }
    if (query.size > 0) path += `?${query.toString()}`;
    const headers: Record<string, string> = this.chance(0.85)
      ? { ...this.pick(this.target.credentials) }
      : this.chance(0.5)
        ? {}
        : { 'Authorization-PSK': this.string().replace(/[^\x20-\x7e]/g, '') };
    let payload: string | undefined;
    if (operation.hasBody || this.chance(0.1)) {
      const body = this.body(operation.path);
      payload = body.payload;
      if (body.contentType) headers['content-type'] = body.contentType;
    }
    const request = `${operation.method} ${path.slice(0, 200)} ${payload?.slice(0, 200) ?? ''}`;
    if (this.chance(0.05))
      (headers as Record<string, string | string[]>)['Authorization-PSK'] = [
        this.string().replace(/[^\x20-\x7e]/g, ''),
        'second',
      ];
    let status: number;
    let text: string;
    try {
      ({ status, text } = await send(`${this.target.baseUrl}${path}`, operation.method, headers, payload));
    } catch (error) {
      this.failures.push({
        request: `${request} ${JSON.stringify(headers)}`,
        status: 0,
        body: '',
        reason: `no answer: ${(error as Error).message}`,
      });
      return;
    }
    this.statusCounts.set(status, (this.statusCounts.get(status) ?? 0) + 1);
    const reason = checkAnswer(status, text);
    if (reason)
      this.failures.push({
        request: `${request} ${JSON.stringify(headers).slice(0, 300)}`,
        status,
        body: text.slice(0, 300),
        reason,
      });
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** Raw HTTP: unlike fetch it sends bodies on GET and repeated header lines, as hostile clients do. */
function send(
  url: string,
  method: string,
  headers: Record<string, string | string[]>,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const framed = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const request = httpRequest(url, { method, headers: framed, agent, timeout: 10_000 }, (response) => {
      if (response.statusCode === 200 && response.headers['content-type']?.startsWith('text/event-stream')) {
        // An event stream never ends by itself: its first frame is the answer, then hang up.
        response.once('data', (chunk: Buffer) => {
          resolve({ status: 200, text: chunk.toString('utf8') });
          request.destroy();
        });
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timed out after 10 s')));
    request.on('error', reject);
    request.end(body);
  });
}

/** Why an answer breaks the contract, or null. */
export function checkAnswer(status: number, text: string): string | null {
  if (status >= 500) return '5xx';
  if (status < 400) return null;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'error body is not JSON';
  }
  if (status === 422) {
    const detail = (body as { detail?: unknown }).detail;
    if (!Array.isArray(detail) || detail.length === 0) return '422 without a detail list';
    const bad = detail.find(
      (item: { type?: unknown; loc?: unknown; msg?: unknown }) =>
        typeof item.type !== 'string' ||
        typeof item.msg !== 'string' ||
        !Array.isArray(item.loc) ||
        item.loc[0] === undefined,
    );
    return bad ? `422 item not pydantic-shaped: ${JSON.stringify(bad).slice(0, 200)}` : null;
  }
  const { error, code } = body as { error?: unknown; code?: unknown };
  if (typeof error !== 'string' || code !== status) return 'error body is not ErrorResponse {error, code}';
  return null;
}

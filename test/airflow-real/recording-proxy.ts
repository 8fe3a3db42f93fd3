import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface Exchange {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/**
 * A loopback HTTP proxy in front of one Airflow (real or double) that records
 * every exchange, so the same client calls can be compared across both.
 */
export class RecordingProxy {
  readonly exchanges: Exchange[] = [];
  url = '';
  private server!: Server;

  private constructor(private readonly target: string) {}

  static async start(target: string): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(target);
    proxy.server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([name]) => !['host', 'connection', 'content-length'].includes(name)) as [
          string,
          string,
        ][],
      );
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      try {
        const answer = await fetch(`${proxy.target}${req.url}`, { method: req.method, headers, body });
        const text = await answer.text();
        proxy.exchanges.push({
          method: req.method ?? 'GET',
          path: new URL(req.url ?? '/', 'http://x').pathname,
          status: answer.status,
          body: parse(text),
        });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(text);
      } catch (error) {
        res.writeHead(502).end(String(error));
      }
    });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', () => resolve()));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** Exchanges recorded since `mark` (an index into `exchanges`). */
  since(mark: number): Exchange[] {
    return this.exchanges.slice(mark);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function parse(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The shape of a JSON value: object keys with their shapes, the union of array
 * elements' shapes, `string`/`number`/`boolean`/`null` otherwise.
 */
export type Shape = string | { [key: string]: Shape } | Shape[];

export function shapeOf(value: unknown): Shape {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const merged: Record<string, Shape> = {};
    const scalars = new Set<string>();
    for (const item of value) {
      const shape = shapeOf(item);
      if (typeof shape === 'string') scalars.add(shape);
      else if (!Array.isArray(shape)) Object.assign(merged, shape);
    }
    return [...(Object.keys(merged).length > 0 ? [merged] : []), ...[...scalars].sort()];
  }
  if (typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((key) => [key, shapeOf((value as Record<string, unknown>)[key])]),
    );
  }
  return typeof value;
}

/**
 * Differences between two shapes as readable paths: keys only one side has,
 * and types that differ where neither side is null (a null start_date on a
 * queued run and a string on a running one are the same field).
 */
export function shapeDiff(double: Shape, real: Shape, path = '$'): string[] {
  if (typeof double === 'string' || typeof real === 'string') {
    if (double === real || double === 'null' || real === 'null') return [];
    return [`${path}: double ${JSON.stringify(double)} ≠ real ${JSON.stringify(real)}`];
  }
  if (Array.isArray(double) || Array.isArray(real)) {
    if (!Array.isArray(double) || !Array.isArray(real))
      return [`${path}: double ${JSON.stringify(double)} ≠ real ${JSON.stringify(real)}`];
    const a = double.find((s) => typeof s === 'object' && !Array.isArray(s));
    const b = real.find((s) => typeof s === 'object' && !Array.isArray(s));
    if (a && b) return shapeDiff(a, b, `${path}[]`);
    return [];
  }
  const out: string[] = [];
  for (const key of new Set([...Object.keys(double), ...Object.keys(real)])) {
    if (!(key in real)) out.push(`${path}.${key}: only the double has it`);
    else if (!(key in double)) out.push(`${path}.${key}: only real Airflow has it`);
    else out.push(...shapeDiff(double[key], real[key], `${path}.${key}`));
  }
  return out;
}

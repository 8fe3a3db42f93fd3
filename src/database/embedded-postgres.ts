import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EmbeddedServer } from './embedded-server';

export interface EmbeddedOptions {
  /** Null: in memory. */
  dataDir: string | null;
  /** Migrations run at start: a new data dir may then be seeded with the schema already migrated. */
  migrationsRun: boolean;
}

/** The compiled worker entry; absent when running from TypeScript sources (ts-jest), where the server runs in this thread. */
const WORKER = join(__dirname, 'embedded-postgres.worker.js');

/** Runs serveEmbedded in a worker thread, so seeding and PGlite's start proceed while this thread loads the app. */
function serveInWorker(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const worker = new Worker(WORKER, { workerData: { dataDir: options.dataDir, migrated: options.migrationsRun } });
  let ended = false;
  worker.once('exit', () => (ended = true));
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => {
      void worker.terminate();
      reject(error);
    };
    const exitedEarly = (code: number) =>
      failed(new Error(`embedded PostgreSQL worker exited (${code}) before it started`));
    worker.once('error', failed);
    worker.once('exit', exitedEarly);
    worker.once('message', (message: { port?: number; error?: string }) => {
      worker.off('exit', exitedEarly);
      if (message.error !== undefined || message.port === undefined)
        return failed(new Error(`embedded PostgreSQL failed to start: ${message.error}`));
      resolve({
        port: message.port,
        // Done when the worker has ended: after it closed the server and PGlite, or at once if it already had.
        stop: () =>
          new Promise<void>((done, fail) => {
            if (ended) return done();
            let failure: string | undefined;
            worker.once('exit', () =>
              failure === undefined ? done() : fail(new Error(`embedded PostgreSQL failed to stop: ${failure}`)),
            );
            worker.once('message', (reply: { error?: string }) => {
              failure = reply.error;
              void worker.terminate();
            });
            worker.postMessage('stop');
          }),
      });
    });
  });
}

async function serve(options: EmbeddedOptions): Promise<EmbeddedServer> {
  if (existsSync(WORKER)) return serveInWorker(options);
  const { serveEmbedded } = await import('./embedded-server');
  return serveEmbedded(options.dataDir, options.migrationsRun);
}

let early: { options: EmbeddedOptions; server: Promise<EmbeddedServer> } | null = null;

/**
 * Embedded PostgreSQL (PGlite) served over the PostgreSQL wire protocol on a
 * loopback port chosen by the OS, so the app reaches it through the same `pg`
 * driver, TypeORM dialect and migrations as a real server. PGlite has a single
 * session, so clients must use a pool of one connection: that serialises
 * transactions instead of interleaving them. PGlite runs in a worker thread
 * (embedded-postgres.worker.ts) in the built service.
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly server: EmbeddedServer,
    readonly port: number,
  ) {}

  /**
   * Starts the database now, before the app's modules are loaded (main.ts);
   * the next `start` with the same options takes it over.
   */
  static prestart(options: EmbeddedOptions): void {
    const server = serve(options);
    // Failures surface in `start`; if nothing takes it over, the process is failing for another reason.
    server.catch(() => undefined);
    early = { options, server };
  }

  static async start(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
    const prestarted =
      early && early.options.dataDir === options.dataDir && early.options.migrationsRun === options.migrationsRun
        ? early.server
        : null;
    if (prestarted) early = null;
    const server = await (prestarted ?? serve(options));
    return new EmbeddedPostgres(server, server.port);
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }
}

import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * Embedded PostgreSQL (PGlite) served over the PostgreSQL wire protocol on a
 * loopback port chosen by the OS, so the app reaches it through the same `pg`
 * driver, TypeORM dialect and migrations as a real server. PGlite has a single
 * session, so clients must use a pool of one connection: that serialises
 * transactions instead of interleaving them.
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    readonly port: number,
  ) {}

  static async start(dataDir: string | null): Promise<EmbeddedPostgres> {
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    const db = await PGlite.create(dataDir ?? 'memory://');
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0 });
    await server.start();
    const address = (server as unknown as { server: { address(): { port: number } } }).server.address();
    return new EmbeddedPostgres(db, server, address.port);
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async stop(): Promise<void> {
    await this.server.stop();
    await this.db.close();
  }
}

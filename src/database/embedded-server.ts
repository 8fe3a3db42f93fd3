import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { seed } from './pglite-template';

export interface EmbeddedServer {
  port: number;
  stop(): Promise<void>;
}

/**
 * PGlite on `dataDir` (seeded from a template when new; in memory when null)
 * behind a PostgreSQL wire protocol server on a loopback port chosen by the OS.
 * Runs in the thread that calls it: EmbeddedPostgres runs it in a worker.
 */
export async function serveEmbedded(dataDir: string | null, migrated: boolean): Promise<EmbeddedServer> {
  if (dataDir && !(await seed(dataDir, migrated))) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir ?? 'memory://');
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0 });
  await server.start();
  const address = (server as unknown as { server: { address(): { port: number } } }).server.address();
  return {
    port: address.port,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

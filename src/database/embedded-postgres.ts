import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * A freshly initialised PGlite data dir (what `initdb` writes) for the
 * installed PGlite version, kept under node_modules/.cache and copied into
 * each new data dir: initdb in WebAssembly takes seconds and a few hundred
 * MiB, a copy of its result milliseconds. Created on first need (or by the
 * build, scripts/build.js) in a temporary dir renamed into place once
 * complete, so concurrent starts never see half a template. Returns null
 * where there is no writable node_modules: callers then run initdb as before.
 */
export async function pgliteTemplate(): Promise<string | null> {
  try {
    const entry = require.resolve('@electric-sql/pglite');
    const nodeModules = entry.slice(0, entry.lastIndexOf('/node_modules/') + '/node_modules'.length);
    const { version } = JSON.parse(readFileSync(join(nodeModules, '@electric-sql', 'pglite', 'package.json'), 'utf8')) as { version: string };
    const template = join(nodeModules, '.cache', 'automl-pglite-template', version);
    if (existsSync(join(template, 'PG_VERSION'))) return template;
    const building = `${template}.${process.pid}.${Date.now()}`;
    try {
      mkdirSync(building, { recursive: true });
      await (await PGlite.create(building)).close();
      try {
        renameSync(building, template);
      } catch (error) {
        // Another process put its template there first.
        if (!existsSync(join(template, 'PG_VERSION'))) throw error;
      }
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
    return template;
  } catch {
    return null;
  }
}

/** Fills a missing or empty data dir from the template; false (and the dir left empty) if it could not. */
async function seed(dataDir: string): Promise<boolean> {
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) return false;
  const template = await pgliteTemplate();
  if (!template) return false;
  try {
    cpSync(template, dataDir, { recursive: true });
    return true;
  } catch {
    rmSync(dataDir, { recursive: true, force: true });
    return false;
  }
}

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
    if (dataDir && !(await seed(dataDir))) mkdirSync(dataDir, { recursive: true });
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

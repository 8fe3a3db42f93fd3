import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS } from './migrations';

/**
 * Templates of PGlite data dirs, kept under node_modules/.cache and copied into
 * each new data dir: initdb in WebAssembly takes seconds and a few hundred MiB,
 * a copy of its result milliseconds.
 * - The base template, what `initdb` writes, per PGlite version: made on first
 *   need (or by the build, scripts/build.js).
 * - The migrated template: the base one with every migration of this build
 *   applied, keyed on the PGlite version and the migrations' code, made by the
 *   build only (database.config.ts, buildMigratedTemplate). Used for data dirs
 *   of services that run migrations at start, which then find none pending.
 * Each is made in a temporary dir renamed into place once complete, so
 * concurrent starts never see half a template.
 */
function cacheRoot(): { root: string; version: string } {
  const entry = require.resolve('@electric-sql/pglite');
  const nodeModules = entry.slice(0, entry.lastIndexOf('/node_modules/') + '/node_modules'.length);
  const { version } = JSON.parse(
    readFileSync(join(nodeModules, '@electric-sql', 'pglite', 'package.json'), 'utf8'),
  ) as { version: string };
  return { root: join(nodeModules, '.cache', 'automl-pglite-template'), version };
}

/** Where the template of the migrated schema is (or would be): PGlite version plus a hash of the migrations' code. */
export function migratedTemplatePath(): string | null {
  try {
    const { root, version } = cacheRoot();
    const hash = createHash('sha256');
    for (const migration of MIGRATIONS)
      hash.update(migration.name).update('\0').update(migration.toString()).update('\0');
    return join(root, `${version}-migrated-${hash.digest('hex').slice(0, 16)}`);
  } catch {
    return null;
  }
}

/** Makes `template` with `fill(dir)` in a temporary dir renamed into place; true if it is there afterwards. */
export async function makeTemplate(template: string, fill: (dir: string) => Promise<void>): Promise<boolean> {
  if (existsSync(join(template, 'PG_VERSION'))) return true;
  const building = `${template}.${process.pid}.${Date.now()}`;
  try {
    mkdirSync(building, { recursive: true });
    await fill(building);
    try {
      renameSync(building, template);
    } catch (error) {
      // Another process put its template there first.
      if (!existsSync(join(template, 'PG_VERSION'))) throw error;
    }
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return true;
}

/**
 * The base template (initdb's output) for the installed PGlite version, made if
 * missing. Null where there is no writable node_modules: callers then run
 * initdb themselves.
 */
export async function pgliteTemplate(): Promise<string | null> {
  try {
    const { root, version } = cacheRoot();
    const template = join(root, version);
    await makeTemplate(template, async (dir) => {
      const { PGlite } = await import('@electric-sql/pglite');
      await (await PGlite.create(dir)).close();
    });
    return template;
  } catch {
    return null;
  }
}

/**
 * Fills a missing or empty data dir from a template: the migrated one when
 * `migrated` and it exists, else the base one. False (and the dir left empty)
 * if it could not.
 */
export async function seed(dataDir: string, migrated: boolean): Promise<boolean> {
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) return false;
  const migratedTemplate = migrated ? migratedTemplatePath() : null;
  const template =
    migratedTemplate && existsSync(join(migratedTemplate, 'PG_VERSION')) ? migratedTemplate : await pgliteTemplate();
  if (!template) return false;
  try {
    cpSync(template, dataDir, { recursive: true });
    return true;
  } catch {
    rmSync(dataDir, { recursive: true, force: true });
    return false;
  }
}

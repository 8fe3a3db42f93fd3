'use strict';
/**
 * `npm run build` (nest build) that records what it built from: a hash of
 * every file under src/ (names and contents) and of the build's
 * configuration and dependency lock, written to dist/.build-inputs once the
 * build succeeds. With --if-stale (npm start's prestart) it builds only when
 * dist/ is missing, the last build failed or was not recorded, or any input
 * differs: a fresh clone and a changed, added or deleted source still get
 * built; an up-to-date checkout starts at once. It also makes the embedded
 * database's templates (src/database/pglite-template.ts).
 */
const { createHash } = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join, relative } = require('node:path');

const ROOT = join(__dirname, '..');
const STAMP = join(ROOT, 'dist', '.build-inputs');
const MAIN = join(ROOT, 'dist', 'main.js');
const CONFIG = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'nest-cli.json'];

function files(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => (entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)]));
}

function inputsHash() {
  const hash = createHash('sha256');
  for (const file of [...CONFIG.map((name) => join(ROOT, name)), ...files(join(ROOT, 'src'))]) {
    hash.update(relative(ROOT, file)).update('\0');
    hash.update(existsSync(file) ? readFileSync(file) : '(missing)').update('\0');
  }
  return hash.digest('hex');
}

const inputs = inputsHash();
if (
  process.argv.includes('--if-stale') &&
  existsSync(MAIN) &&
  existsSync(STAMP) &&
  readFileSync(STAMP, 'utf8') === inputs
)
  process.exit(0);

const build = spawnSync(process.execPath, [require.resolve('@nestjs/cli/bin/nest.js'), 'build'], {
  cwd: ROOT,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);
// The embedded database's templates (node_modules/.cache): initdb's output, made once per PGlite version, and
// that with this build's migrations applied, so the first start on a fresh data dir pays for neither.
spawnSync(process.execPath, ['-e', "require('./dist/database/database.config').buildMigratedTemplate()"], {
  cwd: ROOT,
  stdio: 'inherit',
});
writeFileSync(STAMP, inputs);

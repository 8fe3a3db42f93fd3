import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');

/**
 * The file `npm start` runs (after its prestart build, when stale), read from
 * package.json, so tests that start the built service fail on a wrong path.
 */
export const SERVICE_MAIN = join(
  ROOT,
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string).replace(/^node\s+/, ''),
);

'use strict';
/**
 * Import cycles under src/: none between files, and none between the feature
 * module's folders (src/automl-training/<folder>, a subfolder such as api/dto
 * counting as its own), so each folder can be read with only the folders
 * below it in mind. Type-only imports count: they tie
 * the folders together as much as any other. Part of `npm run lint:ts`.
 */
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');

const ROOT = join(__dirname, '..');
const SRC = join(ROOT, 'src');
const MODULE = join(SRC, 'automl-training');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)'(\.{1,2}\/[^']+)'/g;

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );

/** file → the files under src/ it imports */
const graph = new Map();
for (const file of walk(SRC)) {
  const targets = [];
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const base = resolve(dirname(file), spec);
    const target = [`${base}.ts`, join(base, 'index.ts')].find((candidate) => existsSync(candidate));
    if (target && target.startsWith(SRC)) targets.push(target);
  }
  graph.set(file, targets);
}

/** Every cycle a depth-first walk meets, each as the path that closes it. */
function cycles(edges) {
  const found = [];
  const state = new Map();
  const stack = [];
  const visit = (node) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of edges.keys()) if (!state.has(node)) visit(node);
  return found;
}

const folderOf = (file) => {
  const folder = relative(MODULE, dirname(file));
  return folder.startsWith('..') ? null : folder || '(module root)';
};
const folders = new Map();
const because = new Map();
for (const [file, targets] of graph) {
  const from = folderOf(file);
  for (const target of targets) {
    const to = folderOf(target);
    if (!from || !to || from === to) continue;
    if (!folders.has(from)) folders.set(from, new Set());
    folders.get(from).add(to);
    if (!because.has(`${from}>${to}`))
      because.set(`${from}>${to}`, `${relative(SRC, file)} imports ${relative(SRC, target)}`);
  }
}

const fileCycles = cycles(graph).map((cycle) => cycle.map((file) => relative(SRC, file)).join(' -> '));
const folderCycles = cycles(new Map([...folders].map(([folder, to]) => [folder, [...to]]))).map((cycle) =>
  cycle
    .slice(1)
    .map((to, i) => `${cycle[i]} -> ${to} (${because.get(`${cycle[i]}>${to}`)})`)
    .join('; '),
);
for (const cycle of fileCycles) console.error(`import cycle between files: ${cycle}`);
for (const cycle of folderCycles) console.error(`import cycle between folders of src/automl-training: ${cycle}`);
if (fileCycles.length + folderCycles.length > 0) process.exit(1);
console.log(`check-imports: ${graph.size} files under src/, no import cycle between files or between folders`);

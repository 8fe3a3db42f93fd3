'use strict';
/**
 * Preloaded with `node -r` by bench/diagnostics/modules.ts: wraps Module.prototype.load
 * (called once per module actually loaded, never for a cached require) and
 * accounts the time, RSS and heap growth of each package's loading. A load
 * that crosses into another package is a frame: its inclusive figures go to
 * that package, and are taken out of the enclosing package's own (self)
 * figures. Frames entered from the app's code (or from no module) are
 * "top-level": what the app pays for requiring each of its dependencies.
 * On SIGUSR2 it writes a JSON report to MODULE_ACCOUNTING_OUT (and a heap
 * snapshot to MODULE_ACCOUNTING_HEAP_SNAPSHOT when set).
 */
const Module = require('node:module');
const { writeFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');

const started = performance.now();
const rssAtStart = process.memoryUsage.rss();
const heapAtStart = process.memoryUsage().heapUsed;

/** @type {Map<string, {self: {ms: number, rss: number, heap: number, files: number}, top: {ms: number, rss: number, heap: number, files: number, loads: number}}>} */
const packages = new Map();
const stack = [];
let files = 0;

function packageOf(filename) {
  const index = filename.lastIndexOf('/node_modules/');
  if (index < 0) return '(app)';
  const parts = filename.slice(index + '/node_modules/'.length).split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

function entry(name) {
  let found = packages.get(name);
  if (!found) {
    found = { self: { ms: 0, rss: 0, heap: 0, files: 0 }, top: { ms: 0, rss: 0, heap: 0, files: 0, loads: 0 } };
    packages.set(name, found);
  }
  return found;
}

const originalLoad = Module.prototype.load;
Module.prototype.load = function load(filename) {
  files += 1;
  const name = packageOf(filename);
  const parent = stack[stack.length - 1];
  entry(name).self.files += 1;
  if (parent && parent.name === name) {
    parent.files += 1;
    return originalLoad.apply(this, arguments);
  }
  const frame = {
    name,
    top: !parent || parent.name === '(app)',
    files: 1,
    children: { ms: 0, rss: 0, heap: 0 },
    t: performance.now(),
    rss: process.memoryUsage.rss(),
    heap: process.memoryUsage().heapUsed,
  };
  stack.push(frame);
  try {
    return originalLoad.apply(this, arguments);
  } finally {
    stack.pop();
    const ms = performance.now() - frame.t;
    const rss = process.memoryUsage.rss() - frame.rss;
    const heap = process.memoryUsage().heapUsed - frame.heap;
    const own = entry(name);
    own.self.ms += ms - frame.children.ms;
    own.self.rss += rss - frame.children.rss;
    own.self.heap += heap - frame.children.heap;
    if (frame.top && name !== '(app)') {
      own.top.ms += ms;
      own.top.rss += rss;
      own.top.heap += heap;
      own.top.files += frame.files;
      own.top.loads += 1;
    }
    if (parent) {
      parent.children.ms += ms;
      parent.children.rss += rss;
      parent.children.heap += heap;
      parent.files += frame.files;
    }
  }
};

process.on('SIGUSR2', () => {
  const memory = process.memoryUsage();
  const report = {
    sinceHookMs: performance.now() - started,
    files,
    rssAtStart,
    heapAtStart,
    rssNow: memory.rss,
    heapNow: memory.heapUsed,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    packages: Object.fromEntries(packages),
  };
  writeFileSync(process.env.MODULE_ACCOUNTING_OUT, JSON.stringify(report));
  if (process.env.MODULE_ACCOUNTING_HEAP_SNAPSHOT)
    require('node:v8').writeHeapSnapshot(process.env.MODULE_ACCOUNTING_HEAP_SNAPSHOT);
});

import { Session } from 'node:inspector/promises';
import { startBenchApp } from '../shared/bench-app';
import { query, seedJobs, writebackLoad } from '../shared/writeback-load';

/**
 * `npm run bench:alloc`: what the writeback allocates per request, by package and by function: the
 * service runs in this process (same module and pipeline as production) under the writeback load for
 * 5 s with V8's sampling heap profiler on, counting objects that garbage collection has already freed.
 * The load generator (autocannon, http-parser-js) runs in the same process: its rows are the client's.
 * Allocation drives the young-generation collections and, through what survives them, the RSS growth
 * under load.
 */
interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}
async function main() {
  const bench = await startBenchApp({});
  const url = bench.url;
  const dbUrl = (bench.config as unknown as { database: { url: string } }).database.url;
  await seedJobs(dbUrl, 20_000);
  const ids = (await query<{ job_id: string }>(dbUrl, 'SELECT job_id FROM automl_training_jobs')).map((r) => r.job_id);
  await writebackLoad(url, ids.slice(0, 2000), 2);
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const result = await writebackLoad(url, ids.slice(2000), 5);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: Node } };
  const requests = result.requests.total;
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  const walk = (node: Node, stack: string[]) => {
    const cf = node.callFrame;
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(cf.url);
    const app = /\/(src|dist)\/(.+)\.(t|j)s$/.exec(cf.url);
    const owner = m ? m[1] : app ? `(app) ${app[2]}` : null;
    const next = owner ? [...stack, owner] : stack;
    if (node.selfSize) {
      const key = `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + node.selfSize);
      const o = next.at(-1) ?? '(node)';
      byPkg.set(o, (byPkg.get(o) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, next);
  };
  walk(profile.head, []);
  const total = [...byPkg.values()].reduce((a, b) => a + b, 0);
  console.log(
    `requests ${requests}; sampled allocation ${(total / 2 ** 20).toFixed(0)} MiB = ${(total / requests / 1024).toFixed(1)} KiB per request (autocannon's share included below)`,
  );
  const show = (map: Map<string, number>, n: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .forEach(([k, v]) => console.log(`${(v / requests / 1024).toFixed(2).padStart(8)} KiB/req  ${k}`));
  show(byPkg, 25);
  console.log('---');
  show(byFn, 40);
  await bench.close();
}
main().then(() => process.exit(0));

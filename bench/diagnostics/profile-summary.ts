import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const SPECIAL = new Set(['(idle)', '(garbage collector)', '(program)']);

/** The package (or dist/ file) a frame's code belongs to; null for Node's own code and natives. */
function ownerOf(url: string): string | null {
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module) return module[1];
  const app = /\/dist\/(.+)\.js$/.exec(url);
  return app ? `(app) ${app[1]}` : null;
}

export interface ProfileSummary {
  busyMs: number;
  idleShare: number;
  /** Busy time by the first package or app file on each sample's stack (Node internals count for their caller). */
  byOwner: { owner: string; share: number }[];
  /** Busy time by function (self time). */
  byFunction: { name: string; share: number }[];
}

/**
 * Where a V8 .cpuprofile's busy time goes: each sample is charged to the
 * innermost frame that belongs to a package or to the app (so time in Node's
 * http, streams or sockets counts for the code that called them), and to its
 * own function. Shares are of busy (not idle) time.
 */
export function summariseProfile(file: string, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = nodes.get(id)!;
    const name = node.callFrame.functionName;
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    let owner: string | null = SPECIAL.has(name) ? name : null;
    for (let at: number | undefined = id; owner === null && at !== undefined; at = parent.get(at))
      owner = ownerOf(nodes.get(at)!.callFrame.url);
    byOwner.set(owner ?? '(node only)', (byOwner.get(owner ?? '(node only)') ?? 0) + us);
    const where = ownerOf(node.callFrame.url) ?? (node.callFrame.url.replace(/^node:/, '') || 'native');
    const label = `${name || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(label, (byFunction.get(label) ?? 0) + us);
  }
  const ranked = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, us]) => [key, Math.round((us / busy) * 1000) / 10] as const);
  return {
    busyMs: Math.round(busy / 1000),
    idleShare: Math.round((idle / (idle + busy)) * 1000) / 10,
    byOwner: ranked(byOwner).map(([owner, share]) => ({ owner, share })),
    byFunction: ranked(byFunction).map(([name, share]) => ({ name, share })),
  };
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: ts-node bench/diagnostics/profile-summary.ts FILE.cpuprofile');
  const summary = summariseProfile(file);
  console.log(`busy ${summary.busyMs} ms, idle ${summary.idleShare} % of the profile`);
  console.table(summary.byOwner);
  console.table(summary.byFunction);
}

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, machine, totalmem } from 'node:os';
import { join } from 'node:path';

/**
 * How a benchmark keeps its figures: one JSON file per group, bench/<group>/results*.json, written with
 * `keepResults`. The Python benchmarks (bench/quality, bench/trainer) write theirs with bench/shared/bench_results.py,
 * the same header in the same shape. Every file starts with the header of its last write:
 *
 *   date     when it was written, ISO 8601 UTC
 *   commit   the git HEAD the figures were measured on (null outside a git checkout)
 *   dirty    whether tracked files other than results files differed from that commit
 *   machine  { arch, cpus, cpu_model, memory_gib, runtime }
 *
 * then the figures, as entries keyed by what a run measures (here: a benchmark's name). A run replaces the entries it
 * measured and keeps the others, and every entry carries the date, commit and dirty of the run that measured it.
 */

const BENCH = join(__dirname, '..');
const ROOT = join(BENCH, '..');

export interface Machine {
  arch: string;
  cpus: number;
  cpu_model: string;
  memory_gib: number;
  runtime: string;
}

export interface RunHeader {
  date: string;
  commit: string | null;
  dirty: boolean | null;
  machine: Machine;
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function runHeader(): RunHeader {
  const commit = git(['rev-parse', 'HEAD']);
  const changes =
    commit === null
      ? null
      : git(['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude,glob)bench/**/results*.json']);
  return {
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    commit,
    dirty: changes === null ? null : changes !== '',
    machine: {
      arch: machine(),
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      memory_gib: Math.round(totalmem() / 2 ** 30),
      runtime: `Node ${process.version}`,
    },
  };
}

/** bench/<group>/<name>: where a group's results file lives. */
export function resultsFile(group: string, name = 'results.json'): string {
  return join(BENCH, group, name);
}

export type ResultsEntry<T> = Pick<RunHeader, 'date' | 'commit' | 'dirty'> & T;

export interface ResultsDocument<T> extends RunHeader {
  entries: Record<string, ResultsEntry<T>>;
}

/**
 * Writes `entries` (each stamped with this run's date, commit and dirty) into `file`, keeping the entries of
 * earlier runs under other keys; returns the document written.
 */
export function keepResults<T extends object>(file: string, entries: Record<string, T>): ResultsDocument<T> {
  const earlier = existsSync(file)
    ? ((JSON.parse(readFileSync(file, 'utf8')) as Partial<ResultsDocument<T>>).entries ?? {})
    : {};
  const header = runHeader();
  const { date, commit, dirty } = header;
  const stamped = Object.fromEntries(
    Object.entries(entries).map(([key, figures]) => [key, { date, commit, dirty, ...figures }]),
  );
  const document: ResultsDocument<T> = { ...header, entries: { ...earlier, ...stamped } };
  writeFileSync(file, `${JSON.stringify(document, null, 1)}\n`);
  return document;
}

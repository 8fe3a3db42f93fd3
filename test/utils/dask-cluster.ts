import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './net';
import { sleep, treeRssMiB } from './real-airflow';
import { ROOT } from './service-main';

export interface DaskClusterOptions {
  /** Where the scheduler and the workers write their logs. */
  dir: string;
  /** The trainer's venv: the workers run the trainer's tasks, so they run its environment. */
  venv: string;
  workers: number;
  /** Each worker's `--memory-limit` (Dask's spelling: `2GiB`, `1.5GB`). */
  memoryLimit: string;
}

/**
 * A Dask cluster on loopback, as a platform runs one for the trainer: `dask scheduler` and `dask worker` processes
 * (one thread each, a memory limit each) from the trainer's venv with this checkout's trainer on their path, each a
 * process-group leader so that stop() also ends what they started.
 */
export class DaskCluster {
  private constructor(
    readonly address: string,
    readonly port: number,
    private readonly processes: Map<string, ChildProcess>,
    private readonly options: DaskClusterOptions,
  ) {}

  static async start(options: DaskClusterOptions): Promise<DaskCluster> {
    mkdirSync(options.dir, { recursive: true });
    const port = await freePort();
    const address = `tcp://127.0.0.1:${port}`;
    const dask = join(options.venv, 'bin', 'dask');
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PYTHONPATH: join(ROOT, 'trainer', 'src'),
      OMP_NUM_THREADS: '1',
    };
    const processes = new Map<string, ChildProcess>();
    const start = (name: string, args: string[]) => {
      const log = openSync(join(options.dir, `${name}.log`), 'a');
      const child = spawn(dask, args, { env, cwd: options.dir, detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      processes.set(name, child);
    };
    start('scheduler', ['scheduler', '--host', '127.0.0.1', '--port', String(port), '--no-dashboard']);
    for (let i = 1; i <= options.workers; i++) {
      start(`worker-${i}`, [
        'worker',
        address,
        '--host',
        '127.0.0.1',
        '--nthreads',
        '1',
        '--nworkers',
        '1',
        '--memory-limit',
        options.memoryLimit,
        '--no-dashboard',
        '--name',
        `worker-${i}`,
      ]);
    }
    const cluster = new DaskCluster(address, port, processes, options);
    // Ready once every worker has told the scheduler it is there (each logs "Registered to").
    for (const deadline = Date.now() + 90_000; ; await sleep(500)) {
      const registered = [...processes.keys()]
        .filter((name) => name.startsWith('worker-'))
        .filter((name) => cluster.log(name).includes('Registered to')).length;
      if (registered === options.workers) return cluster;
      const exited = [...processes.entries()].find(([, child]) => child.exitCode !== null);
      if (exited || Date.now() > deadline) {
        await cluster.stop();
        const name = exited?.[0] ?? 'worker-1';
        throw new Error(`the Dask cluster did not start (${name}): ${cluster.log(name).slice(-2000)}`);
      }
    }
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.options.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Resident memory of the scheduler and of each worker (with the processes it started), MiB. */
  rssMiB(): Record<string, number> {
    return Object.fromEntries(
      [...this.processes.entries()].map(([name, child]) => [name, child.pid ? treeRssMiB(child.pid) : 0]),
    );
  }

  async stop(): Promise<void> {
    for (const child of this.processes.values()) {
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    for (let i = 0; i < 50 && [...this.processes.values()].some((c) => c.exitCode === null && !c.signalCode); i++)
      await sleep(100);
    for (const child of this.processes.values()) {
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

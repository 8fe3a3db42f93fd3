import { fork } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_PSK, createBenchDatabase, startProductionService } from '../shared/bench-app';
import {
  CpuPerRequest,
  cpuTicks,
  figures,
  LoadFigures,
  query,
  seedJobs,
  withCpu,
  writebackLoad,
} from '../shared/writeback-load';

const STREAMS = 200;
const JOBS = 120_000;
const SECONDS = 10;

export interface EventStreamBenchResult {
  streams: number;
  withoutStreams: LoadFigures[];
  withStreams: LoadFigures;
  /** Writeback throughput with the streams open ÷ without (mean of the runs before and after). */
  ratio: number;
  eventsPerSecond: number;
  /** Events each stream should have received: the transitions of the loaded run. */
  eventsExpectedPerStream: number;
  /** Events received ÷ streams × transitions: 1 when no stream lost or was dropped anything. */
  deliveredShare: number;
  deliveryP50Ms: number | null;
  deliveryP99Ms: number | null;
  /** CPU per writeback without streams and with them; `consumersMs` is the consumer process's share, in ms per writeback. */
  cpu: { withoutStreams: CpuPerRequest; withStreams: CpuPerRequest & { consumersMs: number } };
}

type ConsumerMessage =
  | { type: 'opened' | 'reset' }
  | { type: 'failed'; error: string }
  | { type: 'report'; events: number; p50Ms: number | null; p99Ms: number | null };

/**
 * Writeback throughput (50 connections, every request a real transition) with
 * 200 unfiltered event streams open ÷ with none, and the events per second
 * those streams receive meanwhile (goal ≥ 0.8). The consumers run in their
 * own process.
 */
export async function benchEventStreams(): Promise<EventStreamBenchResult> {
  const database = await createBenchDatabase();
  const service = await startProductionService(database.url, { STREAM_MAX_PER_CREDENTIAL: String(STREAMS) });
  const consumers = fork(join(__dirname, 'stream-consumers.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const ask = (message: object): Promise<ConsumerMessage> =>
    new Promise((resolve, reject) => {
      consumers.once('message', (answer: ConsumerMessage) =>
        answer.type === 'failed' ? reject(new Error(answer.error)) : resolve(answer),
      );
      consumers.send(message);
    });
  try {
    await seedJobs(database.url, JOBS);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map(
      (row) => row.job_id,
    );
    const slice = (run: number) => ids.slice(run * 30_000, (run + 1) * 30_000);
    await writebackLoad(service.url, ids.slice(-2_000), 2);

    const before = await withCpu(service.pid, () => writebackLoad(service.url, slice(0), SECONDS));

    await ask({
      type: 'open',
      url: `${service.url}/api/automl/train/jobs/events`,
      headers: { 'Authorization-PSK': BENCH_PSK },
      count: STREAMS,
    });
    await new Promise((r) => setTimeout(r, 500));
    await ask({ type: 'reset' });
    const lastTransitionId = async () =>
      Number(
        (
          await query<{ id: string }>(
            database.url,
            'SELECT COALESCE(max(id), 0) AS id FROM automl_training_job_transitions',
          )
        )[0].id,
      );
    const firstId = await lastTransitionId();
    const started = Date.now();
    const consumerTicks = cpuTicks(consumers.pid!);
    const loaded = await withCpu(service.pid, () => writebackLoad(service.url, slice(1), SECONDS));
    const consumersMs =
      Math.round(
        (((cpuTicks(consumers.pid!) - consumerTicks) * 10) / (loaded.figures.requestsPerSecond * SECONDS)) * 1000,
      ) / 1000;
    // Let the last events arrive, then count.
    await new Promise((r) => setTimeout(r, 1_000));
    const report = (await ask({ type: 'report' })) as Extract<ConsumerMessage, { type: 'report' }>;
    const elapsedSeconds = (Date.now() - started) / 1000;
    const lastId = await lastTransitionId();
    consumers.send({ type: 'close' });
    await new Promise((r) => setTimeout(r, 500));

    const after = figures(await writebackLoad(service.url, slice(2), SECONDS));
    const baseline = (before.figures.requestsPerSecond + after.requestsPerSecond) / 2;
    return {
      streams: STREAMS,
      withoutStreams: [before.figures, after],
      withStreams: loaded.figures,
      ratio: Math.round((loaded.figures.requestsPerSecond / baseline) * 100) / 100,
      eventsPerSecond: Math.round(report.events / elapsedSeconds),
      eventsExpectedPerStream: lastId - firstId,
      deliveredShare: Math.round((report.events / (STREAMS * (lastId - firstId))) * 1000) / 1000,
      deliveryP50Ms: report.p50Ms,
      deliveryP99Ms: report.p99Ms,
      cpu: { withoutStreams: before.cpu, withStreams: { ...loaded.cpu, consumersMs } },
    };
  } finally {
    if (consumers.connected) consumers.send({ type: 'close' });
    await service.stop();
    await database.drop();
  }
}

import { Agent, request as httpRequest } from 'node:http';
import { EventStreamClient } from '../utils/event-stream';

export interface StormOptions {
  baseUrl: string;
  psk: string;
  jobs: number;
  writebacks: number;
  clients: number;
  /** Event streams (filtered to the storm's domain) held open throughout; each must get every transition once, in order. */
  streams?: number;
}

export interface StormReport {
  jobs: number;
  writebacks: number;
  bulkCalls: number;
  codes: Record<string, number>;
  seconds: number;
  /** Transitions recorded in the histories of the storm's jobs. */
  transitions: number;
  /** Events each open stream received. */
  eventsPerStream: number[];
  problems: string[];
}

const STATUSES = ['queued', 'running', 'running', 'complete', 'failed'];
const RANK: Record<string, number> = { ready: 0, queued: 1, running: 2, complete: 3, failed: 3 };
const TERMINAL = new Set(['complete', 'failed']);

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function call(
  baseUrl: string,
  method: string,
  path: string,
  psk: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${baseUrl}${path}`,
      {
        method,
        agent,
        timeout: 30_000,
        headers: {
          'Authorization-PSK': psk,
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: response.statusCode ?? 0, json: text ? JSON.parse(text) : null });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error('no answer within 30 s')));
    request.on('error', reject);
    request.end(payload);
  });
}

/**
 * A writeback storm: `writebacks` status callbacks spread over `jobs` jobs by
 * `clients` concurrent clients, while a loop polls bulk status. Then checks
 * that every job's history is a legal lifecycle path ending in its stored
 * status, that every acknowledged callback is in its job's history, and that
 * nothing answered 5xx or anything but 200/409. Event streams open during
 * the storm must each receive exactly the recorded transitions, in id order.
 */
export async function runStorm(options: StormOptions): Promise<StormReport> {
  const { baseUrl, psk } = options;
  const problems: string[] = [];
  const codes: Record<string, number> = {};
  const count = (status: number) => (codes[status] = (codes[status] ?? 0) + 1);

  const streams = await Promise.all(
    Array.from({ length: options.streams ?? 0 }, () =>
      EventStreamClient.open(`${baseUrl}/api/automl/train/jobs/events?domain=storm`, { 'Authorization-PSK': psk }),
    ),
  );

  const ids: string[] = [];
  for (let i = 0; i < options.jobs; i++) {
    const created = await call(baseUrl, 'POST', '/api/automl/train/jobs', psk, {
      name: `storm ${i}`,
      domain: 'storm',
      owner: 'storm',
      source_table: 'storm.table',
      label_column: 'y',
      problem_type: 'regression',
      algorithm: 'lightgbm_regressor',
    });
    if (created.status !== 201) throw new Error(`create failed: ${created.status}`);
    ids.push(created.json.job_id);
  }

  const acknowledged = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]));
  const started = Date.now();
  let sent = 0;
  let stormDone = false;
  let bulkCalls = 0;

  const poller = (async () => {
    while (!stormDone) {
      const sample = Array.from({ length: 100 }, () => ids[Math.floor(Math.random() * ids.length)]);
      const response = await call(
        baseUrl,
        'GET',
        `/api/automl/train/jobs/status?${sample.map((id) => `ids=${id}`).join('&')}`,
        psk,
      );
      bulkCalls++;
      if (response.status !== 200) problems.push(`bulk status answered ${response.status}`);
    }
  })();

  const client = async () => {
    while (sent < options.writebacks) {
      sent++;
      const jobId = ids[Math.floor(Math.random() * ids.length)];
      const status = STATUSES[Math.floor(Math.random() * STATUSES.length)];
      const body = {
        status,
        ...(status === 'complete' ? { mlflow_run_id: `run-${sent}`, registered_model_name: 'storm.model' } : {}),
        ...(status === 'failed' ? { error_message: `failure ${sent}` } : {}),
      };
      const response = await call(baseUrl, 'PUT', `/api/automl/train/jobs/${jobId}/status`, psk, body);
      count(response.status);
      if (response.status === 200) {
        if (response.json.status !== status)
          problems.push(`200 for ${status} on ${jobId} answered ${response.json.status}`);
        acknowledged.get(jobId)!.add(status);
      } else if (response.status !== 409) {
        problems.push(`writeback answered ${response.status}: ${JSON.stringify(response.json).slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  stormDone = true;
  await poller;
  const seconds = (Date.now() - started) / 1000;

  const recorded: number[] = [];
  for (const id of ids) {
    const [history, job] = await Promise.all([
      call(baseUrl, 'GET', `/api/automl/train/jobs/${id}/history`, psk),
      call(baseUrl, 'GET', `/api/automl/train/jobs/${id}`, psk),
    ]);
    const transitions: { id: number; from_status: string | null; to_status: string }[] = history.json.items;
    recorded.push(...transitions.map((t) => t.id));
    transitions.forEach((t, i) => {
      if (i === 0) {
        if (t.from_status !== null || t.to_status !== 'queued')
          problems.push(`${id}: bad creation ${JSON.stringify(t)}`);
        return;
      }
      const previous = transitions[i - 1].to_status;
      const legal =
        t.from_status === previous &&
        !TERMINAL.has(previous) &&
        (t.to_status === 'failed' || RANK[t.to_status] > RANK[previous]);
      if (!legal) problems.push(`${id}: illegal ${previous} → ${t.from_status} → ${t.to_status}`);
    });
    const last = transitions.at(-1)!.to_status;
    if (job.json.status !== last) problems.push(`${id}: stored ${job.json.status} but history ends ${last}`);
    const reached = new Set(transitions.map((t) => t.to_status));
    for (const status of acknowledged.get(id)!)
      if (!reached.has(status)) problems.push(`${id}: acknowledged ${status} missing from history`);
  }
  recorded.sort((a, b) => a - b);
  for (const [index, stream] of streams.entries()) {
    await stream.untilEvents(recorded.length, 10_000).catch(() => undefined);
    const received = stream.events.map((event) => event.id);
    if (received.length !== recorded.length || received.some((id, at) => id !== recorded[at])) {
      const missing = recorded.filter((id) => !received.includes(id)).length;
      problems.push(
        `stream ${index}: ${received.length} events for ${recorded.length} transitions (${missing} missing), or out of order`,
      );
    }
    await stream.close();
  }
  const eventsPerStream = streams.map((stream) => stream.events.length);
  return {
    jobs: options.jobs,
    writebacks: options.writebacks,
    bulkCalls,
    codes,
    seconds,
    transitions: recorded.length,
    eventsPerStream,
    problems,
  };
}

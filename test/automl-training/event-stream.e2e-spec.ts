import { connect } from 'node:net';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { EventStreamClient, StreamRefused } from '../utils/event-stream';
import { createJob, writeback } from '../utils/jobs';
import { usesPostgres } from '../setup/test-database';
import { baseUrl, bearer, psk, startTestApp, startTestAppWithKeycloak, TestApp } from '../utils/test-app';

const EVENTS = '/api/automl/train/jobs/events';
const PER_CREDENTIAL = 6;

describe('GET /api/automl/train/jobs/events (one instance)', () => {
  let testApp: TestApp;
  let keycloak: KeycloakDouble;
  let close: () => Promise<void>;
  let base: string;
  const open: EventStreamClient[] = [];

  const stream = async (query = '', headers: Record<string, string> = psk()): Promise<EventStreamClient> => {
    const client = await EventStreamClient.open(`${base}${EVENTS}${query}`, headers);
    open.push(client);
    return client;
  };
  const refusal = async (query: string, headers: Record<string, string>): Promise<StreamRefused> => {
    const error = await stream(query, headers).then(
      () => new Error('stream opened'),
      (refused: unknown) => refused,
    );
    if (!(error instanceof StreamRefused)) throw error;
    return error;
  };
  const user = (username: string, roles: string[] = []) =>
    bearer(keycloak.token({ sub: `sub-${username}`, preferred_username: username, realm_access: { roles } }));

  beforeAll(async () => {
    ({ testApp, keycloak, close } = await startTestAppWithKeycloak({
      STREAM_HEARTBEAT_MS: '300',
      STREAM_MAX_BUFFER_BYTES: '65536',
      STREAM_MAX_PER_CREDENTIAL: String(PER_CREDENTIAL),
    }));
    base = await baseUrl(testApp);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
  });

  afterAll(() => close());

  it('should push each transition of a job as it commits, with the transition id as event id', async () => {
    const client = await stream();
    expect(client.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(client.response.headers['cache-control']).toBe('no-cache, no-transform');
    const job = await createJob(testApp);
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    await writeback(testApp, job.job_id, { status: 'failed', error_message: 'OOM\nkilled' }).expect(200);
    await client.untilEvents(3, 1_000);

    const history = await testApp.http().get(`/api/automl/train/jobs/${job.job_id}/history`).set(psk()).expect(200);
    const ids = history.body.items.map((item: { id: number }) => item.id);
    expect(client.events.map((event) => event.id)).toEqual(ids);
    expect(client.events.map((event) => event.data)).toEqual([
      {
        job_id: job.job_id,
        from: null,
        to: 'queued',
        status: 'queued',
        error_message: null,
        updated_at: history.body.items[0].at,
      },
      {
        job_id: job.job_id,
        from: 'queued',
        to: 'running',
        status: 'running',
        error_message: null,
        updated_at: history.body.items[1].at,
      },
      {
        job_id: job.job_id,
        from: 'running',
        to: 'failed',
        status: 'failed',
        error_message: 'OOM\nkilled',
        updated_at: history.body.items[2].at,
      },
    ]);
  });

  it('should carry the result fields on the event of a completion, and only there', async () => {
    const client = await stream();
    const job = await createJob(testApp);
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    const done = await writeback(testApp, job.job_id, {
      status: 'complete',
      mlflow_run_id: 'run-7',
      registered_model_name: 'marketing.churn',
      model_version: '3',
      objective: 'roc_auc',
      metrics: { roc_auc: 0.91, log_loss: 0.3 },
    }).expect(200);
    await client.untilEvents(3, 1_000);
    expect(Object.keys(client.events[1].data)).toEqual([
      'job_id',
      'from',
      'to',
      'status',
      'error_message',
      'updated_at',
    ]);
    expect(client.events[2].data).toEqual({
      job_id: job.job_id,
      from: 'running',
      to: 'complete',
      status: 'complete',
      error_message: null,
      updated_at: done.body.updated_at,
      mlflow_run_id: 'run-7',
      registered_model_name: 'marketing.churn',
      model_version: '3',
      objective: 'roc_auc',
      metrics: { roc_auc: 0.91, log_loss: 0.3 },
      started_at: done.body.started_at,
      finished_at: done.body.finished_at,
      // No MLFLOW_UI_URL here: the links are null (mlflow-links.e2e-spec.ts has them).
      mlflow_run_url: null,
      model_version_url: null,
    });
    expect(done.body.finished_at).toBe(done.body.updated_at);
  });

  it('should filter by ids, domain and owner (combined with AND)', async () => {
    const [byId, byDomain, byOwner, both] = await Promise.all([
      stream(''),
      stream('?domain=finance'),
      stream('?owner=carol'),
      stream('?domain=finance&owner=carol'),
    ]);
    const a = await createJob(testApp, { domain: 'finance', owner: 'dave' });
    const b = await createJob(testApp, { domain: 'marketing', owner: 'carol' });
    const c = await createJob(testApp, { domain: 'finance', owner: 'carol' });
    // A stream starts where this instance's feed is: let it pass the creations first.
    await byId.untilEvents(3, 1_000);
    const onlyA = await stream(`?ids=${a.job_id}&ids=${c.job_id.toUpperCase()}`);
    await writeback(testApp, a.job_id, { status: 'running' }).expect(200);
    await writeback(testApp, b.job_id, { status: 'running' }).expect(200);
    await writeback(testApp, c.job_id, { status: 'running' }).expect(200);

    await byId.untilEvents(6, 1_000);
    await onlyA.untilEvents(2, 1_000);
    const jobs = (client: EventStreamClient) => client.events.map((event) => `${event.data.job_id}:${event.data.to}`);
    expect(jobs(onlyA)).toEqual([`${a.job_id}:running`, `${c.job_id}:running`]);
    expect(jobs(byDomain)).toEqual([
      `${a.job_id}:queued`,
      `${c.job_id}:queued`,
      `${a.job_id}:running`,
      `${c.job_id}:running`,
    ]);
    expect(jobs(byOwner)).toEqual([
      `${b.job_id}:queued`,
      `${c.job_id}:queued`,
      `${b.job_id}:running`,
      `${c.job_id}:running`,
    ]);
    expect(jobs(both)).toEqual([`${c.job_id}:queued`, `${c.job_id}:running`]);
  });

  it('should replay exactly the missed matching transitions after Last-Event-ID, then continue live', async () => {
    const first = await stream('?domain=replay');
    const job = await createJob(testApp, { domain: 'replay' });
    await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
    await first.untilEvents(2, 1_000);
    const seen = first.lastEventId!;
    await first.close();

    // Missed while disconnected: two of this domain, one of another.
    const other = await createJob(testApp, { domain: 'elsewhere' });
    const second = await createJob(testApp, { domain: 'replay' });
    await writeback(testApp, job.job_id, { status: 'complete' }).expect(200);

    const resumed = await stream('?domain=replay', { ...psk(), 'Last-Event-ID': String(seen) });
    await resumed.untilEvents(2, 1_000);
    await writeback(testApp, second.job_id, { status: 'running' }).expect(200);
    await writeback(testApp, other.job_id, { status: 'running' }).expect(200);
    await resumed.untilEvents(3, 1_000);
    await new Promise((r) => setTimeout(r, 200));

    expect(resumed.events.map((event) => `${event.data.job_id}:${event.data.to}`)).toEqual([
      `${second.job_id}:queued`,
      `${job.job_id}:complete`,
      `${second.job_id}:running`,
    ]);
    const ids = resumed.events.map((event) => event.id);
    expect(ids[0]).toBeGreaterThan(seen);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
  });

  it('should start live when Last-Event-ID names an id this database never issued (a restored database, say)', async () => {
    const client = await stream('?domain=future', { ...psk(), 'Last-Event-ID': '999999999999' });
    const job = await createJob(testApp, { domain: 'future' });
    await client.untilEvents(1, 1_000);
    expect(client.events[0].data).toMatchObject({ job_id: job.job_id, to: 'queued' });
  });

  it('should confine a bearer user to their own jobs unless an admin role allows every owner', async () => {
    const [bob, bobAskingForAlice, admin] = await Promise.all([
      stream('', user('bob')),
      stream('?owner=alice', user('bob')),
      stream('', user('root', ['automl-admin'])),
    ]);
    const mine = await createJob(testApp, { owner: 'bob' });
    const theirs = await createJob(testApp, { owner: 'alice' });
    await admin.untilEvents(2, 1_000);
    await bob.untilEvents(1, 1_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(bob.events.map((event) => event.data.job_id)).toEqual([mine.job_id]);
    expect(bobAskingForAlice.events).toEqual([]);
    expect(admin.events.map((event) => event.data.job_id)).toEqual([mine.job_id, theirs.job_id]);
  });

  it('should still deliver a transition committed without any signal (the feed polls), within about 2 s', async () => {
    const job = await createJob(testApp);
    const client = await stream(`?ids=${job.job_id}`);
    // Written behind the service's back: no NOTIFY, no local wake-up.
    await testApp.dataSource.query(
      `INSERT INTO automl_training_job_transitions (job_id, from_status, to_status, source, actor, error_message, at)
       VALUES ($1, 'queued', 'running', 'callback', 'manual', NULL, now())`,
      [job.job_id],
    );
    await client.untilEvents(1, 3_000);
    expect(client.events[0].data).toMatchObject({ job_id: job.job_id, from: 'queued', to: 'running' });
  });

  it('should end a bearer stream when its token stops being accepted (exp plus the 30 s clock tolerance)', async () => {
    const nearlyStale = Math.floor(Date.now() / 1000) - 29;
    const client = await stream(
      '',
      bearer(keycloak.token({ sub: 'sub-erin', preferred_username: 'erin', exp: nearlyStale })),
    );
    const started = Date.now();
    await client.ended;
    expect(Date.now() - started).toBeLessThan(2_500);
    // The same token no longer opens a stream.
    await new Promise((r) => setTimeout(r, Math.max(0, (nearlyStale + 31) * 1000 - Date.now())));
    expect(
      (await refusal('', bearer(keycloak.token({ sub: 'sub-erin', preferred_username: 'erin', exp: nearlyStale }))))
        .status,
    ).toBe(401);
  });

  it('should send heartbeats as comments', async () => {
    const client = await stream();
    await client.until((c) => c.comments.includes('keep-alive'), 1_500, 'a heartbeat');
    expect(client.comments[0]).toBe('connected');
  });

  it('should cap open streams per credential with a 429 and give the slot back when a stream closes', async () => {
    const carol = () => user('carol');
    const held = await Promise.all(Array.from({ length: PER_CREDENTIAL }, () => stream('', carol())));
    const refused = await refusal('', carol());
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.body)).toEqual({
      error: `At most ${PER_CREDENTIAL} event streams per credential; close one first`,
      code: 429,
    });
    // Another user is not affected, and a closed stream frees its slot.
    await stream('', user('dave'));
    await held[0].close();
    await new Promise((r) => setTimeout(r, 50));
    await stream('', carol());
  });

  it('should refuse bad input before streaming: 401 without a credential, 422 for a bad Last-Event-ID or id', async () => {
    expect((await refusal('', {})).status).toBe(401);
    const badId = await refusal('', { ...psk(), 'Last-Event-ID': '12abc' });
    expect(badId.status).toBe(422);
    expect(JSON.parse(badId.body).detail[0].loc).toEqual(['header', 'last-event-id']);
    const badUuid = await refusal('?ids=not-a-uuid', psk());
    expect(badUuid.status).toBe(422);
    expect(JSON.parse(badUuid.body).detail[0]).toMatchObject({ type: 'uuid_parsing', loc: ['query', 'ids', 0] });
  });

  it('should drop a consumer that stops reading instead of buffering without end, and keep serving the others', async () => {
    const reader = await stream();
    // A client that sends the request and never reads a byte.
    const address = new URL(base);
    const stalled = connect(Number(address.port), address.hostname);
    stalled.on('connect', () => stalled.pause());
    stalled.write(
      `GET ${EVENTS} HTTP/1.1\r\nHost: ${address.host}\r\nAuthorization-PSK: ${psk()['Authorization-PSK']}\r\n\r\n`,
    );
    const stalledClosed = new Promise<void>((resolve) => stalled.on('close', () => resolve()));
    await new Promise((r) => setTimeout(r, 200));

    // Each job gives three events, the last carrying a 300 KB error message; the loopback socket buffers
    // hold a few MB before the service's own backlog (STREAM_MAX_BUFFER_BYTES) starts to grow.
    const long = 'x'.repeat(300_000);
    const dropped = () => metric(testApp, 'automl_event_streams_dropped_total{reason="slow_consumer"}');
    let events = 0;
    for (let jobs = 0; (await dropped()) === 0 && jobs < 200; jobs++) {
      const job = await createJob(testApp);
      await writeback(testApp, job.job_id, { status: 'running' }).expect(200);
      await writeback(testApp, job.job_id, { status: 'failed', error_message: `${jobs} ${long}` }).expect(200);
      events += 3;
    }
    expect(await dropped()).toBe(1);
    stalled.resume();
    await stalledClosed;
    // The reading client got every event: nothing was lost for it.
    await reader.untilEvents(events, 10_000);
  });

  it('should be documented in the OpenAPI document as a text/event-stream operation', async () => {
    const document = (await testApp.http().get('/openapi.json').expect(200)).body;
    const operation = document.paths[EVENTS].get;
    expect(operation.operationId).toBe('stream_training_job_events_api_automl_train_jobs_events_get');
    expect(Object.keys(operation.responses['200'].content)).toEqual(['text/event-stream']);
    expect(
      operation.parameters.map((parameter: { name: string; in: string }) => `${parameter.in}:${parameter.name}`).sort(),
    ).toEqual(['header:Last-Event-ID', 'query:domain', 'query:ids', 'query:owner']);
    expect(Object.keys(document.components.schemas.AutoMLTrainingJobEvent.properties)).toEqual([
      'job_id',
      'from',
      'to',
      'status',
      'error_message',
      'updated_at',
      // On a completion only:
      'mlflow_run_id',
      'registered_model_name',
      'model_version',
      'objective',
      'metrics',
      'started_at',
      'finished_at',
      'mlflow_run_url',
      'model_version_url',
    ]);
    expect(document.components.schemas.AutoMLTrainingJobEvent.required).toEqual([
      'job_id',
      'from',
      'to',
      'status',
      'error_message',
      'updated_at',
    ]);
  });
});

async function metric(testApp: TestApp, series: string): Promise<number> {
  const text = (await testApp.http().get('/metrics').expect(200)).text;
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('GET /api/automl/train/jobs/events (total cap)', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp({ STREAM_MAX_TOTAL: '2' });
  });

  afterAll(() => testApp.close());

  it('should serve at most STREAM_MAX_TOTAL streams even when they all arrive at once', async () => {
    const url = `${await baseUrl(testApp)}${EVENTS}`;
    const attempts = await Promise.allSettled([1, 2, 3, 4].map(() => EventStreamClient.open(url, psk())));
    const opened = attempts.filter((attempt) => attempt.status === 'fulfilled').map((attempt) => attempt.value);
    const refused = attempts
      .filter((attempt) => attempt.status === 'rejected')
      .map((attempt) => attempt.reason as StreamRefused);
    try {
      expect(opened).toHaveLength(2);
      expect(refused.map((error) => [error.status, JSON.parse(error.body)])).toEqual([
        [429, { error: 'This instance already serves 2 event streams; retry shortly', code: 429 }],
        [429, { error: 'This instance already serves 2 event streams; retry shortly', code: 429 }],
      ]);
    } finally {
      await Promise.all(opened.map((client) => client.close()));
    }
  });
});

(usesPostgres() ? describe : describe.skip)(
  'GET /api/automl/train/jobs/events (two instances on one PostgreSQL)',
  () => {
    let a: TestApp;
    let b: TestApp;
    const open: EventStreamClient[] = [];
    const stream = async (instance: TestApp, headers: Record<string, string> = psk()): Promise<EventStreamClient> => {
      const client = await EventStreamClient.open(`${await baseUrl(instance)}${EVENTS}`, headers);
      open.push(client);
      return client;
    };

    beforeAll(async () => {
      a = await startTestApp();
      b = await startTestApp({ DATABASE_URL: a.config.database.kind === 'postgres' ? a.config.database.url : '' });
    });

    afterEach(async () => {
      await Promise.all(open.splice(0).map((client) => client.close()));
    });

    afterAll(async () => {
      await b.close();
      await a.close();
    });

    it('should deliver a writeback made through instance A on a stream held open on instance B within 1 s', async () => {
      const onB = await stream(b);
      const job = await createJob(a);
      await onB.untilEvents(1, 1_000);
      const started = Date.now();
      await writeback(a, job.job_id, { status: 'running' }).expect(200);
      await onB.untilEvents(2, 1_000);
      const latency = Date.now() - started;
      expect(onB.events[1].data).toMatchObject({ job_id: job.job_id, from: 'queued', to: 'running' });
      expect(latency).toBeLessThan(1_000);
    });

    it('should give a client reconnecting to the other instance with Last-Event-ID exactly the events it missed', async () => {
      const onA = await stream(a);
      const job = await createJob(a);
      await onA.untilEvents(1, 1_000);
      const seen = onA.lastEventId!;
      await onA.close();

      const other = await createJob(b);
      await writeback(b, job.job_id, { status: 'running' }).expect(200);
      await writeback(a, other.job_id, { status: 'failed', error_message: 'lost' }).expect(200);
      const missed = (
        await a.dataSource.query('SELECT id FROM automl_training_job_transitions WHERE id > $1 ORDER BY id', [seen])
      ).map((row: { id: string }) => Number(row.id));
      expect(missed).toHaveLength(3);

      const onB = await stream(b, { ...psk(), 'Last-Event-ID': String(seen) });
      await onB.untilEvents(3, 1_000);
      await writeback(b, job.job_id, { status: 'complete' }).expect(200);
      await onB.untilEvents(4, 1_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(onB.events.map((event) => event.id).slice(0, 3)).toEqual(missed);
      expect(onB.events.map((event) => `${event.data.job_id}:${event.data.to}`)).toEqual([
        `${other.job_id}:queued`,
        `${job.job_id}:running`,
        `${other.job_id}:failed`,
        `${job.job_id}:complete`,
      ]);
    });

    it('should listen again after its LISTEN connection is killed, and keep delivering within 1 s', async () => {
      // A listener is a backend whose last statement, LISTEN, has finished (idle): from then on it gets every NOTIFY.
      const listeners = async () =>
        (
          (await a.dataSource.query(
            `SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND query = 'LISTEN automl_training_job_transitions' AND state = 'idle'`,
          )) as { pid: number }[]
        ).map((row) => row.pid);
      const onB = await stream(b);
      const before = await listeners();
      expect(before).toHaveLength(2);
      // With a timeout, pg_terminate_backend returns once the backend has exited: a killed backend still listed in
      // pg_stat_activity, as it can be for a while on a loaded machine, must not pass for a listener that came back.
      const terminated = await a.dataSource.query(
        'SELECT pg_terminate_backend(pid, 10000) AS done FROM unnest($1::int[]) AS pid',
        [before],
      );
      expect(terminated.map((row: { done: boolean }) => row.done)).toEqual([true, true]);
      expect((await listeners()).filter((pid) => before.includes(pid))).toEqual([]);
      // Both instances reconnect after their first backoff (500 ms); wait for the two new listeners themselves.
      let fresh: number[] = [];
      const deadline = Date.now() + 15_000;
      while (fresh.length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        fresh = await listeners();
      }
      expect(fresh).toHaveLength(2);

      const job = await createJob(a);
      const started = Date.now();
      await onB.until(
        (client) => client.events.some((event) => event.data.job_id === job.job_id),
        1_000,
        'the new job',
      );
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it('should give every stream every transition once, in id order, while both instances take concurrent writebacks', async () => {
      const streams = await Promise.all([stream(a), stream(a), stream(b), stream(b)]);
      const jobs = await Promise.all(Array.from({ length: 40 }, (_, index) => createJob(index % 2 ? a : b)));
      await Promise.all(
        jobs.flatMap((job, index) => [
          writeback(index % 2 ? b : a, job.job_id, { status: 'running' }),
          writeback(index % 2 ? a : b, job.job_id, { status: 'complete' }),
        ]),
      );
      const recorded = (await a.dataSource.query('SELECT id FROM automl_training_job_transitions ORDER BY id')).map(
        (row: { id: string }) => Number(row.id),
      );
      const expected = recorded.filter((id: number) => id > streams[0].events[0]!.id - 1);
      for (const client of streams) {
        await client.until((c) => c.lastEventId === recorded.at(-1), 2_000, 'the last transition');
        expect(client.events.map((event) => event.id)).toEqual(expected);
      }
    });
  },
);

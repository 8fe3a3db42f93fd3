import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { usesPostgres } from '../setup/test-database';
import { psk, rawRequest, startTestApp, TestApp, whileDatabaseRefusesConnections } from '../utils/test-app';
import { createJob } from '../utils/jobs';

const JOBS = '/api/automl/train/jobs';
const GOOD_ID = '0b9b6e4e-6f0e-4c57-9a55-2c1b1f1d7a10';
const STATUS_EXPECTED = "'ready', 'queued', 'running', 'complete' or 'failed'";

describe('FastAPI/pydantic-exact errors', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  afterAll(() => testApp.close());

  const put = (id: string) => testApp.http().put(`${JOBS}/${id}/status`).set(psk());

  it('should refuse a non-UUID path id with uuid_parsing', async () => {
    const response = await testApp.http().get(`${JOBS}/not-a-uuid`).set(psk()).expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'uuid_parsing',
          loc: ['path', 'job_id'],
          msg: 'Input should be a valid UUID, invalid character: found `n` at 1',
          input: 'not-a-uuid',
          ctx: { error: 'invalid character: found `n` at 1' },
        },
      ],
    });
  });

  it('should report each bad ids item at its own index', async () => {
    const response = await testApp
      .http()
      .get(`${JOBS}/status?ids=${GOOD_ID}&ids=nope&ids=abc&ids=${GOOD_ID},${GOOD_ID}`)
      .set(psk())
      .expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'uuid_parsing',
          loc: ['query', 'ids', 1],
          msg: 'Input should be a valid UUID, invalid character: found `n` at 1',
          input: 'nope',
          ctx: { error: 'invalid character: found `n` at 1' },
        },
        {
          type: 'uuid_parsing',
          loc: ['query', 'ids', 2],
          msg: 'Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3',
          input: 'abc',
          ctx: { error: 'invalid length: expected length 32 for simple format, found 3' },
        },
        {
          type: 'uuid_parsing',
          loc: ['query', 'ids', 3],
          msg: 'Input should be a valid UUID, invalid character: found `,` at 37',
          input: `${GOOD_ID},${GOOD_ID}`,
          ctx: { error: 'invalid character: found `,` at 37' },
        },
      ],
    });
  });

  it('should report a missing body field with the whole received object as input', async () => {
    const response = await put(GOOD_ID).send({ note: 'x' }).expect(422);
    expect(response.body).toEqual({
      detail: [{ type: 'missing', loc: ['body', 'status'], msg: 'Field required', input: { note: 'x' } }],
    });
  });

  it('should report a bad enum with ctx.expected', async () => {
    const response = await put(GOOD_ID).send({ status: 'bogus' }).expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'enum',
          loc: ['body', 'status'],
          msg: `Input should be ${STATUS_EXPECTED}`,
          input: 'bogus',
          ctx: { expected: STATUS_EXPECTED },
        },
      ],
    });
  });

  it('should report a non-string where a string is expected with string_type', async () => {
    const response = await put(GOOD_ID)
      .send({ status: 'running', error_message: 123, mlflow_run_id: true })
      .expect(422);
    expect(response.body).toEqual({
      detail: [
        { type: 'string_type', loc: ['body', 'mlflow_run_id'], msg: 'Input should be a valid string', input: true },
        { type: 'string_type', loc: ['body', 'error_message'], msg: 'Input should be a valid string', input: 123 },
      ],
    });
  });

  it.each([
    ['{bad', 1, 'Expecting property name enclosed in double quotes'],
    ['{"status":"running",}', 20, 'Expecting property name enclosed in double quotes'],
    ['{"status":"running"} x', 21, 'Extra data'],
    ['{"status":"runn', 10, 'Unterminated string starting at'],
    ['{"status" "running"}', 10, "Expecting ':' delimiter"],
    ['{"a":1 "b":2}', 7, "Expecting ',' delimiter"],
    ['   ', 3, 'Expecting value'],
    ['{"é":"é" x', 9, "Expecting ',' delimiter"],
  ])('should refuse the JSON body %j with json_invalid at %i', async (body, pos, error) => {
    const response = await put(GOOD_ID).set('Content-Type', 'application/json').send(body).expect(422);
    expect(response.body).toEqual({
      detail: [{ type: 'json_invalid', loc: ['body', pos], msg: 'JSON decode error', input: {}, ctx: { error } }],
    });
  });

  it.each([[[1, 2]], ['x'], [5]])('should refuse the JSON body %j that is not an object', async (body) => {
    const response = await put(GOOD_ID).set('Content-Type', 'application/json').send(JSON.stringify(body)).expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'model_attributes_type',
          loc: ['body'],
          msg: 'Input should be a valid dictionary or object to extract fields from',
          input: body,
        },
      ],
    });
  });

  it.each([[''], ['null']])('should report the whole body %j as missing', async (body) => {
    const response = await put(GOOD_ID).set('Content-Type', 'application/json').send(body).expect(422);
    expect(response.body).toEqual({ detail: [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }] });
  });

  it('should treat a body that is not JSON by content type as a raw string, as FastAPI ≥ 0.132 does', async () => {
    const response = await put(GOOD_ID).set('Content-Type', 'text/plain').send('{"status":"running"}').expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'model_attributes_type',
          loc: ['body'],
          msg: 'Input should be a valid dictionary or object to extract fields from',
          input: '{"status":"running"}',
        },
      ],
    });
  });

  it('should combine path and body errors in FastAPI order', async () => {
    const response = await put('123').send({ status: null, registered_model_name: 7 }).expect(422);
    expect(response.body.detail.map((item: { loc: unknown[]; type: string }) => [item.type, item.loc])).toEqual([
      ['uuid_parsing', ['path', 'job_id']],
      ['enum', ['body', 'status']],
      ['string_type', ['body', 'registered_model_name']],
    ]);
  });

  it('should answer malformed JSON with 422 before checking credentials, and credentials before other validation', async () => {
    await testApp
      .http()
      .put(`${JOBS}/${GOOD_ID}/status`)
      .set('Content-Type', 'application/json')
      .send('{bad')
      .expect(422);
    const unauthenticated = await testApp.http().put(`${JOBS}/not-a-uuid/status`).send({}).expect(401);
    expect(unauthenticated.body).toEqual({ error: 'Not authenticated', code: 401 });
  });

  it('should refuse non-UTF-8 bodies with 400 ErrorResponse', async () => {
    const response = await rawRequest(
      testApp,
      'PUT',
      `${JOBS}/${GOOD_ID}/status`,
      { ...psk(), 'Content-Type': 'application/json' },
      Buffer.from([0x7b, 0xff, 0x7d]),
    );
    expect(response).toEqual({ status: 400, body: { error: 'There was an error parsing the body', code: 400 } });
  });

  it('should refuse oversized bodies with 413 ErrorResponse', async () => {
    const response = await put(GOOD_ID)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ status: 'running', error_message: 'x'.repeat(2 * 1024 * 1024) }))
      .expect(413);
    expect(response.body).toEqual({ error: 'Request body is larger than the limit of 1mb', code: 413 });
  });

  it('should read chunked and gzip-encoded bodies, and refuse oversized chunked ones and unknown encodings', async () => {
    const job = await createJob(testApp);
    const url = new URL(`${JOBS}/${job.job_id}/status`, await testApp.app.getUrl());
    const send = (headers: Record<string, string>, chunks: Buffer[]) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const request = httpRequest(
          url,
          { method: 'PUT', headers: { ...psk(), 'Content-Type': 'application/json', ...headers } },
          (response) => {
            const parts: Buffer[] = [];
            response.on('data', (part: Buffer) => parts.push(part));
            response.on('end', () =>
              resolve({ status: response.statusCode!, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }),
            );
          },
        );
        request.on('error', reject);
        for (const chunk of chunks) request.write(chunk);
        request.end();
      });
    // No Content-Length: Node sends these chunked.
    const chunked = await send({}, [Buffer.from('{"status":'), Buffer.from('"running"}')]);
    expect(chunked).toMatchObject({ status: 200, body: { status: 'running' } });
    const gzipped = await send({ 'Content-Encoding': 'gzip' }, [gzipSync('{"status":"complete"}')]);
    expect(gzipped).toMatchObject({ status: 200, body: { status: 'complete' } });
    const big = Buffer.alloc(256 * 1024, 0x20);
    expect(await send({}, [Buffer.from('{"status":"failed"'), big, big, big, big, big, Buffer.from('}')])).toEqual({
      status: 413,
      body: { error: 'Request body is larger than the limit of 1mb', code: 413 },
    });
    expect(await send({ 'Content-Encoding': 'x-unknown' }, [Buffer.from('{"status":"failed"}')])).toEqual({
      status: 415,
      body: { error: 'Unsupported request body encoding', code: 415 },
    });
    const after = await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(200);
    expect(after.body.status).toBe('complete');
  });

  it('should answer unknown ids and unknown routes with 404 ErrorResponse', async () => {
    const missing = await put(GOOD_ID).send({ status: 'running' }).expect(404);
    expect(missing.body).toEqual({ error: `Training job ${GOOD_ID} not found`, code: 404 });
    const route = await testApp.http().get('/api/automl/nothing-here').set(psk()).expect(404);
    expect(route.body).toEqual({ error: 'Not Found', code: 404 });
  });

  it('should accept the UUID forms pydantic accepts and ignore unknown body fields', async () => {
    const job = await createJob(testApp);
    const simple = (job.job_id as string).replace(/-/g, '').toUpperCase();
    for (const form of [simple, `{${job.job_id}}`, `urn:uuid:${job.job_id}`]) {
      const response = await testApp
        .http()
        .get(`${JOBS}/${encodeURIComponent(form)}`)
        .set(psk())
        .expect(200);
      expect(response.body.job_id).toBe(job.job_id);
    }
    const updated = await put(job.job_id).send({ status: 'running', owner: 'mallory', job_id: GOOD_ID }).expect(200);
    expect(updated.body).toMatchObject({ job_id: job.job_id, owner: 'alice', status: 'running' });
  });
});

describe('hostile input never reaches a 500', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  afterAll(() => testApp.close());

  it('should refuse NUL characters in stored text with a 422 value_error on the field', async () => {
    const response = await testApp
      .http()
      .post(JOBS)
      .set(psk())
      .send({
        name: 'a\u0000b',
        domain: 'd',
        owner: 'o',
        source_table: 't',
        label_column: 'y',
        problem_type: 'regression',
        algorithm: 'lightgbm_regressor',
      })
      .expect(422);
    expect(response.body).toEqual({
      detail: [
        {
          type: 'value_error',
          loc: ['body', 'name'],
          msg: 'Value error, NUL characters are not allowed',
          input: 'a\u0000b',
          ctx: { error: {} },
        },
      ],
    });
    const listing = await testApp.http().get(`${JOBS}?q=a%00b`).set(psk()).expect(422);
    expect(listing.body.detail[0]).toMatchObject({ type: 'value_error', loc: ['query', 'q'] });
  });

  it('should refuse an unpaired surrogate ("\\ud800", no Unicode text) in stored text with a 422, not a 500', async () => {
    const body = {
      name: 'n',
      domain: 'd',
      owner: 'o',
      source_table: 't',
      label_column: 'y',
      problem_type: 'regression',
      algorithm: 'lightgbm_regressor',
    };
    const response = await testApp
      .http()
      .post(JOBS)
      .set(psk())
      .send({ ...body, feature_columns: ['ok', 'x\ud800'] })
      .expect(422);
    expect(response.body.detail).toEqual([
      expect.objectContaining({
        type: 'value_error',
        loc: ['body', 'feature_columns', 1],
        msg: 'Value error, unpaired surrogate characters (invalid Unicode) are not allowed',
      }),
    ]);
    await testApp
      .http()
      .post(JOBS)
      .set(psk())
      .send({ ...body, name: '\udc00' })
      .expect(422);
    await testApp
      .http()
      .post(JOBS)
      .set(psk())
      .send({ ...body, name: 'pair \ud83d\ude00 fine' })
      .expect(201);
  });

  it('should keep a DAG failure callback whose text holds an unpaired surrogate, replacing it', async () => {
    const job = await createJob(testApp);
    const response = await put(testApp, job.job_id)
      .send({ status: 'failed', error_message: 'bad\ud800text' })
      .expect(200);
    expect(response.body.error_message).toBe('bad\ufffdtext');
  });

  it('should keep a DAG failure callback whose text holds NUL, replacing the NUL', async () => {
    const job = await createJob(testApp);
    const response = await put(testApp, job.job_id)
      .send({ status: 'failed', error_message: 'bad\u0000byte' })
      .expect(200);
    expect(response.body.error_message).toBe('bad\ufffdbyte');
  });

  it('should refuse JSON nested beyond 1000 levels with 400, as CPython’s RecursionError does', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const response = await put(testApp, GOOD_ID).set('Content-Type', 'application/json').send(deep).expect(400);
    expect(response.body).toEqual({ error: 'There was an error parsing the body', code: 400 });
    const fine = `${'['.repeat(999)}${']'.repeat(999)}`;
    const accepted = await put(testApp, GOOD_ID).set('Content-Type', 'application/json').send(fine).expect(422);
    expect(accepted.body.detail[0].type).toBe('model_attributes_type');
  });

  // Needs a real server to refuse connections; the PGlite run covers the rest of this file.
  (usesPostgres() ? it : it.skip)(
    'should answer 503 ErrorResponse while the database refuses connections, then recover by itself',
    async () => {
      const job = await createJob(testApp);
      await whileDatabaseRefusesConnections(testApp, async () => {
        const response = await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(503);
        expect(response.body).toEqual({ error: 'The database is unavailable; try again shortly', code: 503 });
        expect(response.headers['retry-after']).toBe('5');
      });
      const recovered = await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(200);
      expect(recovered.body.job_id).toBe(job.job_id);
    },
  );
});

function put(testApp: TestApp, id: string) {
  return testApp.http().put(`${JOBS}/${id}/status`).set(psk());
}

import { EventStreamClient } from '../utils/event-stream';
import { createJob, writeback } from '../utils/jobs';
import { baseUrl, psk, startTestApp, TestApp } from '../utils/test-app';

const JOBS = '/api/automl/train/jobs';
const MLFLOW = 'http://mlflow.example:5000';
const RUN_ID = '0a1b2c3d4e5f60718293a4b5c6d7e8f9';

/** GET /jobs/{id}, the job's listing item and the events of a stream opened before the job, after `act` completed it. */
async function linksEverywhere(testApp: TestApp, act: (jobId: string) => Promise<void>) {
  const client = await EventStreamClient.open(`${await baseUrl(testApp)}${JOBS}/events`, psk());
  try {
    const job = await createJob(testApp);
    await act(job.job_id);
    await client.until(
      (c) => c.events.some((event) => event.data.job_id === job.job_id && event.data.to === 'complete'),
      5_000,
      'complete event',
    );
    const one = (await testApp.http().get(`${JOBS}/${job.job_id}`).set(psk()).expect(200)).body;
    const listing = (await testApp.http().get(JOBS).set(psk()).expect(200)).body;
    const item = listing.items.find((candidate: { job_id: string }) => candidate.job_id === job.job_id);
    const events = client.events.filter((event) => event.data.job_id === job.job_id).map((event) => event.data);
    return { created: job, one, item, events, complete: events.find((event) => event.to === 'complete')! };
  } finally {
    await client.close();
  }
}

const links = (body: Record<string, unknown>) => ({
  mlflow_run_url: body.mlflow_run_url,
  model_version_url: body.model_version_url,
});

describe('MLflow links on a job (mlflow_run_url, model_version_url)', () => {
  describe('without MLFLOW_UI_URL', () => {
    let testApp: TestApp;

    beforeAll(async () => {
      testApp = await startTestApp();
    });

    afterAll(() => testApp.close());

    it('should answer both links as null in GET, the listing and the complete event', async () => {
      const seen = await linksEverywhere(testApp, async (jobId) => {
        await writeback(testApp, jobId, { status: 'running' }).expect(200);
        await writeback(testApp, jobId, {
          status: 'complete',
          mlflow_run_id: RUN_ID,
          registered_model_name: 'm',
          model_version: '1',
        }).expect(200);
      });
      const none = { mlflow_run_url: null, model_version_url: null };
      expect(links(seen.created)).toEqual(none);
      expect(seen.one.mlflow_run_id).toBe(RUN_ID);
      expect(links(seen.one)).toEqual(none);
      expect(links(seen.item)).toEqual(none);
      expect(links(seen.complete)).toEqual(none);
    });
  });

  describe('with MLFLOW_UI_URL', () => {
    let testApp: TestApp;

    // No reset between tests: TRUNCATE … RESTART IDENTITY would reuse transition ids the open feed has passed.
    beforeAll(async () => {
      // A trailing slash is trimmed.
      testApp = await startTestApp({ MLFLOW_UI_URL: `${MLFLOW}/` });
    });

    afterAll(() => testApp.close());

    it('should link the run and the model version after a complete writeback, in GET, the listing and the complete event', async () => {
      const seen = await linksEverywhere(testApp, async (jobId) => {
        await writeback(testApp, jobId, { status: 'running' }).expect(200);
        const done = await writeback(testApp, jobId, {
          status: 'complete',
          mlflow_run_id: RUN_ID,
          registered_model_name: 'marketing.churn',
          model_version: '4',
        }).expect(200);
        expect(links(done.body)).toEqual({
          mlflow_run_url: `${MLFLOW}/#/runs/${RUN_ID}`,
          model_version_url: `${MLFLOW}/#/models/marketing.churn/versions/4`,
        });
      });
      const expected = {
        mlflow_run_url: `${MLFLOW}/#/runs/${RUN_ID}`,
        model_version_url: `${MLFLOW}/#/models/marketing.churn/versions/4`,
      };
      // Before the result is known, nothing to link to.
      expect(links(seen.created)).toEqual({ mlflow_run_url: null, model_version_url: null });
      expect(links(seen.one)).toEqual(expected);
      expect(links(seen.item)).toEqual(expected);
      expect(seen.item.rendered_dag).toBeNull();
      expect(links(seen.complete)).toEqual(expected);
      // Like the rest of the result, the links ride on the complete event only.
      for (const event of seen.events.filter((candidate) => candidate.to !== 'complete')) {
        expect(Object.keys(event)).toEqual(['job_id', 'from', 'to', 'status', 'error_message', 'updated_at']);
      }
    });

    it('should percent-encode a model name that needs it', async () => {
      // MLflow refuses '/' and ':' in model names; space, '#', '?' and non-ASCII it takes.
      const name = 'churn model #2 (v?) ü';
      const seen = await linksEverywhere(testApp, async (jobId) => {
        await writeback(testApp, jobId, {
          status: 'complete',
          mlflow_run_id: RUN_ID,
          registered_model_name: name,
          model_version: '12',
        }).expect(200);
      });
      const expected = `${MLFLOW}/#/models/churn%20model%20%232%20(v%3F)%20%C3%BC/versions/12`;
      expect(decodeURIComponent(expected.split('/#/models/')[1].split('/versions/')[0])).toBe(name);
      for (const body of [seen.one, seen.item, seen.complete]) {
        expect(links(body)).toEqual({ mlflow_run_url: `${MLFLOW}/#/runs/${RUN_ID}`, model_version_url: expected });
      }
    });

    it('should leave a link null while what it needs is unknown, and fill it when a repeated complete writeback brings it', async () => {
      const seen = await linksEverywhere(testApp, async (jobId) => {
        await writeback(testApp, jobId, { status: 'complete', registered_model_name: 'marketing.churn' }).expect(200);
      });
      expect(links(seen.one)).toEqual({ mlflow_run_url: null, model_version_url: null });
      expect(links(seen.complete)).toEqual({ mlflow_run_url: null, model_version_url: null });

      const repeated = await writeback(testApp, seen.one.job_id, {
        status: 'complete',
        mlflow_run_id: RUN_ID,
        model_version: '2',
      }).expect(200);
      const expected = {
        mlflow_run_url: `${MLFLOW}/#/runs/${RUN_ID}`,
        model_version_url: `${MLFLOW}/#/models/marketing.churn/versions/2`,
      };
      expect(links(repeated.body)).toEqual(expected);
      expect(links((await testApp.http().get(`${JOBS}/${seen.one.job_id}`).set(psk()).expect(200)).body)).toEqual(
        expected,
      );
    });

    it('should document both fields as optional nullable strings on the job and on its event', async () => {
      const document = (await testApp.http().get('/openapi.json').expect(200)).body;
      for (const schema of ['AutoMLTrainingJobResponse', 'AutoMLTrainingJobEvent']) {
        const { properties, required } = document.components.schemas[schema];
        for (const field of ['mlflow_run_url', 'model_version_url']) {
          expect({ schema, field, required: required.includes(field), property: properties[field] }).toEqual({
            schema,
            field,
            required: false,
            property: {
              anyOf: [{ type: 'string' }, { type: 'null' }],
              title: field === 'mlflow_run_url' ? 'Mlflow Run Url' : 'Model Version Url',
              description: expect.stringContaining('MLFLOW_UI_URL'),
            },
          });
        }
      }
    });
  });
});

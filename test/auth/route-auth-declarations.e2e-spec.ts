import { Reflector } from '@nestjs/core';
import { AUTH_METHODS } from '../../src/common/auth/auth.decorator';
import { RouteTable } from '../../src/common/http/route-table';
import { startTestApp, TestApp } from '../utils/test-app';

/**
 * Every route's accepted credential kinds. A change here is a change of who
 * may call the API: review it as such.
 */
const EXPECTED: Record<string, string[]> = {
  'POST /automl/train/jobs': ['bearer', 'psk'],
  'GET /automl/train/jobs': ['bearer', 'psk'],
  'GET /automl/train/jobs/status': ['bearer', 'psk'],
  'GET /automl/train/jobs/events': ['bearer', 'psk'],
  'GET /automl/train/jobs/:job_id': ['bearer', 'psk'],
  'PUT /automl/train/jobs/:job_id/status': ['psk'],
  'GET /automl/train/jobs/:job_id/history': ['bearer', 'psk'],
  'GET /automl/train/jobs/:job_id/logs': ['bearer', 'psk'],
  'POST /automl/train/jobs/:job_id/trigger': ['bearer', 'psk'],
  'POST /automl/train/jobs/:job_id/cancel': ['bearer', 'psk'],
  'DELETE /automl/train/jobs/:job_id': ['bearer', 'psk'],
  'GET /health/live': [],
  'GET /health/ready': [],
  'GET /metrics': [],
};

describe('route auth declarations', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  afterAll(() => testApp.close());

  it('should declare the expected credential kinds on every route, and none may be undeclared', () => {
    const reflector = testApp.app.get(Reflector);
    const declared = Object.fromEntries(
      testApp.app
        .get(RouteTable)
        .routes()
        .map(({ method, path, handler, controller }) => [
          `${method} /${path}`,
          reflector.getAllAndOverride<string[]>(AUTH_METHODS, [handler, controller]),
        ]),
    );
    expect(declared).toEqual(EXPECTED);
  });

  it('should answer a known path with an unsupported method with 405 and Allow, as FastAPI does', async () => {
    const response = await testApp
      .http()
      .patch('/api/automl/train/jobs/0b9b6e4e-6f0e-4c57-9a55-2c1b1f1d7a10/status')
      .expect(405);
    expect(response.body).toEqual({ error: 'Method Not Allowed', code: 405 });
    expect(response.headers.allow).toBe('PUT');
    const collection = await testApp.http().put('/api/automl/train/jobs').expect(405);
    expect(collection.headers.allow).toBe('POST, GET');
    await testApp.http().delete('/api/automl/train/nothing').expect(404);
  });
});

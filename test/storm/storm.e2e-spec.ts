import { baseUrl, startTestApp, TEST_PSK, TestApp } from '../utils/test-app';
import { runStorm } from './storm';

/** CI size; `npm run storm` runs 20 000 writebacks over 500 jobs from 100 clients. */
describe('writeback storm', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  afterAll(() => testApp.close());

  it('should keep every history legal, lose no acknowledged callback, stream every transition in order and answer no 5xx under concurrent writebacks and polling', async () => {
    const url = await baseUrl(testApp);
    const report = await runStorm({ baseUrl: url, psk: TEST_PSK, jobs: 40, writebacks: 2000, clients: 25, streams: 2 });
    expect(report.problems).toEqual([]);
    expect(report.codes['200']).toBeGreaterThan(0);
    expect(report.codes['409']).toBeGreaterThan(0);
    expect(Object.keys(report.codes).sort()).toEqual(['200', '409']);
    expect(report.bulkCalls).toBeGreaterThan(0);
    expect(report.transitions).toBeGreaterThan(40);
    expect(report.eventsPerStream).toEqual([report.transitions, report.transitions]);
  });
});

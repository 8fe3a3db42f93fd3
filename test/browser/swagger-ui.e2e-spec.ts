import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { createJob } from '../utils/jobs';
import { baseUrl, startTestApp, TEST_PSK, TestApp } from '../utils/test-app';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT = join(__dirname, '..', '..', 'test-artifacts', 'swagger-ui-writeback.png');
const WRITEBACK = '#operations-AutoML_Training-update_training_status_api_automl_train_jobs__job_id__status_put';

// .ci/run installs Debian's Chromium; elsewhere the test needs it too, but is skipped where it is absent.
const run = existsSync(CHROMIUM) || process.env.CI === 'true' ? describe : describe.skip;

run('Swagger UI in a real browser', () => {
  let testApp: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    testApp = await startTestApp();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // This machine's network is closed: keep Chromium from reaching out at start.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await testApp.close();
  });

  it('should authorize with the PSK through the UI and execute the writeback on a real job', async () => {
    const job = await createJob(testApp);
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    const url = await baseUrl(testApp);
    await page.goto(`${url}/docs/`);
    await page.waitForSelector('.swagger-ui .info .title');
    expect(await page.textContent('.swagger-ui .info .title')).toContain('Nx1 AI API');

    await page.click('.auth-wrapper button.authorize');
    const pskDialog = page.locator('.auth-container', { hasText: 'APIKeyHeader' });
    await pskDialog.locator('input').fill(TEST_PSK);
    await pskDialog.locator('button.authorize').click();
    await page.click('.modal-ux button.btn-done');

    const operation = page.locator(WRITEBACK);
    await operation.locator('.opblock-summary').click();
    await operation.locator('button.try-out__btn').click();
    await operation.locator('tr[data-param-name="job_id"] input').fill(job.job_id);
    await operation.locator('textarea.body-param__text').fill('{"status": "running", "mlflow_run_id": "from-swagger"}');
    await operation.locator('button.execute').click();

    const status = operation.locator('.live-responses-table tbody td.response-col_status').first();
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe('200');
    expect(await operation.locator('.live-responses-table .microlight').first().textContent()).toContain('"status": "running"');
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: SCREENSHOT, fullPage: false });

    const stored = await testApp.http().get(`/api/automl/train/jobs/${job.job_id}`).set({ 'Authorization-PSK': TEST_PSK }).expect(200);
    expect(stored.body).toMatchObject({ status: 'running', mlflow_run_id: 'from-swagger' });
  });
});

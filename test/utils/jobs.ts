import { TestApp, psk } from './test-app';

export function jobRequest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'churn model',
    domain: 'marketing',
    owner: 'alice',
    source_table: 'marketing.churn_features',
    label_column: 'churned',
    feature_columns: ['tenure', 'plan'],
    problem_type: 'binary_classification',
    algorithm: 'lightgbm_classifier',
    preset: 'fast',
    ...overrides,
  };
}

/** The problem-type columns a valid create request of `problemType` needs: ranking's group, the bandit's action, propensity and reward. */
export function problemColumns(problemType: string): Record<string, string> {
  if (problemType === 'ranking') return { group_column: 'query_id' };
  if (problemType === 'contextual_bandit')
    return { action_column: 'action', propensity_column: 'propensity', reward_column: 'reward' };
  return {};
}

/** Creates a job through the API with the PSK; returns the response body. */
export async function createJob(
  testApp: TestApp,
  overrides: Record<string, unknown> = {},
  autoTrigger = true,
): Promise<Record<string, any>> {
  const response = await testApp
    .http()
    .post(`/api/automl/train/jobs?auto_trigger=${autoTrigger}`)
    .set(psk())
    .send(jobRequest(overrides));
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

export function writeback(testApp: TestApp, jobId: string, body: unknown) {
  return testApp
    .http()
    .put(`/api/automl/train/jobs/${jobId}/status`)
    .set(psk())
    .send(body as object);
}

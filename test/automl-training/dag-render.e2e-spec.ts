import { AutoMLAlgorithm, Preset, problemTypesFor } from '../../src/automl-training/domain/automl-training.enums';
import { DagRenderer, trainingRuntime } from '../../src/automl-training/dag/dag-renderer';
import { loadAppConfig } from '../../src/config/app.config';
import { dagJob, inspectDags } from '../utils/dag-python';
import { createJob } from '../utils/jobs';
import { ROTATED_PSK, startTestApp, TEST_PSK, TestApp, psk } from '../utils/test-app';

const PAYLOADS = [
  '"""',
  "'''",
  "'",
  '\\',
  'line\nbreak\r\n',
  '{{ dag_run.conf }}',
  "{{ ''.__class__.__mro__[1].__subclasses__() }}",
  "__import__('os').system('id')",
  '"); import os; os.system("id"); ("',
  '\u2028\u2029 é 😀 \u0000',
];
const FRAGMENTS = ['__import__', 'system', 'dag_run', '__class__', '__subclasses__', 'import os'];

describe('rendered DAGs', () => {
  const renderer = new DagRenderer(
    loadAppConfig({ NODE_ENV: 'test', API_PSK: TEST_PSK, DATABASE_URL: 'pglite://memory' }),
  );

  it('should render a parseable DAG for every algorithm × preset, with a concrete tuning budget', () => {
    const jobs = Object.values(AutoMLAlgorithm).flatMap((algorithm) =>
      Object.values(Preset).map((preset) => dagJob({ algorithm, preset, problemType: problemTypesFor(algorithm)[0] })),
    );
    expect(jobs).toHaveLength(30);
    const results = inspectDags(jobs.map((job) => ({ source: renderer.render(job).source, fragments: FRAGMENTS })));
    results.forEach((result, index) => {
      expect(result.spec).toMatchObject({
        job_id: jobs[index].jobId,
        algorithm: jobs[index].algorithm,
        preset: jobs[index].preset,
      });
      const tuning = result.spec.tuning as { trials: number; time_budget_minutes: number };
      expect(tuning.trials).toBeGreaterThan(0);
      expect(tuning.time_budget_minutes).toBeGreaterThan(0);
    });
    const budgets = (algorithm: AutoMLAlgorithm) =>
      Object.values(Preset).map(
        (preset) =>
          (
            results[jobs.findIndex((j) => j.algorithm === algorithm && j.preset === preset)].spec.tuning as {
              trials: number;
            }
          ).trials,
      );
    const [fast, balanced, best] = budgets(AutoMLAlgorithm.XgboostRegressor);
    expect(fast).toBeLessThan(balanced);
    expect(balanced).toBeLessThan(best);
  });

  it.each(PAYLOADS)('should keep the payload %j inside string literals only', (payload) => {
    const job = dagJob({
      name: `n${payload}`,
      domain: `d${payload}`,
      owner: `o${payload}`,
      sourceTable: `t${payload}`,
      labelColumn: `l${payload}`,
      featureColumns: [`f${payload}`, payload],
    });
    const [result] = inspectDags([{ source: renderer.render(job).source, fragments: FRAGMENTS }]);
    expect(result.leaked).toEqual([]);
    expect(result.dangerous).toEqual([]);
    expect(result.spec).toMatchObject({
      name: job.name,
      domain: job.domain,
      owner: job.owner,
      source_table: job.sourceTable,
      label_column: job.labelColumn,
      feature_columns: job.featureColumns,
    });
  });

  it('should render no PSK: the DAG reads it from an Airflow Variable at run time', () => {
    const { source } = renderer.render(dagJob());
    expect(source).not.toContain(TEST_PSK);
    expect(source).toContain('PSK_VARIABLE = "automl_training_psk"');
    // The runtime the DAG imports reads the Variable the DAG names, when a callback runs.
    expect(source).toContain('psk_variable=PSK_VARIABLE');
    expect(trainingRuntime().source).toContain('Variable.get(self.psk_variable)');
    expect(trainingRuntime().source).not.toContain(TEST_PSK);
  });

  describe('over the API', () => {
    let testApp: TestApp;

    beforeAll(async () => {
      testApp = await startTestApp();
    });

    afterAll(() => testApp.close());

    it('should never return or write a configured PSK', async () => {
      const job = await createJob(testApp, { name: 'psk check' });
      const everything = JSON.stringify([job, (await testApp.http().get('/api/automl/train/jobs').set(psk())).body]);
      for (const key of [TEST_PSK, ROTATED_PSK]) expect(everything).not.toContain(key);
    });
  });
});

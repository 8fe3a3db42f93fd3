/**
 * Writes trainer/tests/fixtures/rendered_job_specs.json (`npm run contract`):
 * the JOB_SPEC of DAGs rendered by the service's own DagRenderer for a matrix
 * of jobs (every algorithm × problem type with its optional fields present and
 * absent, and every form of source_table), decoded from the DAG file's text.
 * The trainer's tests parse each one (tests/test_contract.py) and train on two;
 * a unit test fails when the committed file differs from what this writes.
 */
import { dagJob } from '../test/utils/dag-python';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AutoMLAlgorithm,
  Preset,
  ProblemType,
  problemTypesFor,
} from '../src/automl-training/domain/automl-training.enums';
import { DagJob, DagRenderer } from '../src/automl-training/dag/dag-renderer';
import { loadAppConfig } from '../src/config/app.config';

export const ROOT = join(__dirname, '..');
export const RENDERED_SPECS_FILE = 'trainer/tests/fixtures/rendered_job_specs.json';

/** The forms of source_table the API accepts, by case name (the trainer's test knows what each names). */
export const SOURCE_TABLES: Record<string, string> = {
  bare: 'churn',
  schema_table: 'marketing.churn',
  quoted_mixed_case: '"Sales"."Orders2024"',
  unquoted_mixed_case: 'Sales.Orders2024',
  reserved_words: 'order."select"',
  quoted_leading_digit: '"2024_sales".orders',
  three_part: 'warehouse.sales.orders',
  three_part_quoted: '"Warehouse"."Sales"."Orders2024"',
};

const PROBLEM_COLUMNS: Record<ProblemType, { full: Partial<DagJob>; minimal: Partial<DagJob> }> = {
  [ProblemType.BinaryClassification]: { full: {}, minimal: {} },
  [ProblemType.MulticlassClassification]: { full: {}, minimal: {} },
  [ProblemType.Regression]: { full: {}, minimal: {} },
  [ProblemType.Ranking]: { full: { groupColumn: 'query_id' }, minimal: { groupColumn: 'query_id' } },
  [ProblemType.AnomalyDetection]: { full: {}, minimal: { labelColumn: null } },
  [ProblemType.ContextualBandit]: {
    full: { actionColumn: 'shown', propensityColumn: 'p_logged', rewardColumn: 'clicked' },
    minimal: { actionColumn: 'shown', propensityColumn: 'p_logged', costColumn: 'cost' },
  },
};

function job(index: number, overrides: Partial<DagJob>): DagJob {
  return dagJob({
    jobId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
    name: `contract ${index}`,
    domain: 'contract',
    sourceTable: SOURCE_TABLES.schema_table,
    labelColumn: 'label',
    featureColumns: null,
    ...overrides,
  });
}

/** The JOB_SPEC a rendered DAG carries: its `JOB_SPEC = json.loads("…")` line, the literal decoded as Python would. */
export function jobSpecOf(source: string): Record<string, unknown> {
  const line = source.split('\n').find((text) => text.startsWith('JOB_SPEC = json.loads('));
  if (!line) throw new Error('rendered DAG has no JOB_SPEC line');
  const literal = line.slice('JOB_SPEC = json.loads('.length, line.indexOf(')  # noqa'));
  // pythonJsonLiteral writes a JSON string literal (ASCII, \u escapes), which is also Python's.
  return JSON.parse(JSON.parse(literal) as string) as Record<string, unknown>;
}

/** Every case: its name and the JOB_SPEC the real renderer gives its job. */
export function renderedJobSpecs(): { case: string; spec: Record<string, unknown> }[] {
  const renderer = new DagRenderer(
    loadAppConfig({ NODE_ENV: 'test', API_PSK: 'contract-psk', DATABASE_URL: 'pglite://memory' }),
  );
  const cases: { case: string; overrides: Partial<DagJob> }[] = [];
  const presets = Object.values(Preset);
  for (const algorithm of Object.values(AutoMLAlgorithm)) {
    for (const problemType of problemTypesFor(algorithm)) {
      const columns = PROBLEM_COLUMNS[problemType];
      cases.push({
        case: `${algorithm}-${problemType}-full`,
        overrides: {
          algorithm,
          problemType,
          preset: presets[cases.length % presets.length],
          tuningTrials: 3,
          tuningTimeBudgetMinutes: 1,
          featureColumns: ['a', 'größe', '東京 "x"', 'feature one'],
          featureEngineeringJobId: '11111111-2222-4333-8444-555555555555',
          ...columns.full,
        },
      });
      cases.push({
        case: `${algorithm}-${problemType}-minimal`,
        overrides: { algorithm, problemType, ...columns.minimal },
      });
    }
  }
  for (const [form, sourceTable] of Object.entries(SOURCE_TABLES)) {
    cases.push({
      case: `source_table-${form}`,
      overrides: { sourceTable, tuningTrials: 2, tuningTimeBudgetMinutes: 1, preset: Preset.Fast },
    });
  }
  return cases.map(({ case: name, overrides }, index) => ({
    case: name,
    spec: jobSpecOf(renderer.render(job(index + 1, overrides)).source),
  }));
}

/** The file's text: two-space JSON and a final newline. */
export function renderedJobSpecsText(): string {
  return `${JSON.stringify(renderedJobSpecs(), null, 2)}\n`;
}

if (require.main === module) {
  writeFileSync(join(ROOT, RENDERED_SPECS_FILE), renderedJobSpecsText());
  console.log(`${RENDERED_SPECS_FILE} written`);
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTRACT_FILE, contractText, jobSpecContract, ROOT } from '../../../../scripts/job-spec-contract';
import {
  RENDERED_SPECS_FILE,
  renderedJobSpecs,
  renderedJobSpecsText,
  SOURCE_TABLES,
} from '../../../../scripts/rendered-job-specs';
import { SOURCE_TABLE_PATTERN } from './request.dto';

/** The committed file must be exactly what `npm run contract` writes (run it and commit the result after a change). */
function expectUpToDate(file: string, generated: string): void {
  const committed = readFileSync(join(ROOT, file), 'utf8');
  if (committed !== generated)
    throw new Error(`${file} differs from what \`npm run contract\` writes: run it and commit ${file}`);
}

describe('the job-spec contract (trainer/src/automl_trainer/job_spec.schema.json)', () => {
  it('should be committed as `npm run contract` generates it from the enums and request rules', () => {
    expectUpToDate(CONTRACT_FILE, contractText());
  });

  it("should commit the real renderer's JOB_SPECs the trainer's tests parse (trainer/tests/fixtures)", () => {
    expectUpToDate(RENDERED_SPECS_FILE, renderedJobSpecsText());
  });

  it('should describe every key the renderer writes into JOB_SPEC, in its order, and no other', () => {
    const properties = Object.keys(jobSpecContract().properties as object);
    for (const { spec } of renderedJobSpecs()) expect(Object.keys(spec)).toEqual(properties);
  });

  it('should render only source_table forms the API accepts', () => {
    for (const sourceTable of Object.values(SOURCE_TABLES)) expect(sourceTable).toMatch(SOURCE_TABLE_PATTERN);
  });
});

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_WRITEBACK_METRICS, WRITEBACK_NAME_MAX_LENGTH } from '../domain/writeback-limits';
import { RUNTIME_SOURCE_FILE, trainingRuntime } from './dag-renderer';

describe('training runtime', () => {
  const text = readFileSync(join(__dirname, RUNTIME_SOURCE_FILE), 'utf8');

  /** The value of a module-level `NAME = <integer>` line of the runtime. */
  function constant(name: string): number {
    const lines = text.split('\n').filter((line) => line.startsWith(`${name} = `));
    expect(lines).toHaveLength(1);
    const match = /^\w+ = (\d+)$/.exec(lines[0]);
    expect(match).not.toBeNull();
    return Number(match![1]);
  }

  it("should carry the service's writeback limits on the result summary", () => {
    expect(constant('MAX_METRICS')).toBe(MAX_WRITEBACK_METRICS);
    expect(constant('MAX_NAME_LENGTH')).toBe(WRITEBACK_NAME_MAX_LENGTH);
  });

  it('should deploy the file as it is, named by a hash of its text', () => {
    const runtime = trainingRuntime();
    expect(runtime.source).toBe(text);
    expect(runtime.module).toBe(`automl_runtime_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`);
    expect(runtime.fileName).toBe(`${runtime.module}.py`);
  });
});

import { execFileSync } from 'node:child_process';
import { parsePythonJson, PythonJsonDecodeError } from './python-json';

/** Inputs whose json.loads outcome is compared with the real CPython on this machine. */
const CORPUS = [
  '{bad',
  '{"status":"done",}',
  '{"status":"done"} x',
  '{"status":"done',
  '{"a" 1}',
  '{"a":1 "b":2}',
  '[1,]',
  '[1 2]',
  '[',
  '{',
  '',
  '   ',
  '{"a":',
  '{"a":tru}',
  '"\\x"',
  '"\\u12"',
  '"\\u12zz"',
  '"a\tb"',
  '"\\ud83d\\ude00"',
  '{"é":"é" x',
  '😀 1',
  '-',
  '-0.5e+3',
  '01',
  '1.',
  'NaN',
  '-Infinity',
  '{"__proto__": {"polluted": true}}',
  '[{"a": [1, {"b": null}]}, "x", true, false]',
  '{"a":1,"a":2}',
  '\u00a0{}',
];

interface Outcome {
  ok: boolean;
  value?: unknown;
  msg?: string;
  pos?: number;
}

function pythonOutcomes(inputs: string[]): Outcome[] {
  const script = `
import json, sys, math
out = []
for s in json.loads(sys.stdin.read()):
    try:
        v = json.loads(s)
        out.append({"ok": True, "value": None if isinstance(v, float) and not math.isfinite(v) else v})
    except json.JSONDecodeError as e:
        out.append({"ok": False, "msg": e.msg, "pos": e.pos})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify(inputs) }).toString());
}

function ourOutcome(input: string): Outcome {
  try {
    const value = parsePythonJson(input);
    return { ok: true, value: typeof value === 'number' && !Number.isFinite(value) ? null : value };
  } catch (error) {
    if (!(error instanceof PythonJsonDecodeError)) throw error;
    return { ok: false, msg: error.msg, pos: error.pos };
  }
}

describe('parsePythonJson', () => {
  const expected = pythonOutcomes(CORPUS);

  it.each(CORPUS.map((input, index) => [input, index]))('should match CPython json.loads for %j', (input, index) => {
    expect(ourOutcome(input as string)).toEqual(expected[index as number]);
  });

  it('should keep a __proto__ key as data', () => {
    const value = parsePythonJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

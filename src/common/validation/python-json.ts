/**
 * A JSON parser that accepts exactly what CPython's `json.loads` accepts
 * (including NaN, Infinity, -Infinity) and, on bad input, fails with CPython's
 * own short message and position, because FastAPI puts both into its
 * `json_invalid` 422 item. Positions follow the C scanner of CPython ≤ 3.12
 * (the version the original service was verified on) and are code-point
 * indexes, as Python counts them.
 */
export class PythonJsonDecodeError extends Error {
  constructor(
    readonly msg: string,
    /** Code-point index into the decoded text. */
    readonly pos: number,
  ) {
    super(`${msg}: char ${pos}`);
  }
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/**
 * Nesting deeper than this fails as CPython's decoder does past its recursion
 * limit: a RecursionError, which FastAPI answers with 400 "There was an error
 * parsing the body". Also keeps this recursive parser off the stack limit.
 */
export const MAX_JSON_DEPTH = 1000;

export class JsonTooDeepError extends Error {
  constructor() {
    super(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
}

/** Thrown by scanOnce when no value starts at `index` (Python's StopIteration). */
class NoValue {
  constructor(readonly index: number) {}
}

class Scanner {
  private depth = 0;

  constructor(private readonly s: string) {}

  private enter(): void {
    if (++this.depth > MAX_JSON_DEPTH) throw new JsonTooDeepError();
  }

  private fail(msg: string, index: number): never {
    throw new PythonJsonDecodeError(msg, codePointIndex(this.s, index));
  }

  skipWhitespace(index: number): number {
    while (index < this.s.length && WHITESPACE.has(this.s[index])) index++;
    return index;
  }

  /** Returns [value, indexAfterValue]; throws NoValue when nothing parses at `index`. */
  scanOnce(index: number): [unknown, number] {
    const s = this.s;
    if (index >= s.length) throw new NoValue(index);
    const c = s[index];
    if (c === '"') return this.scanString(index + 1);
    if (c === '{' || c === '[') {
      this.enter();
      const result = c === '{' ? this.scanObject(index + 1) : this.scanArray(index + 1);
      this.depth--;
      return result;
    }
    if (c === 'n' && s.startsWith('null', index)) return [null, index + 4];
    if (c === 't' && s.startsWith('true', index)) return [true, index + 4];
    if (c === 'f' && s.startsWith('false', index)) return [false, index + 5];
    NUMBER.lastIndex = index;
    const number = NUMBER.exec(s);
    if (number) return [Number(number[0]), index + number[0].length];
    if (c === 'N' && s.startsWith('NaN', index)) return [NaN, index + 3];
    if (c === 'I' && s.startsWith('Infinity', index)) return [Infinity, index + 8];
    if (c === '-' && s.startsWith('-Infinity', index)) return [-Infinity, index + 9];
    throw new NoValue(index);
  }

  private scanValue(index: number): [unknown, number] {
    try {
      return this.scanOnce(index);
    } catch (error) {
      if (error instanceof NoValue) this.fail('Expecting value', error.index);
      throw error;
    }
  }

  /** `index` is just after the opening quote. */
  private scanString(index: number): [string, number] {
    const s = this.s;
    const begin = index - 1;
    let out = '';
    for (;;) {
      let next = index;
      while (next < s.length) {
        const c = s[next];
        if (c === '"' || c === '\\') break;
        if (c.charCodeAt(0) <= 0x1f) this.fail('Invalid control character at', next);
        next++;
      }
      if (next >= s.length) this.fail('Unterminated string starting at', begin);
      out += s.slice(index, next);
      if (s[next] === '"') return [out, next + 1];
      next++;
      if (next === s.length) this.fail('Unterminated string starting at', begin);
      const escape = s[next];
      if (escape !== 'u') {
        const decoded = SIMPLE_ESCAPES[escape];
        if (decoded === undefined) this.fail('Invalid \\escape', next - 1);
        out += decoded;
        index = next + 1;
        continue;
      }
      next++;
      let end = next + 4;
      if (end >= s.length) this.fail('Invalid \\uXXXX escape', next - 1);
      const hex = s.slice(next, end);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('Invalid \\uXXXX escape', end - 5);
      let code = parseInt(hex, 16);
      if (code >= 0xd800 && code <= 0xdbff && end + 6 < s.length && s[end] === '\\' && s[end + 1] === 'u') {
        const low = s.slice(end + 2, end + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(low)) this.fail('Invalid \\uXXXX escape', end + 1);
        const lowCode = parseInt(low, 16);
        if (lowCode >= 0xdc00 && lowCode <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (lowCode - 0xdc00);
          end += 6;
        }
      }
      out += String.fromCodePoint(code);
      index = end;
    }
  }

  /** `index` is just after `{`. */
  private scanObject(index: number): [Record<string, unknown>, number] {
    const s = this.s;
    const result: Record<string, unknown> = {};
    index = this.skipWhitespace(index);
    if (index < s.length && s[index] === '}') return [result, index + 1];
    for (;;) {
      if (index >= s.length || s[index] !== '"') {
        this.fail('Expecting property name enclosed in double quotes', index);
      }
      const [key, afterKey] = this.scanString(index + 1);
      index = this.skipWhitespace(afterKey);
      if (index >= s.length || s[index] !== ':') this.fail("Expecting ':' delimiter", index);
      index = this.skipWhitespace(index + 1);
      const [value, afterValue] = this.scanValue(index);
      // defineProperty: a "__proto__" key must stay data, never reach the prototype.
      Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true });
      index = this.skipWhitespace(afterValue);
      if (index < s.length && s[index] === '}') return [result, index + 1];
      if (index >= s.length || s[index] !== ',') this.fail("Expecting ',' delimiter", index);
      index = this.skipWhitespace(index + 1);
    }
  }

  /** `index` is just after `[`. */
  private scanArray(index: number): [unknown[], number] {
    const s = this.s;
    const result: unknown[] = [];
    index = this.skipWhitespace(index);
    if (index < s.length && s[index] === ']') return [result, index + 1];
    for (;;) {
      const [value, afterValue] = this.scanValue(index);
      result.push(value);
      index = this.skipWhitespace(afterValue);
      if (index < s.length && s[index] === ']') return [result, index + 1];
      if (index >= s.length || s[index] !== ',') this.fail("Expecting ',' delimiter", index);
      index = this.skipWhitespace(index + 1);
    }
  }
}

function codePointIndex(s: string, utf16Index: number): number {
  let count = 0;
  for (let i = 0; i < utf16Index && i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < utf16Index) {
      const low = s.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) i++;
    }
    count++;
  }
  return count + Math.max(0, utf16Index - s.length);
}

/** `json.loads(text)` with CPython's errors. */
export function parsePythonJson(text: string): unknown {
  const scanner = new Scanner(text);
  const start = scanner.skipWhitespace(0);
  let value: unknown;
  let end: number;
  try {
    [value, end] = scanner.scanOnce(start);
  } catch (error) {
    if (error instanceof NoValue) throw new PythonJsonDecodeError('Expecting value', codePointIndex(text, error.index));
    throw error;
  }
  end = scanner.skipWhitespace(end);
  if (end !== text.length) throw new PythonJsonDecodeError('Extra data', codePointIndex(text, end));
  return value;
}

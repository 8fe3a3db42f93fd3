/**
 * A Python string literal for `value`: JSON's double-quoted form, with every
 * non-ASCII UTF-16 unit escaped, is valid Python with the same meaning for
 * BMP text. Values that may hold astral characters go through
 * `pythonJsonLiteral`, whose surrogate-pair escapes are decoded by json.loads.
 */
export function pythonString(value: string): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A Python string literal holding ASCII-only JSON of `value`, for `json.loads(...)`. */
export function pythonJsonLiteral(value: unknown): string {
  return pythonString(
    JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  );
}

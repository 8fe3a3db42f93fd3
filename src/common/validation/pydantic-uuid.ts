/**
 * pydantic v2 validates UUID strings with Rust's `uuid` crate and reports the
 * crate's error text in `ctx.error`. This is a port of the crate's accepted
 * forms and of `InvalidUuid::into_err` (uuid 1.23.0/1.23.1, the version in
 * pydantic 2.13: "invalid character: found `x` at N", 1-based).
 */
const HEX = /^[0-9a-fA-F]$/;
const HYPHENATED = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SIMPLE = /^[0-9a-fA-F]{32}$/;
/** Already canonical: returned as is (the common case, and the only one worth a fast path). */
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const GROUP_STARTS = [0, 9, 14, 19, 24];
const GROUP_LENGTHS = [8, 4, 4, 4, 12];

/** The canonical lower-case hyphenated form, or null when the crate would refuse the input. */
export function parseUuid(input: string): string | null {
  if (input.length === 36 && CANONICAL.test(input)) return input;
  let body: string | null = null;
  if (input.length === 36 && HYPHENATED.test(input)) body = input;
  else if (input.length === 32 && SIMPLE.test(input)) body = input;
  else if (input.length === 38 && input.startsWith('{') && input.endsWith('}') && HYPHENATED.test(input.slice(1, -1))) {
    body = input.slice(1, -1);
  } else if (input.length === 45 && input.startsWith('urn:uuid:') && HYPHENATED.test(input.slice(9))) {
    body = input.slice(9);
  }
  if (body === null) return null;
  const hex = body.replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The crate's Display text for a string `parseUuid` refused. */
export function uuidErrorText(input: string): string {
  const byteLength = Buffer.byteLength(input, 'utf8');
  let body = input;
  let offset = 0;
  let simple = true;
  if (input.length >= 2 && input.startsWith('{') && input.endsWith('}')) {
    body = input.slice(1, -1);
    offset = 1;
    simple = false;
  } else if (input.startsWith('urn:uuid:')) {
    body = input.slice(9);
    offset = 9;
    simple = false;
  }
  let hyphens = 0;
  const bounds: number[] = [];
  let byteIndex = 0;
  for (const character of body) {
    if (character === '-') {
      if (hyphens < 4) bounds.push(byteIndex);
      hyphens++;
    } else if (!HEX.test(character)) {
      return `invalid character: found \`${character}\` at ${byteIndex + offset + 1}`;
    }
    byteIndex += Buffer.byteLength(character, 'utf8');
  }
  if (hyphens === 0 && simple) {
    return `invalid length: expected length 32 for simple format, found ${byteLength}`;
  }
  if (hyphens !== 4) return `invalid group count: expected 5, found ${hyphens + 1}`;
  for (let group = 0; group < 4; group++) {
    if (bounds[group] !== GROUP_STARTS[group + 1] - 1) {
      return `invalid group length in group ${group}: expected ${GROUP_LENGTHS[group]}, found ${bounds[group] - GROUP_STARTS[group]}`;
    }
  }
  return `invalid group length in group 4: expected 12, found ${byteLength - GROUP_STARTS[4]}`;
}

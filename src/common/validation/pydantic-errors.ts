import { parseUuid, uuidErrorText } from './pydantic-uuid';

export type Loc = (string | number)[];

/** One item of FastAPI's 422 `detail`, keys in pydantic's order. */
export interface ValidationItem {
  type: string;
  loc: Loc;
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

/** Thrown wherever request input is refused; rendered as 422 `{"detail": items}`. */
export class RequestValidationError extends Error {
  constructor(readonly items: ValidationItem[]) {
    super('Request validation failed');
  }
}

export type FieldSpec =
  | {
      kind: 'string';
      required: boolean;
      nullable: boolean;
      minLength?: number;
      maxLength?: number;
      /** pydantic's `pattern`: a search (anchor it to match the whole value). */
      pattern?: RegExp;
      /** PostgreSQL text cannot hold NUL: refuse it (default) or replace it with U+FFFD. */
      nul?: 'refuse' | 'replace';
    }
  | { kind: 'enum'; values: readonly string[]; required: boolean; nullable: boolean }
  | { kind: 'enum_list'; values: readonly string[]; maxItems?: number }
  | { kind: 'uuid'; required: boolean; nullable: boolean }
  | { kind: 'date_time' }
  | {
      kind: 'string_list';
      required: boolean;
      nullable: boolean;
      maxItems?: number;
      itemMinLength?: number;
      itemMaxLength?: number;
    }
  | { kind: 'uuid_list'; maxItems: number }
  /** An object of string → finite number (pydantic `dict[str, float]` with `allow_inf_nan=False`, strict numbers). */
  | {
      kind: 'number_map';
      required: boolean;
      nullable: boolean;
      maxItems: number;
      keyMaxLength: number;
      /** As for strings: NUL in a key is refused (default) or replaced with U+FFFD. */
      nul?: 'refuse' | 'replace';
    }
  | { kind: 'bool' }
  /** A query parameter's integer: text parsed as pydantic parses an int from a string. */
  | { kind: 'int'; ge?: number; le?: number }
  /**
   * A body integer (pydantic `StrictInt`): a JSON number with no fraction, never a string or a boolean.
   * The body decoder yields JS numbers, so `5.0` reads as 5 (pydantic, which keeps the float, refuses it).
   */
  | { kind: 'strict_int'; required: boolean; nullable: boolean; ge?: number; le?: number }
  /**
   * A nested model (pydantic `BaseModel` field): `model`'s own @Field declarations validate an object, with
   * the same rules as the body (unknown keys ignored). Validated by RequestValidationGuard; `checkField`
   * checks only that the value is an object. `schemaName` is the model's OpenAPI component.
   */
  | { kind: 'model'; required: boolean; nullable: boolean; model: new () => object; schemaName: string };

/** Python repr of a str. */
export function pyRepr(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const escaped = value
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t')
    .replace(quote === "'" ? /'/g : /"/g, quote === "'" ? "\\'" : '\\"');
  return `${quote}${escaped}${quote}`;
}

/** pydantic's enum `expected`: reprs joined by ", " with " or " before the last. */
export function enumExpected(values: readonly string[]): string {
  const reprs = values.map(pyRepr);
  return reprs.length <= 1 ? reprs.join('') : `${reprs.slice(0, -1).join(', ')} or ${reprs[reprs.length - 1]}`;
}

export const missing = (loc: Loc, input: unknown): ValidationItem => ({
  type: 'missing',
  loc,
  msg: 'Field required',
  input,
});

export const stringType = (loc: Loc, input: unknown): ValidationItem => ({
  type: 'string_type',
  loc,
  msg: 'Input should be a valid string',
  input,
});

export function uuidItem(loc: Loc, input: unknown): ValidationItem | null {
  if (typeof input !== 'string') {
    return { type: 'uuid_type', loc, msg: 'UUID input should be a string, bytes or UUID object', input };
  }
  if (parseUuid(input) !== null) return null;
  const error = uuidErrorText(input);
  return { type: 'uuid_parsing', loc, msg: `Input should be a valid UUID, ${error}`, input, ctx: { error } };
}

export function enumItem(loc: Loc, input: unknown, values: readonly string[]): ValidationItem | null {
  if (typeof input === 'string' && values.includes(input)) return null;
  const expected = enumExpected(values);
  return { type: 'enum', loc, msg: `Input should be ${expected}`, input, ctx: { expected } };
}

export function valueError(loc: Loc, input: unknown, message: string): ValidationItem {
  // FastAPI's jsonable_encoder renders the ValueError object in ctx as {}.
  return { type: 'value_error', loc, msg: `Value error, ${message}`, input, ctx: { error: {} } };
}

/**
 * A UTF-16 surrogate without its pair: JSON's `"\ud800"` escape parses to one, but it is no Unicode text, so
 * PostgreSQL's json and UTF-8 cannot hold it. Refused like NUL; replaced by U+FFFD where NUL is replaced.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

function wellFormed(text: string): string {
  return text.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATES, '\ufffd');
}

function stringItems(
  loc: Loc,
  input: unknown,
  minLength?: number,
  maxLength?: number,
  nul: 'refuse' | 'replace' = 'refuse',
  pattern?: RegExp,
): ValidationItem[] {
  if (typeof input !== 'string') return [stringType(loc, input)];
  if (nul === 'refuse' && input.includes('\u0000')) return [valueError(loc, input, 'NUL characters are not allowed')];
  if (nul === 'refuse' && LONE_SURROGATE.test(input)) {
    return [valueError(loc, input, 'unpaired surrogate characters (invalid Unicode) are not allowed')];
  }
  const length = [...input].length;
  if (minLength !== undefined && length < minLength) {
    const unit = minLength === 1 ? 'character' : 'characters';
    return [
      {
        type: 'string_too_short',
        loc,
        msg: `String should have at least ${minLength} ${unit}`,
        input,
        ctx: { min_length: minLength },
      },
    ];
  }
  if (maxLength !== undefined && length > maxLength) {
    const unit = maxLength === 1 ? 'character' : 'characters';
    return [
      {
        type: 'string_too_long',
        loc,
        msg: `String should have at most ${maxLength} ${unit}`,
        input,
        ctx: { max_length: maxLength },
      },
    ];
  }
  if (pattern !== undefined && !pattern.test(input)) {
    return [
      {
        type: 'string_pattern_mismatch',
        loc,
        msg: `String should match pattern '${pattern.source}'`,
        input,
        ctx: { pattern: pattern.source },
      },
    ];
  }
  return [];
}

/**
 * An ISO 8601 date-time with a time zone (`2026-11-28T10:00:00Z`, `…+01:00`),
 * or a date (midnight UTC). Null when the text is not one.
 */
export function parseDateTime(input: string): Date | null {
  const match =
    /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2}))?$/i.exec(input);
  if (!match) return null;
  if (match[4] !== undefined && match[8] === undefined) return null;
  const date = new Date(match[4] === undefined ? `${input}T00:00:00Z` : input.replace(' ', 'T'));
  if (Number.isNaN(date.getTime())) return null;
  // Date() rolls 2026-02-30 over into March: refuse what does not round-trip.
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day)
    return null;
  return date;
}

function tooLong(
  loc: Loc,
  input: unknown,
  length: number,
  maxItems: number,
  fieldType: 'List' | 'Dictionary' = 'List',
): ValidationItem {
  const unit = maxItems === 1 ? 'item' : 'items';
  return {
    type: 'too_long',
    loc,
    msg: `${fieldType} should have at most ${maxItems} ${unit} after validation, not ${length}`,
    input,
    ctx: { field_type: fieldType, max_length: maxItems, actual_length: length },
  };
}

/** pydantic's items for `dict[str, float]`: keys at `[...loc, key, '[key]']`, values at `[...loc, key]`. */
function numberMapItems(
  loc: Loc,
  input: unknown,
  maxItems: number,
  keyMaxLength: number,
  nul: 'refuse' | 'replace' = 'refuse',
): ValidationItem[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return [{ type: 'dict_type', loc, msg: 'Input should be a valid dictionary', input }];
  }
  const entries = Object.entries(input);
  if (entries.length > maxItems) return [tooLong(loc, input, entries.length, maxItems, 'Dictionary')];
  return entries.flatMap(([key, value]) => {
    const items = stringItems([...loc, key, '[key]'], key, 1, keyMaxLength, nul);
    if (typeof value !== 'number') {
      items.push({ type: 'float_type', loc: [...loc, key], msg: 'Input should be a valid number', input: value });
    } else if (!Number.isFinite(value)) {
      items.push({ type: 'finite_number', loc: [...loc, key], msg: 'Input should be a finite number', input: value });
    }
    return items;
  });
}

const TRUE_WORDS = new Set(['1', 'on', 't', 'true', 'y', 'yes']);
const FALSE_WORDS = new Set(['0', 'off', 'f', 'false', 'n', 'no']);

/** pydantic's lax str → bool. */
export function parseBool(input: string): boolean | null {
  const word = input.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return null;
}

/** pydantic's `ge`/`le` items for `value`, read from `input` (the value itself, or the text it was parsed from). */
function boundItems(loc: Loc, input: unknown, value: number, ge?: number, le?: number): ValidationItem[] {
  if (ge !== undefined && value < ge) {
    return [
      { type: 'greater_than_equal', loc, msg: `Input should be greater than or equal to ${ge}`, input, ctx: { ge } },
    ];
  }
  if (le !== undefined && value > le) {
    return [{ type: 'less_than_equal', loc, msg: `Input should be less than or equal to ${le}`, input, ctx: { le } }];
  }
  return [];
}

/**
 * The pydantic errors for one field value. `input === undefined` means absent;
 * `whole` is the object the field was read from (pydantic reports it as the
 * input of a `missing` item).
 */
export function checkField(spec: FieldSpec, loc: Loc, input: unknown, whole: unknown): ValidationItem[] {
  if (input === undefined) {
    const required = 'required' in spec ? spec.required : false;
    return required ? [missing(loc, whole)] : [];
  }
  if (input === null && 'nullable' in spec && spec.nullable) return [];
  switch (spec.kind) {
    case 'string':
      return stringItems(loc, input, spec.minLength, spec.maxLength, spec.nul, spec.pattern);
    case 'enum': {
      const item = enumItem(loc, input, spec.values);
      return item ? [item] : [];
    }
    case 'enum_list': {
      const values = input as unknown[];
      if (spec.maxItems !== undefined && values.length > spec.maxItems)
        return [tooLong(loc, values, values.length, spec.maxItems)];
      return values.flatMap((item, index) => enumItem([...loc, index], item, spec.values) ?? []);
    }
    case 'date_time':
      return typeof input === 'string' && parseDateTime(input) !== null
        ? []
        : [
            {
              type: 'datetime_from_date_parsing',
              loc,
              msg: 'Input should be a valid datetime or date, expected an ISO 8601 date-time with a time zone or a date',
              input,
              ctx: { error: 'expected an ISO 8601 date-time with a time zone or a date' },
            },
          ];
    case 'uuid': {
      const item = uuidItem(loc, input);
      return item ? [item] : [];
    }
    case 'string_list': {
      if (!Array.isArray(input)) return [{ type: 'list_type', loc, msg: 'Input should be a valid list', input }];
      if (spec.maxItems !== undefined && input.length > spec.maxItems)
        return [tooLong(loc, input, input.length, spec.maxItems)];
      return input.flatMap((item, index) => stringItems([...loc, index], item, spec.itemMinLength, spec.itemMaxLength));
    }
    case 'uuid_list': {
      const values = input as unknown[];
      if (values.length > spec.maxItems) return [tooLong(loc, values, values.length, spec.maxItems)];
      // Up to 1000 ids per bulk call: an item's loc is built only when it is refused.
      const items: ValidationItem[] = [];
      values.forEach((item, index) => {
        if (typeof item === 'string' && parseUuid(item) !== null) return;
        const refused = uuidItem([...loc, index], item);
        if (refused) items.push(refused);
      });
      return items;
    }
    case 'number_map':
      return numberMapItems(loc, input, spec.maxItems, spec.keyMaxLength, spec.nul);
    case 'bool':
      return typeof input === 'string' && parseBool(input) !== null
        ? []
        : [{ type: 'bool_parsing', loc, msg: 'Input should be a valid boolean, unable to interpret input', input }];
    case 'int': {
      if (typeof input !== 'string' || !/^\s*[+-]?\d+\s*$/.test(input)) {
        return [
          {
            type: 'int_parsing',
            loc,
            msg: 'Input should be a valid integer, unable to parse string as an integer',
            input,
          },
        ];
      }
      return boundItems(loc, input, Number(input), spec.ge, spec.le);
    }
    case 'strict_int':
      return typeof input === 'number' && Number.isInteger(input)
        ? boundItems(loc, input, input, spec.ge, spec.le)
        : [{ type: 'int_type', loc, msg: 'Input should be a valid integer', input }];
    case 'model':
      // FastAPI validates the body with from_attributes=True, which pydantic applies to nested models too.
      return typeof input === 'object' && input !== null && !Array.isArray(input)
        ? []
        : [
            {
              type: 'model_attributes_type',
              loc,
              msg: 'Input should be a valid dictionary or object to extract fields from',
              input,
            },
          ];
  }
}

/** The validated value of a field that `checkField` accepted. */
export function coerceField(spec: FieldSpec, input: unknown): unknown {
  if (input === undefined || input === null) return input;
  switch (spec.kind) {
    case 'string':
      return spec.nul === 'replace' ? wellFormed(input as string) : input;
    case 'uuid':
      return parseUuid(input as string);
    case 'uuid_list':
      return (input as string[]).map((value) => parseUuid(value));
    case 'number_map':
      return spec.nul === 'replace'
        ? Object.fromEntries(
            Object.entries(input as Record<string, number>).map(([key, value]) => [wellFormed(key), value]),
          )
        : input;
    case 'bool':
      return parseBool(input as string);
    case 'int':
      return Number(input);
    case 'model':
      throw new Error('A nested model is validated and built by RequestValidationGuard');
    case 'date_time':
      return parseDateTime(input as string);
    default:
      return input;
  }
}

import { parseUuid, uuidErrorText } from './pydantic-uuid';

const UUID = '0b9b6e4e-6f0e-4c57-9a55-2c1b1f1d7a10';

describe('parseUuid', () => {
  it.each([
    [UUID, UUID],
    [UUID.toUpperCase(), UUID],
    [UUID.replace(/-/g, ''), UUID],
    [`{${UUID}}`, UUID],
    [`urn:uuid:${UUID}`, UUID],
  ])('should accept %s', (input, canonical) => {
    expect(parseUuid(input)).toBe(canonical);
  });

  it.each(['', 'abc', `${UUID}x`, ` ${UUID}`, `{${UUID}`, UUID.slice(0, 35)])('should refuse %j', (input) => {
    expect(parseUuid(input)).toBeNull();
  });
});

describe('uuidErrorText', () => {
  it.each([
    ['abc', 'invalid length: expected length 32 for simple format, found 3'],
    ['', 'invalid length: expected length 32 for simple format, found 0'],
    ['bad', 'invalid length: expected length 32 for simple format, found 3'],
    ['not-a-uuid', 'invalid character: found `n` at 1'],
    ['1234-5678', 'invalid group count: expected 5, found 2'],
    [UUID.slice(0, 35), 'invalid group length in group 4: expected 12, found 11'],
    ['0b9b6e4-6f0e-4c57-9a55-2c1b1f1d7a10', 'invalid group length in group 0: expected 8, found 7'],
    [`é${UUID.slice(1)}`, 'invalid character: found `é` at 1'],
    [`${UUID},${UUID}`, 'invalid character: found `,` at 37'],
    [`{${UUID.slice(0, 8)}x}`, 'invalid character: found `x` at 10'],
  ])('should describe %j as pydantic 2.13 does', (input, text) => {
    expect(uuidErrorText(input)).toBe(text);
  });
});

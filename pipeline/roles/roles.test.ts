import { parseRoles, formatRoles, ALL_ROLES } from './roles.ts';

describe('parseRoles', () => {
  test.each([
    [undefined, 'api,processors,sink'],
    ['', 'api,processors,sink'],
    ['all', 'api,processors,sink'],
    ['api', 'api'],
    ['processors', 'processors'],
    ['sink', 'sink'],
    ['sink,api', 'api,sink'],
    [' API , Processors ', 'api,processors'],
    ['api,api', 'api'],
    ['api,all', 'api,processors,sink'],
  ])('%p → %s', (text, canonical) => {
    expect(formatRoles(parseRoles(text))).toBe(canonical);
  });

  test.each([['web'], ['api,,sink'], ['api;sink'], [',']])('%p is refused with the known roles named', (text) => {
    expect(() => parseRoles(text)).toThrow(/api, processors, sink/);
  });

  test('the default is a fresh copy (callers may not change the constant)', () => {
    const r = parseRoles(undefined);
    r.sink = false;
    expect(ALL_ROLES.sink).toBe(true);
  });
});

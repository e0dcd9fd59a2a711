import type { ItemManifest } from '../domain/types.ts';
import { ValidationError } from '../errors.ts';
import { parseShadowConfigs, trafficShapeIssues } from './shadow-config.ts';

const manifest: ItemManifest = {
  id: 'com.example.notes',
  version: '1.4.0',
  name: 'Notes',
  entry: 'index.html',
  endpoints: { api: 'https://api.example.com/v1' },
};

function issuesOf(input: unknown, m: ItemManifest = manifest): { path: string; message: string }[] {
  try {
    parseShadowConfigs(input, m);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}
const paths = (input: unknown): string[] => issuesOf(input).map((i) => i.path);

describe('parseShadowConfigs', () => {
  test('the ARCHITECTURE.md example parses unchanged', () => {
    const example = {
      name: 'checkout-v2',
      instrumentation: {
        capture: { performance: true, errors: true, usage: true },
        points: [{ id: 'buy', selector: '#buy', event: 'click' }],
        sampleRate: 1.0,
      },
      endpoints: { api: 'https://shadow-api.example.com/v1' },
      traffic: {
        percentage: 20,
        match: 'all',
        rules: [
          { attribute: 'deviceType', op: 'in', values: ['android'] },
          { attribute: 'appVersion', op: 'semver', range: '>=1.2.0' },
        ],
      },
    };
    // `control` defaults to on: the shadow gets an equally sized control cohort.
    expect(parseShadowConfigs(example, manifest)).toEqual([{ ...example, control: true }]);
    expect(parseShadowConfigs({ ...example, control: false }, manifest)).toEqual([{ ...example, control: false }]);
  });

  test('defaults: capture flags true, no points, sampleRate 1, no endpoints, 0% to all', () => {
    expect(parseShadowConfigs({ name: 'a' }, manifest)).toEqual([
      {
        name: 'a',
        instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
        endpoints: {},
        traffic: { percentage: 0, match: 'all', rules: [] },
        control: true,
      },
    ]);
    const [c] = parseShadowConfigs({ name: 'a', instrumentation: { capture: { errors: false } }, traffic: { percentage: 5 } }, manifest);
    expect(c.instrumentation.capture).toEqual({ performance: true, errors: false, usage: true });
    expect(c.traffic).toEqual({ percentage: 5, match: 'all', rules: [] });
  });

  test('an array gives A/B/n configs in order; [] is no shadows', () => {
    expect(parseShadowConfigs([{ name: 'a' }, { name: 'b' }], manifest).map((c) => c.name)).toEqual(['a', 'b']);
    expect(parseShadowConfigs([], manifest)).toEqual([]);
  });

  test.each([
    [{ name: 'Original' }, 'shadowConfig/0/name'],
    [{ name: 'original' }, 'shadowConfig/0/name'],
    [{ name: '-x' }, 'shadowConfig/0/name'],
    [{ name: 'a'.repeat(64) }, 'shadowConfig/0/name'],
    [{}, 'shadowConfig/0/name'],
    ['checkout', 'shadowConfig/0'],
    [{ name: 'a', sampelRate: 0.1 }, 'shadowConfig/0'],
    [{ name: 'a', instrumentation: { sampleRate: 1.5 } }, 'shadowConfig/0/instrumentation/sampleRate'],
    [{ name: 'a', instrumentation: { capture: { usage: 'yes' } } }, 'shadowConfig/0/instrumentation/capture/usage'],
    [{ name: 'a', instrumentation: { points: [{ id: 'p', selector: '#p', event: 'hover' }] } }, 'shadowConfig/0/instrumentation/points/0/event'],
    [{ name: 'a', instrumentation: { points: [{ id: 'p', selector: 'x'.repeat(513), event: 'click' }] } }, 'shadowConfig/0/instrumentation/points/0/selector'],
    [{ name: 'a', instrumentation: { points: [{ id: 'p', selector: '', event: 'click' }] } }, 'shadowConfig/0/instrumentation/points/0/selector'],
    [
      { name: 'a', instrumentation: { points: [{ id: 'p', selector: '#a', event: 'click' }, { id: 'p', selector: '#b', event: 'submit' }] } },
      'shadowConfig/0/instrumentation/points/1/id',
    ],
    [{ name: 'a', endpoints: { payments: 'https://pay.example.com' } }, 'shadowConfig/0/endpoints/payments'],
    [{ name: 'a', endpoints: { api: 'shadow-api.example.com' } }, 'shadowConfig/0/endpoints/api'],
    [{ name: 'a', endpoints: { api: 'javascript:alert(1)' } }, 'shadowConfig/0/endpoints/api'],
    [{ name: 'a', traffic: { percentage: 101 } }, 'shadowConfig/0/traffic/percentage'],
    [{ name: 'control' }, 'shadowConfig/0/name'],
    [{ name: 'a', control: 'yes' }, 'shadowConfig/0/control'],
    [{ name: 'a', traffic: { match: 'some' } }, 'shadowConfig/0/traffic/match'],
    [{ name: 'a', traffic: { rules: [{ attribute: 'country', op: 'in' }] } }, 'shadowConfig/0/traffic/rules/0/values'],
    [{ name: 'a', traffic: { rules: [{ attribute: 'appVersion', op: 'semver', range: 'not a range' }] } }, 'shadowConfig/0/traffic/rules/0/range'],
    [{ name: 'a', traffic: { rules: [{ attribute: 'userGroup', op: 'regex', pattern: '(a+)+$' }] } }, 'shadowConfig/0/traffic/rules/0/pattern'],
    [{ name: 'a', traffic: { rules: [{ attribute: 'country', op: 'near' }] } }, 'shadowConfig/0/traffic/rules/0/op'],
  ])('%j → issue at %s', (input, path) => {
    expect(paths(input)).toContain(path);
  });

  test('issues are indexed within arrays and collected across configs', () => {
    const issues = issuesOf([{ name: 'a' }, { name: 'b', endpoints: { payments: 'https://x.example.com' } }, { name: 'a' }]);
    expect(issues.map((i) => i.path)).toEqual(['shadowConfig/1/endpoints/payments', 'shadowConfig/2/name']);
    expect(issues[0].message).toMatch(/declared: api/);
  });

  test('A/B/n shares of all users cannot add up past 100%, a control cohort counting like its shadow', () => {
    const off = { control: false };
    expect(parseShadowConfigs([{ name: 'a', traffic: { percentage: 60 }, ...off }, { name: 'b', traffic: { percentage: 40 }, ...off }], manifest)).toHaveLength(2);
    expect(paths([{ name: 'a', traffic: { percentage: 60 }, ...off }, { name: 'b', traffic: { percentage: 40.01 }, ...off }])).toEqual([
      'shadowConfig/1/traffic/percentage',
    ]);
    expect(parseShadowConfigs([{ name: 'a', traffic: { percentage: 30 } }, { name: 'b', traffic: { percentage: 20 } }], manifest)).toHaveLength(2);
    const over = issuesOf({ name: 'a', traffic: { percentage: 50.5 } });
    expect(over.map((i) => i.path)).toEqual(['shadowConfig/0/traffic/percentage']);
    expect(over[0].message).toMatch(/at most 50%/);
    expect(parseShadowConfigs({ name: 'a', traffic: { percentage: 100 }, control: false }, manifest)[0].control).toBe(false);
  });

  test('a manifest without endpoints accepts no overrides; pathPrefix is configurable', () => {
    const bare = { ...manifest, endpoints: undefined };
    expect(issuesOf({ name: 'a', endpoints: { api: 'https://x.example.com' } }, bare)[0].message).toMatch(/declares none/);
    let caught: unknown;
    try {
      parseShadowConfigs([{ name: 'original' }], manifest, { pathPrefix: 'shadows' });
    } catch (err) {
      caught = err;
    }
    expect((caught as ValidationError).issues[0].path).toBe('shadows/0/name');
  });

  test('the read-only artifact of a stored spec is dropped, not refused', () => {
    const [c] = parseShadowConfigs({ name: 'a', artifact: { sha256: 'x', size: 1 } }, manifest);
    expect(c).not.toHaveProperty('artifact');
  });

  // Found by the fresh-seed fuzz pass (test/fuzz/configs, FUZZ_SEED=63696294): -0 was kept, and
  // JSON turns it into 0, so what GET returned differed from what was accepted.
  test('-0 is stored as 0: accepted configs survive a JSON round trip unchanged', () => {
    const [c] = parseShadowConfigs([{ name: '0', traffic: { percentage: -0 }, instrumentation: { sampleRate: -0 } }], manifest);
    expect(Object.is(c.traffic.percentage, 0)).toBe(true);
    expect(Object.is(c.instrumentation.sampleRate, 0)).toBe(true);
    expect(parseShadowConfigs(JSON.parse(JSON.stringify([c])), manifest)).toEqual([c]);
  });

  test('returned values do not alias the input', () => {
    const input = { name: 'a', traffic: { percentage: 1, match: 'any', rules: [{ attribute: 'country', op: 'in', values: ['FR'] }] } };
    const [c] = parseShadowConfigs(input, manifest);
    c.traffic.rules[0].values?.push('DE');
    expect(input.traffic.rules[0].values).toEqual(['FR']);
  });
});

test('trafficShapeIssues fills defaults before validating and prefixes paths', () => {
  expect(trafficShapeIssues(undefined, 'x/traffic')).toEqual([]);
  expect(trafficShapeIssues({ percentage: -1 }, 'x/traffic').map((i) => i.path)).toEqual(['x/traffic/percentage']);
  expect(trafficShapeIssues('all', 'x/traffic').map((i) => i.path)).toEqual(['x/traffic']);
});

// Issue 17, item 7: endpoint URLs are substituted verbatim into JS; inside a template literal
// `${…}` would run as code, and `*/` would end a comment so what follows runs.
test.each([
  ['template literal', 'https://shadow.example.com/v1/${globalThis.__pwned=1}'],
  ['closing brace', 'https://shadow.example.com/v1/}'],
  ['comment end', 'https://shadow.example.com/v1/*/globalThis.__pwned=1/*'],
])('an endpoint URL with %s syntax is refused with its field path', (_name, url) => {
  const issues = issuesOf({ name: 's', endpoints: { api: url } });
  expect(issues.map((i) => i.path)).toEqual(['shadowConfig/0/endpoints/api']);
  expect(issues[0].message).toMatch(/\$\{|\*\//);
});

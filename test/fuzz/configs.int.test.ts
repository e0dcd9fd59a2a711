/**
 * Fuzzing shadow configs and item archives, in process and through the API.
 *
 * In process (fast, ≥ 10,000 cases each):
 *  - parseShadowConfigs over near-valid and arbitrary config shapes: it returns configs or
 *    throws one ValidationError whose issues all carry a field path under the root — never any
 *    other exception — and what it accepts parses again to the same value (GET → PUT round trip);
 *  - regex traffic rules it accepts never backtrack badly on the worst inputs a device can send;
 *  - readArchiveBuffer over mutated zip/tar.gz archives and random bytes: an ItemTree or an
 *    ArchiveRejectedError/ValidationError (4xx), never a crash, and never a path outside the item.
 * Through the API (a few hundred each, every upload builds shadows): POST /api/v1/items with
 * fuzzed archives and configs, and PUT shadow-config with fuzzed bodies — 201/200 or 4xx
 * problem+json (422 with field paths), never a 5xx.
 */
import fc from 'fast-check';
import { startTestPenumbra, uploadForm, type TestPenumbra } from '../penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../../pipeline/shadowing/fixtures.ts';
import { parseShadowConfigs, POINT_EVENTS } from '../../pipeline/shadowing/shadow-config.ts';
import { readArchiveBuffer, normaliseMemberName } from '../../pipeline/shadowing/archive.ts';
import { unsafeRegexReason, compileRegexRule, MAX_REGEX_INPUT } from '../../pipeline/traffic-split/regex-safety.ts';
import { PenumbraError, ValidationError } from '../../pipeline/errors.ts';
import { contractViolation, runs, pool } from './fuzz-helpers.ts';
import { fuzzSeed } from './seed.ts';

const manifest = fixtureTree('api-refs').manifest;

// ---- config shapes ---------------------------------------------------------------------------

const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom<unknown>(null, undefined, NaN, Infinity, -0, '', [], {}, '__proto__', Infinity, Number.MAX_SAFE_INTEGER + 2));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: a as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: junk });
const name = fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/), fc.constantFrom('original', 'A', '-x', 'x'.repeat(64), 'ü', '', 'checkout-v2'));
const selector = fc.oneof(fc.constantFrom('#buy', '.a > b', 'button[data-x="1"]', '</script><script>alert(1)</script>', '\u0000', 'x'.repeat(513), ''), fc.string({ maxLength: 40 }));
const point = fc.record({ id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,10}$/), fc.string({ maxLength: 70 })), selector, event: fc.oneof(fc.constantFrom(...POINT_EVENTS), fc.string({ maxLength: 10 })) }, { requiredKeys: [] });
const url = fc.oneof(fc.webUrl(), fc.constantFrom('https://shadow.example.com/v1', 'ftp://x', 'https://user:pw@x.example', 'javascript:alert(1)', 'https://x.example/ a', '/relative', 'x'.repeat(3000)), fc.string({ maxLength: 30 }));
const endpoints = fc.dictionary(fc.oneof(fc.constantFrom('api', 'cdn', 'payments', '__proto__', 'constructor'), fc.string({ maxLength: 8 })), maybe(url), { maxKeys: 4 });
const regexPattern = fc.oneof(
  fc.constantFrom('^android$', '(a+)+$', '(a|aa)*$', '(\\w+\\s?)*$', '(.*a){12}', '(x{1,16}){16}', '(\\.\\d{1,3}){3}', '.*a.*b.*c.*d', '\\1', '(?=a)', '[', 'a{99999}', '^(?:[a-z]+)+$', '(a*)*b', '((ab)*)*c', '(a{1,16}){1,16}$'),
  fc.array(fc.constantFrom('a', '.', '\\d', '\\w', '[a-z]', '(', ')', '(?:', '|', '*', '+', '?', '{2}', '{1,16}', '{0,}', '^', '$', 'b'), { maxLength: 14 }).map((p) => p.join('')),
);
const rule = fc.record(
  {
    attribute: fc.oneof(fc.constantFrom('deviceType', 'country', 'userGroup', 'appVersion', 'userId', 'attr.plan', '__proto__'), fc.string({ maxLength: 10 })),
    op: fc.oneof(fc.constantFrom('in', 'not_in', 'equals', 'not_equals', 'semver', 'regex'), fc.string({ maxLength: 6 })),
    values: maybe(fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 })),
    value: maybe(fc.string({ maxLength: 10 })),
    range: maybe(fc.constantFrom('>=1.2.0', '^1 || ^2', 'not a range', '>=1.0.0 <2.0.0', '*')),
    pattern: maybe(regexPattern),
  },
  { requiredKeys: ['attribute', 'op'] },
);
const traffic = fc.record({ percentage: maybe(fc.oneof(fc.double({ min: -10, max: 110 }), fc.integer({ min: 0, max: 100 }))), match: maybe(fc.constantFrom('all', 'any', 'some')), rules: maybe(fc.array(rule, { maxLength: 4 })) }, { requiredKeys: [] });
const shadow = fc.record(
  {
    name,
    instrumentation: maybe(fc.record({ capture: maybe(fc.record({ performance: maybe(fc.boolean()), errors: maybe(fc.boolean()), usage: maybe(fc.boolean()) }, { requiredKeys: [] })), points: maybe(fc.array(point, { maxLength: 4 })), sampleRate: maybe(fc.double({ min: -1, max: 2 })) }, { requiredKeys: [] })),
    endpoints: maybe(endpoints),
    traffic: maybe(traffic),
    sampelRate: fc.constant(1), // a typo key: strict objects must name it
  },
  { requiredKeys: ['name'] },
);
const configInput = fc.oneof({ weight: 3, arbitrary: shadow }, { weight: 3, arbitrary: fc.array(shadow, { maxLength: 4 }) }, { weight: 1, arbitrary: junk }, { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) });

test(`parseShadowConfigs: ${runs(10_000)} config shapes → configs, or field-path issues, nothing else`, () => {
  let accepted = 0;
  let refused = 0;
  fc.assert(
    fc.property(configInput, (input) => {
      let out: ReturnType<typeof parseShadowConfigs>;
      try {
        out = parseShadowConfigs(input, manifest, { pathPrefix: 'shadowConfig' });
      } catch (err) {
        if (!(err instanceof ValidationError)) throw new Error(`not a ValidationError: ${String((err as Error)?.stack ?? err)}`);
        expect(err.status).toBe(422);
        expect(err.issues.length).toBeGreaterThan(0);
        for (const i of err.issues) {
          expect(i.path === 'shadowConfig' || i.path.startsWith('shadowConfig/')).toBe(true);
          expect(i.message.length).toBeGreaterThan(0);
        }
        refused++;
        return;
      }
      accepted++;
      // Accepted output is a fixed point: GET → PUT of the same config is accepted unchanged.
      expect(parseShadowConfigs(JSON.parse(JSON.stringify(out)), manifest)).toEqual(out);
      for (const s of out) {
        expect(s.traffic.percentage).toBeGreaterThanOrEqual(0);
        expect(s.traffic.percentage).toBeLessThanOrEqual(100);
        expect(Object.getPrototypeOf(s.endpoints)).toBe(Object.prototype);
      }
    }),
    { numRuns: runs(10_000) },
  );
  process.stderr.write(`config fuzz (FUZZ_SEED=${fuzzSeed()}): ${accepted} accepted, ${refused} refused\n`);
  expect(accepted).toBeGreaterThan(runs(10_000) / 50);
  expect(refused).toBeGreaterThan(runs(10_000) / 2);
});

test(`regex rules that pass the safety check stay fast on worst-case device input (${runs(10_000)} patterns)`, () => {
  const evil = ['a', '0', ' ', 'ab', 'a1', '.'].flatMap((c) => [c.repeat(MAX_REGEX_INPUT / c.length - 1) + '!', c.repeat(MAX_REGEX_INPUT / c.length)]);
  let safe = 0;
  let worst = 0;
  fc.assert(
    fc.property(regexPattern, (p) => {
      if (unsafeRegexReason(p) !== null) return;
      // The engine rules run on (RE2JS, linear time): what the resolver executes.
      const re = compileRegexRule(p);
      safe++;
      for (const s of evil) {
        const t0 = performance.now();
        re.test(s.slice(0, MAX_REGEX_INPUT));
        worst = Math.max(worst, performance.now() - t0);
      }
    }),
    { numRuns: runs(10_000) },
  );
  process.stderr.write(`regex fuzz: ${safe} safe patterns run, worst ${worst.toFixed(2)} ms on a ${MAX_REGEX_INPUT}-char input\n`);
  expect(safe).toBeGreaterThan(100);
  // A safety bound, not a speed test: catastrophic backtracking takes seconds to hours, a safe
  // pattern milliseconds even on a loaded machine.
  expect(worst).toBeLessThan(1000);
  // And the classic exponential shapes are refused.
  for (const p of ['(a+)+$', '(a|aa)*$', '(\\w+\\s?)*$', '(a*)*b']) expect(unsafeRegexReason(p)).not.toBeNull();
});

// ---- archives ------------------------------------------------------------------------------

let seeds: Buffer[] = [];
beforeAll(async () => {
  seeds = await Promise.all([fixtureArchive('api-refs', 'zip'), fixtureArchive('multi-page-web', 'tar.gz'), fixtureArchive('js-entry', 'zip')]);
});

/** A seed archive with byte-level damage: flips, overwrites, truncation, splices, duplication. */
const mutatedArchive = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 })).map(([s, edits]) => {
    const b = Buffer.from(seeds[s % seeds.length]);
    for (const [at, v] of edits) b[at % b.length] = v;
    return b;
  }) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.nat()).map(([s, cut]) => { const b = seeds[s % seeds.length]; return b.subarray(0, cut % b.length); }) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([s, a, c]) => { const b = seeds[s % seeds.length]; const x = a % b.length; return Buffer.concat([b.subarray(0, x), b.subarray(x, x + (c % 512)), b.subarray(x)]); }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((u) => Buffer.from(u)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from(u)])) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.from(u)])) },
);

test(`readArchiveBuffer: ${runs(10_000)} damaged archives → a confined tree or a 4xx refusal, nothing else`, async () => {
  let ok = 0;
  const reasons = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(mutatedArchive, async (buf) => {
      try {
        const tree = await readArchiveBuffer(buf);
        ok++;
        for (const name of tree.files.keys()) {
          // Every member is a normalised relative path: nothing can land outside the item folder.
          expect(normaliseMemberName(name)).toBe(name);
          expect(name.startsWith('/') || name.split('/').includes('..')).toBe(false);
        }
      } catch (err) {
        if (!(err instanceof PenumbraError) || err.status < 400 || err.status >= 500) throw new Error(`not a 4xx refusal: ${String((err as Error)?.stack ?? err)}`);
        const reason = (err as { reason?: string }).reason ?? err.code;
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }),
    { numRuns: runs(10_000) },
  );
  process.stderr.write(`archive fuzz: ${ok} readable, refusals ${JSON.stringify(Object.fromEntries(reasons))}\n`);
  expect(reasons.size).toBeGreaterThan(2);
}, 600_000);

// ---- through the API -------------------------------------------------------------------------

describe('through the API', () => {
  let t: TestPenumbra;
  beforeAll(async () => {
    t = await startTestPenumbra('fuzz-configs');
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  test(`POST /api/v1/items: ${runs(200)} fuzzed archives and configs → 201 or 4xx with reasons`, async () => {
    const cases = fc.sample(fc.tuple(fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: mutatedArchive }), fc.oneof(configInput, fc.string({ maxLength: 50 }), fc.constant(undefined))), { numRuns: runs(200) });
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    await pool(cases.length, 4, async (i) => {
      const [damaged, cfg] = cases[i];
      const archive = damaged ?? seeds[0];
      const form = uploadForm(archive, typeof cfg === 'string' || cfg === undefined ? cfg : JSON.stringify(cfg));
      const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: form });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const v = contractViolation({ status: res.status, contentType: res.headers.get('content-type') ?? '', body: text });
      if (v) failures.push(`${v} for config ${JSON.stringify(cfg)?.slice(0, 300)}`);
      if (res.status === 422) {
        const p = JSON.parse(text) as { errors?: { path: string }[]; reason?: string };
        if (!p.reason && !(p.errors ?? []).every((e) => typeof e.path === 'string')) failures.push(`422 without reason or field paths: ${text.slice(0, 200)}`);
      }
    });
    process.stderr.write(`upload fuzz: ${JSON.stringify(Object.fromEntries(statuses))}\n`);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(statuses.get(201) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(422) ?? 0).toBeGreaterThan(0);
  }, 600_000);

  test(`PUT shadow-config: ${runs(150)} fuzzed bodies with the current If-Match → 200 or 4xx, never 5xx`, async () => {
    const up = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('api-refs', 'zip'), goldenConfig('api-refs', fixtureTree('api-refs'))) });
    expect([200, 201]).toContain(up.status);
    const itemId = manifest.id;
    const bodies = fc.sample(fc.oneof(fc.record({ shadows: fc.array(shadow, { maxLength: 3 }), state: maybe(fc.constantFrom('active', 'rolled_back')), holdout: maybe(fc.double({ min: -5, max: 105 })) }, { requiredKeys: ['shadows'] }), junk), { numRuns: runs(150) });
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    // Sequential: each accepted PUT moves the version the next If-Match must name.
    for (const b of bodies) {
      const cur = await fetch(`${t.url}/api/v1/items/${itemId}/shadow-config`, { headers: t.auth('viewer') });
      const etag = cur.headers.get('etag') ?? '"0"';
      await cur.arrayBuffer();
      const res = await fetch(`${t.url}/api/v1/items/${itemId}/shadow-config`, { method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': etag }, body: JSON.stringify(b) ?? 'null' });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const v = contractViolation({ status: res.status, contentType: res.headers.get('content-type') ?? '', body: text });
      if (v) failures.push(`${v} for ${JSON.stringify(b)?.slice(0, 300)}`);
    }
    process.stderr.write(`PUT fuzz: ${JSON.stringify(Object.fromEntries(statuses))}\n`);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(422) ?? 0).toBeGreaterThan(0);
    expect((await fetch(`${t.url}/api/v1/health`)).status).toBe(200);
  }, 600_000);
});

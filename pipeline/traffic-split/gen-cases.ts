/**
 * Generates cases.json — run ONCE (`npx tsx pipeline/traffic-split/gen-cases.ts`), review a
 * sample by hand, commit. After that the file is the spec: cases.test.ts checks the TypeScript
 * against it and reference.py checks the Python reference against it, so regenerating is a
 * deliberate, reviewed behaviour change (bump HASH_VERSION if bucketing changes).
 *
 * For each (profile, user template) the generator walks a fixed pool of user ids and keeps the
 * first ids that produce each distinct outcome, so every profile shows both sides of its share.
 *
 * History: sections 1–11 were generated before control cohorts existed; their shadows carry an
 * explicit `"control": false` (the layout they pin is the one without control, byte for byte).
 * Section 12 (control cohorts, issue 11) was added with the control layout and reviewed by hand
 * against README "Control cohorts".
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ShadowProfile, ShadowSpec, TrafficRule, UserContext } from '../domain/types.ts';
import { safeCompile, trafficSplit } from './traffic-split.ts';
import { lookupOf } from './case-lookup.ts';

interface Case {
  name: string;
  profile: ShadowProfile | null;
  user: UserContext;
  /**
   * Behavioural segments known to the resolver: segment id → member user ids. A segment absent
   * from the map is unknown (never evaluated); no map at all = no segment is known.
   */
  segments?: Record<string, string[]>;
  expected: { variant: string; bucket: number; reason: string; controlOf?: string };
}


const instrumentation = { capture: { performance: true, errors: true, usage: false }, points: [], sampleRate: 1 };
function shadow(name: string, percentage: number, rules: TrafficRule[] = [], match: 'all' | 'any' = 'all', control = false): ShadowSpec {
  return { name, instrumentation, endpoints: {}, traffic: { percentage, match, rules }, control };
}
/** A shadow with its control cohort (the default for operator configs). */
function withControl(name: string, percentage: number, rules: TrafficRule[] = [], match: 'all' | 'any' = 'all'): ShadowSpec {
  return shadow(name, percentage, rules, match, true);
}
function profile(itemId: string, shadows: ShadowSpec[], extra: Partial<ShadowProfile> = {}): ShadowProfile {
  return {
    itemId, profileVersion: 1, state: 'active', seed: itemId, holdout: 0, itemVersion: '1.0.0',
    shadows, updatedBy: 'gen-cases', updatedAt: 0, ...extra,
  };
}

const POOL: string[] = [];
for (let i = 0; i < 400; i++) POOL.push(`u-${String(i * 7919).padStart(6, '0')}`);
const UNICODE_IDS = [
  '用户-42', 'пользователь', '😀-user', 'e\u0301lodie', '\u00e9lodie', 'ユーザー🚀', '\ud800lone', 'x\udc00',
  '', 'user with spaces', 'ümlaut-ß', '👩‍💻', 'a'.repeat(300), 'العربية', '\u0000nul',
];

const cases: Case[] = [];
function add(name: string, p: ShadowProfile | null, user: UserContext, segments?: Record<string, string[]>): void {
  const d = trafficSplit(user, p === null ? undefined : safeCompile(p), lookupOf(segments));
  cases.push({ name, profile: p, user, ...(segments ? { segments } : {}), expected: { variant: d.variant, bucket: d.bucket, reason: d.reason, ...(d.controlOf !== undefined ? { controlOf: d.controlOf } : {}) } });
}
/** Keeps up to `perOutcome` pool ids for each distinct outcome, scanning at most `scan` ids. */
function sweep(label: string, p: ShadowProfile, template: Omit<UserContext, 'userId'>, perOutcome = 2, scan = 120): void {
  const seen = new Map<string, number>();
  for (const userId of POOL.slice(0, scan)) {
    const user = { ...template, userId };
    const d = trafficSplit(user, safeCompile(p));
    const key = `${d.variant}${d.controlOf ? `(${d.controlOf})` : ''}/${d.reason}`;
    const count = seen.get(key) ?? 0;
    if (count >= perOutcome) continue;
    seen.set(key, count + 1);
    add(`${label} → ${key} #${count + 1}`, p, user);
  }
}

const mobile = { deviceType: 'android', country: 'DE', userGroup: 'beta', appVersion: '1.4.2' };

// 1. all: in + semver
const pAll = profile('com.example.notes', [
  shadow('checkout-v2', 50, [
    { attribute: 'deviceType', op: 'in', values: ['android', 'ios'] },
    { attribute: 'appVersion', op: 'semver', range: '>=1.2.0' },
  ]),
]);
sweep('all(in,semver) eligible android', pAll, mobile);
sweep('all(in,semver) eligible ios', pAll, { ...mobile, deviceType: 'ios' }, 1);
sweep('all(in,semver) web', pAll, { ...mobile, deviceType: 'web' }, 1);
sweep('all(in,semver) old version', pAll, { ...mobile, appVersion: '1.1.9' }, 1);
sweep('all(in,semver) missing deviceType', pAll, { appVersion: '2.0.0' }, 1);
sweep('all(in,semver) missing appVersion', pAll, { deviceType: 'ios' }, 1);
sweep('all(in,semver) invalid appVersion', pAll, { ...mobile, appVersion: '1.4' }, 1);
sweep('all(in,semver) case-sensitive deviceType', pAll, { ...mobile, deviceType: 'Android' }, 1);

// 2. any: in + equals
const pAny = profile('com.example.any', [
  shadow('eu-or-beta', 40, [
    { attribute: 'country', op: 'in', values: ['DE', 'FR'] },
    { attribute: 'userGroup', op: 'equals', value: 'beta' },
  ], 'any'),
]);
sweep('any(in,equals) both', pAny, mobile);
sweep('any(in,equals) only country', pAny, { country: 'FR', userGroup: 'ga' }, 1);
sweep('any(in,equals) only group', pAny, { country: 'US', userGroup: 'beta' }, 1);
sweep('any(in,equals) neither', pAny, { country: 'US', userGroup: 'ga' }, 1);
sweep('any(in,equals) nothing known', pAny, {}, 1);

// 3. negative ops and missing attributes
const pNeg = profile('com.example.neg', [
  shadow('not-us', 60, [
    { attribute: 'country', op: 'not_in', values: ['US', 'CA'] },
    { attribute: 'userGroup', op: 'not_equals', value: 'internal' },
  ]),
]);
sweep('negative all(not_in,not_equals) eligible', pNeg, { country: 'BR', userGroup: 'ga' });
sweep('negative excluded country', pNeg, { country: 'CA', userGroup: 'ga' }, 1);
sweep('negative excluded group', pNeg, { country: 'BR', userGroup: 'internal' }, 1);
sweep('negative missing country never matches', pNeg, { userGroup: 'ga' }, 1);
sweep('negative empty country is missing', pNeg, { country: '', userGroup: 'ga' }, 1);
const pNegAny = profile('com.example.neg-any', [
  shadow('not-internal', 100, [{ attribute: 'userGroup', op: 'not_equals', values: ['internal'] }], 'any'),
]);
sweep('not_equals via values[0] other group', pNegAny, { userGroup: 'ga' }, 1);
sweep('not_equals via values[0] internal', pNegAny, { userGroup: 'internal' }, 1);
sweep('not_equals missing group', pNegAny, { country: 'DE' }, 1);

// 4. regex and custom attributes
const pRegex = profile('com.example.regex', [
  shadow('beta-cohort', 50, [
    { attribute: 'userGroup', op: 'regex', pattern: '^beta-[0-9]+$' },
    { attribute: 'plan', op: 'in', values: ['pro', 'team'] },
  ]),
]);
sweep('regex+custom eligible', pRegex, { userGroup: 'beta-7', attributes: { plan: 'pro' } });
sweep('regex no match', pRegex, { userGroup: 'beta-x', attributes: { plan: 'pro' } }, 1);
sweep('regex partial match is not a match', pRegex, { userGroup: 'xbeta-7', attributes: { plan: 'pro' } }, 1);
sweep('custom attribute missing', pRegex, { userGroup: 'beta-7' }, 1);
sweep('custom attribute other value', pRegex, { userGroup: 'beta-7', attributes: { plan: 'free' } }, 1);
sweep('regex on over-long value never matches', pRegex, { userGroup: `beta-${'9'.repeat(300)}`, attributes: { plan: 'pro' } }, 1);
const pUnanchored = profile('com.example.regex2', [
  shadow('contains-qa', 100, [{ attribute: 'email', op: 'regex', pattern: '@qa\\.example\\.com' }]),
]);
sweep('unanchored regex finds substring', pUnanchored, { attributes: { email: 'ann@qa.example.com' } }, 1);
sweep('unanchored regex no substring', pUnanchored, { attributes: { email: 'ann@example.com' } }, 1);
const pProto = profile('com.example.proto', [
  shadow('proto', 100, [{ attribute: 'constructor', op: 'not_equals', value: 'x' }]),
]);
sweep('inherited property name is missing', pProto, { attributes: {} }, 1);
sweep('own property named constructor', pProto, { attributes: { constructor: 'y' } }, 1);
const pUserId = profile('com.example.allow', [
  shadow('qa-allowlist', 100, [{ attribute: 'userId', op: 'in', values: [POOL[3], POOL[5]] }]),
]);
add('userId allowlist member', pUserId, { userId: POOL[3] });
add('userId allowlist non-member', pUserId, { userId: POOL[4] });

// 5. semver edge cases (100% so the rule alone decides)
const semverCases: [string, string[]][] = [
  ['>=1.2.0', ['1.2.0', '1.1.99', '1.2.0-beta.1', '1.3.0-beta.1', 'v1.2.3', ' 1.2.3 ', '=1.2.3', '01.2.3', '1.2', '1.2.3.4', 'latest', '1.2.3+build.7', '10.0.0']],
  ['>=1.2.0 <2.0.0-0', ['1.9.9', '2.0.0', '2.0.0-rc.1', '1.2.0']],
  ['<2.0.0', ['2.0.0-rc.1', '1.99.0', '2.0.0']],
  ['^1.2.0', ['1.2.0', '1.9.0', '2.0.0-0', '1.1.0', '0.9.0']],
  ['~1.4.0', ['1.4.9', '1.5.0', '1.4.0-alpha']],
  ['1.x || >=3.0.0', ['1.0.0', '2.5.0', '3.0.0', '4.1.0-beta']],
  ['=1.2.3', ['1.2.3', '1.2.3+meta', '1.2.4']],
  ['1.2.3 - 1.4.0', ['1.3.0', '1.4.1']],
];
semverCases.forEach(([range, versions], k) => {
  const p = profile(`com.example.semver${k}`, [shadow('sv', 100, [{ attribute: 'appVersion', op: 'semver', range }])]);
  for (const v of versions) add(`semver ${JSON.stringify(range)} vs ${JSON.stringify(v)}`, p, { userId: POOL[k], appVersion: v });
});
const pSemverCustom = profile('com.example.semver-custom', [
  shadow('sv', 100, [{ attribute: 'sdkVersion', op: 'semver', range: '>=5.0.0' }]),
]);
add('semver on a custom attribute', pSemverCustom, { userId: POOL[9], attributes: { sdkVersion: '5.1.0' } });
add('semver on a custom attribute, too low', pSemverCustom, { userId: POOL[9], attributes: { sdkVersion: '4.9.0' } });

// 6. empty rules, 0% and 100%
const pEveryone = profile('com.example.everyone', [shadow('all-in', 100)]);
const pNobody = profile('com.example.nobody', [shadow('none', 0)]);
for (let i = 0; i < 4; i++) add(`empty rules 100% #${i + 1}`, pEveryone, { userId: POOL[i] });
for (let i = 0; i < 3; i++) add(`0% share #${i + 1}`, pNobody, { userId: POOL[i] });

// 7. A/B/n and holdout
const pAB = profile('com.example.ab', [shadow('a', 60), shadow('b', 40)]);
sweep('A/B 60/40 fills every bucket', pAB, {}, 3);
const pABC = profile('com.example.abc', [shadow('a', 30), shadow('b', 20), shadow('c', 10)], { holdout: 10 });
sweep('A/B/C 30/20/10 holdout 10', pABC, {}, 3, 200);
const pABCD = profile('com.example.abcd', [shadow('a', 25), shadow('b', 25), shadow('c', 25), shadow('d', 25)]);
sweep('A/B/C/D 25 each', pABCD, {}, 2);
const pRuleMix = profile('com.example.mix', [
  shadow('android-only', 40, [{ attribute: 'deviceType', op: 'equals', value: 'android' }]),
  shadow('ios-only', 40, [{ attribute: 'deviceType', op: 'equals', value: 'ios' }]),
]);
sweep('A/B with disjoint rules, android', pRuleMix, { deviceType: 'android' }, 2);
sweep('A/B with disjoint rules, ios', pRuleMix, { deviceType: 'ios' }, 2);
sweep('A/B with disjoint rules, web', pRuleMix, { deviceType: 'web' }, 1);
const pHold = profile('com.example.holdout', [shadow('s', 50)], { holdout: 50 });
sweep('holdout 50 + shadow 50 covers everyone', pHold, {}, 3);
const pHoldSmall = profile('com.example.holdout2', [shadow('s', 12.34, [{ attribute: 'country', op: 'in', values: ['BR'] }])], { holdout: 5.5 });
sweep('holdout 5.5 + share 12.34 (two decimals)', pHoldSmall, { country: 'BR' }, 2, 300);
sweep('holdout is not applied to ineligible users', pHoldSmall, { country: 'US' }, 1);

// 8. seed: defaults to itemId; another seed reshuffles
const pNoSeed = profile('com.example.seedless', [shadow('s', 50)], { seed: '' });
const pSeeded = profile('com.example.seedless', [shadow('s', 50)], { seed: 'reshuffle-2' });
for (let i = 0; i < 3; i++) {
  add(`empty seed falls back to itemId #${i + 1}`, pNoSeed, { userId: POOL[i] });
  add(`explicit seed #${i + 1}`, pSeeded, { userId: POOL[i] });
}

// 9. unicode and odd user ids
const pUni = profile('com.example.unicode', [shadow('s', 50)], { seed: 'sééd-🌱' });
for (const id of UNICODE_IDS) add(`unicode user id ${JSON.stringify(id.slice(0, 12))}`, pUni, { userId: id });

// 10. a grid of attribute combinations against three shadows with different rules + holdout
const pGrid = profile('com.example.grid', [
  shadow('mobile-new', 20, [
    { attribute: 'deviceType', op: 'in', values: ['android', 'ios'] },
    { attribute: 'appVersion', op: 'semver', range: '>=1.2.0' },
  ]),
  shadow('eu', 15, [{ attribute: 'country', op: 'in', values: ['DE', 'FR'] }]),
  shadow('not-web-or-br', 25, [
    { attribute: 'deviceType', op: 'not_equals', value: 'web' },
    { attribute: 'country', op: 'equals', value: 'BR' },
  ], 'any'),
], { holdout: 7.5 });
const DEVICES = ['android', 'ios', 'web', undefined];
const COUNTRIES = ['DE', 'US', 'BR', undefined];
const VERSIONS = ['1.0.0', '1.2.0', '2.3.1-beta', 'garbage'];
for (let i = 0; i < 64; i++) {
  const user: UserContext = { userId: POOL[100 + i * 3] };
  const device = DEVICES[i % 4];
  const country = COUNTRIES[(i >> 2) % 4];
  if (device !== undefined) user.deviceType = device;
  if (country !== undefined) user.country = country;
  user.appVersion = VERSIONS[(i >> 4) % 4];
  add(`grid ${device ?? '-'}/${country ?? '-'}/${user.appVersion} #${i}`, pGrid, user);
}

// 11. rolled back, no profile, invalid profiles
const pRolled = { ...pAll, state: 'rolled_back' as const, profileVersion: 2 };
for (let i = 0; i < 3; i++) add(`rolled back #${i + 1}`, pRolled, { ...mobile, userId: POOL[i] });
for (let i = 0; i < 2; i++) add(`no profile #${i + 1}`, null, { ...mobile, userId: POOL[i] });
const invalid: [string, ShadowProfile][] = [
  ['evil regex (a+)+', profile('bad.regex', [shadow('s', 50, [{ attribute: 'userGroup', op: 'regex', pattern: '^(a+)+$' }])])],
  ['backreference', profile('bad.backref', [shadow('s', 50, [{ attribute: 'userGroup', op: 'regex', pattern: '(a)\\1' }])])],
  ['lookahead', profile('bad.look', [shadow('s', 50, [{ attribute: 'userGroup', op: 'regex', pattern: '^(?=a)' }])])],
  ['shares + holdout > 100', profile('bad.sum', [shadow('a', 60), shadow('b', 30)], { holdout: 20 })],
  ['pair over its segment', profile('bad.cap', [shadow('a', 60), shadow('b', 10), shadow('c', 10)])],
  ['invalid semver range', profile('bad.range', [shadow('s', 50, [{ attribute: 'appVersion', op: 'semver', range: 'not a range' }])])],
  ['percentage > 100', profile('bad.pct', [shadow('s', 150)])],
  ['duplicate shadow names', profile('bad.dup', [shadow('s', 10), shadow('s', 10)])],
  ['shadow named original', profile('bad.orig', [shadow('original', 10)])],
  ['unknown op', profile('bad.op', [shadow('s', 10, [{ attribute: 'country', op: 'startsWith' as never, values: ['D'] }])])],
];
for (const [label, p] of invalid) add(`invalid profile: ${label}`, p, { ...mobile, userId: POOL[1] });

// 12. control cohorts (issue 11): shadow and control interleave from the range's anchor
const pCtl = profile('com.example.ctl', [withControl('ctl-up', 20)]);
sweep('control: one shadow 20% grows up', pCtl, {}, 3);
const pCtlMax = profile('com.example.ctl-max', [withControl('half', 50)]);
sweep('control: one shadow at its 50% maximum fills every bucket', pCtlMax, {}, 3);
const pCtlRules = profile('com.example.ctl-rules', [withControl('android-ctl', 30, [{ attribute: 'deviceType', op: 'equals', value: 'android' }])]);
sweep('control: rules eligible', pCtlRules, { deviceType: 'android' }, 2);
sweep('control: rules not eligible (never control)', pCtlRules, { deviceType: 'ios' }, 1);
const pCtlPair = profile('com.example.ctl-pair', [withControl('up', 20), withControl('down', 15)]);
sweep('control: pair, first grows up, second grows down', pCtlPair, {}, 3, 200);
const pCtlMixed = profile('com.example.ctl-mixed', [withControl('with-ctl', 25), shadow('no-ctl', 30)]);
sweep('control: pair, only the first has a control', pCtlMixed, {}, 3, 200);
const pCtlMixed2 = profile('com.example.ctl-mixed2', [shadow('no-ctl', 30), withControl('with-ctl', 25)]);
sweep('control: pair, only the second (growing down) has a control', pCtlMixed2, {}, 3, 200);
const pCtlHold = profile('com.example.ctl-hold', [withControl('a', 10), withControl('b', 10), withControl('c', 10)], { holdout: 10 });
sweep('control: three shadows with controls, holdout 10', pCtlHold, {}, 2, 300);
const pCtlAny = profile('com.example.ctl-any', [
  withControl('eu', 20, [{ attribute: 'country', op: 'in', values: ['DE', 'FR'] }, { attribute: 'userGroup', op: 'equals', value: 'beta' }], 'any'),
  withControl('br', 20, [{ attribute: 'country', op: 'equals', value: 'BR' }]),
]);
sweep('control: A/B with rules, eligible for the first only', pCtlAny, { country: 'DE' }, 2, 200);
sweep('control: A/B with rules, eligible for the second only', pCtlAny, { country: 'BR' }, 2, 200);
sweep('control: A/B with rules, eligible for neither', pCtlAny, { country: 'US' }, 1);
const pCtlABCD = profile('com.example.ctl-abcd', [withControl('a', 12.5), withControl('b', 12.5), withControl('c', 12.5), withControl('d', 12.5)]);
sweep('control: A/B/C/D 12.5 each with controls', pCtlABCD, {}, 1, 300);
// A ramp: the same users at 5 %, 10 %, 25 %; shadow and control users stay where they are.
for (const pct of [5, 10, 25]) {
  const pRamp = profile('com.example.ctl-ramp', [withControl('ramp', pct)]);
  for (let i = 0; i < 12; i++) add(`control: ramp ${pct}% user #${i + 1}`, pRamp, { userId: POOL[200 + i] });
}
const pCtlSeed = profile('com.example.ctl-seed', [withControl('s', 30)], { seed: 'ctl-sééd-🌱' });
for (const id of UNICODE_IDS.slice(0, 6)) add(`control: unicode user id ${JSON.stringify(id.slice(0, 12))}`, pCtlSeed, { userId: id });
const pCtlRolled = { ...pCtl, state: 'rolled_back' as const, profileVersion: 2 };
for (let i = 0; i < 3; i++) add(`control: rolled back #${i + 1}`, pCtlRolled, { userId: POOL[i] });
const invalidCtl: [string, ShadowProfile][] = [
  ['shadow named control', profile('bad.ctl-name', [withControl('control', 10)])],
  ['one shadow with control over 50%', profile('bad.ctl-60', [withControl('s', 60)])],
  ['pair with controls over its segment', profile('bad.ctl-pair', [withControl('a', 30), withControl('b', 30)])],
  ['control not a boolean', profile('bad.ctl-type', [{ ...shadow('s', 10), control: 'yes' as never }])],
];
for (const [label, p] of invalidCtl) add(`invalid profile: ${label}`, p, { ...mobile, userId: POOL[1] });
// 13. behavioural segments (pipeline/segments): in / not_in, unknown segments, no lookup at all
const pSeg = profile('com.example.segments', [
  shadow('beta-power', 30, [{ attribute: 'segment', op: 'in', values: ['power-users', 'converters'] }]),
  shadow('calm', 30, [
    { attribute: 'segment', op: 'not_in', values: ['error-hitters'] },
    { attribute: 'deviceType', op: 'in', values: ['android', 'web'] },
  ]),
  shadow('eu-or-power', 10, [
    { attribute: 'country', op: 'equals', value: 'DE' },
    { attribute: 'segment', op: 'in', values: ['power-users'] },
  ], 'any'),
]);
const segUsers = POOL.slice(0, 90);
const members = (every: number) => segUsers.filter((_, i) => i % every === 0);
const allKnown = { 'power-users': members(3), converters: members(5), 'error-hitters': members(4) };
const noErrors = { 'power-users': members(3), converters: members(5) };
const segScenarios: [string, Record<string, string[]> | undefined][] = [['all known', allKnown], ['error-hitters unknown', noErrors], ['no segments loaded', undefined]];
for (const [label, segs] of segScenarios) {
  for (const device of ['android', 'ios']) {
    const seen = new Map<string, number>();
    for (const userId of segUsers) {
      const user = { userId, deviceType: device, country: 'US' };
      const d = trafficSplit(user, safeCompile(pSeg), lookupOf(segs));
      const inSegs = segs ? Object.keys(segs).filter((k) => segs[k].includes(userId)).sort().join('+') || 'none' : '?';
      const key = `${d.variant}/${d.reason} in ${inSegs}`;
      const count = seen.get(key) ?? 0;
      if (count >= 1) continue;
      seen.set(key, count + 1);
      add(`segments (${label}) ${device} → ${key}`, pSeg, user, segs);
    }
  }
}
add('segments: an empty userId is never a member', pSeg, { userId: '', deviceType: 'android' }, { ...allKnown, 'power-users': [''] });
add('invalid profile: segment with an op other than in/not_in', profile('bad.segop', [shadow('s', 10, [{ attribute: 'segment', op: 'equals', value: 'power-users' }])]), { ...mobile, userId: POOL[1] }, allKnown);
add('invalid profile: segment value that is not a segment id', profile('bad.segid', [shadow('s', 10, [{ attribute: 'segment', op: 'in', values: ['Power Users'] }])]), { ...mobile, userId: POOL[1] }, allKnown);

const out = fileURLToPath(new URL('./cases.json', import.meta.url));
writeFileSync(out, JSON.stringify(cases, null, 1) + '\n');
const reasons = new Map<string, number>();
for (const c of cases) reasons.set(c.expected.reason, (reasons.get(c.expected.reason) ?? 0) + 1);
console.log(`wrote ${cases.length} cases to ${out}`, Object.fromEntries(reasons));

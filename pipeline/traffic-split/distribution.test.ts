/**
 * Statistical guarantees over 1,000,000 deterministic synthetic users: each shadow's observed
 * share of eligible users — and its control cohort's — is its target ±0.3 pp in every
 * deviceType × country segment, a user outside the rules never gets a shadow or a control, and
 * the holdout (an independent hash) neither skews the shares nor correlates with them.
 */
import type { ShadowProfile, ShadowSpec, TrafficRule, UserContext } from '../domain/types.ts';
import { compileProfile, trafficSplit } from './traffic-split.ts';

const N = 1_000_000;
const TOLERANCE_PP = 0.3;

/** mulberry32: small deterministic PRNG, so the population is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function pick<T>(r: number, table: [T, number][]): T {
  let acc = 0;
  for (const [v, w] of table) if (r < (acc += w)) return v;
  return table[table.length - 1][0];
}

function eligible(u: UserContext): boolean {
  return (
    (u.deviceType === 'android' || u.deviceType === 'ios') &&
    (u.country === 'DE' || u.country === 'US') &&
    u.appVersion !== '1.1.9' && u.appVersion !== 'banana'
  );
}

const rnd = prng(20251127);
const users: UserContext[] = new Array(N);
/** Per user: index into SEGMENTS when eligible for both shadows' rules, else -1. */
const segmentOf = new Int8Array(N);
const SEGMENTS = ['android/DE', 'android/US', 'ios/DE', 'ios/US'];
for (let i = 0; i < N; i++) {
  const u: UserContext = { userId: `user-${i.toString(36)}-${Math.floor(rnd() * 1e9).toString(36)}` };
  const device = pick(rnd(), [['android', 0.45], ['ios', 0.45], ['web', 0.08], [undefined, 0.02]]);
  const country = pick(rnd(), [['DE', 0.47], ['US', 0.47], ['CN', 0.04], [undefined, 0.02]]);
  const version = pick(rnd(), [['1.2.0', 0.3], ['1.4.7', 0.45], ['2.0.1', 0.2], ['1.1.9', 0.03], ['banana', 0.02]]);
  if (device) u.deviceType = device;
  if (country) u.country = country;
  u.appVersion = version;
  users[i] = u;
  segmentOf[i] = eligible(u) ? SEGMENTS.indexOf(`${device}/${country}`) : -1;
}

const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
const shadow = (name: string, percentage: number, rules: TrafficRule[], control: boolean): ShadowSpec =>
  ({ name, instrumentation, endpoints: {}, traffic: { percentage, match: 'all', rules }, control });
const rulesA: TrafficRule[] = [
  { attribute: 'deviceType', op: 'in', values: ['android', 'ios'] },
  { attribute: 'country', op: 'in', values: ['DE', 'US'] },
  { attribute: 'appVersion', op: 'semver', range: '>=1.2.0' },
];
const rulesB: TrafficRule[] = [
  { attribute: 'deviceType', op: 'not_equals', value: 'web' },
  { attribute: 'country', op: 'not_in', values: ['CN'] },
  { attribute: 'appVersion', op: 'regex', pattern: '^(1\\.[2-9]|[2-9]\\.)' },
];

function profile(holdout: number, controlB: boolean): ShadowProfile {
  return {
    itemId: 'com.example.dist', profileVersion: 1, state: 'active', seed: 'com.example.dist', holdout, itemVersion: '1',
    shadows: [shadow('a', 20, rulesA, true), shadow('b', 5, rulesB, controlB)], updatedBy: 't', updatedAt: 0,
  };
}

interface Tally { eligible: number; a: number; b: number; controlA: number; controlB: number; holdout: number }

function run(holdout: number, controlB: boolean): Map<string, Tally> {
  const compiled = compileProfile(profile(holdout, controlB));
  const tallies: Tally[] = SEGMENTS.map(() => ({ eligible: 0, a: 0, b: 0, controlA: 0, controlB: 0, holdout: 0 }));
  for (let i = 0; i < N; i++) {
    const u = users[i];
    const d = trafficSplit(u, compiled);
    const segment = segmentOf[i];
    if (segment < 0) {
      // Both shadows' rules describe the same population through different ops.
      if (d.variant !== 'original' || d.reason !== 'no_match') throw new Error(`ineligible user got ${JSON.stringify(d)}`);
      continue;
    }
    const t = tallies[segment];
    t.eligible++;
    if (d.variant === 'a') t.a++;
    else if (d.variant === 'b') t.b++;
    else if (d.variant === 'control') {
      if (d.controlOf === 'a') t.controlA++;
      else if (d.controlOf === 'b') t.controlB++;
      else throw new Error(`control of ${d.controlOf}`);
    } else if (d.reason === 'holdout') t.holdout++;
  }
  return new Map(SEGMENTS.map((key, k) => [key, tallies[k]]));
}

const pp = (count: number, total: number) => (100 * count) / total;

describe('distribution over 1,000,000 users', () => {
  it.each([
    [0, true],
    [10, false],
  ])('hits every target, control cohorts included, within ±0.3 pp per device × country (holdout %d%%, b has a control: %s)', (holdout, controlB) => {
    const segments = run(holdout, controlB);
    for (const [key, t] of segments) {
      expect(t.eligible).toBeGreaterThan(150_000);
      const shares = { key, a: pp(t.a, t.eligible), b: pp(t.b, t.eligible), holdout: pp(t.holdout, t.eligible) };
      expect(Math.abs(shares.a - 20)).toBeLessThanOrEqual(TOLERANCE_PP);
      expect(Math.abs(shares.b - 5)).toBeLessThanOrEqual(TOLERANCE_PP);
      // Each control cohort is as large as its shadow, drawn from the same eligible users.
      expect(Math.abs(pp(t.controlA, t.eligible) - 20)).toBeLessThanOrEqual(TOLERANCE_PP);
      if (controlB) expect(Math.abs(pp(t.controlB, t.eligible) - 5)).toBeLessThanOrEqual(TOLERANCE_PP);
      else expect(t.controlB).toBe(0);
      expect(Math.abs(shares.holdout - holdout)).toBeLessThanOrEqual(TOLERANCE_PP);
    }
  });
});

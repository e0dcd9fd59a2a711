/**
 * The simulator's pure generators: reproducible from a seed, shaped like the documented
 * telemetry batch (checked with the collector's own validator), and effects that change exactly
 * what they say on shadows only.
 */
import { validateBatch } from '../telemetry/batch.ts';
import { Prng } from './prng.ts';
import {
  BASELINE, batchBody, batchesOf, behaviourFor, makeUser, nextArrivalGapMs, parseEffect, planSession, truncatePlan,
  type Behaviour, type SessionInput,
} from './model.ts';

const T0 = 1_764_200_000_000;

function input(n: number, behaviour: Behaviour = BASELINE, variant = 'checkout-v2'): SessionInput {
  return {
    itemId: 'com.example.notes', version: '1.4.0', variant, profileVersion: 3, sessionId: `s-${n}`, userId: `u-${n % 50}`,
    startTs: T0 + n * 1000, points: ['buy', 'share'], endpoints: ['api'], behaviour,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

describe('Prng', () => {
  test('same seed, same stream; forks are independent of draws made before', () => {
    const a = new Prng('seed-1');
    const b = new Prng('seed-1');
    const xs = Array.from({ length: 5 }, () => a.float());
    expect(Array.from({ length: 5 }, () => b.float())).toEqual(xs);
    expect(new Prng('seed-2').float()).not.toBe(xs[0]);
    const c = new Prng('s');
    const f1 = c.fork('x').float();
    c.float();
    c.float();
    expect(c.fork('x').float()).toBe(f1);
  });

  test('uniform, normal and log-normal moments are right', () => {
    const r = new Prng(42);
    const n = 50_000;
    const u = Array.from({ length: n }, () => r.float());
    expect(u.reduce((s, x) => s + x, 0) / n).toBeCloseTo(0.5, 2);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    const z = Array.from({ length: n }, () => r.normal());
    const mean = z.reduce((s, x) => s + x, 0) / n;
    const sd = Math.sqrt(z.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(sd - 1)).toBeLessThan(0.02);
    expect(Math.abs(median(Array.from({ length: n }, () => r.logNormal(120, 0.6))) / 120 - 1)).toBeLessThan(0.02);
    const gaps = Array.from({ length: n }, () => nextArrivalGapMs(r, 5));
    expect(Math.abs(gaps.reduce((s, x) => s + x, 0) / n - 200)).toBeLessThan(4);
  });

  test('weighted draws follow the weights', () => {
    const r = new Prng('w');
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 30_000; i++) counts[r.weighted({ a: 1, b: 2, c: 7 })]++;
    expect(counts.a / 30_000).toBeCloseTo(0.1, 1);
    expect(counts.c / 30_000).toBeCloseTo(0.7, 1);
  });
});

describe('effects', () => {
  test('parse the documented forms', () => {
    expect(parseEffect('shadow:latency=+20%')).toMatchObject({ target: 'shadow', metric: 'latency', unit: '%', amount: 20 });
    expect(parseEffect('shadow:errors=+1pp')).toMatchObject({ metric: 'errors', unit: 'pp', amount: 1 });
    expect(parseEffect('checkout-v2:conversion:buy=-5pp')).toMatchObject({ target: 'checkout-v2', metric: 'conversion', point: 'buy', amount: -5 });
    expect(parseEffect('shadow:latency=+30ms')).toMatchObject({ unit: 'ms', amount: 30 });
  });

  test.each(['original:latency=+20%', 'control:errors=+1pp', 'shadow:latency=20', 'shadow:latency=+1pp', 'shadow:errors=+5ms', 'shadow:latency:buy=+1%', 'shadow:speed=+1%', ''])('refuse %p', (text) => {
    expect(() => parseEffect(text)).toThrow(/invalid effect/);
  });

  test('apply to shadows only', () => {
    const effects = ['shadow:latency=+20%', 'shadow:errors=+1pp', 'shadow:conversion:buy=+10%'].map(parseEffect);
    expect(behaviourFor('original', effects)).toEqual(BASELINE);
    expect(behaviourFor('control', effects)).toEqual(BASELINE); // the shadow's baseline
    const b = behaviourFor('checkout-v2', effects);
    expect(b.latencyFactor).toBeCloseTo(1.2, 12);
    expect(b.errorSessionRate).toBeCloseTo(0.03, 12);
    expect(b.conversion.buy).toBeCloseTo(0.33, 12);
    expect(b.conversion['*']).toBe(0.3);
    expect(behaviourFor('other-shadow', [parseEffect('checkout-v2:latency=+20%')]).latencyFactor).toBe(1);
    expect(BASELINE.latencyFactor).toBe(1); // not mutated
  });

  test('shift the generated data by the stated amount', () => {
    const effects = ['shadow:latency=+20%', 'shadow:errors=+1pp'].map(parseEffect);
    const collect = (variant: string) => {
      const r = new Prng('effect-check');
      const lat: number[] = [];
      let errorSessions = 0;
      const n = 20_000;
      for (let i = 0; i < n; i++) {
        const plan = planSession(r.fork(i), input(i, behaviourFor(variant, effects), variant));
        if (plan.events.some((e) => e.type === 'error')) errorSessions++;
        for (const e of plan.events) if (e.type === 'request' && e.attrs?.status === '200') lat.push(e.value!);
      }
      return { p50: median(lat), errorRate: errorSessions / n };
    };
    const o = collect('control');
    const s = collect('checkout-v2');
    expect(Math.abs(s.p50 / o.p50 - 1.2)).toBeLessThan(0.02);
    expect(Math.abs(o.errorRate - 0.02)).toBeLessThan(0.003);
    expect(Math.abs(s.errorRate - o.errorRate - 0.01)).toBeLessThan(0.004);
  });
});

describe('users', () => {
  test('are stable per seed and index, drawn from the distributions', () => {
    expect(makeUser('s', 7)).toEqual(makeUser('s', 7));
    expect(makeUser('s', 7).userId).toBe('sim-u-s-7');
    const devices: Record<string, number> = {};
    for (let i = 0; i < 5000; i++) {
      const d = makeUser('s', i).deviceType;
      devices[d] = (devices[d] ?? 0) + 1;
    }
    expect(devices.android / 5000).toBeCloseTo(0.45, 1);
    expect(Object.keys(devices).sort()).toEqual(['android', 'ios', 'linux', 'macos', 'windows']);
  });
});

describe('sessions and batches', () => {
  test('a session is reproducible, ordered, starts and ends once, with unique ids', () => {
    const a = planSession(new Prng('p').fork(1), input(1));
    const b = planSession(new Prng('p').fork(1), input(1));
    expect(b).toEqual(a);
    const ev = a.events;
    expect(ev[0]).toMatchObject({ type: 'session', name: 'start', ts: a.input.startTs });
    expect(ev[ev.length - 1]).toMatchObject({ type: 'session', name: 'end', ts: a.input.startTs + a.durationMs, value: a.durationMs });
    expect(new Set(ev.map((e) => e.id)).size).toBe(ev.length);
    for (let i = 1; i < ev.length; i++) expect(ev[i].ts).toBeGreaterThanOrEqual(ev[i - 1].ts);
    const perf = ev.filter((e) => e.type === 'perf').map((e) => e.name).sort();
    expect(perf).toEqual(['cls', 'domContentLoaded', 'first-contentful-paint', 'lcp', 'load', 'ttfb', ...(a.converted.length ? ['inp'] : [])].sort());
    for (const e of ev.filter((x) => x.type === 'perf')) expect(e.value).toBeGreaterThanOrEqual(0);
    for (const e of ev) if (e.type === 'usage') expect(['buy', 'share']).toContain(e.name);
  });

  test('batches hold every event once, are due after their events, and pass the collector', () => {
    const r = new Prng('b');
    for (let i = 0; i < 100; i++) {
      const plan = planSession(r.fork(i), input(i));
      const batches = batchesOf(plan, 2000, 5);
      expect(batches.flatMap((b) => b.events)).toEqual(plan.events);
      for (const b of batches) {
        expect(b.events.length).toBeLessThanOrEqual(5);
        for (const e of b.events) {
          expect(b.sendAt).toBeGreaterThanOrEqual(e.ts);
          expect(b.sendAt - e.ts).toBeLessThanOrEqual(2000);
        }
        const v = validateBatch(JSON.parse(JSON.stringify(batchBody({ ...plan, input: { ...plan.input, token: 'tok', controlOf: 'checkout-v2', variant: 'control' } }, b.events, b.sendAt))), b.sendAt + 30);
        expect(v.ok).toBe(true);
        if (v.ok) expect(v.result.rejected).toEqual([]);
      }
    }
  });

  test('a plan cut at `now` keeps the past and ends at `now`', () => {
    const plan = planSession(new Prng('t'), input(0));
    const now = plan.input.startTs + Math.floor(plan.durationMs / 2);
    const cut = truncatePlan(plan, now);
    expect(cut.events.every((e) => e.ts <= now)).toBe(true);
    expect(cut.events[cut.events.length - 1]).toMatchObject({ type: 'session', name: 'end', ts: now });
    expect(cut.events.filter((e) => e.type === 'session' && e.name === 'end')).toHaveLength(1);
    expect(truncatePlan(plan, plan.input.startTs + plan.durationMs + 1)).toBe(plan);
  });
});

describe('conditional effects (issue 14)', () => {
  it('apply to the users whose attribute matches only', () => {
    const e = parseEffect('shadow[deviceType=android,ios]:errors=+20pp');
    expect(e.when).toEqual({ attribute: 'deviceType', values: ['android', 'ios'] });
    expect(behaviourFor('s', [e], BASELINE, { deviceType: 'android' }).errorSessionRate).toBeCloseTo(0.22, 12);
    expect(behaviourFor('s', [e], BASELINE, { deviceType: 'windows' }).errorSessionRate).toBe(BASELINE.errorSessionRate);
    expect(behaviourFor('s', [e]).errorSessionRate).toBe(BASELINE.errorSessionRate);
    expect(behaviourFor('original', [e], BASELINE, { deviceType: 'android' })).toEqual(BASELINE);
    expect(() => parseEffect('shadow[planet=mars]:errors=+1pp')).toThrow(/attribute/);
    expect(parseEffect('a[country=DE]:conversion:buy=+10pp')).toMatchObject({ target: 'a', point: 'buy', when: { attribute: 'country', values: ['DE'] } });
  });
});

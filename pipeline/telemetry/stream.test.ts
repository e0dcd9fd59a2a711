/**
 * Pure parts of the stream processing: the commit rule (offsets.ts), the window → record mapping,
 * the assignment join and exposure counts, the SRM expected shares, the comparison store, the
 * and the metrics store.
 */
import { WindowAggregator } from '../windows/window-aggregator.ts';
import type { TelemetryEvent } from '../windows/types.ts';
import type { ShadowProfile } from '../domain/types.ts';
import { PartitionProgress, contributionEnd, decodeCommitMeta, encodeCommitMeta, lastWindowEnd } from './offsets.ts';
import { openWindowRecord, toMetricWindowRecord } from './metric-record.ts';
import type { WindowState } from '../windows/window-state.ts';
import { AssignmentIndex } from './assignment-index.ts';
import { ComparisonStore, srmCheck, srmExpectedShares } from './comparisons.ts';
import { MetricsStore } from './metrics-store.ts';
import { OTHER_ITEM, UnverifiedCounts } from './unverified.ts';
import { avroType } from '../../schemas/index.ts';

const SIZES = [10_000, 60_000] as const;
const T = 1_764_199_980_000; // a multiple of 60 s

function ev(i: number, ts: number, over: Partial<TelemetryEvent> = {}): TelemetryEvent {
  return { id: `e${i}`, itemId: 'it', version: '1', variant: 'original', profileVersion: 1, sessionId: `s${i % 3}`, userId: `u${i % 5}`, type: 'request', name: 'api', ts, value: 100 + i, attrs: {}, verified: true, ...over };
}

function profile(over: Partial<ShadowProfile> = {}): ShadowProfile {
  const shadow = (name: string, percentage: number, rules: ShadowProfile['shadows'][number]['traffic']['rules'] = []) => ({
    name, endpoints: {}, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
    traffic: { percentage, match: 'all' as const, rules },
  });
  return { itemId: 'it', profileVersion: 3, state: 'active', seed: 'it', holdout: 0, itemVersion: '1', shadows: [shadow('a', 20), shadow('b', 30)], updatedBy: 't', updatedAt: 0, ...over };
}

describe('offset commit rule', () => {
  test('commits only below the first event still feeding an open window', () => {
    const p = new PartitionProgress(0);
    expect(p.safeOffset(-Infinity)).toBeNull();
    // offsets 0..2 in window ending T+10s (60 s window T+60s); 3..4 in the next 10 s window.
    for (let o = 0; o < 3; o++) p.track(BigInt(o), contributionEnd(T + 1000, SIZES, -Infinity));
    for (let o = 3; o < 5; o++) p.track(BigInt(o), contributionEnd(T + 12_000, SIZES, -Infinity));
    // Both feed the 60 s window [T, T+60s): nothing committable until it closes.
    expect(p.safeOffset(T + 10_000)).toBe(0n);
    expect(p.safeOffset(T + 59_999)).toBe(0n);
    expect(p.safeOffset(T + 60_000)).toBe(5n);
  });

  test('a later-ending segment keeps earlier offsets of a later window; an event late for every size adds nothing', () => {
    const p = new PartitionProgress(1);
    p.track(10n, T + 60_000);
    p.track(11n, T + 120_000);
    p.track(12n, T + 60_000); // covered by the segment starting at 11
    p.track(13n, -Infinity);
    expect(p.segments).toBe(2);
    expect(p.safeOffset(T)).toBe(10n);
    expect(p.safeOffset(T + 60_000)).toBe(11n);
    expect(p.safeOffset(T + 120_000)).toBe(14n);
  });

  test('re-deliveries below next are ignored (rebalance replays)', () => {
    const p = new PartitionProgress(0);
    p.track(5n, T + 60_000);
    p.track(6n, T + 60_000);
    p.track(3n, T + 999_000);
    expect(p.next).toBe(7n);
    expect(p.safeOffset(T + 60_000)).toBe(7n);
  });

  test('contribution end skips sizes whose window is already closed', () => {
    expect(contributionEnd(T + 1000, SIZES, -Infinity)).toBe(T + 60_000);
    expect(contributionEnd(T + 1000, SIZES, T + 60_000)).toBe(-Infinity);
    expect(contributionEnd(T + 1000, [10_000], T)).toBe(T + 10_000);
    expect(lastWindowEnd(T + 61_000, SIZES)).toBe(T + 120_000);
  });

  test('commit metadata round-trips; foreign metadata is ignored', () => {
    const m = { wm: T + 5000, hi: 12345678901234n };
    expect(decodeCommitMeta(encodeCommitMeta(m))).toEqual(m);
    expect(decodeCommitMeta(encodeCommitMeta({ wm: -Infinity, hi: 0n }))).toEqual({ wm: -Infinity, hi: 0n });
    for (const bad of [null, '', 'x', '{"v":2,"wm":1,"hi":"1"}', '{"v":1,"wm":1,"hi":"-1"}']) expect(decodeCommitMeta(bad)).toBeNull();
  });

  test('replay marks: an event below hi whose windows all ended at or before wm was emitted', () => {
    const p = new PartitionProgress(0, { wm: T + 60_000, hi: 100n });
    expect(p.alreadyEmitted(50n, lastWindowEnd(T + 1000, SIZES))).toBe(true);
    expect(p.alreadyEmitted(50n, lastWindowEnd(T + 61_000, SIZES))).toBe(false);
    expect(p.alreadyEmitted(100n, lastWindowEnd(T + 1000, SIZES))).toBe(false);
    expect(new PartitionProgress(0).alreadyEmitted(0n, -Infinity)).toBe(false);
  });

  test('crash and replay from the committed offset gives the same windows as an uninterrupted run', () => {
    // 120 events over 2 minutes on one partition, in offset order.
    const events = Array.from({ length: 120 }, (_, i) => ev(i, T + i * 1000 + 17));
    const run = (from: number, to: number, agg: WindowAggregator, prog: PartitionProgress) => {
      const out = [];
      for (let o = from; o < to; o++) {
        const e = events[o];
        if (prog.alreadyEmitted(BigInt(o), lastWindowEnd(e.ts, SIZES))) {
          prog.track(BigInt(o), -Infinity);
          continue;
        }
        const wm = agg.watermark;
        out.push(...agg.add(e));
        prog.track(BigInt(o), contributionEnd(e.ts, SIZES, wm));
      }
      return out;
    };
    const ref = new WindowAggregator({ allowedLatenessMs: 2000 });
    const all = [...run(0, 120, ref, new PartitionProgress(0)), ...ref.flush()];

    const a = new WindowAggregator({ allowedLatenessMs: 2000 });
    const pa = new PartitionProgress(0);
    const before = run(0, 85, a, pa); // crash after offset 84; windows up to here are "acked"
    const committed = pa.safeOffset(a.watermark)!;
    const meta = decodeCommitMeta(encodeCommitMeta({ wm: a.watermark, hi: pa.next! }))!;
    expect(committed).toBe(60n); // the 60 s window [T+60s, T+120s) is still open
    const b = new WindowAggregator({ allowedLatenessMs: 2000 });
    b.advanceWatermark(meta.wm + b.allowedLatenessMs);
    const pb = new PartitionProgress(0, meta);
    const after = [...run(Number(committed), 120, b, pb), ...b.flush()];
    // Upsert by key, last wins — as the warehouse does.
    const key = (w: { itemId: string; variant: string; windowSize: number; windowStart: number }) => `${w.windowSize}:${w.windowStart}`;
    const merged = new Map([...before, ...after].map((w) => [key(w), w]));
    const strip = (w: (typeof all)[number]) => ({ ...w, late: 0 });
    expect([...merged.values()].map(strip).sort((x, y) => key(x).localeCompare(key(y)))).toEqual(all.map(strip).sort((x, y) => key(x).localeCompare(key(y))));
    // Nothing the first run emitted was emitted again partially.
    for (const w of after) expect(before.some((x) => key(x) === key(w))).toBe(false);
  });
});

describe('window → record', () => {
  test('flattens the aggregator window into the Avro record', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    agg.add(ev(1, T + 1, { type: 'error', name: 'x', value: null }));
    agg.add(ev(2, T + 2, { attrs: { status: '503' } }));
    agg.add(ev(3, T + 3, { type: 'usage', name: 'buy', value: null }));
    agg.add(ev(4, T + 4, { type: 'perf', name: 'fcp', value: 30 }));
    const [w] = agg.advanceWatermark(T + 10_000);
    const r = toMetricWindowRecord(w, 42);
    expect(r).toMatchObject({
      itemId: 'it', variant: 'original', windowSize: 10_000, windowStart: T, windowEnd: T + 10_000, events: 4, sessions: 3, users: 4, errors: 1,
      errorSessions: 1, requests: 1, requestErrors: 1, late: 0, emittedAt: 42,
      latency: { count: 1, mean: 102, p50: 102, p95: 102, p99: 102, sum: 102, sumSq: 102 * 102 },
      conversions: { buy: { sessions: 1, rate: 1 / 3 } }, perf: { fcp: { count: 1, mean: 30, p95: 30 } },
    });
    expect(r.errorRate).toBeCloseTo(1 / 3, 12);
    expect(avroType('metric-window').isValid(r)).toBe(true);
  });

  test('the provisional record of an open window equals the record it closes with', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const types = ['request', 'request', 'perf', 'usage', 'error', 'session'] as const;
    for (let i = 0; i < 3000; i++) {
      const type = types[Math.floor(rnd() * types.length)];
      agg.add(ev(i, T + Math.floor(rnd() * 10_000), { type, name: type === 'perf' ? `m${i % 3}` : type === 'usage' ? `pt${i % 4}` : 'x', value: type === 'request' || type === 'perf' ? rnd() * 1000 : null, sessionId: `s${i % 97}`, attrs: { status: i % 13 === 0 ? '500' : '200' } }));
    }
    const open = (agg as unknown as { open: Map<string, WindowState> }).open;
    const [w] = [...open.values()];
    const live = openWindowRecord(w, 5);
    const [closed] = agg.flush();
    expect(live).toEqual(toMetricWindowRecord(closed, 5));
  });
});

describe('assignment index', () => {
  test('joins events with the latest assignment and counts mismatches', () => {
    const idx = new AssignmentIndex();
    idx.apply({ itemId: 'it', userId: 'u1', variant: 'a', profileVersion: 3, reason: 'assigned' });
    expect(idx.join({ itemId: 'it', userId: 'u1', variant: 'a' })).toBe('match');
    expect(idx.join({ itemId: 'it', userId: 'u1', variant: 'original' })).toBe('mismatch');
    expect(idx.join({ itemId: 'it', userId: 'u2', variant: 'a' })).toBe('unassigned');
    idx.apply({ itemId: 'it', userId: 'u1', variant: 'original', profileVersion: 4, reason: 'rolled_back' });
    expect(idx.join({ itemId: 'it', userId: 'u1', variant: 'original' })).toBe('match');
    expect(idx.joins('it')).toEqual({ matched: 2, mismatched: 1, unassigned: 1 });
    expect(idx.totals).toEqual({ matched: 2, mismatched: 1, unassigned: 1 });
  });

  test('exposures: distinct bucketed users of the newest profile version', () => {
    const idx = new AssignmentIndex();
    const a = (userId: string, variant: string, profileVersion: number, reason = 'assigned') => idx.apply({ itemId: 'it', userId, variant, profileVersion, reason });
    a('u1', 'a', 3);
    a('u1', 'a', 3); // resolved twice: once
    a('u2', 'original', 3, 'not_in_share');
    a('u3', 'original', 3, 'holdout');
    a('u4', 'original', 3, 'no_match'); // not bucketed
    expect(idx.exposures('it', 3)).toEqual({ profileVersion: 3, counts: { a: 1, original: 2 } });
    a('u5', 'a', 2); // an older version's straggler
    expect(idx.exposures('it')).toEqual({ profileVersion: 3, counts: { a: 1, original: 2 } });
    a('u1', 'b', 4);
    expect(idx.exposures('it', 3).counts).toEqual({});
    expect(idx.exposures('it', 4)).toEqual({ profileVersion: 4, counts: { b: 1 } });
  });

  test('control-cohort users (reason control) are part of the bucketed population', () => {
    const idx = new AssignmentIndex();
    idx.apply({ itemId: 'it', userId: 'u1', variant: 'control', profileVersion: 1, reason: 'control' });
    idx.apply({ itemId: 'it', userId: 'u2', variant: 'a', profileVersion: 1, reason: 'assigned' });
    idx.apply({ itemId: 'it', userId: 'u3', variant: 'original', profileVersion: 1, reason: 'no_match' });
    expect(idx.exposures('it').counts).toEqual({ a: 1, control: 1 });
  });

  test('memory is bounded: the least recently assigned user is forgotten', () => {
    const idx = new AssignmentIndex(2);
    for (const u of ['u1', 'u2', 'u3']) idx.apply({ itemId: 'it', userId: u, variant: 'a', profileVersion: 1, reason: 'assigned' });
    expect(idx.size).toBe(2);
    expect(idx.variantOf('it', 'u1')).toBeUndefined();
    expect(idx.variantOf('it', 'u3')).toBe('a');
  });
});

describe('SRM', () => {
  test('expected shares: shadow percentages, each control cohort as large as its shadow, the original gets the rest', () => {
    expect(srmExpectedShares(profile())).toEqual({ a: 20, b: 30, control: 50, original: 0 });
    const small = profile({ shadows: profile().shadows.map((s) => ({ ...s, traffic: { ...s.traffic, percentage: 10 } })) });
    expect(srmExpectedShares(small)).toEqual({ a: 10, b: 10, control: 20, original: 60 });
    // A shadow with its control switched off has no cohort to expect.
    const oneOff = profile({ shadows: [{ ...profile().shadows[0], control: false } as ShadowProfile['shadows'][number], profile().shadows[1]] });
    expect(srmExpectedShares(oneOff)).toEqual({ a: 20, b: 30, control: 30, original: 20 });
    expect(srmExpectedShares(profile({ state: 'rolled_back' }))).toBeNull();
    expect(srmExpectedShares(profile({ shadows: [] }))).toBeNull();
    expect(srmExpectedShares(undefined)).toBeNull();
  });

  test('a shadow rolled back alone expects nobody, nor does its control cohort; bandits are not checked', () => {
    const p = profile();
    expect(srmExpectedShares(p)).toEqual({ a: 20, b: 30, control: 50, original: 0 });
    p.shadows[0] = { ...p.shadows[0], state: 'rolled_back' };
    expect(srmExpectedShares(p)).toEqual({ a: 0, b: 30, control: 30, original: 40 });
    const bandit = { arms: ['a', 'b'], control: true, metric: 'conversion:buy', better: 'higher' as const, floorShare: 0.05, burnInSessions: 10, reweightSeconds: 60, guardrails: [] };
    const state = { status: 'running' as const, epoch: 0, weights: [], dropped: [], startedAt: 0, lastReweightAt: null, reason: null };
    expect(srmExpectedShares({ ...profile(), bandit, banditState: state })).toBeNull();
    expect(srmExpectedShares({ ...profile(), bandit, banditState: { ...state, status: 'stopped' } })).toEqual({ a: 20, b: 30, control: 50, original: 0 });
  });

  test('no single split when shadows target different users', () => {
    const p = profile();
    p.shadows[1] = { ...p.shadows[1], traffic: { ...p.shadows[1].traffic, rules: [{ attribute: 'country', op: 'in', values: ['DE'] }] } };
    expect(srmExpectedShares(p)).toBeNull();
  });

  test('flags a mismatch only with enough exposures', () => {
    const p = profile({ shadows: profile().shadows.map((s) => ({ ...s, control: false })) as ShadowProfile['shadows'] });
    const ok = srmCheck(p, { a: 200, b: 300, original: 500 });
    expect(ok).toMatchObject({ chi2: 0, p: 1, flagged: false, total: 1000, shares: { a: 20, b: 30, original: 50 } });
    // 40/30/30 instead of 20/30/50: chi2 = 200 + 0 + 80 = 280.
    const bad = srmCheck(p, { a: 400, b: 300, original: 300 })!;
    expect(bad.chi2).toBeCloseTo(280, 9);
    expect(bad.flagged).toBe(true);
    expect(srmCheck(p, { a: 8, b: 0, original: 2 }, 100)!.flagged).toBe(false);
    expect(srmCheck(p, { a: 8, b: 0, original: 2 }, 5)!.flagged).toBe(true);
    // With the controls on, a resolver that never draws a control cohort is a mismatch.
    expect(srmCheck(profile(), { a: 400, b: 600, original: 0 })!.flagged).toBe(true);
    expect(srmCheck(profile(), { a: 200, b: 300, control: 500, original: 0 })!.flagged).toBe(false);
  });
});

describe('comparison store', () => {
  /** 40 sessions per arm: the control of `a` is fast, `a` slow with errors in every other session. */
  function fill(c: ComparisonStore, controlOf: string | null = 'a') {
    let i = 0;
    for (let s = 0; s < 40; s++) {
      c.add(ev(i++, T, { sessionId: `c${s}`, variant: 'control', controlOf, value: 100 + (s % 7) }));
      c.add(ev(i++, T, { sessionId: `o${s}`, variant: 'original', value: 500 }));
      c.add(ev(i++, T, { sessionId: `sh${s}`, variant: 'a', value: 150 + (s % 7) }));
      if (s % 2 === 0) c.add(ev(i++, T, { sessionId: `sh${s}`, variant: 'a', type: 'error', name: 'boom', value: null }));
    }
    return i;
  }

  test('compares every shadow with ITS control cohort on cumulative aggregates; a newer profile version restarts them', () => {
    // N* = 100: a sequence tuned for small samples (at the default 5000, 40 sessions per arm prove little).
    const c = new ComparisonStore({ tuning: 100 });
    let i = fill(c);
    const out = c.compareItem('it', undefined, null, 7);
    expect(out.map((o) => o.variant)).toEqual(['a']);
    const v = out[0].comparison;
    expect(v).toMatchObject({ shadow: 'a', baseline: 'control', hasBaseline: true, noBaseline: null, sessions: { shadow: 40, control: 40 }, at: 7 });
    expect(v.latency!.diff).toBeCloseTo(50, 9); // vs the control (100…106), not the original (500)
    expect(v.verdicts).toMatchObject({ latency: 'worse', errorRate: 'worse' });
    expect(v.errorRate!.relativeLift).toBeNaN();
    expect(c.latestFor('it').a).toBe(v);
    expect(JSON.parse(JSON.stringify(v)).errorRate.relativeLift).toBeNull();
    c.add(ev(i++, T, { sessionId: 'new', variant: 'a', profileVersion: 2 }));
    expect(c.totals('it', 'a')).toMatchObject({ profileVersion: 2, sessions: 1 });
    expect(c.compareItem('other', undefined, null, 0)).toEqual([]);
  });

  test('unverified events change nothing: a forged burst of errors claiming the shadow', () => {
    const c = new ComparisonStore();
    let i = fill(c);
    const before = c.compareItem('it', undefined, null, 1)[0].comparison;
    for (let k = 0; k < 500; k++) c.add(ev(i++, T, { sessionId: `forged${k}`, variant: 'control', controlOf: 'a', type: 'error', name: 'x', value: null, verified: false, unverifiedReason: 'missing' }));
    for (let k = 0; k < 500; k++) c.add(ev(i++, T, { sessionId: `forged${k}`, variant: 'a', type: 'error', name: 'x', value: null, verified: undefined }));
    const after = c.compareItem('it', undefined, null, 2)[0].comparison;
    expect({ ...after, at: 1 }).toEqual(before);
  });

  test('no baseline, in words: control switched off, or no control data yet', () => {
    const c = new ComparisonStore();
    fill(c, 'b'); // control cohort of ANOTHER shadow: not a baseline for `a`
    const p = profile({ shadows: [{ ...profile().shadows[0] }, { ...profile().shadows[1], control: false } as ShadowProfile['shadows'][number]] });
    const out = Object.fromEntries(c.compareItem('it', p, null, 3).map((o) => [o.variant, o.comparison]));
    expect(Object.keys(out)).toEqual(['a', 'b']);
    expect(out.a).toMatchObject({ hasBaseline: false, noBaseline: { reason: 'no_control_data' }, sessions: { shadow: 40, control: 0 }, verdicts: {} });
    expect(out.a.sentence).toBe('No baseline for a yet: no verified telemetry from its control arm.');
    expect(out.a.latency).toBeUndefined();
    // b has control data, but its control is switched off: no baseline either.
    expect(out.b).toMatchObject({ hasBaseline: false, noBaseline: { reason: 'control_off', message: 'No baseline for b: its control arm is switched off, so nothing is compared.' } });
  });
});

describe('unverified counts', () => {
  const u = (id: string, itemId: string, variant: string, unverifiedReason: string | null) => ({ id, itemId, variant, unverifiedReason });

  test('per item × claimed variant × reason; a re-delivery counts once', () => {
    const c = new UnverifiedCounts();
    expect(c.add(u('1', 'it', 'a', 'missing'))).toBe(true);
    expect(c.add(u('1', 'it', 'a', 'missing'))).toBe(false);
    c.add(u('2', 'it', 'a', 'expired'));
    c.add(u('3', 'it', 'control', 'mismatch'));
    c.add(u('4', 'it', '__proto__', null)); // a claimed name is data; no reason = missing
    c.add(u('5', 'other', 'a', 'missing'));
    const v = c.forItem('it');
    expect(v.total).toBe(4);
    expect(JSON.parse(JSON.stringify(v.byVariant))).toEqual({ a: { missing: 1, expired: 1 }, control: { mismatch: 1 }, ['__proto__']: { missing: 1 } });
    expect(c.total).toBe(5);
    expect(c.byReason).toEqual({ missing: 3, expired: 1, mismatch: 1 });
    expect(c.series()).toContainEqual({ item: 'other', variant: 'a', reason: 'missing', n: 1 });
  });

  test('bounded: invented names beyond the key limit are added up under _other', () => {
    const c = new UnverifiedCounts(3, 10);
    for (let i = 0; i < 20; i++) c.add(u(`e${i}`, `forged-${i}`, `v${i}`, 'missing'));
    expect(c.series().length).toBe(4); // 3 kept keys + _other
    expect(c.forItem(OTHER_ITEM)).toEqual({ total: 17, byVariant: { _other: { missing: 17 } } });
    expect(c.total).toBe(20);
  });
});


describe('metrics store', () => {
  test('keeps the newest copy of a window, answers ranges in order, forgets old windows', () => {
    let now = T + 100_000;
    const s = new MetricsStore(60_000, () => now);
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    const closed = [...agg.add(ev(1, T + 50_000, { variant: 'b' })), ...agg.add(ev(2, T + 50_000)), ...agg.add(ev(3, T + 60_000)), ...agg.flush()];
    const ws = closed.map((w) => toMetricWindowRecord(w, 1));
    for (const w of ws) s.apply(w);
    s.apply({ ...ws[0], events: 99, emittedAt: 0 }); // older copy: ignored
    expect(s.query('it', 10_000, T, T + 100_000).map((w) => [w.windowStart - T, w.variant, w.events])).toEqual([[50_000, 'b', 1], [50_000, 'original', 1], [60_000, 'original', 1]]);
    s.apply({ ...ws[2], events: 5, emittedAt: 2 }); // re-emission: replaces
    expect(s.query('it', 10_000, T + 60_000, T + 70_000)[0].events).toBe(5);
    expect(s.query('it', 60_000, 0, Infinity)).toEqual([]);
    now += 25_000;
    s.prune();
    expect(s.query('it', 10_000, 0, Infinity).map((w) => w.windowStart - T)).toEqual([60_000]);
  });
});

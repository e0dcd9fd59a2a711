/**
 * Issue 15 item 1: the ComparisonStore finds an arm without a key string per event, checks
 * `addToCumulative`'s rules once and folds with `foldIntoCumulative`, and — once the processor
 * calls `newBatch()` — refreshes an arm's LRU recency once per batch. Golden cases: the aggregates
 * equal a per-event `addToCumulative` reference on seeded streams (every arm kind, unverified
 * events, older-version stragglers, newer-version restarts, the session cap), and the eviction
 * order is "least recently updated" at batch granularity.
 */
import type { TelemetryEvent } from '../windows/types.ts';
import { addToCumulative, cumulativeTotals, emptyCumulative, overSessionCap, type CumulativeAggregate } from '../windows/cumulative.ts';
import { ComparisonStore } from './comparisons.ts';

const T = 1_764_200_000_000;
let n = 0;
const ev = (p: Partial<TelemetryEvent>): TelemetryEvent => ({
  id: `b${n++}`, itemId: 'it', version: '1', variant: 'a', profileVersion: 1, sessionId: 's', userId: 'u',
  type: 'request', name: 'api', ts: T, value: 100, attrs: { status: '200' }, verified: true, ...p,
});

/** Deterministic PRNG (mulberry32): the same stream on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function stream(seed: number, count: number): TelemetryEvent[] {
  const r = rng(seed);
  const pick = <X>(xs: readonly X[]): X => xs[Math.floor(r() * xs.length)];
  const out: TelemetryEvent[] = [];
  for (let i = 0; i < count; i++) {
    const variant = pick(['original', 'shadow-a', 'shadow-b', 'control', 'control'] as const);
    const type = pick(['request', 'error', 'usage', 'perf', 'request'] as const);
    out.push(ev({
      itemId: pick(['i1', 'i2', 'i3']),
      variant,
      controlOf: variant === 'control' ? pick(['shadow-a', 'shadow-b', null]) : null,
      // Mostly version 2, some stragglers of 1 and a restart at 3 late in the stream.
      profileVersion: i > count * 0.8 && r() < 0.3 ? 3 : r() < 0.1 ? 1 : 2,
      sessionId: `s${Math.floor(r() * 40)}`,
      userId: `u${Math.floor(r() * 30)}`,
      type,
      name: type === 'usage' ? pick(['signup', 'buy']) : type === 'perf' ? pick(['lcp', 'ttfb']) : 'api',
      value: type === 'request' || type === 'perf' ? Math.floor(r() * 500) : null,
      attrs: type === 'request' ? { status: pick(['200', '200', '500']) } : {},
      verified: r() > 0.05,
    }));
  }
  return out;
}

/** The reference: per event, the arm's key, the cap check and addToCumulative with all its checks. */
function reference(events: TelemetryEvent[], maxSessions: number): Map<string, CumulativeAggregate> {
  const arms = new Map<string, CumulativeAggregate>();
  for (const e of events) {
    if (e.verified === false) continue;
    const controlOf = e.variant === 'control' ? (e.controlOf ?? null) : null;
    const k = `${e.itemId}|${e.variant}|${controlOf ?? ''}`;
    let agg = arms.get(k);
    if (!agg) arms.set(k, (agg = emptyCumulative(e.itemId, e.variant, e.profileVersion, controlOf)));
    if (overSessionCap(agg, e, maxSessions)) continue;
    addToCumulative(agg, e);
  }
  return arms;
}

test.each([
  [1, 5000, 1000, 1],
  [2, 5000, 1000, 64],
  [3, 3000, 12, 17], // the session cap bites
])('seed %i: %i events, session cap %i, batches of %i — the same aggregates as per-event addToCumulative', (seed, count, cap, batch) => {
  const events = stream(seed, count);
  const ref = reference(events, cap);
  const store = new ComparisonStore({}, { maxArms: 1000, maxSessionsPerArm: cap });
  events.forEach((e, i) => {
    if (i % batch === 0) store.newBatch();
    store.add(e);
  });
  expect(store.size).toBe(ref.size);
  for (const a of ref.values()) {
    const got = store.aggregate(a.itemId, a.variant, a.controlOf);
    expect(got).toBeDefined();
    expect({ ...got!, sessions: [...got!.sessions], perf: [...got!.perf] }).toEqual({ ...a, sessions: [...a.sessions], perf: [...a.perf] });
    expect(store.totals(a.itemId, a.variant, a.controlOf)).toEqual(cumulativeTotals(a));
  }
});

test('golden: a control arm per shadow, a straggler ignored, a newer profile version restarts the arm', () => {
  const store = new ComparisonStore({}, { maxArms: 10, maxSessionsPerArm: 10 });
  store.newBatch();
  store.add(ev({ variant: 'control', controlOf: 'sa', sessionId: 's1', profileVersion: 2 }));
  store.add(ev({ variant: 'control', controlOf: 'sb', sessionId: 's2', profileVersion: 2, type: 'error', name: 'x', value: null }));
  store.add(ev({ variant: 'sa', sessionId: 's3', profileVersion: 2, type: 'usage', name: 'buy', value: null }));
  store.add(ev({ variant: 'sa', sessionId: 's3', profileVersion: 1 })); // straggler: ignored
  store.add(ev({ variant: 'sa', sessionId: 's4', verified: false })); // unverified: ignored
  expect(store.totals('it', 'control', 'sa')).toMatchObject({ sessions: 1, errorSessions: 0, requests: 1 });
  expect(store.totals('it', 'control', 'sb')).toMatchObject({ sessions: 1, errorSessions: 1, requests: 0 });
  expect(store.totals('it', 'sa')).toMatchObject({ profileVersion: 2, sessions: 1, requests: 0, conversions: { buy: 1 } });
  store.newBatch();
  store.add(ev({ variant: 'sa', sessionId: 's9', profileVersion: 3 }));
  expect(store.totals('it', 'sa')).toMatchObject({ profileVersion: 3, sessions: 1, requests: 1, conversions: {} });
  expect(store.aggregate('it', 'sa')?.events).toBe(1);
});

test('with newBatch(), recency is refreshed once per batch: the arm not updated in the newer batch is evicted first', () => {
  const store = new ComparisonStore({}, { maxArms: 2, maxSessionsPerArm: 100 });
  store.newBatch();
  store.add(ev({ variant: 'A' }));
  store.add(ev({ variant: 'B' }));
  store.add(ev({ variant: 'A' })); // same batch: A's recency is not refreshed again (B stays newer)
  store.newBatch();
  store.add(ev({ variant: 'C' })); // a new arm over the cap: the least recent, A, goes
  expect(store.totals('it', 'A')).toBeUndefined();
  expect(store.totals('it', 'B')).toMatchObject({ requests: 1 });
  store.newBatch();
  store.add(ev({ variant: 'B' })); // refreshed in this batch: C is now the least recent
  store.add(ev({ variant: 'D' }));
  expect(store.totals('it', 'C')).toBeUndefined();
  expect(store.totals('it', 'B')).toMatchObject({ requests: 2 });
  expect(store.bounds).toMatchObject({ arms: 2, armsEvicted: 2 });
  // An evicted arm comes back empty, found again through the item index.
  store.add(ev({ variant: 'A' }));
  expect(store.totals('it', 'A')).toMatchObject({ requests: 1 });
});

test('without newBatch() every add refreshes recency (the per-event rule), and dropItems keeps the index in step', () => {
  const store = new ComparisonStore({}, { maxArms: 2, maxSessionsPerArm: 100 });
  store.add(ev({ variant: 'A' }));
  store.add(ev({ variant: 'B' }));
  store.add(ev({ variant: 'A' }));
  store.add(ev({ variant: 'C' })); // B is the least recent now
  expect(store.totals('it', 'B')).toBeUndefined();
  expect(store.totals('it', 'A')).toMatchObject({ requests: 2 });
  expect(store.dropItems((id) => id === 'it')).toBe(2);
  store.add(ev({ variant: 'A' }));
  expect(store.totals('it', 'A')).toMatchObject({ requests: 1 });
});

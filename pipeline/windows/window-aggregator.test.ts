import fc from 'fast-check';
import { cumulativeTotals, emptyCumulative, addToCumulative, mergeAggregates, cumulativeToJSON } from './cumulative.ts';
import type { MetricWindow, TelemetryEvent, WindowSize } from './types.ts';
import { WindowAggregator, type AggregatorSnapshot } from './window-aggregator.ts';

let seq = 0;
function ev(p: Partial<TelemetryEvent> & Pick<TelemetryEvent, 'type' | 'ts'>): TelemetryEvent {
  return {
    id: `e${seq++}`,
    itemId: 'com.example.notes',
    version: '1.4.0',
    variant: 'original',
    profileVersion: 3,
    sessionId: 's1',
    userId: 'u1',
    name: 'x',
    attrs: {},
    verified: true,
    ...p,
  };
}

/** The hand-computed window of the README example: 10 events in [0, 10 s). */
function handEvents(): TelemetryEvent[] {
  return [
    ev({ type: 'request', ts: 1000, value: 100, attrs: { status: '200' } }),
    ev({ type: 'request', ts: 2000, value: 200, attrs: { status: '503' } }),
    ev({ type: 'request', ts: 3000, value: 300, sessionId: 's2', userId: 'u2', attrs: { failed: 'true' } }),
    ev({ type: 'error', ts: 4000, sessionId: 's2', userId: 'u2', name: 'TypeError' }),
    ev({ type: 'usage', ts: 5000, sessionId: 's3', name: 'buy' }),
    ev({ type: 'perf', ts: 6000, sessionId: 's3', name: 'lcp', value: 1200 }),
    ev({ type: 'perf', ts: 7000, name: 'lcp', value: 800 }),
    ev({ type: 'usage', ts: 8000, name: 'buy' }),
    ev({ type: 'usage', ts: 8500, name: 'buy' }),
    ev({ type: 'session', ts: 9000, sessionId: 's2', userId: 'u2', name: 'start' }),
  ];
}

describe('WindowAggregator: hand-computed window', () => {
  test('10 s window metrics', () => {
    const agg = new WindowAggregator();
    expect(agg.addAll(handEvents())).toEqual([]); // watermark 9000 − 5000 = 4000: nothing closes
    expect(agg.watermark).toBe(4000);
    const out = agg.advanceWatermark(15_000); // watermark 10 000 = end of [0, 10 000)
    expect(out).toHaveLength(1);
    expect(out[0]).toEqual({
      itemId: 'com.example.notes',
      variant: 'original',
      windowSize: 10_000,
      windowStart: 0,
      windowEnd: 10_000,
      late: 0,
      metrics: {
        events: 10,
        sessions: 3,
        users: 2,
        errors: 1,
        errorSessions: 1,
        errorRate: 1 / 3,
        requests: 3,
        requestErrors: 2, // status 503 and failed=true; status 200 is fine
        latency: { count: 3, sum: 600, sumSq: 140_000, mean: 200, min: 100, max: 300, p50: 200, p95: 290, p99: 298 },
        perf: { lcp: { count: 2, mean: 1000, p95: 1180 } },
        conversions: { buy: { sessions: 2, rate: 2 / 3 } },
        rate: 1,
      },
    });
  });

  test('60 s window holds the same events at a sixth of the rate', () => {
    const agg = new WindowAggregator();
    agg.addAll(handEvents());
    const out = agg.advanceWatermark(65_000);
    expect(out.map((w) => [w.windowSize, w.windowStart])).toEqual([
      [10_000, 0],
      [60_000, 0],
    ]);
    expect(out[1].metrics.events).toBe(10);
    expect(out[1].metrics.rate).toBeCloseTo(10 / 60, 12);
  });

  test('items and variants get separate windows, emitted in (end, size, item, variant) order', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000] });
    agg.add(ev({ type: 'usage', ts: 1, variant: 'shadow' }));
    agg.add(ev({ type: 'usage', ts: 2, variant: 'original' }));
    agg.add(ev({ type: 'usage', ts: 3, itemId: 'a.item' }));
    const out = agg.advanceWatermark(20_000);
    expect(out.map((w) => `${w.itemId}/${w.variant}`)).toEqual(['a.item/original', 'com.example.notes/original', 'com.example.notes/shadow']);
  });

  test('empty latency has null statistics; events without a finite value are not latencies', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000] });
    agg.add(ev({ type: 'request', ts: 10, value: null }));
    agg.add(ev({ type: 'perf', ts: 11, name: 'fcp' }));
    const [w] = agg.advanceWatermark(20_000);
    expect(w.metrics.requests).toBe(1);
    expect(w.metrics.latency).toEqual({ count: 0, sum: 0, sumSq: 0, mean: null, min: null, max: null, p50: null, p95: null, p99: null });
    expect(w.metrics.perf).toEqual({});
  });

  test('a usage point named __proto__ is plain data', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000] });
    agg.add(ev({ type: 'usage', ts: 10, name: '__proto__' }));
    const [w] = agg.advanceWatermark(20_000);
    expect(Object.keys(w.metrics.conversions)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(w.metrics.conversions)).toBe(Object.prototype);
  });
});

describe('WindowAggregator: watermark and lateness', () => {
  test('an event closes windows once max ts − lateness reaches their end', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000] });
    agg.add(ev({ type: 'usage', ts: 500 }));
    expect(agg.add(ev({ type: 'usage', ts: 14_999 }))).toEqual([]); // watermark 9 999
    const out = agg.add(ev({ type: 'usage', ts: 15_000 })); // watermark 10 000
    expect(out.map((w) => w.windowStart)).toEqual([0]);
    expect(agg.openWindows).toBe(1); // [10 000, 20 000) only: closed state is dropped
  });

  test('allowedLatenessMs is configurable', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    agg.add(ev({ type: 'usage', ts: 500 }));
    expect(agg.add(ev({ type: 'usage', ts: 10_000 })).map((w) => w.windowStart)).toEqual([0]);
  });

  test('the watermark never moves back', () => {
    const agg = new WindowAggregator();
    agg.advanceWatermark(100_000);
    agg.add(ev({ type: 'usage', ts: 50_000 }));
    expect(agg.watermark).toBe(95_000);
  });

  test('late events go to onLate, count on the next window of their key, and still reach wider windows', () => {
    const late: [string, WindowSize[]][] = [];
    const agg = new WindowAggregator({ onLate: (e, sizes) => late.push([e.id, sizes]) });
    agg.add(ev({ type: 'usage', ts: 1000 }));
    agg.advanceWatermark(15_000); // closes 10 s [0, 10 000); watermark 10 000
    const straggler = ev({ type: 'request', ts: 9500, value: 42 });
    expect(agg.add(straggler)).toEqual([]);
    expect(late).toEqual([[straggler.id, [10_000]]]);
    agg.add(ev({ type: 'usage', ts: 12_000 }));
    const next = agg.advanceWatermark(25_000);
    expect(next.map((w) => [w.windowSize, w.windowStart, w.late, w.metrics.events])).toEqual([[10_000, 10_000, 1, 1]]);
    const wide = agg.advanceWatermark(65_000);
    expect(wide.map((w) => [w.windowSize, w.late, w.metrics.events, w.metrics.latency.count])).toEqual([[60_000, 0, 3, 1]]);
    // Not lost for the cumulative view either.
    expect(agg.cumulativeOf('com.example.notes', 'original')!.latency).toEqual({ count: 1, sum: 42, sumSq: 1764 });
  });

  test('an event late for every size is reported with all sizes and counted per key', () => {
    const late: WindowSize[][] = [];
    const agg = new WindowAggregator({ onLate: (_e, s) => late.push(s) });
    agg.advanceWatermark(200_000);
    agg.add(ev({ type: 'usage', ts: 1000 }));
    agg.add(ev({ type: 'usage', ts: 1001 }));
    expect(late).toEqual([
      [10_000, 60_000],
      [10_000, 60_000],
    ]);
    agg.add(ev({ type: 'usage', ts: 200_000 }));
    const out = agg.advanceWatermark(300_000);
    expect(out.map((w) => [w.windowSize, w.late])).toEqual([
      [10_000, 2],
      [60_000, 2],
    ]);
  });
});

describe('WindowAggregator: de-duplication', () => {
  test('the same event twice counts once, also after its window closed', () => {
    const late: string[] = [];
    const agg = new WindowAggregator({ windowSizes: [10_000], onLate: (e) => late.push(e.id) });
    const e = ev({ type: 'error', ts: 1000 });
    agg.add(e);
    agg.add({ ...e });
    const [w] = agg.advanceWatermark(20_000);
    expect(w.metrics.events).toBe(1);
    expect(w.metrics.errors).toBe(1);
    agg.add({ ...e }); // within retention: still a duplicate, not a late event
    expect(late).toEqual([]);
    expect(agg.duplicates).toBe(2);
    expect(agg.cumulativeOf(e.itemId, e.variant)!.errors).toBe(1);
  });

  test('ids are forgotten after the retention (bounded memory)', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], dedupRetentionMs: 30_000 });
    const e = ev({ type: 'usage', ts: 1000 });
    agg.add(e);
    agg.advanceWatermark(1000 + 10_000 + 30_000 + 5000);
    expect(agg.snapshot().seen).toEqual([]);
    const late: string[] = [];
    const again = new WindowAggregator({ windowSizes: [10_000], dedupRetentionMs: 30_000, onLate: (x) => late.push(x.id) });
    again.restore(agg.snapshot());
    again.add({ ...e }); // too old to be recognised: handed on as late (the sink de-duplicates by id)
    expect(late).toEqual([e.id]);
  });
});

describe('WindowAggregator: snapshot / restore', () => {
  test('restoring a JSON round-tripped snapshot continues identically', () => {
    const events: TelemetryEvent[] = [];
    for (let i = 0; i < 300; i++) {
      events.push(
        ev({
          type: (['perf', 'request', 'error', 'usage', 'session'] as const)[i % 5],
          ts: i * 700 + (i % 7) * 300,
          value: (i * 37) % 500,
          sessionId: `s${i % 11}`,
          userId: `u${i % 4}`,
          variant: i % 3 ? 'original' : 'shadow',
          name: `n${i % 3}`,
          attrs: { status: i % 13 ? '200' : '500' },
        }),
      );
    }
    events.splice(150, 0, { ...events[140] }, ev({ type: 'usage', ts: 1000 })); // a duplicate and a late event
    const whole = new WindowAggregator();
    const expected = [...whole.addAll(events), ...whole.flush()];

    const first = new WindowAggregator();
    const out = first.addAll(events.slice(0, 151));
    const snap = JSON.parse(JSON.stringify(first.snapshot())) as AggregatorSnapshot;
    const second = new WindowAggregator();
    second.restore(snap);
    out.push(...second.addAll(events.slice(151)), ...second.flush());

    expect(out).toEqual(expected);
    expect(out.some((w) => w.late > 0)).toBe(true);
    expect(second.duplicates).toBe(whole.duplicates);
    expect(second.cumulatives().map(cumulativeToJSON)).toEqual(whole.cumulatives().map(cumulativeToJSON));
  });

  test('restore refuses a snapshot taken with other window settings', () => {
    const snap = new WindowAggregator({ allowedLatenessMs: 1000 }).snapshot();
    expect(() => new WindowAggregator().restore(snap)).toThrow(/lateness/);
  });
});

describe('WindowAggregator: arrival order within lateness does not matter (property)', () => {
  const L = 5000;
  const eventArb = fc.record({
    ts: fc.integer({ min: 0, max: 40_000 }), // dense: many values per window, so float sum order matters
    jitter: fc.integer({ min: 0, max: L - 1 }),
    itemId: fc.constantFrom('a', 'b'),
    variant: fc.constantFrom('original', 'shadow'),
    sessionId: fc.constantFrom('s0', 's1', 's2', 's3', 's4'),
    userId: fc.constantFrom('u0', 'u1', 'u2'),
    type: fc.constantFrom('perf', 'request', 'error', 'usage', 'session'),
    name: fc.constantFrom('buy', 'lcp', 'api'),
    value: fc.option(fc.integer({ min: 0, max: 5_000_000 }).map((x) => x / 7), { nil: null }), // inexact binary fractions
    status: fc.constantFrom('200', '404', '500'),
    dup: fc.boolean(),
    dupJitter: fc.integer({ min: 0, max: L - 1 }),
  });

  test('same windows for every order whose disorder stays below the allowed lateness, with re-deliveries and a checkpoint', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 30, maxLength: 150 }), fc.nat(), (raw, cutSeed) => {
        const events = raw.map((r, i) => ({
          e: {
            id: `id${i}`,
            itemId: r.itemId,
            version: '1',
            variant: r.variant,
            profileVersion: 1,
            sessionId: r.sessionId,
            userId: r.userId,
            type: r.type,
            name: r.name,
            ts: r.ts,
            value: r.value,
            attrs: { status: r.status },
          } as TelemetryEvent,
          r,
        }));
        const inTsOrder = [...events].sort((x, y) => x.e.ts - y.e.ts).map((x) => x.e);
        // Arrival key ts + jitter with jitter < L: an event never trails the max ts seen by ≥ L,
        // so nothing is late. Re-deliveries arrive the same way.
        const arrivals = events.map((x) => ({ key: x.e.ts + x.r.jitter, e: x.e }));
        for (const x of events) if (x.r.dup) arrivals.push({ key: x.e.ts + x.r.dupJitter, e: { ...x.e } });
        const shuffled = arrivals.sort((x, y) => x.key - y.key).map((x) => x.e);

        const late: string[] = [];
        const ref = new WindowAggregator({ allowedLatenessMs: L });
        const expected: MetricWindow[] = [...ref.addAll(inTsOrder), ...ref.flush()];

        const cut = shuffled.length === 0 ? 0 : cutSeed % (shuffled.length + 1);
        const a = new WindowAggregator({ allowedLatenessMs: L, onLate: (e) => late.push(e.id) });
        const got = a.addAll(shuffled.slice(0, cut));
        const b = new WindowAggregator({ allowedLatenessMs: L, onLate: (e) => late.push(e.id) });
        b.restore(JSON.parse(JSON.stringify(a.snapshot())));
        got.push(...b.addAll(shuffled.slice(cut)), ...b.flush());

        // Plain comparisons, not expect(): jest's diff rendering of big objects would make
        // fast-check's shrinking crawl. fast-check reports the shrunk counterexample.
        const totals = (agg: WindowAggregator) =>
          agg
            .cumulatives()
            .map(cumulativeTotals)
            .sort((x, y) => (x.itemId + x.variant < y.itemId + y.variant ? -1 : 1));
        const tb = totals(b);
        const tr = totals(ref);
        // Cumulative: counts exact; latency sums equal up to float re-association.
        const countsOnly = (ts: ReturnType<typeof totals>) => JSON.stringify(ts.map((t) => ({ ...t, latency: t.latency.count })));
        return (
          late.length === 0 &&
          JSON.stringify(got) === JSON.stringify(expected) &&
          countsOnly(tb) === countsOnly(tr) &&
          tb.every((t, i) => Math.abs(t.latency.sum - tr[i].latency.sum) <= 1e-9 * Math.max(1, tr[i].latency.sum))
        );
      }),
      { numRuns: 150 },
    );
  });
});

describe('cumulative aggregates', () => {
  test('hand totals, restart on a newer profile version, ignore older ones', () => {
    const agg = emptyCumulative('com.example.notes', 'original', 3);
    for (const e of handEvents()) addToCumulative(agg, e);
    expect(cumulativeTotals(agg)).toEqual({
      itemId: 'com.example.notes',
      variant: 'original',
      controlOf: null,
      profileVersion: 3,
      sessions: 3,
      errorSessions: 1,
      requests: 3,
      requestErrors: 2,
      latency: { count: 3, sum: 600, sumSq: 140_000 },
      perf: { lcp: { count: 2, sum: 2000, sumSq: 2_080_000 } },
      conversions: { buy: 2 },
    });
    expect(addToCumulative(agg, ev({ type: 'error', ts: 1, profileVersion: 2 }))).toBe(false);
    expect(addToCumulative(agg, ev({ type: 'usage', ts: 1, profileVersion: 4, name: 'buy' }))).toBe(true);
    expect(cumulativeTotals(agg)).toMatchObject({ profileVersion: 4, sessions: 1, errorSessions: 0, conversions: { buy: 1 } });
  });

  test('merging disjoint partials equals one pass, in any grouping (property)', () => {
    const evArb = fc.record({
      sessionId: fc.constantFrom('s0', 's1', 's2', 's3'),
      type: fc.constantFrom('request', 'error', 'usage', 'perf'),
      name: fc.constantFrom('buy', 'share'),
      value: fc.integer({ min: 0, max: 1000 }),
      part: fc.integer({ min: 0, max: 2 }),
    });
    fc.assert(
      fc.property(fc.array(evArb, { maxLength: 60 }), (raw) => {
        const events = raw.map((r, i) => ({ part: r.part, e: ev({ ...r, ts: i, id: `c${i}`, profileVersion: 1 }) }));
        const whole = emptyCumulative('com.example.notes', 'original', 1);
        const parts = [0, 1, 2].map(() => emptyCumulative('com.example.notes', 'original', 1));
        for (const { part, e } of events) {
          addToCumulative(whole, e);
          addToCumulative(parts[part], e);
        }
        const left = mergeAggregates(mergeAggregates(parts[0], parts[1]), parts[2]);
        const right = mergeAggregates(parts[2], mergeAggregates(parts[1], parts[0]));
        expect(cumulativeTotals(left)).toEqual(cumulativeTotals(whole));
        expect(cumulativeTotals(right)).toEqual(cumulativeTotals(whole));
        expect(left.events).toBe(whole.events);
      }),
    );
  });

  test('merge keeps the newer profile version and refuses other keys', () => {
    const a = emptyCumulative('i', 'original', 1);
    const b = emptyCumulative('i', 'original', 2);
    addToCumulative(a, ev({ itemId: 'i', type: 'error', ts: 1, profileVersion: 1 }));
    expect(mergeAggregates(a, b).profileVersion).toBe(2);
    expect(mergeAggregates(a, b).errors).toBe(0);
    expect(() => mergeAggregates(a, emptyCumulative('i', 'shadow', 1))).toThrow(/cannot merge/);
  });
});

describe('attribution: unverified events and control arms', () => {
  test('an unverified event changes nothing, not even the watermark', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    agg.add(ev({ type: 'request', ts: 1000, value: 100 }));
    const wm = agg.watermark;
    // A forged batch from the far future, claiming errors: no window, no cumulative, no clock.
    expect(agg.add(ev({ type: 'error', ts: 9_000_000, verified: false, unverifiedReason: 'missing' }))).toEqual([]);
    expect(agg.add(ev({ type: 'error', ts: 9_000_000, verified: undefined }))).toEqual([]);
    expect(agg.watermark).toBe(wm);
    expect(agg.unverified).toBe(2);
    expect(agg.cumulativeOf('com.example.notes', 'original')!.errors).toBe(0);
    const [w] = agg.flush();
    expect(w.metrics.events).toBe(1);
  });

  test('windows pool the control cohorts of an item; cumulative aggregates keep them per shadow', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    agg.add(ev({ type: 'request', ts: 1000, value: 100, variant: 'control', controlOf: 'a', sessionId: 'ca' }));
    agg.add(ev({ type: 'request', ts: 2000, value: 300, variant: 'control', controlOf: 'b', sessionId: 'cb' }));
    const [w] = agg.flush();
    expect(w).toMatchObject({ variant: 'control', metrics: { sessions: 2, latency: { count: 2, mean: 200 } } });
    expect(agg.cumulativeOf('com.example.notes', 'control', 'a')!.latency).toEqual({ count: 1, sum: 100, sumSq: 10_000 });
    expect(agg.cumulativeOf('com.example.notes', 'control', 'b')!.latency.sum).toBe(300);
    expect(agg.cumulativeOf('com.example.notes', 'control')).toBeUndefined();
    const copy = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0 });
    copy.restore(JSON.parse(JSON.stringify(agg.snapshot())));
    expect(copy.cumulativeOf('com.example.notes', 'control', 'b')!.controlOf).toBe('b');
  });
});

describe('cumulatives: false (the metrics processor keeps them in its ComparisonStore)', () => {
  test('same windows, late counts and duplicates as with cumulatives; no cumulative kept', () => {
    const events = [...handEvents(), ...handEvents().map((e) => ({ ...e, ts: e.ts + 10_000, id: `${e.id}-b` }))];
    const run = (cumulatives: boolean) => {
      const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 0, cumulatives });
      const out = agg.addAll(events);
      out.push(...agg.addAll([{ ...events[0] }, { ...events[1], id: 'late-one' }])); // a duplicate, a late event
      out.push(...agg.flush());
      return { agg, out };
    };
    const withCum = run(true);
    const without = run(false);
    expect(without.out).toEqual(withCum.out);
    expect(without.out.reduce((s, w) => s + w.late, 0)).toBe(1);
    expect(without.agg.duplicates).toBe(1);
    expect(withCum.agg.cumulatives()).toHaveLength(1);
    expect(without.agg.cumulatives()).toEqual([]);
    expect(without.agg.cumulativeOf('com.example.notes', 'original')).toBeUndefined();
  });
});

describe('WindowAggregator: the hot map of each arm\'s last windows (no key string per event)', () => {
  test('an arm moving between two open windows and back, and a window closed meanwhile, are counted where they belong', () => {
    const agg = new WindowAggregator({ windowSizes: [10_000], allowedLatenessMs: 15_000 });
    const out: MetricWindow[] = [];
    const add = (p: Partial<TelemetryEvent> & Pick<TelemetryEvent, 'type' | 'ts'>) => out.push(...agg.add(ev({ receivedAt: p.ts, ...p })));
    add({ type: 'usage', ts: 1_000 }); // [0, 10 s) of original
    add({ type: 'usage', ts: 11_000 }); // [10, 20 s): the hot slot now points here
    add({ type: 'usage', ts: 2_000 }); // back to [0, 10 s): found by key, not the hot slot
    add({ type: 'usage', ts: 12_000, variant: 'shadow-a' }); // another arm of the item
    add({ type: 'usage', ts: 13_000 }); // [10, 20 s) again (hot)
    expect(out).toEqual([]);
    add({ type: 'usage', ts: 26_000 }); // watermark 11 s: [0, 10 s) closes (hot map cleared)
    expect(out.map((w) => [w.variant, w.windowStart, w.metrics.events])).toEqual([['original', 0, 2]]);
    add({ type: 'usage', ts: 3_000 }); // late for the closed window: a late count, no re-opened window
    add({ type: 'usage', ts: 14_000 }); // the still-open [10, 20 s) after the clear
    expect(agg.advanceWatermark(60_000).map((w) => [w.variant, w.windowStart, w.metrics.events, w.late])).toEqual([
      ['original', 10_000, 3, 1],
      ['shadow-a', 10_000, 1, 0],
      ['original', 20_000, 1, 0],
    ]);
  });
});

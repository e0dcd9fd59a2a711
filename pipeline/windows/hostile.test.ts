/**
 * Issue 17 attacks on the window aggregator, as golden cases (pure):
 * - item 1: a future-dated event (ts = receive time + 299 s, which the collector accepts) must not
 *   move the watermark past its receive time, so real windows still close and real events are
 *   not late;
 * - item 4: many distinct arms / sessions / windows / ids must not grow state past its caps, and
 *   every drop is counted.
 */
import type { TelemetryEvent } from './types.ts';
import { WindowAggregator } from './window-aggregator.ts';

let seq = 0;
const ev = (p: Partial<TelemetryEvent> & Pick<TelemetryEvent, 'ts'>): TelemetryEvent => ({
  id: `h${seq++}`, itemId: 'com.example.shop', version: '1.0.0', variant: 'checkout-v2', profileVersion: 3,
  sessionId: 's1', userId: 'u1', type: 'error', name: 'TypeError', attrs: {}, verified: true, ...p,
});

const NOW = 1_764_200_000_000; // a 10 s boundary

describe('event time cannot blind the pipeline (item 1)', () => {
  test('one event with ts = now + 299 s leaves the watermark at its receive time; genuine windows close on time', () => {
    const agg = new WindowAggregator();
    agg.add(ev({ ts: NOW + 1000, receivedAt: NOW + 1000 }));
    // The attack: accepted by the collector (≤ 5 min ahead), received now.
    agg.add(ev({ ts: NOW + 299_000, receivedAt: NOW + 2000, sessionId: 'attacker' }));
    expect(agg.watermark).toBe(NOW + 2000 - 5000);
    // Genuine traffic keeps arriving and is on time, not late.
    const closed = [];
    for (let t = 3000; t <= 16_000; t += 1000) closed.push(...agg.add(ev({ ts: NOW + t, receivedAt: NOW + t, sessionId: `s${t}` })));
    expect(closed.filter((w) => w.windowSize === 10_000).map((w) => [w.windowStart - NOW, w.metrics.events, w.late])).toEqual([[0, 8, 0]]);
    expect(agg.watermark).toBe(NOW + 11_000);
    // The future-dated event's own window stays open until its time comes; nothing else is held.
    const flushed = agg.flush();
    expect(flushed.find((w) => w.windowSize === 10_000 && w.windowStart === NOW + 290_000)?.metrics.events).toBe(1);
  });

  test('the same holds for unverified events and for events without a receive time the processor stamped', () => {
    const agg = new WindowAggregator();
    agg.add(ev({ ts: NOW + 299_000, receivedAt: NOW, verified: false, unverifiedReason: 'missing' }));
    expect(agg.watermark).toBeLessThanOrEqual(NOW - 5000);
    // A receive time itself in the future is no better than the event time (the processor caps it at its clock).
    agg.add(ev({ ts: NOW + 100, receivedAt: NOW + 50 }));
    expect(agg.watermark).toBe(NOW + 50 - 5000);
  });

  test('a restored snapshot keeps the clamped watermark', () => {
    const agg = new WindowAggregator();
    agg.add(ev({ ts: NOW + 299_000, receivedAt: NOW }));
    const b = new WindowAggregator();
    b.restore(JSON.parse(JSON.stringify(agg.snapshot())));
    expect(b.watermark).toBe(NOW - 5000);
  });
});

describe('bounded state under many distinct keys (item 4)', () => {
  test('arms (item × variant) beyond maxArms evict the least recently updated aggregate, counted', () => {
    const agg = new WindowAggregator({ maxArms: 100 });
    for (let i = 0; i < 5000; i++) agg.add(ev({ ts: NOW + (i % 1000), receivedAt: NOW, variant: `v${i}` }));
    expect(agg.bounds.arms).toBe(100);
    expect(agg.bounds.armsEvicted).toBe(4900);
    expect(agg.cumulatives()).toHaveLength(100);
    expect(agg.cumulativeOf('com.example.shop', 'v4999')?.events).toBe(1);
    expect(agg.cumulativeOf('com.example.shop', 'v0')).toBeUndefined();
  });

  test('sessions beyond maxSessionsPerArm are left out of the aggregate; known sessions keep counting', () => {
    const agg = new WindowAggregator({ maxSessionsPerArm: 50 });
    for (let i = 0; i < 1000; i++) agg.add(ev({ ts: NOW, receivedAt: NOW, sessionId: `s${i}` }));
    agg.add(ev({ ts: NOW, receivedAt: NOW, sessionId: 's7' }));
    const c = agg.cumulativeOf('com.example.shop', 'checkout-v2')!;
    expect(c.sessions.size).toBe(50);
    expect(c.events).toBe(51);
    expect(agg.bounds.sessionsRefused).toBe(950);
    // A newer profile version restarts the aggregate, so the cap does not freeze it.
    agg.add(ev({ ts: NOW, receivedAt: NOW, sessionId: 'fresh', profileVersion: 4 }));
    expect(agg.cumulativeOf('com.example.shop', 'checkout-v2')!.sessions.size).toBe(1);
  });

  test('open windows beyond maxOpenWindows are not opened (counted); de-dup ids beyond maxDedupIds forget the oldest bucket', () => {
    const agg = new WindowAggregator({ maxOpenWindows: 40, maxDedupIds: 500 });
    for (let i = 0; i < 200; i++) agg.add(ev({ ts: NOW, receivedAt: NOW, variant: `v${i}` }));
    expect(agg.openWindows).toBe(40);
    expect(agg.bounds.windowsRefused).toBe(400 - 40);
    for (let i = 0; i < 2000; i++) agg.add(ev({ ts: NOW + i * 100, receivedAt: NOW, variant: 'v0' }));
    expect(agg.bounds.dedupIds).toBeLessThanOrEqual(500);
    expect(agg.bounds.dedupIdsEvicted).toBeGreaterThan(0);
  });
});

/**
 * Golden cases of the collector's health: a sequence of what the collector did (at times in
 * ms) → the check at `now`. Times are small integers so the cases read as a timeline.
 */
import { CollectorHealth, RecentCounts, RECENT_MS, STALL_MS, type Pending } from './health.ts';

type Step = ['ack' | 'fail' | '503', number, string?];
const idle: Pending = { batches: 0, records: 0, oldestAt: null };
const T = 1_000_000;

function run(steps: Step[], now: number, pending: Pending = idle) {
  const h = new CollectorHealth();
  for (const [what, at, reason = 'Kafka did not acknowledge 3 record(s): connect ECONNREFUSED'] of steps) {
    if (what === 'ack') h.acknowledged(T + at);
    else if (what === 'fail') h.produceFailed(T + at, reason);
    else h.answered503(T + at, reason);
  }
  return h.check(T + now, pending.oldestAt === null ? pending : { ...pending, oldestAt: T + pending.oldestAt });
}

describe('collector health: golden cases', () => {
  const cases: { name: string; steps: Step[]; now: number; pending?: Pending; status: 'ok' | 'degraded'; detail?: RegExp; recent?: Record<string, number> }[] = [
    { name: 'nothing happened yet', steps: [], now: 0, status: 'ok', recent: { acknowledged: 0, produceFailures: 0, answered503: 0 } },
    { name: 'acknowledged produces only', steps: [['ack', 0], ['ack', 10]], now: 20, status: 'ok', recent: { acknowledged: 2, produceFailures: 0, answered503: 0 } },
    {
      name: 'a failed produce answered 503, nothing acknowledged since: refusing',
      steps: [['ack', 0], ['fail', 100], ['503', 101], ['503', 102]], now: 200,
      status: 'degraded', detail: /^refusing telemetry: 2 batch\(es\) answered 503 in the last 60 s and none acknowledged since \(Kafka did not acknowledge/,
      recent: { acknowledged: 1, produceFailures: 1, answered503: 2 },
    },
    { name: 'a 503 and no acknowledgement ever', steps: [['503', 0]], now: 5, status: 'degraded', detail: /^refusing telemetry: 1 batch/ },
    {
      name: 'acknowledged again after the 503s: recovered, the failures stay visible',
      steps: [['fail', 0], ['503', 1], ['ack', 500]], now: 1000,
      status: 'ok', recent: { acknowledged: 1, produceFailures: 1, answered503: 1 },
    },
    {
      name: 'the last 503 is older than the window: not refusing any more, counts expired',
      steps: [['ack', 0], ['503', 10]], now: 10 + RECENT_MS + 1000,
      status: 'ok', recent: { acknowledged: 0, produceFailures: 0, answered503: 0 },
    },
    {
      name: 'a batch waiting longer than STALL_MS for the broker: stalled',
      steps: [['ack', 0]], now: 10_000, pending: { batches: 4, records: 80, oldestAt: 10_000 - STALL_MS - 1 },
      status: 'degraded', detail: /^4 batch\(es\), 80 record\(s\) waiting for Kafka's acknowledgement, the oldest for 5\.0 s$/,
    },
    { name: 'batches waiting, but not for long: ok', steps: [['ack', 0]], now: 1000, pending: { batches: 30, records: 900, oldestAt: 900 }, status: 'ok' },
    {
      name: 'refusing and stalled: both reasons',
      steps: [['503', 0]], now: 8000, pending: { batches: 1, records: 2, oldestAt: 0 },
      status: 'degraded', detail: /^refusing telemetry: .*; 1 batch\(es\), 2 record\(s\) waiting for Kafka's acknowledgement, the oldest for 8\.0 s$/,
    },
  ];
  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const got = run(c.steps, c.now, c.pending);
    expect(got.status).toBe(c.status);
    if (c.detail) expect(got.detail).toMatch(c.detail);
    else expect(got.detail).toBeUndefined();
    if (c.recent) expect(got.recent).toEqual({ seconds: RECENT_MS / 1000, ...c.recent });
  });

  test('reports the pending depth and the last failure with its time', () => {
    const got = run([['ack', 0], ['fail', 2000, 'broker gone']], 3000, { batches: 2, records: 7, oldestAt: 2500 });
    expect(got.pending).toEqual({ batches: 2, records: 7, oldestMs: 500 });
    expect(got.lastFailure).toEqual({ at: new Date(T + 2000).toISOString(), reason: 'broker gone' });
    expect(got.lastAcknowledgedAt).toBe(new Date(T).toISOString());
    // A failed produce on its own (its callers' 503s not yet answered) is not yet a refusal.
    expect(got.status).toBe('ok');
  });
});

test('RecentCounts keeps one bucket per second of the window, whatever the rate', () => {
  const c = new RecentCounts(10_000);
  for (let i = 0; i < 100_000; i++) c.add('acknowledged', T + (i % 20_000) / 2);
  expect(c.totals(T + 10_000)).toEqual({ acknowledged: 100_000, produceFailures: 0, answered503: 0 });
  expect((c as unknown as { buckets: Map<number, unknown> }).buckets.size).toBeLessThanOrEqual(11);
  // Eleven seconds later everything fell out of the window.
  expect(c.totals(T + 21_000)).toEqual({ acknowledged: 0, produceFailures: 0, answered503: 0 });
});

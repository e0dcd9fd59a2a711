/**
 * Window → record mapping (pure): the aggregator's `MetricWindow` (pipeline/windows, metrics
 * nested under `metrics`) flattened into the Avro `MetricWindow` of
 * `schemas/avro/metric-window.v1.avsc`, which is what travels on penumbra.telemetry.metrics,
 * what the metrics route returns and what the SSE `metrics` event carries. The record has no
 * latency min/max (the window keeps them; the warehouse recomputes from events if needed).
 */
import type { MetricWindow as AggregatedWindow } from '../windows/types.ts';
import { quantileCont, type WindowState } from '../windows/window-state.ts';
import type { MetricWindow as MetricWindowRecord } from '../../schemas/types.generated.ts';

export type { MetricWindowRecord };

export function toMetricWindowRecord(w: AggregatedWindow, emittedAt: number): MetricWindowRecord {
  const m = w.metrics;
  return {
    itemId: w.itemId,
    variant: w.variant,
    windowSize: w.windowSize,
    windowStart: w.windowStart,
    windowEnd: w.windowEnd,
    events: m.events,
    sessions: m.sessions,
    users: m.users,
    errors: m.errors,
    errorSessions: m.errorSessions,
    errorRate: m.errorRate,
    requests: m.requests,
    requestErrors: m.requestErrors,
    rate: m.rate,
    latency: {
      count: m.latency.count,
      mean: m.latency.mean,
      p50: m.latency.p50,
      p95: m.latency.p95,
      p99: m.latency.p99,
      sum: m.latency.sum,
      sumSq: m.latency.sumSq,
    },
    // Fresh objects with own properties only (a point named "__proto__" stays data).
    conversions: Object.fromEntries(Object.entries(m.conversions).map(([k, c]) => [k, { sessions: c.sessions, rate: c.rate }])),
    perf: Object.fromEntries(Object.entries(m.perf).map(([k, p]) => [k, { count: p.count, mean: p.mean, p95: p.p95 }])),
    late: w.late,
    emittedAt,
  };
}

/** Stable identity of a window version downstream (the warehouse upsert key). */
export function windowKey(w: Pick<MetricWindowRecord, 'itemId' | 'variant' | 'windowSize' | 'windowStart'>): string {
  return `${w.itemId}\u0000${w.variant}\u0000${w.windowSize}\u0000${w.windowStart}`;
}

/** Sorted copy with the native numeric sort of a typed array (no comparator callback). */
function sortedCopy(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * Record of a still-OPEN window, for the provisional live view (published on the hub, never on
 * Kafka). Same numbers as the window would have if it closed now (`toMetricWindow` + the mapping
 * above) — the same sums over sorted values and type-7 quantiles — but sorted with a typed array,
 * which keeps a once-a-tick view of a 100k-event window cheap.
 */
export function openWindowRecord(w: WindowState, emittedAt: number): MetricWindowRecord {
  const sessions = w.sessions.size;
  const lat = sortedCopy(w.latencies);
  let sum = 0;
  let sumSq = 0;
  for (const v of lat) {
    sum += v;
    sumSq += v * v;
  }
  const n = lat.length;
  const q = (p: number) => (n === 0 ? null : quantileCont(lat as unknown as number[], p));
  const byName = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    itemId: w.itemId,
    variant: w.variant,
    windowSize: w.windowSize,
    windowStart: w.windowStart,
    windowEnd: w.windowEnd,
    events: w.events,
    sessions,
    users: w.users.size,
    errors: w.errors,
    errorSessions: w.errorSessions.size,
    errorRate: sessions === 0 ? 0 : w.errorSessions.size / sessions,
    requests: w.requests,
    requestErrors: w.requestErrors,
    rate: w.events / (w.windowSize / 1000),
    latency: { count: n, mean: n === 0 ? null : sum / n, p50: q(0.5), p95: q(0.95), p99: q(0.99), sum, sumSq },
    conversions: Object.fromEntries(byName(w.conversions).map(([k, set]) => [k, { sessions: set.size, rate: sessions === 0 ? 0 : set.size / sessions }])),
    perf: Object.fromEntries(
      byName(w.perf).map(([k, values]) => {
        const sorted = sortedCopy(values);
        let total = 0;
        for (const v of sorted) total += v;
        return [k, { count: sorted.length, mean: total / sorted.length, p95: quantileCont(sorted as unknown as number[], 0.95) }];
      }),
    ),
    late: 0,
    emittedAt,
  };
}

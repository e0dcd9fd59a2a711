/**
 * Window → record mapping (pure): the aggregator's `MetricWindow` (pipeline/windows, metrics
 * nested under `metrics`) flattened into the Avro `MetricWindow` of
 * `schemas/avro/metric-window.v1.avsc`, which is what travels on penumbra.telemetry.metrics,
 * what the metrics route returns and what the SSE `metrics` event carries. The record has no
 * latency min/max (the window keeps them; the warehouse recomputes from events if needed).
 */
import type { MetricWindow as AggregatedWindow } from '../windows/types.ts';
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

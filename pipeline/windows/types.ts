/**
 * Telemetry event model and the window records the aggregator emits. The event is one entry of
 * the telemetry batch (docs/ARCHITECTURE.md "Telemetry batch") flattened with its batch header,
 * which is how it travels on Kafka. Every metric formula is in pipeline/windows/README.md.
 */

export type TelemetryType = 'perf' | 'request' | 'error' | 'usage' | 'session';

export interface TelemetryEvent {
  /** Unique per event; the aggregator counts an id once (idempotent delivery). */
  id: string;
  itemId: string;
  version: string;
  /** "original" or a shadow name. */
  variant: string;
  profileVersion: number;
  sessionId: string;
  userId: string;
  type: TelemetryType;
  /** perf: metric name; request: endpoint name; error: message; usage: point id; session: start|end. */
  name: string;
  /** Event time, epoch ms (client clock). */
  ts: number;
  /** perf: ms; request: latency ms; otherwise unused. */
  value?: number | null;
  attrs: Record<string, string>;
}

export type WindowSize = 10_000 | 60_000;
export const WINDOW_SIZES: readonly WindowSize[] = [10_000, 60_000];

/** Exact order statistics of the request latencies in a window; null fields when count = 0. */
export interface LatencyStats {
  count: number;
  sum: number;
  sumSq: number;
  mean: number | null;
  min: number | null;
  max: number | null;
  /** Linear-interpolation quantiles (Hyndman–Fan type 7 = DuckDB quantile_cont = numpy 'linear'). */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface PerfStats {
  count: number;
  mean: number;
  p95: number;
}

export interface ConversionStats {
  /** Distinct sessions with ≥ 1 usage event of this point in the window. */
  sessions: number;
  /** sessions / window sessions. */
  rate: number;
}

export interface WindowMetrics {
  /** All on-time, de-duplicated events of the window, any type. */
  events: number;
  /** Distinct sessionIds among those events. */
  sessions: number;
  /** Distinct userIds. */
  users: number;
  /** Events of type `error`. */
  errors: number;
  /** Distinct sessions with ≥ 1 error event. */
  errorSessions: number;
  /** errorSessions / sessions. */
  errorRate: number;
  /** Events of type `request`. */
  requests: number;
  /** Request events with numeric attrs.status ≥ 500 or attrs.failed === "true". */
  requestErrors: number;
  /** Over request events with a finite `value`. */
  latency: LatencyStats;
  /** Per perf name, over perf events with a finite `value`. */
  perf: Record<string, PerfStats>;
  /** Per usage point id (the usage event's `name`). */
  conversions: Record<string, ConversionStats>;
  /** events / window length in seconds. */
  rate: number;
}

export interface MetricWindow {
  itemId: string;
  variant: string;
  windowSize: WindowSize;
  /** Inclusive, epoch ms, a multiple of windowSize. */
  windowStart: number;
  /** Exclusive: windowStart + windowSize. */
  windowEnd: number;
  metrics: WindowMetrics;
  /** Late events for this item × variant × windowSize seen since the previous emitted window of that key. */
  late: number;
}

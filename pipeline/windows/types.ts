/**
 * Telemetry event model and the window records the aggregator emits. The event is one entry of
 * the telemetry batch (docs/ARCHITECTURE.md "Telemetry batch") flattened with its batch header,
 * which is how it travels on Kafka. Every metric formula is in pipeline/windows/README.md.
 */
import type { ConversionStat, EventType, LatencyStats as LatencyRecord, MetricWindow as MetricWindowRecord, PerfStat, TelemetryEvent as TelemetryEventRecord } from '../../schemas/types.generated.ts';

export type TelemetryType = EventType;

// The Avro TelemetryEvent without the batch times (sentAt, receivedAt: not needed to aggregate); `value` and the
// v2 attribution fields may be absent (absent `verified` means unverified, as the Avro default says).
export interface TelemetryEvent extends Omit<TelemetryEventRecord, 'value' | 'sentAt' | 'receivedAt' | 'controlOf' | 'verified' | 'unverifiedReason'> {
  /** perf: ms; request: latency ms; otherwise unused. */
  value?: number | null;
  controlOf?: string | null;
  verified?: boolean;
  unverifiedReason?: string | null;
  /**
   * When the collector received it (epoch ms; the Avro field). Bounds how far this event can move
   * the watermark: min(ts, receivedAt) — a future-dated ts must not blind the pipeline (issue 17
   * item 1). Absent (tests, tools): ts alone.
   */
  receivedAt?: number | null;
}

export type WindowSize = 10_000 | 60_000;
export const WINDOW_SIZES: readonly WindowSize[] = [10_000, 60_000];

/** Exact order statistics of the request latencies in a window; null fields when count = 0. */
// The Avro record's LatencyStats plus min/max: the window keeps them, the record does not carry them.
export interface LatencyStats extends LatencyRecord {
  min: number | null;
  max: number | null;
}

export type PerfStats = PerfStat;

export type ConversionStats = ConversionStat;

/** The metric fields of the Avro MetricWindow record (formulas: README.md), with the window's own LatencyStats. */
export interface WindowMetrics extends Pick<MetricWindowRecord, 'events' | 'sessions' | 'users' | 'errors' | 'errorSessions' | 'errorRate' | 'requests' | 'requestErrors' | 'perf' | 'conversions' | 'rate'> {
  latency: LatencyStats;
}

// Not the Avro record itself: metrics stay nested (telemetry/metric-record.ts flattens them), windowSize is narrowed to WindowSize, and emittedAt is set on publish.
export interface MetricWindow extends Pick<MetricWindowRecord, 'itemId' | 'variant' | 'windowStart' | 'windowEnd' | 'late'> {
  windowSize: WindowSize;
  metrics: WindowMetrics;
}

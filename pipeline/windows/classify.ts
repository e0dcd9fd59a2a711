/**
 * How an event counts, in one place so windows, cumulative totals, the DuckDB views and the
 * notebooks share one definition (pipeline/windows/README.md).
 */
import type { TelemetryEvent } from './types.ts';

/** Latency of a request event, or null when it is not a request or carries no finite value. */
export function latencyOf(e: TelemetryEvent): number | null {
  return e.type === 'request' && typeof e.value === 'number' && Number.isFinite(e.value) ? e.value : null;
}

/** Value of a perf event, or null. */
export function perfValueOf(e: TelemetryEvent): number | null {
  return e.type === 'perf' && typeof e.value === 'number' && Number.isFinite(e.value) ? e.value : null;
}

/** A failed request: HTTP status ≥ 500 (attrs.status parsed as a number) or attrs.failed === "true". */
export function isRequestError(e: TelemetryEvent): boolean {
  if (e.type !== 'request') return false;
  const status = Number(e.attrs?.status);
  return (Number.isFinite(status) && status >= 500) || e.attrs?.failed === 'true';
}

/**
 * Whether an event may enter windows, cumulative aggregates, comparisons, alerts and guardrails:
 * only when the collector verified its assignment token (`verified === true`; absent means
 * unverified, as the Avro default says). Unverified events are stored and counted apart
 * (pipeline/telemetry/unverified.ts) so a forged batch cannot move a verdict or roll a shadow back.
 */
export function countsInComparisons(e: Pick<TelemetryEvent, 'verified'>): boolean {
  return e.verified === true;
}

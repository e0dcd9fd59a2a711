/**
 * GET /api/v1/items/{itemId}/metrics?window=10s|1m&from=&to= (viewer) →
 * `{ windows: MetricWindow[], comparisons: { [shadow]: Comparison }, unverified, join }`.
 *
 * `windows` are MetricWindow records (schemas/avro/metric-window.v1.avsc) of one size with
 * windowStart in [from, to) (epoch ms; default: the last 30 min for 10 s, 2 h for 1 min), ordered
 * by start then variant. The live range comes from memory (MetricsStore, fed by
 * penumbra.telemetry.metrics, last 2 h); the part of the range older than that comes from the
 * warehouse Parquet export (`metric_windows/date=…/`, docs/warehouse.md) — if no snapshot exists yet,
 * memory is all there is. Where both have a window, memory wins (it is at least as new).
 * `comparisons` is the latest comparison per shadow against its baseline — the control cohort
 * drawn for it (`baseline: 'control'`, both arms' session counts, always-valid intervals, SRM; or
 * `hasBaseline: false` and `noBaseline.message` in words) — computed by the metrics processor of
 * the member owning the item (`comparisonsSource: this-process`) or, on every other process, the
 * owner's last record on the compacted comparisons topic (`topic`, with `comparisonsFreshness`:
 * computedAt, receivedAt, ageMs, transitMs, member — pipeline/comparisons-topic). `unverified` counts the item's events
 * kept out of every window and comparison (no valid assignment token): `{ total, byVariant:
 * { variant: { reason: n } } }`; `join` counts how this item's verified events matched their
 * users' assignments (variant mismatches). Both come from where the comparisons come from
 * (`comparisonsSource`): the owner's memory, or its last comparisons record (v2) — null where
 * neither is known (`another-member`, `none`). `comparisonsFreshness.stale` says the owner's
 * last record is older than PENUMBRA_COMPARISONS_STALE_MS.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import { z } from 'zod';
import { isS3Source, queryParquet, type ParquetSource } from '../duckdb-sink/query.ts';
import type { MetricsStore } from '../../pipeline/telemetry/metrics-store.ts';
import { windowKey, type MetricWindowRecord } from '../../pipeline/telemetry/metric-record.ts';
import type { ComparisonView } from '../../pipeline/telemetry/comparisons.ts';
import type { ComparisonsFreshness } from '../../pipeline/comparisons-topic/record.ts';
import type { UnverifiedItemView } from '../../pipeline/telemetry/unverified.ts';
import type { JoinCounters } from '../../pipeline/telemetry/assignment-index.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type TokenStore } from './auth.ts';

const SIZES = { '10s': 10_000, '1m': 60_000 } as const;
const DEFAULT_RANGE = { '10s': 30 * 60_000, '1m': 2 * 60 * 60_000 } as const;
const MAX_WINDOWS = 10_000;

export const metricsQuery = z.object({
  window: z.enum(['10s', '1m']).default('10s').describe('Window size'),
  from: z.coerce.number().int().min(0).optional().describe('Inclusive window start, epoch ms'),
  to: z.coerce.number().int().min(0).optional().describe('Exclusive window start bound, epoch ms (default now)'),
});

export interface MetricsRouterDeps {
  store: MetricsStore;
  /** Latest comparisons per shadow of an item (processors only). */
  comparisons?: (itemId: string) => Record<string, ComparisonView>;
  /**
   * Where the answered comparisons come from: `this-process` (the metrics member owning the
   * item), `topic` (what the owner last published on the compacted comparisons topic, followed
   * by every process — pipeline/comparisons-topic), `another-member` (this process runs a member
   * that does not own the item and the topic has nothing for it yet), `none` (nothing anywhere yet).
   */
  comparisonsSource?: (itemId: string) => 'this-process' | 'topic' | 'another-member' | 'none';
  /** How fresh the followed comparisons are (source `topic`; null otherwise). */
  comparisonsFreshness?: (itemId: string) => ComparisonsFreshness | null;
  /** Unverified events of an item: the owner's memory, or its last comparisons record elsewhere (null: unknown here). */
  unverified?: (itemId: string) => UnverifiedItemView | null;
  /** The assignment-join counters of an item, from the same place (null: unknown here). */
  joins?: (itemId: string) => JoinCounters | null;
  /** The export: a folder, or the bucket read through httpfs (connectors/parquet-source). */
  parquetDir: ParquetSource;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
}

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : (v as number));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const parseJson = (s: unknown): Record<string, never> => {
  try {
    return typeof s === 'string' ? (JSON.parse(s) as Record<string, never>) : {};
  } catch {
    return {};
  }
};

/** Rows of the warehouse's metric_windows back into records. */
export async function windowsFromParquet(parquetDir: ParquetSource, itemId: string, windowSize: number, from: number, to: number): Promise<MetricWindowRecord[]> {
  // A folder without the table: no export yet. A bucket is not listed here (the view is empty).
  if (!isS3Source(parquetDir) && !existsSync(path.join(parquetDir, 'metric_windows'))) return [];
  const rows = await queryParquet(
    parquetDir,
    `SELECT item_id, variant, window_size_ms, epoch_ms(window_start) AS ws, epoch_ms(window_end) AS we, events, sessions, users, errors,
            error_sessions, error_rate, requests, request_errors, rate, latency_count, latency_mean, latency_p50, latency_p95, latency_p99,
            latency_sum, latency_sum_sq, conversions_json, perf_json, late, epoch_ms(emitted_at) AS emitted
     FROM metric_windows
     WHERE item_id = $item AND window_size_ms = $size AND window_start >= epoch_ms($from::BIGINT) AND window_start < epoch_ms($to::BIGINT)
       -- the Hive partition (UTC day of window_start): only the days of the range are opened
       AND "date" >= CAST(epoch_ms($from::BIGINT) AS DATE) AND "date" <= CAST(epoch_ms($to::BIGINT) AS DATE)
     ORDER BY window_start, variant LIMIT ${MAX_WINDOWS}`,
    { item: itemId, size: windowSize, from, to },
  );
  return rows.map((r) => ({
    itemId: r.item_id as string, variant: r.variant as string, windowSize: num(r.window_size_ms), windowStart: num(r.ws), windowEnd: num(r.we),
    events: num(r.events), sessions: num(r.sessions), users: num(r.users), errors: num(r.errors), errorSessions: num(r.error_sessions),
    errorRate: num(r.error_rate), requests: num(r.requests), requestErrors: num(r.request_errors), rate: num(r.rate),
    latency: { count: num(r.latency_count), mean: numOrNull(r.latency_mean), p50: numOrNull(r.latency_p50), p95: numOrNull(r.latency_p95), p99: numOrNull(r.latency_p99), sum: num(r.latency_sum), sumSq: num(r.latency_sum_sq) },
    conversions: parseJson(r.conversions_json), perf: parseJson(r.perf_json), late: num(r.late), emittedAt: num(r.emitted),
  }));
}

export function createMetricsRouter(deps: MetricsRouterDeps): Router {
  const r = Router();
  deps.openapi.add({
    method: 'get', path: '/api/v1/items/{itemId}/metrics', summary: 'Metric windows (verified events; live from memory, older from the warehouse), the latest comparison of each shadow with its control, and the unverified-event counts',
    auth: 'viewer', tags: ['metrics'], query: metricsQuery, responses: { 200: '{ windows, comparisons, comparisonsSource, comparisonsFreshness, unverified, join }', 401: 'No token', 422: 'Bad query' },
  });
  r.get('/api/v1/items/:itemId/metrics', requireRole(deps.tokens, 'viewer'), async (req, res) => {
    const itemId = parseOr422(z.string().min(1).max(128), req.params.itemId, 'itemId', 'item id');
    const q = parseOr422(metricsQuery, req.query, 'query', 'metrics query');
    const size = SIZES[q.window];
    const to = q.to ?? Date.now() + size;
    const from = q.from ?? to - DEFAULT_RANGE[q.window];
    const live = deps.store.query(itemId, size, from, to);
    let windows = live;
    const horizon = deps.store.horizon();
    if (from < horizon) {
      const old = await windowsFromParquet(deps.parquetDir, itemId, size, from, Math.min(to, horizon + size)).catch(() => [] as MetricWindowRecord[]);
      if (old.length > 0) {
        const merged = new Map<string, MetricWindowRecord>(old.map((w) => [windowKey(w), w]));
        for (const w of live) merged.set(windowKey(w), w);
        windows = [...merged.values()].sort((a, b) => a.windowStart - b.windowStart || (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0));
      }
    }
    if (windows.length > MAX_WINDOWS) windows = windows.slice(windows.length - MAX_WINDOWS);
    res.json({ windows, comparisons: deps.comparisons?.(itemId) ?? {}, comparisonsSource: deps.comparisonsSource?.(itemId) ?? 'none', comparisonsFreshness: deps.comparisonsFreshness?.(itemId) ?? null, unverified: deps.unverified?.(itemId) ?? null, join: deps.joins?.(itemId) ?? null });
  });
  return r;
}

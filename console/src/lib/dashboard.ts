/**
 * Dashboard model: time ranges, grouping windows by variant, and turning windows into the
 * column data uPlot wants (`[xs(seconds), ...one y-array per variant]`, null where a variant has
 * no window at that time). Also exposures vs configured shares and resolver acknowledgement, and
 * where the comparisons come from (this server, or the comparisons topic — stale or not).
 */
import { fmtAgo } from './format.ts';
import type { ComparisonsFreshness, ComparisonsSource, Exposures, MetricWindow, ResolverView } from './types.ts';

export interface TimeRange { id: 'live' | '15m' | '1h' | '24h' | '7d'; label: string; ms: number; window: '10s' | '1m' }
export const TIME_RANGES: TimeRange[] = [
  { id: 'live', label: 'Live', ms: 15 * 60_000, window: '10s' },
  { id: '15m', label: 'Last 15 min', ms: 15 * 60_000, window: '10s' },
  { id: '1h', label: 'Last 1 h', ms: 60 * 60_000, window: '1m' },
  { id: '24h', label: 'Last 24 h', ms: 24 * 3600_000, window: '1m' },
  { id: '7d', label: 'Last 7 d', ms: 7 * 24 * 3600_000, window: '1m' },
];
export function rangeById(id: string): TimeRange { return TIME_RANGES.find((r) => r.id === id) ?? TIME_RANGES[0]; }

export interface MetricDef { key: string; label: string; unit: 'per s' | 'ms' | '%' | 'score'; get: (w: MetricWindow) => number | null | undefined }

function windowSeconds(w: MetricWindow): number {
  const s = (w.windowEnd - w.windowStart) / 1000;
  return s > 0 ? s : typeof w.windowSize === 'number' ? w.windowSize / 1000 : w.windowSize === '1m' ? 60 : 10;
}
const pct = (r: number | undefined): number | null => (r === undefined || r === null || !Number.isFinite(r) ? null : r * 100);

/** Core Web Vitals first (lcp, inp in ms; cls a unitless score), then the other page timings by name. */
const VITALS_ORDER = ['lcp', 'inp', 'cls'];
const PERF_LABELS: Record<string, string> = { lcp: 'LCP — largest contentful paint', inp: 'INP — interaction to next paint', cls: 'CLS — cumulative layout shift', ttfb: 'Time to first byte', fcp: 'First contentful paint', load: 'Page load' };

/** Perf metric names present in the windows: web vitals first, then the rest alphabetically. */
export function perfNames(windows: readonly MetricWindow[]): string[] {
  const s = new Set<string>();
  for (const w of windows) for (const k of Object.keys(w.perf ?? {})) s.add(k);
  return [...s].sort((a, b) => {
    const ia = VITALS_ORDER.indexOf(a), ib = VITALS_ORDER.indexOf(b);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    return a.localeCompare(b);
  });
}

/** One chart per perf metric: its per-window p95 (web vitals are judged at high percentiles). */
export function perfDefs(names: readonly string[]): MetricDef[] {
  return names.map((n): MetricDef => {
    const score = n === 'cls';
    return { key: `perf:${n}`, label: `${PERF_LABELS[n] ?? `Timing “${n}”`} p95${score ? '' : ' (ms)'}`, unit: score ? 'score' : 'ms', get: (w) => (w.perf && Object.hasOwn(w.perf, n) ? w.perf[n].p95 : null) };
  });
}

export function metricDefs(points: readonly string[], perf: readonly string[] = []): MetricDef[] {
  return [
    // A provisional (still open) window holds a fraction of its events: as a rate over the
    // whole window it would plunge at the live edge, so throughput waits for the closed window.
    { key: 'throughput', label: 'Throughput (events/s)', unit: 'per s', get: (w) => (w.provisional ? null : w.rate ?? (w.events !== undefined ? w.events / windowSeconds(w) : null)) },
    { key: 'errorRate', label: 'Error rate (% of sessions)', unit: '%', get: (w) => pct(w.errorRate) },
    { key: 'p50', label: 'Latency p50 (ms)', unit: 'ms', get: (w) => w.latency?.p50 },
    { key: 'p95', label: 'Latency p95 (ms)', unit: 'ms', get: (w) => w.latency?.p95 },
    { key: 'p99', label: 'Latency p99 (ms)', unit: 'ms', get: (w) => w.latency?.p99 },
    ...perfDefs(perf),
    ...points.map((p): MetricDef => ({ key: `conversion:${p}`, label: `Conversion “${p}” (%)`, unit: '%', get: (w) => pct(w.conversions?.[p]?.rate) })),
  ];
}

/** Arms in display order: the control arm (the baseline) first, the original where it sends data, then the shadows. */
const rank = (v: string) => (v === 'control' ? 0 : v === 'original' ? 1 : 2);

/** variant → windows sorted by start; `variants` in arm order (control, original, shadows). */
export function groupByVariant(windows: readonly MetricWindow[]): { variants: string[]; byVariant: Record<string, MetricWindow[]> } {
  const byVariant: Record<string, MetricWindow[]> = {};
  for (const w of windows) (byVariant[w.variant] ??= []).push(w);
  for (const v of Object.keys(byVariant)) byVariant[v].sort((a, b) => a.windowStart - b.windowStart);
  const variants = Object.keys(byVariant).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return { variants, byVariant };
}

/** The unverified-telemetry rows of an item: variant × reason, largest first. */
export function unverifiedRows(u: { byVariant: Record<string, Record<string, number>> } | null | undefined): { variant: string; reason: string; events: number }[] {
  const rows: { variant: string; reason: string; events: number }[] = [];
  for (const [variant, reasons] of Object.entries(u?.byVariant ?? {})) for (const [reason, events] of Object.entries(reasons)) rows.push({ variant, reason, events });
  return rows.sort((a, b) => b.events - a.events || a.variant.localeCompare(b.variant) || a.reason.localeCompare(b.reason));
}

export function conversionPoints(windows: readonly MetricWindow[]): string[] {
  const s = new Set<string>();
  for (const w of windows) for (const k of Object.keys(w.conversions ?? {})) s.add(k);
  return [...s].sort();
}

/** uPlot AlignedData: x in seconds (uPlot's time unit), one series per variant. */
export function seriesFor(byVariant: Record<string, MetricWindow[]>, variants: readonly string[], def: MetricDef): (number | null)[][] {
  const xs = new Set<number>();
  for (const v of variants) for (const w of byVariant[v] ?? []) xs.add(w.windowStart);
  const x = [...xs].sort((a, b) => a - b);
  const cols = variants.map((v) => {
    const m = new Map((byVariant[v] ?? []).map((w) => [w.windowStart, w]));
    return x.map((t) => { const w = m.get(t); const y = w ? def.get(w) : null; return y === undefined || y === null || !Number.isFinite(y) ? null : y; });
  });
  return [x.map((t) => t / 1000), ...cols];
}

/** Live buffer for an item (variant → windows) flattened and limited to the range. */
export function liveWindows(perItem: Record<string, MetricWindow[]> | undefined, now: number, rangeMs: number): MetricWindow[] {
  if (!perItem) return [];
  const from = now - rangeMs;
  return Object.values(perItem).flat().filter((w) => w.windowEnd >= from);
}

/** Merge a historical fetch with live windows (live wins for the same variant+start). */
export function mergeWindows(a: readonly MetricWindow[], b: readonly MetricWindow[]): MetricWindow[] {
  const m = new Map<string, MetricWindow>();
  for (const w of [...a, ...b]) m.set(`${w.variant}|${w.windowSize}|${w.windowStart}`, w);
  return [...m.values()];
}

export interface ShareRow { variant: string; count: number; observed: number | null; configured: number }
type ShareShadow = { name: string; percentage?: number; traffic?: { percentage: number }; control?: unknown };
/** A shadow's control cohort is on unless its config says `control: false` (absent = on), as on the server. */
export function controlOn(s: { control?: unknown }): boolean {
  return s.control !== false;
}
/**
 * Observed exposure share per variant next to the configured share: each shadow its percentage,
 * `control` as much again for every shadow whose control is on (equally sized cohorts), the
 * original the rest.
 */
export function exposureRows(exp: Exposures | undefined | null, shadows: readonly ShareShadow[]): ShareRow[] {
  const pctOf = (s: ShareShadow) => s.percentage ?? s.traffic?.percentage ?? 0;
  const configuredControl = shadows.filter(controlOn).reduce((a, s) => a + pctOf(s), 0);
  const configuredOriginal = Math.max(0, 100 - shadows.reduce((a, s) => a + pctOf(s), 0) - configuredControl);
  const names = ['original', ...(configuredControl > 0 || (exp?.counts?.control ?? 0) > 0 ? ['control'] : []), ...shadows.map((s) => s.name)];
  for (const k of Object.keys(exp?.counts ?? {})) if (!names.includes(k)) names.push(k);
  const total = exp?.total ?? Object.values(exp?.counts ?? {}).reduce((a, b) => a + b, 0);
  return names.map((variant) => {
    const count = exp?.counts?.[variant] ?? 0;
    const sh = shadows.find((s) => s.name === variant);
    const configured = variant === 'original' ? configuredOriginal : variant === 'control' ? configuredControl : sh ? pctOf(sh) : 0;
    return { variant, count, observed: total > 0 ? (count / total) * 100 : null, configured };
  });
}

export interface AckRow { resolverId: string; host: string; version: number | null; acked: boolean; stale: boolean }
/** Which resolvers have applied (at least) the target profile version of the item. */
export function resolverAcks(resolvers: readonly ResolverView[], itemId: string, target: number): { rows: AckRow[]; acked: number; total: number; done: boolean } {
  const rows = resolvers.map((r) => {
    const version = r.versions?.[itemId] ?? null;
    return { resolverId: r.resolverId, host: r.host ? `${r.host}${r.pid ? ':' + r.pid : ''}` : r.resolverId, version, acked: version !== null && version >= target, stale: !!r.stale };
  });
  const live = rows.filter((r) => !r.stale);
  const acked = live.filter((r) => r.acked).length;
  return { rows, acked, total: live.length, done: live.length > 0 && acked === live.length };
}

/** Stable colours per variant, all ≥ 3:1 on white for chart lines. */
export const VARIANT_COLORS = ['#3b4a5c', '#c2410c', '#1d4ed8', '#047857', '#7c3aed', '#be123c', '#0e7490'];
export function variantColor(variants: readonly string[], v: string): string {
  const i = variants.indexOf(v);
  return VARIANT_COLORS[(i < 0 ? 0 : i) % VARIANT_COLORS.length];
}

/** Windows of one size only (the stream may carry 10 s and 1 min windows side by side). */
export function matchesWindow(w: MetricWindow, size: '10s' | '1m'): boolean {
  if (typeof w.windowSize === 'number') return w.windowSize === (size === '10s' ? 10_000 : 60_000);
  return w.windowSize === size;
}

/**
 * Where the dashboard's comparisons come from, in words, and whether they are stale: the server's
 * `comparisonsSource` and `comparisonsFreshness` at fetch time (pipeline/comparisons-topic). A
 * live `comparison` event computed after the record the server had (`liveAt` > publishedAt)
 * supersedes its verdict: then stale = older than the same bound on this clock.
 */
export function comparisonsOrigin(source: ComparisonsSource | undefined, f: ComparisonsFreshness | null | undefined, liveAt: number | null, now: number): { text: string; stale: boolean; staleText: string | null } {
  if (source === 'this-process') return { text: 'Computed by this server (the metrics member that owns this item).', stale: false, staleText: null };
  if (source === 'topic' && f) {
    const newer = liveAt !== null && liveAt > f.publishedAt;
    const stale = newer ? now - liveAt > f.staleAfterMs : f.stale;
    const computedAt = newer ? liveAt : f.computedAt;
    const text = `From the comparisons topic: computed by ${f.member}, ${fmtAgo(computedAt, now)}.`;
    const bound = `${Math.round(f.staleAfterMs / 1000)} s`;
    return { text, stale, staleText: stale ? `No record from the owning member for more than ${bound} (the last ${fmtAgo(newer ? liveAt : f.publishedAt, now)}): these are the last known numbers.` : null };
  }
  if (source === 'another-member') return { text: 'Computed by another processors member; nothing received from the comparisons topic yet.', stale: false, staleText: null };
  return { text: 'No comparison computed yet.', stale: false, staleText: null };
}

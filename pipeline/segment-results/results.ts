/**
 * Per-segment results of an item (reads the warehouse snapshot; the rest is pure): for every
 * shadow with a control cohort, its comparison against the control in each cell — each device
 * type, each country, in and out of each behavioural segment — through the same comparison the
 * live dashboard uses (pipeline/stats compareVariants: always-valid sequential p-values and
 * intervals, with the deployment's tuning N*), then Holm's correction over all cells ×
 * metrics of the shadow (breakdown.ts), and the comparison over all users next to it.
 *
 * Time range, decided: events of [from, to) (default: the last 24 hours), whatever the profile
 * version — the live comparisons restart at each profile version, but a breakdown wants enough
 * sessions per cell, and a shadow's share changes (ramps) do not change what its users get.
 */
import { queryParquet, type ParquetSource } from '../../connectors/duckdb-sink/query.ts';
import { ALPHA, compareVariants } from '../stats/compare.ts';
import type { SequentialOptions } from '../stats/sequential.ts';
import { breakdown, type Breakdown, type CellInput, type MetricResult, type Verdict } from './breakdown.ts';
import { armTotalsSql, conversionsSql, perfSql, type Dimension } from './totals-sql.ts';
import { armKey, cellsFromRows, type ArmTotals, type CellTotals } from './totals.ts';

export interface ShadowResults {
  shadow: string;
  /** Sessions and metrics of the comparison over all users. */
  global: { sessions: { shadow: number; control: number }; metrics: Record<string, MetricResult> };
  breakdown: Breakdown;
}

export interface SegmentResults {
  itemId: string;
  from: number;
  to: number;
  dimensions: Dimension[];
  shadows: ShadowResults[];
  /** Shadows without a control cohort have no baseline here either. */
  noBaseline: string[];
}

type AnyComparison = ReturnType<typeof compareVariants>;
interface MetricLike { valid: boolean; diff: number; p: number; ci?: [number, number] }

/** The comparison's metrics as flat results: latency, errorRate, conversion:<point>, perf:<name>. */
export function metricsOf(c: AnyComparison): Record<string, MetricResult> {
  const cc = c as unknown as {
    latency: MetricLike; errorRate: MetricLike; conversions: Record<string, MetricLike>; perf?: Record<string, MetricLike>;
    verdict: { latency: Verdict; errorRate: Verdict; conversions: Record<string, Verdict>; perf?: Record<string, Verdict> };
  };
  const one = (m: MetricLike, verdict: Verdict): MetricResult => ({ valid: m.valid, diff: m.diff, p: m.valid ? m.p : Number.NaN, ci: m.ci ?? [Number.NaN, Number.NaN], verdict });
  const out: Record<string, MetricResult> = { latency: one(cc.latency, cc.verdict.latency), errorRate: one(cc.errorRate, cc.verdict.errorRate) };
  for (const [pt, m] of Object.entries(cc.conversions)) out[`conversion:${pt}`] = one(m, cc.verdict.conversions[pt] ?? 'inconclusive');
  for (const [n, m] of Object.entries(cc.perf ?? {})) out[`perf:${n}`] = one(m, cc.verdict.perf?.[n] ?? 'inconclusive');
  return out;
}

const empty = (itemId: string, variant: string, controlOf: string | null): ArmTotals => ({
  itemId, variant, controlOf, profileVersion: 0, sessions: 0, errorSessions: 0, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, perf: {}, conversions: {},
});

function compareCell(itemId: string, cell: CellTotals, shadow: string, opts: SequentialOptions): { sessions: { shadow: number; control: number }; metrics: Record<string, MetricResult> } {
  const s = cell.arms.get(armKey(shadow, null)) ?? empty(itemId, shadow, null);
  const c = cell.arms.get(armKey('control', shadow)) ?? empty(itemId, 'control', shadow);
  return { sessions: { shadow: s.sessions, control: c.sessions }, metrics: metricsOf(compareVariants(c, s, opts)) };
}

/** Pure: cells of the warehouse totals → results per shadow. */
export function resultsFromCells(itemId: string, cells: CellTotals[], shadows: readonly { name: string; control?: boolean }[], opts: SequentialOptions = {}): { shadows: ShadowResults[]; noBaseline: string[] } {
  // One α for the comparisons' verdicts and for Holm's family.
  const alpha = opts.alpha ?? ALPHA;
  const out: ShadowResults[] = [];
  const noBaseline: string[] = [];
  const all = cells.find((c) => c.dimension === 'all');
  for (const sh of shadows) {
    if (sh.control === false) {
      noBaseline.push(sh.name);
      continue;
    }
    const global = all ? compareCell(itemId, all, sh.name, opts) : { sessions: { shadow: 0, control: 0 }, metrics: {} };
    const inputs: CellInput[] = cells
      .filter((c) => c.dimension !== 'all')
      .map((c) => ({ dimension: c.dimension, value: c.value, ...compareCell(itemId, c, sh.name, opts) }))
      // A cell where one arm has no session says nothing and would only widen the correction.
      .filter((c) => c.sessions.shadow > 0 && c.sessions.control > 0);
    out.push({ shadow: sh.name, global, breakdown: breakdown(sh.name, inputs, { alpha, global: global.metrics }) });
  }
  return { shadows: out, noBaseline };
}

/** Reads the snapshot and computes the results (three queries, one after the other: one core). */
export async function segmentResults(parquetDir: ParquetSource, itemId: string, shadows: readonly { name: string; control?: boolean }[], dims: Dimension[], from: number, to: number, opts: SequentialOptions = {}): Promise<SegmentResults> {
  const params = [itemId, from, to];
  const arms = await queryParquet(parquetDir, armTotalsSql(dims), params);
  const conv = await queryParquet(parquetDir, conversionsSql(dims), params);
  const perf = await queryParquet(parquetDir, perfSql(dims), params);
  const cells = cellsFromRows(itemId, arms, conv, perf);
  return { itemId, from, to, dimensions: dims, ...resultsFromCells(itemId, cells, shadows, opts) };
}

/**
 * "By segment" tab model (pure): the per-segment results of a shadow as table rows — one row per
 * cell (device type, country, in/out of a segment), one column per metric — with the verdict
 * after Holm's correction, and the comparison over all users as the first row.
 */
import { fmtPp, fmtSignedMs } from './format.ts';
import type { SegmentMetricView, SegmentShadowResultsView, SegmentVerdict } from './types.ts';

export interface ResultCell { text: string; verdict: SegmentVerdict; p: string; title: string }
export interface ResultRow { key: string; label: string; sessions: string; cells: Record<string, ResultCell>; global: boolean; regression: boolean }

const RATE = (m: string) => m === 'errorRate' || m.startsWith('conversion:');

/** Column order: latency, errorRate, conversions, perf; each group sorted. */
export function metricColumns(r: SegmentShadowResultsView): string[] {
  const names = new Set<string>(Object.keys(r.global.metrics));
  for (const c of r.breakdown.cells) for (const m of Object.keys(c.metrics)) names.add(m);
  const rank = (m: string) => (m === 'latency' ? 0 : m === 'errorRate' ? 1 : m.startsWith('conversion:') ? 2 : 3);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function metricLabel(m: string): string {
  if (m === 'latency') return 'Mean latency';
  if (m === 'errorRate') return 'Error sessions';
  if (m.startsWith('conversion:')) return `Conversion “${m.slice('conversion:'.length)}”`;
  if (m.startsWith('perf:')) return `Perf ${m.slice('perf:'.length)}`;
  return m;
}

export function cellLabel(dimension: string, value: string): string {
  if (dimension === 'all') return 'All users';
  if (dimension.startsWith('segment:')) return `${value === 'in' ? 'In' : 'Not in'} segment ${dimension.slice('segment:'.length)}`;
  return `${dimension === 'deviceType' ? 'Device' : dimension === 'country' ? 'Country' : dimension} ${value}`;
}

const fmtP = (p: number | null | undefined): string => (p === null || p === undefined || !Number.isFinite(p) ? '—' : p < 0.001 ? '<0.001' : p.toFixed(3));

function cell(metric: string, m: SegmentMetricView | undefined, corrected: boolean): ResultCell {
  if (!m || !m.valid) return { text: '—', verdict: 'inconclusive', p: '—', title: 'Too few sessions to compare' };
  // CLS is a unitless score; every other perf metric and latency is in ms.
  const text = RATE(metric) ? fmtPp(m.diff, 1) : metric === 'perf:cls' ? `${m.diff > 0 ? '+' : m.diff < 0 ? '−' : '±'}${Math.abs(m.diff).toFixed(3)}` : fmtSignedMs(m.diff);
  const verdict = corrected ? (m.correctedVerdict ?? 'inconclusive') : m.verdict;
  const p = corrected ? fmtP(m.adjustedP) : fmtP(m.p);
  return { text, verdict, p, title: corrected ? `p ${fmtP(m.p)}, adjusted (Holm) ${p}` : `p ${p} (one test, not corrected)` };
}

export function resultRows(r: SegmentShadowResultsView): ResultRow[] {
  const cols = metricColumns(r);
  const regressed = new Set(r.breakdown.regressions.map((f) => `${f.dimension}=${f.value}`));
  const rows: ResultRow[] = [{
    key: 'all', label: cellLabel('all', '*'), sessions: `${r.global.sessions.shadow} / ${r.global.sessions.control}`, global: true, regression: false,
    cells: Object.fromEntries(cols.map((m) => [m, cell(m, r.global.metrics[m], false)])),
  }];
  for (const c of r.breakdown.cells) {
    const key = `${c.dimension}=${c.value}`;
    rows.push({
      key, label: cellLabel(c.dimension, c.value), sessions: `${c.sessions.shadow} / ${c.sessions.control}`, global: false, regression: regressed.has(key),
      cells: Object.fromEntries(cols.map((m) => [m, cell(m, c.metrics[m], true)])),
    });
  }
  return rows;
}

/** The correction, stated in words under the table. */
export function correctionNote(r: SegmentShadowResultsView): string {
  const b = r.breakdown;
  return `Verdicts by segment are corrected for multiple comparisons with Holm's method over ${b.correction.tests} tests (${b.correction.family}) at α = ${b.alpha}; the “All users” row is the single comparison, uncorrected.`;
}

/**
 * Per-segment results (pure): a shadow-vs-control comparison per cell — a device type, a
 * country, in or out of a behavioural segment — with Holm's correction over every cell × metric
 * of the shadow (holm.ts says why Holm), and a pointer to where a regression lives.
 *
 * Input: for each cell, the metric comparisons of the shadow against its control restricted to
 * that cell's users (`compareVariants` of pipeline/stats on the cell's totals: always-valid
 * p-values). Output: the same metrics with `adjustedP` and a `verdict` after correction (a cell
 * is `worse`/`better` only when Holm rejects it), the cells ordered with the strongest
 * regression first, and one sentence naming it — or saying that no cell shows one.
 */
import { holm } from './holm.ts';

export type Verdict = 'better' | 'worse' | 'inconclusive';

/** One metric of one cell, as the comparison gives it (diff = shadow − control). */
export interface MetricResult {
  valid: boolean;
  diff: number;
  /** Always-valid p-value (NaN when not valid). */
  p: number;
  ci: [number, number];
  /** The comparison's own verdict, before correction. */
  verdict: Verdict;
}

export interface CellInput {
  /** deviceType, country, or `segment:<id>`. */
  dimension: string;
  /** The attribute value, or `in` / `out` for a segment. */
  value: string;
  sessions: { shadow: number; control: number };
  metrics: Record<string, MetricResult>;
}

export interface CellMetric extends MetricResult {
  adjustedP: number;
  /** After Holm's correction over all cells × metrics of this shadow. */
  correctedVerdict: Verdict;
}

export interface Cell extends Omit<CellInput, 'metrics'> {
  metrics: Record<string, CellMetric>;
}

export interface Finding {
  dimension: string;
  value: string;
  metric: string;
  diff: number;
  adjustedP: number;
  verdict: Verdict;
}

export interface Breakdown {
  shadow: string;
  alpha: number;
  correction: { method: 'holm'; tests: number; family: string };
  cells: Cell[];
  /** Corrected worse cells, strongest first: where regressions live. */
  regressions: Finding[];
  improvements: Finding[];
  sentence: string;
}

function direction(verdict: Verdict, diff: number, better: Verdict): Verdict {
  // The comparison's verdict encodes the metric's good direction; keep it, only gated by Holm.
  void diff;
  return verdict === 'inconclusive' ? better : verdict;
}

const label = (f: Pick<Finding, 'dimension' | 'value'>): string =>
  f.dimension.startsWith('segment:') ? `users ${f.value === 'in' ? 'in' : 'outside'} segment ${f.dimension.slice('segment:'.length)}` : `${f.dimension}=${f.value}`;

function fmtDiff(metric: string, diff: number): string {
  const rate = metric === 'errorRate' || metric === 'requestErrorRate' || metric.startsWith('conversion:');
  if (rate) {
    const v = Math.round(diff * 1000) / 10;
    return `${v >= 0 ? '+' : ''}${v} pp`;
  }
  return `${diff >= 0 ? '+' : ''}${Math.round(diff * 10) / 10} ms`;
}

export function breakdown(shadow: string, cells: readonly CellInput[], opts: { alpha?: number; global?: Record<string, MetricResult> } = {}): Breakdown {
  const alpha = opts.alpha ?? 0.05;
  const flat: { c: number; m: string; p: number }[] = [];
  cells.forEach((cell, c) => {
    for (const [m, r] of Object.entries(cell.metrics)) flat.push({ c, m, p: r.valid ? r.p : Number.NaN });
  });
  const h = holm(flat.map((f) => f.p), alpha);
  const out: Cell[] = cells.map((cell) => ({ ...cell, metrics: {} }));
  const regressions: Finding[] = [];
  const improvements: Finding[] = [];
  flat.forEach((f, i) => {
    const r = cells[f.c].metrics[f.m];
    const rejected = h.reject[i];
    const correctedVerdict = rejected ? direction(r.verdict, r.diff, 'inconclusive') : 'inconclusive';
    out[f.c].metrics[f.m] = { ...r, adjustedP: h.adjusted[i], correctedVerdict };
    if (correctedVerdict === 'worse') regressions.push({ dimension: cells[f.c].dimension, value: cells[f.c].value, metric: f.m, diff: r.diff, adjustedP: h.adjusted[i], verdict: 'worse' });
    if (correctedVerdict === 'better') improvements.push({ dimension: cells[f.c].dimension, value: cells[f.c].value, metric: f.m, diff: r.diff, adjustedP: h.adjusted[i], verdict: 'better' });
  });
  const byStrength = (a: Finding, b: Finding) => a.adjustedP - b.adjustedP || Math.abs(b.diff) - Math.abs(a.diff);
  regressions.sort(byStrength);
  improvements.sort(byStrength);

  const globalWorse = opts.global ? Object.entries(opts.global).filter(([, r]) => r.verdict === 'worse').map(([m]) => m) : [];
  let sentence: string;
  if (regressions.length > 0) {
    const top = regressions[0];
    const p = (f: Finding) => `adjusted p${f.adjustedP < 0.001 ? '<0.001' : `=${f.adjustedP.toFixed(3)}`}`;
    const also = regressions.slice(1, 3).map((f) => `${label(f)}: ${f.metric} ${fmtDiff(f.metric, f.diff)} (${p(f)})`);
    const hidden = opts.global && !globalWorse.includes(top.metric) ? ` The comparison over all users does not show it${opts.global[top.metric]?.valid ? ` (${top.metric} ${fmtDiff(top.metric, opts.global[top.metric].diff)}, inconclusive)` : ''}.` : '';
    sentence = `Shadow ${shadow} regresses for ${label(top)}: ${top.metric} ${fmtDiff(top.metric, top.diff)} (${p(top)})${also.length ? `; also ${also.join('; ')}` : ''}.${hidden}`;
  } else {
    sentence = `No segment shows a regression of shadow ${shadow} after Holm's correction over ${h.m} tests.`;
  }
  return {
    shadow, alpha, correction: { method: 'holm', tests: h.m, family: 'every cell × metric of this shadow' }, cells: out, regressions, improvements, sentence,
  };
}

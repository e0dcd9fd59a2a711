/**
 * Shadow vs its control on cumulative totals: for mean request latency, each perf metric (page
 * timings and Core Web Vitals: ttfb, fcp, load, lcp, inp, cls, …), the session error rate and
 * each usage point's conversion rate, an ALWAYS-VALID comparison (sequential.ts: the asymptotic
 * confidence sequence, safe to watch continuously) next to the fixed-horizon test of old
 * (Welch's t-test, two-proportion z-test; kept for notebooks and readouts at a planned horizon).
 *
 * Verdict rule (per metric): `inconclusive` unless the sequential interval excludes 0
 * (`significant`); then the direction decides — lower latency / perf value / error rate is
 * `better`, higher conversion is `better`. Means are compared, not percentiles: the cumulative
 * aggregate keeps count/sum/sumSq (mergeable); exact cumulative percentiles would need every value.
 */
import { cumulativeTotals, type CumulativeAggregate, type LatencySums, type VariantTotals } from '../windows/cumulative.ts';
import { summaryFromSums, twoProportionZTest, welchTTest, type WelchResult, type ZResult } from './hypothesis.ts';
import { sequentialMeanDiff, sequentialProportionDiff, DEFAULT_SEQUENTIAL_TUNING, SEQUENTIAL_ALPHA, type SequentialOptions, type SequentialResult } from './sequential.ts';

/** Significance level of the verdicts (of the sequential intervals). */
export const ALPHA = SEQUENTIAL_ALPHA;

export type Verdict = 'better' | 'worse' | 'inconclusive';

/** One arm's side of a mean comparison. */
export interface MeanArm {
  n: number;
  mean: number;
}

/** One arm's side of a proportion comparison. */
export interface RateArm {
  n: number;
  x: number;
  rate: number;
}

/** Difference in means, shadow − control. Top-level numbers are the sequential (always-valid) ones. */
export interface MeanComparison {
  valid: boolean;
  diff: number;
  /** diff / control mean (NaN when the control mean is 0). */
  relativeDiff: number;
  /** Always-valid 95 % interval of diff. */
  ci: [number, number];
  /** Always-valid p-value. */
  p: number;
  /** The always-valid interval excludes 0. */
  significant: boolean;
  verdict: Verdict;
  shadow: MeanArm;
  control: MeanArm;
  sequential: SequentialResult;
  /** Fixed-horizon Welch test (valid only at a horizon fixed in advance; for notebooks). */
  fixed: WelchResult;
}

/** Difference in proportions, shadow − control. */
export interface RateComparison {
  valid: boolean;
  diff: number;
  /** (p_shadow − p_control) / p_control (NaN when p_control = 0). */
  relativeLift: number;
  ci: [number, number];
  p: number;
  significant: boolean;
  verdict: Verdict;
  shadow: RateArm;
  control: RateArm;
  sequential: SequentialResult;
  /** Fixed-horizon two-proportion z-test. */
  fixed: ZResult;
}

export interface Comparison {
  itemId: string;
  shadow: string;
  /** The baseline arm's variant name (`control`). */
  baseline: string;
  latency: MeanComparison;
  errorRate: RateComparison;
  /** Per usage point (union of both arms'). */
  conversions: Record<string, RateComparison>;
  /** Per perf metric name present in both arms (page timings, web vitals). */
  perf: Record<string, MeanComparison>;
  verdict: { latency: Verdict; errorRate: Verdict; conversions: Record<string, Verdict>; perf: Record<string, Verdict> };
  sentence: string;
  method: { kind: 'asymptotic-confidence-sequence'; alpha: number; tuning: number };
}

function verdictOf(significant: boolean, diff: number, higherIsBetter: boolean): Verdict {
  if (!significant || !Number.isFinite(diff) || diff === 0) return 'inconclusive';
  return diff > 0 === higherIsBetter ? 'better' : 'worse';
}

const isAggregate = (x: CumulativeAggregate | VariantTotals): x is CumulativeAggregate => x.sessions instanceof Map;

function pct(rel: number): string {
  const v = Math.round(rel * 1000) / 10;
  return `${v >= 0 ? '+' : ''}${v}%`;
}

function fmtP(p: number): string {
  return p < 0.001 ? 'p<0.001' : `p=${p.toFixed(3)}`;
}

function pp(diff: number): string {
  const v = Math.round(diff * 1000) / 10;
  return `${v >= 0 ? '+' : ''}${v} pp`;
}

function compareMeans(shadow: LatencySums, control: LatencySums, higherIsBetter: boolean, opts: SequentialOptions): MeanComparison {
  const s = summaryFromSums(shadow.count, shadow.sum, shadow.sumSq);
  const c = summaryFromSums(control.count, control.sum, control.sumSq);
  const sequential = sequentialMeanDiff(s, c, opts);
  const fixed = welchTTest(s, c);
  return {
    valid: sequential.valid, diff: sequential.diff, relativeDiff: c.mean === 0 || c.n === 0 ? NaN : sequential.diff / c.mean,
    ci: sequential.ci, p: sequential.p, significant: sequential.significant, verdict: verdictOf(sequential.significant, sequential.diff, higherIsBetter),
    shadow: { n: s.n, mean: s.mean }, control: { n: c.n, mean: c.mean }, sequential, fixed,
  };
}

function compareRates(x1: number, n1: number, x2: number, n2: number, higherIsBetter: boolean, opts: SequentialOptions): RateComparison {
  const sequential = sequentialProportionDiff(x1, n1, x2, n2, opts);
  const fixed = twoProportionZTest(x1, n1, x2, n2);
  const p1 = n1 > 0 ? x1 / n1 : NaN;
  const p2 = n2 > 0 ? x2 / n2 : NaN;
  return {
    valid: sequential.valid, diff: sequential.diff, relativeLift: p2 === 0 || Number.isNaN(p2) ? NaN : (p1 - p2) / p2,
    ci: sequential.ci, p: sequential.p, significant: sequential.significant, verdict: verdictOf(sequential.significant, sequential.diff, higherIsBetter),
    shadow: { n: n1, x: x1, rate: p1 }, control: { n: n2, x: x2, rate: p2 }, sequential, fixed,
  };
}

/**
 * Compares a shadow arm with its baseline (the control cohort drawn for it). `opts` sets the
 * sequential method's α and tuning N* (sequential.ts).
 */
export function compareVariants(
  controlIn: CumulativeAggregate | VariantTotals,
  shadowIn: CumulativeAggregate | VariantTotals,
  opts: SequentialOptions = {},
): Comparison {
  const control = isAggregate(controlIn) ? cumulativeTotals(controlIn) : controlIn;
  const shadow = isAggregate(shadowIn) ? cumulativeTotals(shadowIn) : shadowIn;

  const latency = compareMeans(shadow.latency, control.latency, false, opts);
  const errorRate = compareRates(shadow.errorSessions, shadow.sessions, control.errorSessions, control.sessions, false, opts);
  const points = [...new Set([...Object.keys(control.conversions), ...Object.keys(shadow.conversions)])].sort();
  const conversions: Record<string, RateComparison> = Object.fromEntries(
    points.map((pt) => [pt, compareRates(shadow.conversions[pt] ?? 0, shadow.sessions, control.conversions[pt] ?? 0, control.sessions, true, opts)]),
  );
  // A perf metric only one arm reports (say, INP in one browser family) is not comparable.
  const sPerf = shadow.perf ?? {};
  const cPerf = control.perf ?? {};
  const names = Object.keys(sPerf).filter((n) => Object.hasOwn(cPerf, n)).sort();
  const perf: Record<string, MeanComparison> = Object.fromEntries(names.map((n) => [n, compareMeans(sPerf[n], cPerf[n], false, opts)]));
  const verdict = {
    latency: latency.verdict,
    errorRate: errorRate.verdict,
    conversions: Object.fromEntries(points.map((pt) => [pt, conversions[pt].verdict])) as Record<string, Verdict>,
    perf: Object.fromEntries(names.map((n) => [n, perf[n].verdict])) as Record<string, Verdict>,
  };

  const findings: string[] = [];
  if (latency.verdict !== 'inconclusive') {
    findings.push(`${latency.verdict === 'worse' ? 'slower' : 'faster'}: mean latency ${pct(latency.relativeDiff)} (${fmtP(latency.p)})`);
  }
  for (const n of names) {
    const m = perf[n];
    if (m.verdict !== 'inconclusive') findings.push(`${m.verdict === 'worse' ? 'worse' : 'better'} ${n}: mean ${pct(m.relativeDiff)} (${fmtP(m.p)})`);
  }
  if (errorRate.verdict !== 'inconclusive') {
    findings.push(`${errorRate.verdict === 'worse' ? 'more' : 'fewer'} error sessions: ${pp(errorRate.diff)} (${fmtP(errorRate.p)})`);
  }
  for (const pt of points) {
    const v = conversions[pt].verdict;
    if (v !== 'inconclusive') findings.push(`${v === 'better' ? 'more' : 'fewer'} "${pt}" conversions: ${pp(conversions[pt].diff)} (${fmtP(conversions[pt].p)})`);
  }
  const sentence =
    findings.length > 0
      ? `Shadow ${shadow.variant} vs ${control.variant}: ${findings.join('; ')}.`
      : `No significant difference yet between shadow ${shadow.variant} and ${control.variant} ` +
        `(${shadow.sessions} vs ${control.sessions} sessions).`;

  return {
    itemId: shadow.itemId, shadow: shadow.variant, baseline: control.variant, latency, errorRate, conversions, perf, verdict, sentence,
    method: { kind: 'asymptotic-confidence-sequence', alpha: opts.alpha ?? SEQUENTIAL_ALPHA, tuning: opts.tuning ?? DEFAULT_SEQUENTIAL_TUNING },
  };
}

/**
 * Arm totals → the evidence the decision functions take: per metric, the always-valid comparison
 * of shadow − control (rollout/evidence.ts `MetricComparison`), and per arm the primary-metric
 * statistics of the bandit (bandit/thompson.ts `ArmStats`). Pure; the sequential tests are the
 * statistics core's (pipeline/stats/sequential.ts), passed in so this file states only which
 * numbers each metric compares:
 *
 * | metric | shadow and control values | test |
 * |---|---|---|
 * | errorRate | sessions with ≥ 1 error / sessions | difference of proportions |
 * | requestErrorRate | failed requests / requests | difference of proportions |
 * | conversion:<point> | sessions that hit the point / sessions | difference of proportions |
 * | latencyMean | mean request latency (ms) | difference of means |
 * | perf:<name> | mean of the perf metric (ms; CLS unitless) | difference of means |
 */
import type { ArmTotals } from './arm-aggregates.ts';
import type { ArmEvidence, MetricComparison, SrmEvidence } from './evidence.ts';
import type { ArmStats } from '../bandit/thompson.ts';

export interface Summary {
  n: number;
  mean: number;
  variance: number;
}

export interface SequentialLike {
  valid: boolean;
  diff: number;
  ci: [number, number];
  p: number;
  significant: boolean;
  alpha: number;
}

/**
 * The statistics core's sequential tests (shadow first, control second). `tuning` is N*, the
 * total sample at which the confidence sequence is tightest (pipeline/stats/sequential.ts).
 */
export interface SequentialTests {
  proportionDiff(x1: number, n1: number, x2: number, n2: number, tuning: number): SequentialLike;
  meanDiff(a: Summary, b: Summary, tuning: number): SequentialLike;
}

/**
 * N* for a decision taken at about `perArm` sessions per arm: the sequence is tightest where the
 * decision is made (2 × perArm in total), never below 100. Any N* keeps the interval valid at
 * every look; this one gives the most power at the analysis (with the stats default of 5,000 a
 * 25-session analysis sees an interval ±60 pp wide).
 */
export function tuningFor(perArm: number): number {
  return Math.max(100, 2 * perArm);
}

const EMPTY: ArmTotals = { sessions: 0, errorSessions: 0, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} };

export function summaryOf(s: { count: number; sum: number; sumSq: number }): Summary {
  const n = s.count;
  const mean = n > 0 ? s.sum / n : NaN;
  const variance = n > 1 ? Math.max(0, (s.sumSq - n * mean * mean) / (n - 1)) : NaN;
  return { n, mean, variance };
}

/** (successes, trials) of a proportion metric, or null for a mean metric. */
function proportion(metric: string, t: ArmTotals): [number, number] | null {
  if (metric === 'errorRate') return [t.errorSessions, t.sessions];
  if (metric === 'requestErrorRate') return [t.requestErrors, t.requests];
  if (metric.startsWith('conversion:')) return [t.conversions[metric.slice('conversion:'.length)] ?? 0, t.sessions];
  return null;
}

function meanSums(metric: string, t: ArmTotals): { count: number; sum: number; sumSq: number } {
  if (metric === 'latencyMean') return t.latency;
  return t.perf[metric.slice('perf:'.length)] ?? { count: 0, sum: 0, sumSq: 0 };
}

export function compareMetric(metric: string, shadow: ArmTotals, control: ArmTotals, tests: SequentialTests, tuning: number): MetricComparison {
  const ps = proportion(metric, shadow);
  const pc = proportion(metric, control);
  if (ps && pc) {
    const r = tests.proportionDiff(ps[0], ps[1], pc[0], pc[1], tuning);
    return { ...r, ci: [r.ci[0], r.ci[1]], shadow: { n: ps[1], value: ps[1] > 0 ? ps[0] / ps[1] : NaN }, control: { n: pc[1], value: pc[1] > 0 ? pc[0] / pc[1] : NaN } };
  }
  const a = summaryOf(meanSums(metric, shadow));
  const b = summaryOf(meanSums(metric, control));
  const r = tests.meanDiff(a, b, tuning);
  return { ...r, ci: [r.ci[0], r.ci[1]], shadow: { n: a.n, value: a.mean }, control: { n: b.n, value: b.mean } };
}

/** Evidence for a shadow's analysis on `metrics` (its guardrails). */
export function buildEvidence(
  shadow: ArmTotals | undefined,
  control: ArmTotals | undefined,
  metrics: readonly string[],
  tests: SequentialTests,
  srm: SrmEvidence | null,
  tuning: number,
): ArmEvidence {
  const s = shadow ?? EMPTY;
  const c = control ?? EMPTY;
  return { sessions: { shadow: s.sessions, control: c.sessions }, metrics: Object.fromEntries(metrics.map((m) => [m, compareMetric(m, s, c, tests, tuning)])), srm };
}

/** The bandit's primary-metric statistics of one arm. */
export function armStatsOf(arm: string, metric: string, t: ArmTotals | undefined): ArmStats {
  const x = t ?? EMPTY;
  const p = proportion(metric, x);
  if (p) return { arm, sessions: x.sessions, kind: 'proportion', successes: p[0], trials: p[1] };
  const m = summaryOf(meanSums(metric, x));
  return { arm, sessions: x.sessions, kind: 'mean', n: m.n, mean: m.mean, variance: m.variance };
}

/**
 * What an analysis decides on: per-arm sizes and, per guardrail metric, the always-valid
 * comparison of shadow − control (pipeline/stats/sequential.ts computes it), plus the SRM check.
 * And the judgement of one guardrail on such a comparison (pure).
 *
 * The comparison shape is the sequential result of the statistics core (valid, diff, ci, p,
 * significant) with each arm's value and sample size added, so an audit entry carries everything
 * a reviewer needs to re-check the verdict.
 */
import type { Guardrail } from './plan.ts';

/** One metric, shadow − control, from an always-valid (sequential) test. */
export interface MetricComparison {
  /** False when an arm has too little data for the test (statistics are then NaN/null). */
  valid: boolean;
  /** shadow − control, in the metric's unit. */
  diff: number;
  /** Always-valid (1 − α) interval of diff. */
  ci: [number, number];
  /** Always-valid p-value of diff = 0. */
  p: number;
  /** The interval excludes 0. */
  significant: boolean;
  alpha: number;
  shadow: { n: number; value: number };
  control: { n: number; value: number };
}

export interface SrmEvidence {
  p: number;
  flagged: boolean;
  observed: Record<string, number>;
  expected: Record<string, number>;
}

/** Evidence for one shadow's analysis. */
export interface ArmEvidence {
  /** Verified sessions of each arm since the current step began. */
  sessions: { shadow: number; control: number };
  /** Comparison per metric name (errorRate, latencyMean, conversion:<point>, …). */
  metrics: Record<string, MetricComparison | undefined>;
  /** SRM of the item's exposures for the current profile version; null when it does not apply. */
  srm: SrmEvidence | null;
}

export type GuardrailVerdict = 'pass' | 'regressed' | 'unmeasured';

/** A guardrail's judgement as audited: the rule's inputs and its outcome. */
export interface GuardrailResult extends Guardrail {
  verdict: GuardrailVerdict;
  /** shadow − control (null when unmeasured). */
  estimate: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  p: number | null;
  significant: boolean;
  shadowValue: number | null;
  controlValue: number | null;
  shadowN: number;
  controlN: number;
}

const num = (x: number): number | null => (Number.isFinite(x) ? x : null);

/**
 * Regressed when the always-valid interval lies entirely beyond the tolerated harm:
 * direction `increase` → ciLow > maxDelta; `decrease` → ciHigh < −maxDelta. With maxDelta = 0
 * this is "significantly worse". Because the interval is valid at every look, checking it after
 * every window keeps the chance of a wrong rollback of a healthy shadow at most α (per guardrail).
 * Unmeasured when the metric has no valid comparison (an arm lacks data, or never reports it).
 */
export function judgeGuardrail(g: Guardrail, c: MetricComparison | undefined): GuardrailResult {
  // Fields written out (no `...g`): a spread followed by more properties is a slow path in V8,
  // and this runs for every guardrail at every evaluation.
  const { metric, direction, maxDelta } = g;
  if (!c || !c.valid || !Number.isFinite(c.ci[0]) || !Number.isFinite(c.ci[1])) {
    return {
      metric, direction, maxDelta, verdict: 'unmeasured', estimate: c ? num(c.diff) : null, ciLow: null, ciHigh: null, p: null, significant: false,
      shadowValue: c ? num(c.shadow.value) : null, controlValue: c ? num(c.control.value) : null, shadowN: c?.shadow.n ?? 0, controlN: c?.control.n ?? 0,
    };
  }
  const regressed = direction === 'increase' ? c.ci[0] > maxDelta : c.ci[1] < -maxDelta;
  return {
    metric, direction, maxDelta, verdict: regressed ? 'regressed' : 'pass', estimate: c.diff, ciLow: c.ci[0], ciHigh: c.ci[1], p: c.p, significant: c.significant,
    shadowValue: num(c.shadow.value), controlValue: num(c.control.value), shadowN: c.shadow.n, controlN: c.control.n,
  };
}

/** "+1.2 pp" for rates, "+35 ms" for durations: the sentence form of a delta. */
export function formatDelta(metric: string, d: number): string {
  const sign = d >= 0 ? '+' : '−';
  const a = Math.abs(d);
  if (metric === 'errorRate' || metric === 'requestErrorRate' || metric.startsWith('conversion:')) return `${sign}${(Math.round(a * 1000) / 10).toString()} pp`;
  if (metric === 'perf:cls') return `${sign}${(Math.round(a * 1000) / 1000).toString()}`;
  return `${sign}${(Math.round(a * 10) / 10).toString()} ms`;
}

/**
 * Forecast of a rollout guardrail at the end of its step (issue #13, item 4): the probability
 * that the guardrail's own regression test — the always-valid confidence sequence of
 * pipeline/stats/sequential.ts, judged as pipeline/rollout/evidence.ts `judgeGuardrail` does —
 * fires by the time the step's analysis is due. Pure; README.md states the derivation.
 *
 * The projection, in four lines:
 *  1. Arrival: each arm keeps arriving at its rate since the step began (n / elapsed), so at the
 *     analysis it has n' = n + rate · remaining observations.
 *  2. Width: the interval's half-width at the analysis is se' · c(N'), with
 *     se'² = v_s / n_s' + v_c / n_c' (the per-observation variances as estimated now) and c(N')
 *     the sequence's multiplier at the projected total N' = n_s' + n_c' — it shrinks roughly as
 *     1/√n'.
 *  3. Where the estimate goes: with a flat prior on the true difference and the normal
 *     approximation the test already uses, the estimate at the analysis given the estimate now is
 *     Normal(d, se² − se'²) (the "predictive probability" of interim analyses: the part of the
 *     final estimate not yet observed adds exactly that variance).
 *  4. The test fires at the analysis when the projected interval lies beyond the tolerated harm:
 *     increase: D' − h' > maxDelta, decrease: D' + h' < −maxDelta; its probability is a normal
 *     tail.
 * Because the guardrail is checked continuously and a regression rolls the shadow back at its
 * first firing, "fires at the analysis" implies "rolled back by the analysis": the probability
 * here is a lower bound of a rollback before the step ends (within the normal approximation) —
 * conservative for a hold.
 */
import { normalCdf } from '../stats/distributions.ts';
import { SEQUENTIAL_ALPHA, SEQUENTIAL_MIN_PER_ARM, sequentialMultiplier } from '../stats/sequential.ts';

/** The hold threshold when none is configured (PENUMBRA_FORECAST_HOLD_PERCENT). */
export const DEFAULT_FORECAST_HOLD_AT = 0.9;
/** No forecast before this many seconds of the step: an arrival rate from a moment is noise. */
export const MIN_ELAPSED_SECONDS = 5;
/**
 * No forecast before each arm holds this share of its projected size at the analysis (the
 * "information fraction" of interim analyses): from a few percent of the data a flat-prior
 * projection is mostly its own assumptions, and a healthy shadow with 3 errors in its first 30
 * sessions (a 2 % event at a 2 % rate) would look like a regression.
 */
export const MIN_INFORMATION_FRACTION = 0.05;

/** One arm of one metric: observations, their mean, and the variance of one observation. */
export interface ArmSummary {
  n: number;
  mean: number;
  /** Per-observation variance (p(1 − p) for a proportion; the sample variance for a mean). */
  variance: number;
  /**
   * Variance the PROJECTION uses, if different (step.ts: p̃(1 − p̃) with the Jeffreys-smoothed
   * p̃ = (k + ½)/(n + 1) for proportions, so an arm with no errors yet does not project a zero
   * variance). The interval now always uses `variance`, as the guardrail's own test does.
   */
  projectionVariance?: number;
}

export interface GuardrailSpec {
  metric: string;
  /** The harmful direction. */
  direction: 'increase' | 'decrease';
  /** Tolerated harm in the metric's unit. */
  maxDelta: number;
}

export interface ForecastInput {
  guardrail: GuardrailSpec;
  shadow: ArmSummary;
  control: ArmSummary;
  /** Seconds since the arms' counts began (the step's start). */
  elapsedSeconds: number;
  /** Seconds until the step's analysis is due (≤ 0: due now). */
  remainingSeconds: number;
  /** N* of the sequence (pipeline/rollout `tuningFor(minSessionsPerArm)`). */
  tuning: number;
  alpha?: number;
  minPerArm?: number;
}

export type ForecastStatus =
  /** The projection was made: `probability` is set. */
  | 'forecast'
  /** The test fires already: the guardrail itself rolls the shadow back, no forecast needed. */
  | 'regressed'
  /** Too little data for the test (an arm below its minimum, no variance) or too short a step so far. */
  | 'unmeasured'
  /** The analysis is due: nothing left to forecast. */
  | 'due';

export interface GuardrailForecast {
  metric: string;
  direction: 'increase' | 'decrease';
  maxDelta: number;
  status: ForecastStatus;
  /** P(the regression test fires at the step's analysis); null unless `forecast`. */
  probability: number | null;
  /** The comparison now: shadow − control, its standard error and interval. */
  now: { diff: number | null; se: number | null; ciLow: number | null; ciHigh: number | null; shadowN: number; controlN: number };
  /** The projection at the analysis. */
  projected: {
    shadowN: number;
    controlN: number;
    /** Standard error and half-width of the interval at the projected sizes. */
    se: number | null;
    halfWidth: number | null;
    /** The estimate must pass this value (above for increase, below for decrease) for the test to fire. */
    boundary: number | null;
    /** Standard deviation of the estimate at the analysis given the estimate now (√(se² − se'²)). */
    spread: number | null;
  };
  /** Observations per second of each arm since the step began. */
  rates: { shadow: number; control: number };
  elapsedSeconds: number;
  remainingSeconds: number;
}

const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);

export function forecastGuardrail(f: ForecastInput): GuardrailForecast {
  const { metric, direction, maxDelta } = f.guardrail;
  const alpha = f.alpha ?? SEQUENTIAL_ALPHA;
  const min = f.minPerArm ?? SEQUENTIAL_MIN_PER_ARM;
  const s = f.shadow;
  const c = f.control;
  const elapsed = Math.max(0, f.elapsedSeconds);
  const remaining = Math.max(0, f.remainingSeconds);
  const rate = (n: number) => (elapsed > 0 ? n / elapsed : 0);
  const rates = { shadow: rate(s.n), control: rate(c.n) };
  const nS = s.n + rates.shadow * remaining;
  const nC = c.n + rates.control * remaining;
  const base = { metric, direction, maxDelta, rates, elapsedSeconds: elapsed, remainingSeconds: remaining };
  const empty = { shadowN: nS, controlN: nC, se: null, halfWidth: null, boundary: null, spread: null };
  const measurable = s.n >= min && c.n >= min && Number.isFinite(s.mean) && Number.isFinite(c.mean) && s.variance >= 0 && c.variance >= 0 && Number.isFinite(s.variance) && Number.isFinite(c.variance);
  if (!measurable) return { ...base, status: 'unmeasured', probability: null, now: { diff: null, se: null, ciLow: null, ciHigh: null, shadowN: s.n, controlN: c.n }, projected: empty };

  const d = s.mean - c.mean;
  const se = Math.sqrt(s.variance / s.n + c.variance / c.n);
  const h = se * sequentialMultiplier(s.n + c.n, f.tuning, alpha);
  const now = { diff: d, se, ciLow: d - h, ciHigh: d + h, shadowN: s.n, controlN: c.n };
  // judgeGuardrail's rule on the interval as it is now.
  if (direction === 'increase' ? d - h > maxDelta : d + h < -maxDelta) return { ...base, status: 'regressed', probability: null, now, projected: empty };
  if (remaining <= 0) return { ...base, status: 'due', probability: null, now, projected: empty };
  if (elapsed < MIN_ELAPSED_SECONDS || s.n < MIN_INFORMATION_FRACTION * nS || c.n < MIN_INFORMATION_FRACTION * nC) return { ...base, status: 'unmeasured', probability: null, now, projected: empty };

  const vs = s.projectionVariance ?? s.variance;
  const vc = c.projectionVariance ?? c.variance;
  const seP = Math.sqrt(vs / s.n + vc / c.n);
  const se2 = Math.sqrt(vs / nS + vc / nC);
  const h2 = se2 * sequentialMultiplier(nS + nC, f.tuning, alpha);
  const spread = Math.sqrt(Math.max(0, seP * seP - se2 * se2));
  const boundary = direction === 'increase' ? maxDelta + h2 : -maxDelta - h2;
  let probability: number;
  if (spread === 0) probability = direction === 'increase' ? Number(d > boundary) : Number(d < boundary);
  else probability = direction === 'increase' ? 1 - normalCdf((boundary - d) / spread) : normalCdf((boundary - d) / spread);
  return { ...base, status: 'forecast', probability, now, projected: { shadowN: nS, controlN: nC, se: fin(se2), halfWidth: fin(h2), boundary, spread } };
}

/** The guardrail most likely to fail, or null when none could be forecast. */
export function worstForecast(fs: readonly GuardrailForecast[]): GuardrailForecast | null {
  let best: GuardrailForecast | null = null;
  for (const f of fs) if (f.status === 'forecast' && (best === null || (f.probability ?? 0) > (best.probability ?? 0))) best = f;
  return best;
}

/**
 * Hold early: some guardrail's forecast reached `holdAt` while none fires yet (one that fires is
 * the guardrail's own rollback, not a forecast). `holdAt` ≤ 0 never holds.
 */
export function shouldHoldOnForecast(fs: readonly GuardrailForecast[], holdAt: number): GuardrailForecast | null {
  if (!(holdAt > 0) || fs.some((f) => f.status === 'regressed')) return null;
  const w = worstForecast(fs);
  return w && (w.probability ?? 0) >= holdAt ? w : null;
}

/** "+1.2 pp" for rates, "+35 ms" for durations (pipeline/rollout formatDelta's convention). */
function delta(metric: string, x: number): string {
  const sign = x >= 0 ? '+' : '−';
  const a = Math.abs(x);
  if (metric === 'errorRate' || metric === 'requestErrorRate' || metric.startsWith('conversion:')) return `${sign}${(Math.round(a * 1000) / 10).toString()} pp`;
  return `${sign}${(Math.round(a * 10) / 10).toString()}${metric === 'perf:cls' ? '' : ' ms'}`;
}

/** Prefix of a forecast hold's pause reason (as the risk hold's `risk hold`). */
export const FORECAST_HOLD_PREFIX = 'forecast hold';

/** The sentence on the command topic and in the audit: what was forecast, on what. */
export function forecastHoldReason(shadow: string, f: GuardrailForecast, holdAt: number, releasePath: string): string {
  const p = ((f.probability ?? 0) * 100).toFixed(1);
  const now = f.now.diff !== null && f.now.ciLow !== null && f.now.ciHigh !== null ? `${delta(f.metric, f.now.diff)} [${delta(f.metric, f.now.ciLow)}, ${delta(f.metric, f.now.ciHigh)}]` : 'n/a';
  return `${FORECAST_HOLD_PREFIX}: ${shadow} ${f.metric} ${now} vs control on ${f.now.shadowN} vs ${f.now.controlN}; ` +
    `projected ${Math.round(f.projected.shadowN)} vs ${Math.round(f.projected.controlN)} at the analysis in ${Math.round(f.remainingSeconds)} s → ` +
    `P(guardrail ${f.direction} beyond ${delta(f.metric, f.maxDelta)} fires) ${p} % ≥ ${(holdAt * 100).toFixed(0)} %. Release: ${releasePath}`;
}

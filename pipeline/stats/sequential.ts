/**
 * Always-valid (sequential) comparisons: the Gaussian-mixture asymptotic confidence sequence of
 * Waudby-Smith, Arnold, Wu, Howard & Ramdas, "Time-uniform central limit theory and asymptotic
 * confidence sequences" (Annals of Statistics 2024, Theorem 2.2) — the method GrowthBook documents
 * for its sequential testing — applied to a difference of two means (latency, page timings, web
 * vitals) or of two proportions (error-session rate, conversions).
 *
 * With N observations in total (both arms), an estimate `diff` with standard error `se` and a
 * mixing parameter ρ > 0, the interval at every N is
 *
 *   diff ± se · c_N,   c_N = sqrt( 2(Nρ² + 1)/(Nρ²) · ln( sqrt(Nρ² + 1) / α ) )
 *
 * (the paper's σ̂·sqrt(2(tρ²+1)/(t²ρ²)·ln(sqrt(tρ²+1)/α)) with σ̂² = N·se², the variance of one
 * observation of the difference estimator). P(∃N: the interval misses the true difference) ≤ α
 * asymptotically, so the dashboard may be watched after every event. Its inversion is the
 * always-valid p-value of the normal-mixture SPRT (Johari et al., the test Eppo and Statsig
 * describe):
 *
 *   p_N = min(1, sqrt(1 + Nρ²) · exp(−(z²/2) · Nρ²/(1 + Nρ²))),   z = diff/se,
 *
 * and the interval excludes 0 exactly when p_N < α.
 *
 * Tuning: ρ is chosen so the sequence is tightest at N* total observations (`tuning`, default
 * 5000 — GrowthBook's default), ρ² = (−2 ln α + ln(−2 ln α + 1)) / N* (the paper's closed-form
 * approximation). A larger N* is tighter late and looser early.
 *
 * Pure; formulas pinned against an independent Python implementation (golden/gen.py).
 */
import { ValidationError } from '../errors.ts';
import type { Summary } from './hypothesis.ts';

/** Nominal false-positive rate of the live verdicts. */
export const SEQUENTIAL_ALPHA = 0.05;
/** N*: total observations (both arms) at which the sequence is tightest. */
export const DEFAULT_SEQUENTIAL_TUNING = 5000;
/** Fewer observations than this in either arm → not computed (the normal approximation needs some data). */
export const SEQUENTIAL_MIN_PER_ARM = 30;

export interface SequentialOptions {
  /** Default SEQUENTIAL_ALPHA (0.05). */
  alpha?: number;
  /** N*, default DEFAULT_SEQUENTIAL_TUNING (5000). */
  tuning?: number;
  /** Minimum observations per arm, default SEQUENTIAL_MIN_PER_ARM (30). */
  minPerArm?: number;
}

export interface SequentialResult {
  /** False when either arm has too few observations (statistics are NaN). */
  valid: boolean;
  /** First minus second (shadow − control). */
  diff: number;
  /** Always-valid (1 − α) interval of `diff`. */
  ci: [number, number];
  halfWidth: number;
  /** Always-valid p-value (the α at which the interval would just touch 0). */
  p: number;
  /** The interval excludes 0 (⟺ p < α). */
  significant: boolean;
  /** Standard error of `diff`. */
  se: number;
  /** Total observations N = n₁ + n₂. */
  n: number;
  alpha: number;
  tuning: number;
}

/** ρ² tightest at N* total observations: (−2 ln α + ln(−2 ln α + 1)) / N*. */
export function rhoSquared(tuning: number, alpha: number): number {
  if (!(tuning > 0) || !Number.isFinite(tuning)) throw new ValidationError(`sequential tuning N* must be a positive number, got ${tuning}`);
  if (!(alpha > 0 && alpha < 1)) throw new ValidationError(`alpha must be in (0, 1), got ${alpha}`);
  const l = -2 * Math.log(alpha);
  return (l + Math.log(l + 1)) / tuning;
}

/** c_N: the half-width in units of the standard error after N total observations. */
export function sequentialMultiplier(n: number, tuning: number, alpha: number): number {
  const nr = n * rhoSquared(tuning, alpha);
  return Math.sqrt(((2 * (nr + 1)) / nr) * Math.log(Math.sqrt(nr + 1) / alpha));
}

/** Always-valid p-value for z after N total observations. */
export function sequentialP(z: number, n: number, tuning: number, alpha: number): number {
  const nr = n * rhoSquared(tuning, alpha);
  // In logs: exp of a large negative number underflows to 0, which is the right limit.
  const logP = 0.5 * Math.log1p(nr) - ((z * z) / 2) * (nr / (1 + nr));
  return Math.min(1, Math.exp(logP));
}

function invalid(diff: number, n: number, alpha: number, tuning: number): SequentialResult {
  return { valid: false, diff, ci: [NaN, NaN], halfWidth: NaN, p: NaN, significant: false, se: NaN, n, alpha, tuning };
}

/**
 * The sequence for a difference with standard error `se` after `n` total observations. se = 0
 * (no variation in either arm): equal estimates → p = 1, different → p = 0 and a point interval
 * (the convention of welchTTest).
 */
export function sequentialFromEstimate(diff: number, se: number, n: number, opts: SequentialOptions = {}): SequentialResult {
  const alpha = opts.alpha ?? SEQUENTIAL_ALPHA;
  const tuning = opts.tuning ?? DEFAULT_SEQUENTIAL_TUNING;
  if (!Number.isFinite(diff) || !Number.isFinite(se) || se < 0 || !(n > 0)) return invalid(diff, n, alpha, tuning);
  if (se === 0) {
    const p = diff === 0 ? 1 : 0;
    return { valid: true, diff, ci: [diff, diff], halfWidth: 0, p, significant: p < alpha, se, n, alpha, tuning };
  }
  const halfWidth = se * sequentialMultiplier(n, tuning, alpha);
  const p = sequentialP(diff / se, n, tuning, alpha);
  return { valid: true, diff, ci: [diff - halfWidth, diff + halfWidth], halfWidth, p, significant: p < alpha, se, n, alpha, tuning };
}

/** Difference of means a − b (unequal variances, se² = va/na + vb/nb). */
export function sequentialMeanDiff(a: Summary, b: Summary, opts: SequentialOptions = {}): SequentialResult {
  const min = Math.max(2, opts.minPerArm ?? SEQUENTIAL_MIN_PER_ARM);
  const diff = a.n > 0 && b.n > 0 ? a.mean - b.mean : NaN;
  if (!(a.n >= min && b.n >= min) || !Number.isFinite(a.variance) || !Number.isFinite(b.variance)) {
    return invalid(diff, a.n + b.n, opts.alpha ?? SEQUENTIAL_ALPHA, opts.tuning ?? DEFAULT_SEQUENTIAL_TUNING);
  }
  return sequentialFromEstimate(diff, Math.sqrt(a.variance / a.n + b.variance / b.n), a.n + b.n, opts);
}

/** Difference of proportions x1/n1 − x2/n2 (unpooled Bernoulli variance, as the Wald interval). */
export function sequentialProportionDiff(x1: number, n1: number, x2: number, n2: number, opts: SequentialOptions = {}): SequentialResult {
  const min = Math.max(1, opts.minPerArm ?? SEQUENTIAL_MIN_PER_ARM);
  const p1 = n1 > 0 ? x1 / n1 : NaN;
  const p2 = n2 > 0 ? x2 / n2 : NaN;
  if (!(n1 >= min && n2 >= min) || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2) {
    return invalid(p1 - p2, n1 + n2, opts.alpha ?? SEQUENTIAL_ALPHA, opts.tuning ?? DEFAULT_SEQUENTIAL_TUNING);
  }
  return sequentialFromEstimate(p1 - p2, Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2), n1 + n2, opts);
}

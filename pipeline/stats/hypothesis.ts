/**
 * Two-sample hypothesis tests on plain numbers (no I/O). Every input is a summary a stream
 * processor can keep (n, mean, variance or counts), so the same call works on DuckDB totals and
 * on in-memory aggregates. Conventions shared by all tests here:
 *
 * - `diff` is always FIRST minus SECOND (scipy's `ttest_ind(a, b)` order); callers comparing a
 *   shadow to the original pass the shadow first.
 * - p-values are two-sided; confidence intervals are 95% (`CONFIDENCE`).
 * - A result that cannot be computed (too little data) has `valid: false` and NaN statistics;
 *   degenerate-but-defined cases (zero variance) are documented on each function.
 *
 * Formulas and their sources are in pipeline/stats/README.md; golden/cases.json pins them against
 * scipy.
 */
import { mean as ssMean, sampleVariance } from 'simple-statistics';
import { chiSquareSf, normalQuantile, normalSf, studentTQuantile, studentTTwoSidedP } from './distributions.ts';

export const CONFIDENCE = 0.95;
/** SRM is flagged below this p-value (Fabijan et al., "Diagnosing Sample Ratio Mismatch", KDD 2019). */
export const SRM_P_THRESHOLD = 0.001;

/** What a Welch test needs of one sample; `variance` is the unbiased sample variance (n − 1). */
export interface Summary {
  n: number;
  mean: number;
  variance: number;
}

export interface WelchResult {
  valid: boolean;
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  df: number;
  /** Two-sided p-value. */
  p: number;
  /** mean(a) − mean(b). */
  diff: number;
  /** 95% CI of `diff`: diff ± t_{0.975, df} · se. */
  ci: [number, number];
  /** Standard error sqrt(va/na + vb/nb). */
  se: number;
  /** diff / mean(b); NaN when mean(b) = 0. */
  relativeDiff: number;
}

export interface ZResult {
  valid: boolean;
  /** Pooled-variance z statistic. */
  z: number;
  /** Two-sided p-value 2·(1 − Φ(|z|)). */
  p: number;
  /** p1 − p2. */
  diff: number;
  /** 95% unpooled Wald CI of `diff`. */
  ci: [number, number];
  p1: number;
  p2: number;
  /** (p1 − p2) / p2; NaN when p2 = 0. */
  relativeLift: number;
}

export interface SrmResult {
  chiSquare: number;
  df: number;
  p: number;
  /** p < SRM_P_THRESHOLD. */
  mismatch: boolean;
  total: number;
  /** Expected counts per variant (total × normalised share). */
  expected: Record<string, number>;
}

/** Summary of raw values (unbiased variance), e.g. to feed `welchTTest` from a sample. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { n: 0, mean: NaN, variance: NaN };
  return { n: values.length, mean: ssMean(values as number[]), variance: values.length > 1 ? sampleVariance(values as number[]) : NaN };
}

/**
 * Summary from streamed sums: mean = sum/n, variance = (sumSq − n·mean²)/(n − 1), clamped at 0
 * (rounding can make it slightly negative for constant data).
 */
export function summaryFromSums(n: number, sum: number, sumSq: number): Summary {
  if (n === 0) return { n: 0, mean: NaN, variance: NaN };
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : NaN;
  return { n, mean, variance };
}

/**
 * Welch's unequal-variance t-test (Welch 1947):
 *   se = sqrt(va/na + vb/nb),  t = (ma − mb)/se,
 *   df = se⁴ / ((va/na)²/(na−1) + (vb/nb)²/(nb−1)),
 *   p = P(|T_df| > |t|),  CI = diff ± t_{0.975,df}·se.
 * Needs na, nb ≥ 2 (else `valid: false`). Both variances zero (se = 0): equal means give t = 0,
 * p = 1; different means give t = ±∞, p = 0; df is then na + nb − 2 and the CI collapses to diff.
 */
export function welchTTest(a: Summary, b: Summary): WelchResult {
  const r = welchPValue(a, b);
  if (!r.valid || r.se === 0) return r;
  const crit = studentTQuantile(1 - (1 - CONFIDENCE) / 2, r.df);
  return { ...r, ci: [r.diff - crit * r.se, r.diff + crit * r.se] };
}

/**
 * `welchTTest` without the confidence interval (ci is NaN unless se = 0): the t quantile behind
 * the interval costs far more than the p-value, and a simulation that re-tests thousands of times
 * (peeking.test.ts) needs only p.
 */
export function welchPValue(a: Summary, b: Summary): WelchResult {
  const diff = a.mean - b.mean;
  const relativeDiff = b.mean === 0 ? NaN : diff / b.mean;
  if (!(a.n >= 2 && b.n >= 2) || !Number.isFinite(a.variance) || !Number.isFinite(b.variance)) {
    return { valid: false, t: NaN, df: NaN, p: NaN, diff: a.n > 0 && b.n > 0 ? diff : NaN, ci: [NaN, NaN], se: NaN, relativeDiff };
  }
  const va = a.variance / a.n;
  const vb = b.variance / b.n;
  const se2 = va + vb;
  if (se2 === 0) {
    const t = diff === 0 ? 0 : diff > 0 ? Infinity : -Infinity;
    return { valid: true, t, df: a.n + b.n - 2, p: diff === 0 ? 1 : 0, diff, ci: [diff, diff], se: 0, relativeDiff };
  }
  const se = Math.sqrt(se2);
  const t = diff / se;
  const df = (se2 * se2) / ((va * va) / (a.n - 1) + (vb * vb) / (b.n - 1));
  return { valid: true, t, df, p: studentTTwoSidedP(t, df), diff, ci: [NaN, NaN], se, relativeDiff };
}

/**
 * Two-proportion z-test of x1/n1 against x2/n2:
 *   pooled p̂ = (x1+x2)/(n1+n2),  z = (p1 − p2)/sqrt(p̂(1−p̂)(1/n1 + 1/n2)),  p = 2·(1 − Φ(|z|));
 *   CI (unpooled Wald) = (p1 − p2) ± z_{0.975}·sqrt(p1(1−p1)/n1 + p2(1−p2)/n2).
 * n1 or n2 = 0 → `valid: false`. p̂ ∈ {0, 1} (no variation at all) → z = 0, p = 1.
 */
export function twoProportionZTest(x1: number, n1: number, x2: number, n2: number): ZResult {
  if (!(n1 > 0 && n2 > 0) || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2) {
    return { valid: false, z: NaN, p: NaN, diff: NaN, ci: [NaN, NaN], p1: n1 > 0 ? x1 / n1 : NaN, p2: n2 > 0 ? x2 / n2 : NaN, relativeLift: NaN };
  }
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const diff = p1 - p2;
  const pooled = (x1 + x2) / (n1 + n2);
  const se0 = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const z = se0 === 0 ? 0 : diff / se0;
  const p = se0 === 0 ? 1 : 2 * normalSf(Math.abs(z));
  const crit = normalQuantile(1 - (1 - CONFIDENCE) / 2);
  const seW = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  return { valid: true, z, p, diff, ci: [diff - crit * seW, diff + crit * seW], p1, p2, relativeLift: p2 === 0 ? NaN : diff / p2 };
}

/**
 * Sample-ratio-mismatch check: Pearson chi-square goodness of fit of observed assignment counts
 * against the configured shares. Shares are normalised to sum to 1; a variant missing from
 * `expectedShares` has share 0. χ² = Σ (O − E)²/E over variants with E > 0, df = (#variants with
 * E > 0) − 1, p = P(χ²_df > χ²). Any observation in a variant with E = 0 is an outright mismatch
 * (χ² = ∞, p = 0). No observations, or fewer than 2 variants with E > 0: χ² = 0, p = 1.
 */
export function srmChiSquare(observed: Record<string, number>, expectedShares: Record<string, number>): SrmResult {
  const variants = [...new Set([...Object.keys(expectedShares), ...Object.keys(observed)])].sort();
  const shareTotal = variants.reduce((s, v) => s + Math.max(0, expectedShares[v] ?? 0), 0);
  const total = variants.reduce((s, v) => s + (observed[v] ?? 0), 0);
  const expected: Record<string, number> = {};
  let chi = 0;
  let k = 0;
  for (const v of variants) {
    const share = shareTotal > 0 ? Math.max(0, expectedShares[v] ?? 0) / shareTotal : 0;
    const e = total * share;
    const o = observed[v] ?? 0;
    expected[v] = e;
    if (share > 0) {
      k++;
      if (e > 0) chi += ((o - e) * (o - e)) / e;
    } else if (o > 0) {
      chi = Infinity;
    }
  }
  const df = Math.max(k - 1, 0);
  if (total === 0 || (df === 0 && chi !== Infinity)) return { chiSquare: 0, df, p: 1, mismatch: false, total, expected };
  const p = chi === Infinity ? 0 : chiSquareSf(chi, df);
  return { chiSquare: chi, df, p, mismatch: p < SRM_P_THRESHOLD, total, expected };
}

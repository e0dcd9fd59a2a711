/**
 * Distribution functions the hypothesis tests need, accurate to ~1e-14 (checked against scipy in
 * golden/cases.json). simple-statistics supplies `gammaln` (Lanczos, ~1e-15 relative) but its
 * normal CDF is a 2-decimal table lookup, its `errorFunction` a 1.2e-7 approximation and it has no
 * Student-t or chi-square CDF, so those are built here on two classical kernels:
 *
 * - regularized incomplete gamma P(a,x) / Q(a,x): series for x < a+1, Lentz continued fraction
 *   otherwise (Numerical Recipes 3rd ed. §6.2, `gser`/`gcf`);
 * - regularized incomplete beta I_x(a,b): Lentz continued fraction (NR §6.4, `betacf`), with the
 *   symmetry I_x(a,b) = 1 − I_{1−x}(b,a) when x > (a+1)/(a+b+2).
 *
 * Then  Φ(z) = ½·erfc(−z/√2),  erfc(u) = Q(½, u²)  (Abramowitz & Stegun 7.1.2, 6.5.17);
 *       Student-t two-sided tail  P(|T| > t) = I_{ν/(ν+t²)}(ν/2, ½)  (A&S 26.7.1);
 *       chi-square survival       P(X > x)   = Q(k/2, x/2)            (A&S 26.4.19).
 */
import { gammaln } from 'simple-statistics';

const EPS = 1e-16;
const TINY = 1e-300;
const MAX_ITER = 100_000;

/** Regularized lower incomplete gamma P(a, x) for a > 0, x ≥ 0. */
export function regularizedGammaP(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return NaN;
  if (x === 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? gammaSeries(a, x) : 1 - gammaContinuedFraction(a, x);
}

/** Regularized upper incomplete gamma Q(a, x) = 1 − P(a, x), computed without cancellation. */
export function regularizedGammaQ(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return NaN;
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - gammaSeries(a, x) : gammaContinuedFraction(a, x);
}

function gammaSeries(a: number, x: number): number {
  let ap = a;
  let del = 1 / a;
  let sum = del;
  for (let i = 0; i < MAX_ITER; i++) {
    ap += 1;
    del *= x / ap;
    sum += del;
    if (Math.abs(del) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - gammaln(a));
}

function gammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return Math.exp(-x + a * Math.log(x) - gammaln(a)) * h;
}

/** Stirling correction ln Γ(x) − [(x−½)ln x − x + ½ln 2π], 4 terms: exact to double for x ≥ 50. */
function stirlingCorrection(x: number): number {
  const x2 = x * x;
  return (1 / 12 - (1 / 360 - (1 / 1260 - 1 / (1680 * x2)) / x2) / x2) / x;
}

/**
 * ln B(a, b). For a large argument the naive lnΓ(a) + lnΓ(b) − lnΓ(a+b) loses ~|lnΓ(a)|·1e-16 to
 * cancellation (1e-9 at a = 5e5, i.e. Welch tests with huge n), so lnΓ(a+b) − lnΓ(a) is taken from
 * the Stirling series as (a−½)·log1p(b/a) + b·ln(a+b) − b + corr(a+b) − corr(a).
 */
export function lnBeta(a: number, b: number): number {
  const big = Math.max(a, b);
  const small = Math.min(a, b);
  if (big < 50) return gammaln(a) + gammaln(b) - gammaln(a + b);
  const diff =
    (big - 0.5) * Math.log1p(small / big) +
    small * Math.log(big + small) -
    small +
    stirlingCorrection(big + small) -
    stirlingCorrection(big);
  return gammaln(small) - diff;
}

/**
 * Regularized incomplete beta I_x(a, b). `y` = 1 − x may be passed when the caller knows it more
 * precisely than `1 - x` (e.g. t²/(ν+t²) for small t).
 */
export function regularizedBeta(x: number, a: number, b: number, y: number = 1 - x): number {
  if (Number.isNaN(x) || a <= 0 || b <= 0 || x < 0 || x > 1) return NaN;
  if (x === 0) return 0;
  if (y === 0) return 1;
  const lnX = x > 0.5 ? Math.log1p(-y) : Math.log(x);
  const lnY = y > 0.5 ? Math.log1p(-x) : Math.log(y);
  const front = Math.exp(a * lnX + b * lnY - lnBeta(a, b));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(y, b, a)) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < MAX_ITER; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** Standard normal upper tail P(Z > z), accurate in the far tail (relative, not absolute). */
export function normalSf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const u = z / Math.SQRT2;
  // erfc(u) = Q(½, u²) for u ≥ 0 and 2 − erfc(−u) for u < 0.
  return u >= 0 ? 0.5 * regularizedGammaQ(0.5, u * u) : 1 - 0.5 * regularizedGammaQ(0.5, u * u);
}

/** Standard normal CDF Φ(z). */
export function normalCdf(z: number): number {
  return normalSf(-z);
}

/**
 * Standard normal quantile Φ⁻¹(p): Acklam's rational approximation (rel. error 1.15e-9) followed
 * by one Halley step against `normalSf`, which brings it to full double precision.
 */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pLow = 0.02425;
  let x: number;
  if (p < pLow) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - pLow) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // Halley refinement (Acklam): e = Φ(x) − p, u = e·√(2π)·exp(x²/2).
  const e = p < 0.5 ? normalCdf(x) - p : (1 - p) - normalSf(x);
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** Student-t two-sided tail P(|T_ν| > |t|) = I_{ν/(ν+t²)}(ν/2, ½). ν = ∞ gives the normal. */
export function studentTTwoSidedP(t: number, df: number): number {
  if (Number.isNaN(t) || Number.isNaN(df) || df <= 0) return NaN;
  if (!Number.isFinite(t)) return 0;
  if (df === Infinity) return 2 * normalSf(Math.abs(t));
  const t2 = t * t;
  return regularizedBeta(df / (df + t2), df / 2, 0.5, t2 / (df + t2));
}

/** Student-t upper tail P(T_ν > t). */
export function studentTSf(t: number, df: number): number {
  const half = studentTTwoSidedP(t, df) / 2;
  return t >= 0 ? half : 1 - half;
}

/** Student-t CDF P(T_ν ≤ t). */
export function studentTCdf(t: number, df: number): number {
  return studentTSf(-t, df);
}

/** Student-t density. */
export function studentTPdf(t: number, df: number): number {
  if (df === Infinity) return Math.exp(-(t * t) / 2) / Math.sqrt(2 * Math.PI);
  return Math.exp(-lnBeta(df / 2, 0.5) - 0.5 * Math.log(df) - ((df + 1) / 2) * Math.log1p((t * t) / df));
}

/**
 * Student-t quantile. Newton's method on the upper tail sf(t) = 1 − p, started at the normal
 * quantile: sf is convex and decreasing for t > 0 and the normal quantile lies left of the t
 * quantile, so the iterates increase monotonically to the root without overshooting.
 */
export function studentTQuantile(p: number, df: number): number {
  if (Number.isNaN(p) || Number.isNaN(df) || p < 0 || p > 1 || df <= 0) return NaN;
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  if (p === 1) return Infinity;
  const z = normalQuantile(p);
  if (df === Infinity) return z;
  const q = 1 - p;
  let t = z;
  let prev = Infinity;
  for (let i = 0; i < 1000; i++) {
    const step = (studentTSf(t, df) - q) / studentTPdf(t, df);
    // Converged, or down to rounding noise (a tiny step no smaller than the last one) — without
    // the second test some df oscillate at 1e-16 for the whole iteration budget (1 ms a quantile).
    // Early steps may grow (heavy tails, df ≈ 1), hence the size condition.
    if (!(Math.abs(step) > 1e-15 * Math.abs(t)) || (Math.abs(step) >= prev && Math.abs(step) < 1e-10 * Math.abs(t))) break;
    t += step;
    prev = Math.abs(step);
  }
  return t;
}

/** Chi-square survival P(X²_k > x) = Q(k/2, x/2). */
export function chiSquareSf(x: number, df: number): number {
  if (Number.isNaN(x) || df <= 0) return NaN;
  if (x <= 0) return 1;
  return regularizedGammaQ(df / 2, x / 2);
}

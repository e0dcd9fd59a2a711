/**
 * The documented prior: what the risk of a rollout is believed to be before a model can be
 * trained, and the arithmetic that combines a risk with arriving telemetry. Pure.
 *
 * Prior. Beta(PRIOR_A, PRIOR_B) = Beta(1, 4) on the probability that a version's rollout ends in
 * a regression: mean 0.2, i.e. "one rollout in five regresses", worth 5 pseudo-rollouts, so a
 * handful of real outcomes moves it. (Published change-failure rates span ~5–15 % for the best
 * teams to ~45 % for the worst — DORA State of DevOps; 20 % sits inside that range without
 * claiming to know the team.) With k regressions among n labelled rollouts in the window the
 * score is the posterior mean (1 + k) / (5 + n), reported with its 90 % equal-tailed interval, and
 * the same value for every version of the window: too little history means no feature is used.
 */
import { regularizedBeta } from '../stats/distributions.ts';

export const PRIOR_A = 1;
export const PRIOR_B = 4;

export interface PriorScore {
  probability: number;
  low: number;
  high: number;
  a: number;
  b: number;
}

/** Quantile of Beta(a, b) by bisection on the regularised incomplete beta function. */
export function betaQuantile(p: number, a: number, b: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (regularizedBeta(mid, a, b) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Posterior of the prior after `regressions` of `rollouts` labelled rollouts. */
export function priorScore(rollouts: number, regressions: number): PriorScore {
  const a = PRIOR_A + regressions;
  const b = PRIOR_B + Math.max(0, rollouts - regressions);
  return { probability: a / (a + b), low: betaQuantile(0.05, a, b), high: betaQuantile(0.95, a, b), a, b };
}

const logit = (p: number): number => Math.log(p / (1 - p));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Rollout telemetry of one shadow and its baseline arm (control, or original before #11). */
export interface ArmEvidence {
  shadowSessions: number;
  shadowErrorSessions: number;
  baselineSessions: number;
  baselineErrorSessions: number;
}

export interface EvidenceUpdate {
  probability: number;
  /** log Bayes factor of "regression" vs "healthy" from the telemetry (positive = towards regression). */
  logBayesFactor: number;
  /** The control's rate (posterior mean) and the smallest regressed rate (× relativeIncrease). */
  baselineRate: number;
  regressedRate: number;
  shadowRate: number;
}

/**
 * The prior meets the evidence: a Bayes factor between two hypotheses about the shadow's
 * error-session rate s, given the control arm's counts.
 *
 *  - healthy: s = q, the control's rate;
 *  - regressed: s = m · q with m ≥ `relativeIncrease` (2×, the smallest regression the
 *    guardrails target), log m uniform between log 2 and log(1/q) — any regression from 2× up to
 *    every session failing, with no size favoured on the log scale.
 *
 * q is not known, only estimated from the control: its posterior is Beta(k_c + ½, n_c − k_c + ½)
 * (Jeffreys), truncated where q × relativeIncrease would pass 1, and both hypotheses' binomial
 * likelihoods of the shadow's counts are averaged over it (midpoint rule: 120 points over the
 * posterior's central 1 − 2·10⁻⁶ mass × 60 points over log m). The Bayes factor multiplies the
 * prior odds (Bayes' rule on the log-odds scale). Why not a point estimate against "exactly 2×":
 * with a thin control (0 errors in 40 sessions) the plug-in rate is far too low and a healthy
 * shadow's two errors looked like a regression, while a crash (33 % vs 3 %) fits "exactly 2×"
 * barely better than "healthy"; the composite alternative separates both. With no shadow
 * sessions the Bayes factor is 1 and the prior is returned unchanged.
 */
export function updateWithEvidence(prior: number, e: ArmEvidence, relativeIncrease = 2): EvidenceUpdate {
  const a = e.baselineErrorSessions + 0.5;
  const b = Math.max(0, e.baselineSessions - e.baselineErrorSessions) + 0.5;
  const k = e.shadowErrorSessions;
  const n = e.shadowSessions;
  const qMax = (1 - 1e-9) / relativeIncrease;
  const lo = Math.min(betaQuantile(1e-6, a, b), qMax * 0.999);
  const hi = Math.min(betaQuantile(1 - 1e-6, a, b), qMax);
  const Q = 120;
  const M = 60;
  const h = (hi - lo) / Q;
  const binom = (x: number) => k * Math.log(x) + (n - k) * Math.log1p(-x); // the n-choose-k term cancels
  const l0: number[] = [];
  const l1: number[] = [];
  for (let i = 0; i < Q; i++) {
    const q = lo + (i + 0.5) * h; // the Beta density's normaliser cancels in the ratio
    const w = (a - 1) * Math.log(q) + (b - 1) * Math.log1p(-q);
    l0.push(w + binom(q));
    const uLo = Math.log(relativeIncrease);
    const uHi = Math.max(uLo, Math.log((1 - 1e-9) / q));
    const du = (uHi - uLo) / M;
    const inner: number[] = [];
    for (let j = 0; j < M; j++) inner.push(binom(q * Math.exp(uLo + (j + 0.5) * du)));
    l1.push(w + logMeanExp(inner));
  }
  const llr = n === 0 ? 0 : logMeanExp(l1) - logMeanExp(l0);
  const qMean = a / (a + b);
  const p0 = Math.min(1 - 1e-9, Math.max(1e-9, prior));
  return { probability: sigmoid(logit(p0) + llr), logBayesFactor: llr, baselineRate: qMean, regressedRate: Math.min(1, qMean * relativeIncrease), shadowRate: n > 0 ? k / n : 0 };
}

/** log(mean(exp(xs))) without overflow. */
function logMeanExp(xs: number[]): number {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0) / xs.length);
}

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
  /** Baseline error rate used (smoothed) and the rate a regression is assumed to have. */
  baselineRate: number;
  regressedRate: number;
  shadowRate: number;
}

/**
 * The prior meets the evidence. Two hypotheses about the shadow's error-session rate: healthy
 * (the baseline's rate q) and regressed (q × `relativeIncrease`, the smallest regression the
 * guardrails are meant to catch). The shadow's sessions are binomial under each; their
 * likelihood ratio multiplies the prior odds (Bayes' rule on the log-odds scale). q is the
 * baseline's rate smoothed with half a pseudo-session each way so zero counts stay finite.
 * With no shadow sessions the update returns the prior unchanged.
 */
export function updateWithEvidence(prior: number, e: ArmEvidence, relativeIncrease = 2): EvidenceUpdate {
  const q = (e.baselineErrorSessions + 0.5) / (e.baselineSessions + 1);
  const r = Math.min(0.999, q * relativeIncrease);
  const k = e.shadowErrorSessions;
  const n = e.shadowSessions;
  const llr = k * Math.log(r / q) + (n - k) * Math.log((1 - r) / (1 - q));
  const p0 = Math.min(1 - 1e-9, Math.max(1e-9, prior));
  return { probability: sigmoid(logit(p0) + llr), logBayesFactor: llr, baselineRate: q, regressedRate: r, shadowRate: n > 0 ? k / n : 0 };
}

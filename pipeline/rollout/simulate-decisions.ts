/**
 * Monte-Carlo runs of the whole decision loop on generated data (no services): two arms with
 * error rates pShadow / pControl, `perSecond` sessions per arm, looked at every `everyMs`
 * (the safety check), analyses at the plan's period, a new step comparing only its own sessions.
 * Used by the A/A and A/B unit test and by the rollout benchmark; every figure it produces is
 * generated data and labelled so.
 */
import { Prng } from '../simulator/prng.ts';
import { sequentialProportionDiff } from '../stats/sequential.ts';
import { normalQuantile } from '../stats/distributions.ts';
import { applyDecision, decideRollout } from './decide.ts';
import { tuningFor, type SequentialLike } from './build-evidence.ts';
import type { MetricComparison } from './evidence.ts';
import type { RolloutPlan, RolloutState } from './plan.ts';

export type Interval = (x1: number, n1: number, x2: number, n2: number) => SequentialLike;

/** The always-valid interval the analyzer uses for `plan` (N* tuned to its analysis sample). */
export function sequentialInterval(plan: RolloutPlan): Interval {
  const tuning = tuningFor(plan.minSessionsPerArm);
  return (x1, n1, x2, n2) => sequentialProportionDiff(x1, n1, x2, n2, { tuning });
}

const Z = normalQuantile(0.975);
/** The fixed-horizon Wald interval, peeked at as if it were always valid (what not to do). */
export const fixedHorizonInterval: Interval = (x1, n1, x2, n2) => {
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const se = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  const h = Z * se;
  const valid = n1 >= 30 && n2 >= 30 && se > 0;
  return { valid, diff: p1 - p2, ci: [p1 - p2 - h, p1 - p2 + h], p: NaN, significant: valid && Math.abs(p1 - p2) > h, alpha: 0.05 };
};

export interface LoopOptions {
  plan: RolloutPlan;
  pShadow: number;
  pControl: number;
  interval: Interval;
  /** Sessions per arm per second (default 5). */
  perSecond?: number;
  /** Safety-check period, ms (default 5000). */
  everyMs?: number;
  /** Give up after (default 600 s). */
  maxMs?: number;
}

export type LoopOutcome = { end: 'rollback' | 'complete' | 'hold'; atMs: number };

/** One run of the loop with errors on the `errorRate` guardrail. */
export function runLoop(rng: Prng, o: LoopOptions): LoopOutcome {
  const perBatch = Math.round(((o.perSecond ?? 5) * (o.everyMs ?? 5000)) / 1000);
  let state: RolloutState = { status: 'running', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null };
  let s = { n: 0, x: 0 };
  let c = { n: 0, x: 0 };
  for (let t = o.everyMs ?? 5000; t <= (o.maxMs ?? 600_000); t += o.everyMs ?? 5000) {
    for (let i = 0; i < perBatch; i++) {
      s = { n: s.n + 1, x: s.x + (rng.bernoulli(o.pShadow) ? 1 : 0) };
      c = { n: c.n + 1, x: c.x + (rng.bernoulli(o.pControl) ? 1 : 0) };
    }
    const r = o.interval(s.x, s.n, c.x, c.n);
    const cmp: MetricComparison = { ...r, shadow: { n: s.n, value: s.x / s.n }, control: { n: c.n, value: c.x / c.n } };
    const d = decideRollout({ shadow: 's', plan: o.plan, state, evidence: { sessions: { shadow: s.n, control: c.n }, metrics: { errorRate: cmp }, srm: null }, baseline: true, now: t });
    if (d.kind === 'none') continue;
    if (d.kind === 'rollback' || d.kind === 'complete') return { end: d.kind, atMs: t };
    state = applyDecision(state, d.record, t);
    if (d.kind === 'advance') {
      s = { n: 0, x: 0 };
      c = { n: 0, x: 0 };
    }
  }
  return { end: 'hold', atMs: o.maxMs ?? 600_000 };
}

/** Shares of `runs` runs that rolled back and completed. */
export function loopShares(runs: number, seed: string, o: LoopOptions): { rollback: number; complete: number; runs: number } {
  const rng = new Prng(seed);
  let rollback = 0;
  let complete = 0;
  for (let i = 0; i < runs; i++) {
    const out = runLoop(rng.fork(`run-${i}`), o);
    if (out.end === 'rollback') rollback++;
    if (out.end === 'complete') complete++;
  }
  return { rollback: rollback / runs, complete: complete / runs, runs };
}

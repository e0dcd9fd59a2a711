/**
 * A/A simulation of the whole decision loop (generated data, no services): a plan with an error
 * guardrail watched continuously — the safety check after every batch of sessions, analyses at
 * their period — on two arms with the SAME error rate. The share of runs that wrongly roll the
 * shadow back must stay at or below α (a one-sided regression check of a two-sided 95 %
 * confidence sequence: ≤ 2.5 % in theory). The same loop with a fixed-horizon z-test interval in
 * place of the confidence sequence shows why: peeking at it after every batch rolls back far
 * more healthy shadows. And with a real 3× error rate the plan rolls back in (almost) every run.
 */
import { Prng } from '../simulator/prng.ts';
import { sequentialProportionDiff } from '../stats/sequential.ts';
import { normalQuantile } from '../stats/distributions.ts';
import { parsePlan } from './plan.ts';
import { applyDecision, decideRollout } from './decide.ts';
import { tuningFor, type SequentialLike } from './build-evidence.ts';
import type { MetricComparison } from './evidence.ts';

const plan = parsePlan({ steps: [5, 20, 50], analysisSeconds: 60, minSessionsPerArm: 200, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0 }], maxInconclusive: 3 });
const RUNS = 1000;

type Interval = (x1: number, n1: number, x2: number, n2: number) => SequentialLike;
const sequential: Interval = (x1, n1, x2, n2) => sequentialProportionDiff(x1, n1, x2, n2, { tuning: tuningFor(plan.minSessionsPerArm) });
const Z = normalQuantile(0.975);
/** The fixed-horizon Wald interval, peeked at as if it were always valid (what not to do). */
const fixedHorizon: Interval = (x1, n1, x2, n2) => {
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const se = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  const h = Z * se;
  const valid = n1 >= 30 && n2 >= 30 && se > 0;
  return { valid, diff: p1 - p2, ci: [p1 - p2 - h, p1 - p2 + h], p: NaN, significant: valid && Math.abs(p1 - p2) > h, alpha: 0.05 };
};

/** One run: 5 sessions per arm per second, looked at every 5 s, error rates pShadow / pControl. Returns how it ended. */
function run(rng: Prng, pShadow: number, pControl: number, interval: Interval): 'rollback' | 'complete' | 'hold' {
  let state = { status: 'running' as const, step: 0, stepStartedAt: 0, lastAnalysisAt: null as number | null, inconclusive: 0, reason: null as string | null } as ReturnType<typeof applyDecision>;
  let s = { n: 0, x: 0 };
  let c = { n: 0, x: 0 };
  for (let t = 5000; t <= 600_000; t += 5000) {
    for (let i = 0; i < 25; i++) {
      s = { n: s.n + 1, x: s.x + (rng.bernoulli(pShadow) ? 1 : 0) };
      c = { n: c.n + 1, x: c.x + (rng.bernoulli(pControl) ? 1 : 0) };
    }
    const r = interval(s.x, s.n, c.x, c.n);
    const cmp: MetricComparison = { ...r, shadow: { n: s.n, value: s.x / s.n }, control: { n: c.n, value: c.x / c.n } };
    const d = decideRollout({ shadow: 's', plan, state, evidence: { sessions: { shadow: s.n, control: c.n }, metrics: { errorRate: cmp }, srm: null }, baseline: true, now: t });
    if (d.kind === 'none') continue;
    if (d.kind === 'rollback' || d.kind === 'complete') return d.kind;
    state = applyDecision(state, d.record, t);
    if (d.kind === 'advance') {
      // A new step compares the sessions since it began.
      s = { n: 0, x: 0 };
      c = { n: 0, x: 0 };
    }
  }
  return 'hold';
}

function share(pShadow: number, pControl: number, interval: Interval, seed: string): { rollback: number; complete: number } {
  const rng = new Prng(seed);
  let rollback = 0;
  let complete = 0;
  for (let i = 0; i < RUNS; i++) {
    const out = run(rng.fork(`run-${i}`), pShadow, pControl, interval);
    if (out === 'rollback') rollback++;
    if (out === 'complete') complete++;
  }
  return { rollback: rollback / RUNS, complete: complete / RUNS };
}

describe('A/A and A/B simulation of the decision loop (generated data)', () => {
  it('A/A with continuous peeking: wrong rollbacks stay at or below α; the fixed-horizon interval exceeds it', () => {
    const seq = share(0.05, 0.05, sequential, 'aa-seq');
    const fixed = share(0.05, 0.05, fixedHorizon, 'aa-seq');
    console.log(`A/A (generated): wrong rollbacks ${seq.rollback} with the confidence sequence, ${fixed.rollback} peeking at the fixed-horizon interval; completed ${seq.complete}`);
    // ≥ 1000 replications; 0.05 is α; the one-sided theory says 0.025.
    expect(seq.rollback).toBeLessThanOrEqual(0.05);
    expect(seq.complete).toBeGreaterThanOrEqual(0.95);
    expect(fixed.rollback).toBeGreaterThan(0.1);
  });

  it('a 3× error rate (5 % → 15 %) is rolled back in at least 99 % of runs', () => {
    const ab = share(0.15, 0.05, sequential, 'ab-3x');
    console.log(`A/B 3x (generated): rolled back in ${ab.rollback} of runs`);
    expect(ab.rollback).toBeGreaterThanOrEqual(0.99);
  });
});

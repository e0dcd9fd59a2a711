/**
 * A/A simulation of the whole decision loop (generated data, no services): a plan with an error
 * guardrail watched continuously — the safety check after every batch of sessions, analyses at
 * their period — on two arms with the SAME error rate. The share of runs that wrongly roll the
 * shadow back must stay at or below α (a one-sided regression check of a two-sided 95 %
 * confidence sequence: ≤ 2.5 % in theory). The same loop with a fixed-horizon interval in place
 * of the confidence sequence shows why: peeking at it rolls back far more healthy shadows. And
 * with a real 3× error rate the plan rolls back in (almost) every run.
 */
import { parsePlan } from './plan.ts';
import { fixedHorizonInterval, loopShares, sequentialInterval } from './simulate-decisions.ts';

const plan = parsePlan({ steps: [5, 20, 50], analysisSeconds: 60, minSessionsPerArm: 200, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0 }], maxInconclusive: 3 });
const RUNS = 1000;

describe('A/A and A/B simulation of the decision loop (generated data)', () => {
  it('A/A with continuous peeking: wrong rollbacks stay at or below α; the fixed-horizon interval exceeds it', () => {
    const seq = loopShares(RUNS, 'aa-seq', { plan, pShadow: 0.05, pControl: 0.05, interval: sequentialInterval(plan) });
    const fixed = loopShares(RUNS, 'aa-seq', { plan, pShadow: 0.05, pControl: 0.05, interval: fixedHorizonInterval });
    console.log(`A/A (generated): wrong rollbacks ${seq.rollback} with the confidence sequence, ${fixed.rollback} peeking at the fixed-horizon interval; completed ${seq.complete}`);
    // ≥ 1000 replications; 0.05 is α; the one-sided theory says 0.025.
    expect(seq.rollback).toBeLessThanOrEqual(0.05);
    expect(seq.complete).toBeGreaterThanOrEqual(0.95);
    expect(fixed.rollback).toBeGreaterThan(0.1);
  });

  it('a 3× error rate (5 % → 15 %) is rolled back in at least 99 % of runs', () => {
    const ab = loopShares(RUNS, 'ab-3x', { plan, pShadow: 0.15, pControl: 0.05, interval: sequentialInterval(plan) });
    console.log(`A/B 3x (generated): rolled back in ${ab.rollback} of runs`);
    expect(ab.rollback).toBeGreaterThanOrEqual(0.99);
  });
});

/**
 * Operating characteristics of the forecast hold on generated data (no services; simulate.ts):
 * the plan of test/forecast.int.test.ts (one step, 300 s analysis, error sessions ≤ +2 pp, N*
 * from 1,000 sessions per arm), 2.5 sessions/s per arm, a 2 % base rate, looked at every second.
 */
import { parsePlan } from '../rollout/plan.ts';
import { DEFAULT_FORECAST_HOLD_AT } from './forecast.ts';
import { simulateSteps } from './simulate.ts';

const plan = parsePlan({ steps: [50], analysisSeconds: 300, minSessionsPerArm: 1000, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], onComplete: 'hold' });
const RUNS = 400;
const o = { plan, holdAt: DEFAULT_FORECAST_HOLD_AT };

describe('forecast hold: operating characteristics (GENERATED data)', () => {
  it('healthy steps (A/A, 2 % vs 2 %, looked at every second) are rarely held', () => {
    const aa = simulateSteps(RUNS, 'fc-aa', { ...o, pShadow: 0.02, pControl: 0.02 });
    // Worse, but within the tolerated harm (+1 pp of +2 pp): the guardrail must not fire, nor should the forecast.
    const within = simulateSteps(RUNS, 'fc-1', { ...o, pShadow: 0.03, pControl: 0.02 });
    console.log(`forecast A/A (GENERATED): held ${(aa.held * 100).toFixed(1)} % of ${RUNS} healthy steps, rolled back ${(aa.rolledBack * 100).toFixed(1)} %; +1 pp (tolerated +2 pp): held ${(within.held * 100).toFixed(1)} %, rolled back ${(within.rolledBack * 100).toFixed(1)} %`);
    expect(aa.held).toBeLessThanOrEqual(0.02);
    expect(aa.rolledBack).toBeLessThanOrEqual(0.025);
    expect(within.held).toBeLessThanOrEqual(0.05);
  });

  it('a bad version (+20 pp, as the integration test) is held before its guardrail rolls it back in almost every run; smaller regressions less often but with more lead', () => {
    const bad = simulateSteps(RUNS, 'fc-20', { ...o, pShadow: 0.22, pControl: 0.02 });
    const mid = simulateSteps(RUNS, 'fc-8', { ...o, pShadow: 0.1, pControl: 0.02 });
    const fmt = (x: typeof bad) => `held before the rollback in ${(x.heldBeforeRollback * 100).toFixed(1)} % (rolled back ${(x.rolledBack * 100).toFixed(1)} %), lead median ${x.leadMedian} s [${x.leadQ1}, ${x.leadQ3}]`;
    console.log(`forecast A/B (GENERATED): +20 pp ${fmt(bad)}; +8 pp ${fmt(mid)}`);
    expect(bad.rolledBack).toBeGreaterThanOrEqual(0.99);
    expect(bad.heldBeforeRollback).toBeGreaterThanOrEqual(0.9);
    expect(bad.leadMedian!).toBeGreaterThan(5);
    expect(mid.heldBeforeRollback).toBeGreaterThan(0.5);
    expect(mid.leadMedian!).toBeGreaterThan(bad.leadMedian!);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FORECAST_HOLD_AT, forecastGuardrail, forecastHoldReason, shouldHoldOnForecast, worstForecast, type ArmSummary, type ForecastInput } from './forecast.ts';
import { armSummary, forecastStep, holdOutcome } from './step.ts';
import { judgeGuardrail } from '../rollout/evidence.ts';
import { sequentialProportionDiff } from '../stats/sequential.ts';

interface Case {
  name: string;
  shadow: { k: number; n: number };
  control: { k: number; n: number };
  elapsed: number;
  remaining: number;
  tuning: number;
  direction: 'increase' | 'decrease';
  maxDelta: number;
  expected: { status: string; probability?: number; projectedShadowN?: number; projectedControlN?: number; boundary?: number; spread?: number; halfWidthNow?: number; halfWidthProjected?: number };
  mc?: number;
}

const dir = path.dirname(fileURLToPath(import.meta.url));
const golden = JSON.parse(readFileSync(path.join(dir, 'golden', 'cases.json'), 'utf8')) as { cases: Case[] };
const arm = (k: number, n: number): ArmSummary => ({ n, mean: k / n, variance: (k / n) * (1 - k / n) });
const input = (c: Case): ForecastInput => ({
  guardrail: { metric: c.direction === 'increase' ? 'errorRate' : 'conversion:checkout', direction: c.direction, maxDelta: c.maxDelta },
  shadow: arm(c.shadow.k, c.shadow.n), control: arm(c.control.k, c.control.n), elapsedSeconds: c.elapsed, remainingSeconds: c.remaining, tuning: c.tuning,
});

describe('guardrail forecast: golden cases (scipy, golden/gen.py)', () => {
  it.each(golden.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const f = forecastGuardrail(input(c));
    expect(f.status).toBe(c.expected.status);
    if (c.expected.status !== 'forecast') {
      expect(f.probability).toBeNull();
      return;
    }
    expect(f.probability!).toBeCloseTo(c.expected.probability!, 9);
    expect(f.projected.shadowN).toBeCloseTo(c.expected.projectedShadowN!, 9);
    expect(f.projected.controlN).toBeCloseTo(c.expected.projectedControlN!, 9);
    expect(f.projected.boundary!).toBeCloseTo(c.expected.boundary!, 12);
    expect(f.projected.spread!).toBeCloseTo(c.expected.spread!, 12);
    expect(f.projected.halfWidth!).toBeCloseTo(c.expected.halfWidthProjected!, 12);
    expect(f.now.ciHigh! - f.now.diff!).toBeCloseTo(c.expected.halfWidthNow!, 12);
    // The projection means what it says: a simulation of the rest of the step (200,000 draws,
    // re-estimating the variance at the end, which the projection holds fixed) agrees within 0.06.
    expect(Math.abs(f.probability! - c.mc!)).toBeLessThan(0.06);
  });

  it('the interval now is the guardrail\'s own (pipeline/stats sequentialProportionDiff) and "regressed" is judgeGuardrail\'s verdict', () => {
    for (const c of golden.cases) {
      const f = forecastGuardrail(input(c));
      const seq = sequentialProportionDiff(c.shadow.k, c.shadow.n, c.control.k, c.control.n, { tuning: c.tuning });
      expect(f.now.ciLow!).toBeCloseTo(seq.ci[0], 12);
      expect(f.now.ciHigh!).toBeCloseTo(seq.ci[1], 12);
      const j = judgeGuardrail(input(c).guardrail, { ...seq, shadow: { n: c.shadow.n, value: c.shadow.k / c.shadow.n }, control: { n: c.control.n, value: c.control.k / c.control.n } });
      expect(f.status === 'regressed').toBe(j.verdict === 'regressed');
    }
  });
});

describe('guardrail forecast: properties', () => {
  const base = (over: Partial<ForecastInput> = {}): ForecastInput => ({
    guardrail: { metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }, shadow: arm(14, 200), control: arm(5, 200), elapsedSeconds: 60, remainingSeconds: 60, tuning: 600, ...over,
  });

  it('more time left to the analysis → more sessions → a narrower projected interval and a higher chance a real regression is caught', () => {
    const ps = [30, 60, 120, 240, 480].map((r) => forecastGuardrail(base({ remainingSeconds: r })));
    for (let i = 1; i < ps.length; i++) {
      expect(ps[i].projected.halfWidth!).toBeLessThan(ps[i - 1].projected.halfWidth!);
      expect(ps[i].probability!).toBeGreaterThan(ps[i - 1].probability!);
    }
    // ~1/√n: quadrupling both arms' projected sizes roughly halves the standard error.
    const a = forecastGuardrail(base({ remainingSeconds: 60 })); // n' = 2n
    const b = forecastGuardrail(base({ remainingSeconds: 420 })); // n' = 8n
    expect(a.projected.se! / b.projected.se!).toBeCloseTo(2, 9);
  });

  it('a larger regression is more likely to fail; the same data against a wider tolerated harm less likely', () => {
    const p = (k: number, m = 0.01) => forecastGuardrail(base({ shadow: arm(k, 200), guardrail: { metric: 'errorRate', direction: 'increase', maxDelta: m } })).probability!;
    expect(p(10)).toBeLessThan(p(14));
    expect(p(14)).toBeLessThan(p(18));
    expect(p(14, 0.03)).toBeLessThan(p(14, 0.01));
  });

  it('a mean metric (latency, ms) uses the arms\' sample variances', () => {
    const f = forecastGuardrail(base({ guardrail: { metric: 'latencyMean', direction: 'increase', maxDelta: 20 }, shadow: { n: 100, mean: 240, variance: 60 ** 2 }, control: { n: 100, mean: 200, variance: 55 ** 2 } }));
    expect(f.status).toBe('forecast');
    expect(f.now.se!).toBeCloseTo(Math.sqrt(3600 / 100 + 3025 / 100), 12);
    expect(f.probability!).toBeGreaterThan(0.5);
    expect(forecastGuardrail(base({ guardrail: { metric: 'latencyMean', direction: 'increase', maxDelta: 20 }, shadow: { n: 100, mean: 205, variance: 60 ** 2 }, control: { n: 100, mean: 200, variance: 55 ** 2 } })).probability!).toBeLessThan(0.01);
  });

  it('no forecast from less than MIN_INFORMATION_FRACTION of the projected data; a clean control arm does not project a zero variance', () => {
    // 30 per arm after 10 s of a 20-minute step: 30 of 3,600 projected.
    expect(forecastGuardrail(base({ shadow: arm(6, 30), control: arm(1, 30), elapsedSeconds: 10, remainingSeconds: 1190 })).status).toBe('unmeasured');
    // A healthy shadow's unlucky start (4 of 45 vs 0 of 45 at a 2 % rate) with the step's smoothing: below the 0.9 default.
    const f = forecastStep({ shadow: 's', plan: { steps: [{ percentage: 50 }], analysisSeconds: 300, minSessionsPerArm: 1000, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], maxInconclusive: 3, onComplete: 'hold' }, state: { status: 'running', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null }, shadowTotals: { sessions: 45, errorSessions: 4, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} }, controlTotals: { sessions: 45, errorSessions: 0, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} }, tuning: 2000, now: 15_000, holdAt: DEFAULT_FORECAST_HOLD_AT });
    expect(f.guardrails[0].status).toBe('forecast');
    expect(f.guardrails[0].projected.spread!).toBeGreaterThan(0);
    expect(f.hold).toBeNull();
  });

  it('no forecast without data, before MIN_ELAPSED_SECONDS, or once the analysis is due', () => {
    expect(forecastGuardrail(base({ shadow: arm(3, 20) })).status).toBe('unmeasured'); // < 30 per arm, as the test
    expect(forecastGuardrail(base({ shadow: { n: 100, mean: NaN, variance: NaN } })).status).toBe('unmeasured');
    expect(forecastGuardrail(base({ elapsedSeconds: 3 })).status).toBe('unmeasured');
    expect(forecastGuardrail(base({ remainingSeconds: 0 })).status).toBe('due');
    expect(forecastGuardrail(base({ remainingSeconds: -5 })).status).toBe('due');
  });

  it('holds at the threshold on the worst guardrail, never when one already fires (that is the rollback) or at holdAt 0', () => {
    const bad = forecastGuardrail(base({ shadow: arm(12, 60), control: arm(2, 60), elapsedSeconds: 15, remainingSeconds: 105 })); // p ≈ 0.96
    const healthy = forecastGuardrail(base({ shadow: arm(4, 200), control: arm(4, 200) }));
    const firing = forecastGuardrail(base({ shadow: arm(60, 200), control: arm(4, 200) }));
    expect(worstForecast([healthy, bad])).toBe(bad);
    expect(shouldHoldOnForecast([healthy, bad], 0.8)).toBe(bad);
    expect(shouldHoldOnForecast([healthy, bad], 0.99)).toBeNull();
    expect(shouldHoldOnForecast([healthy], 0.8)).toBeNull();
    expect(shouldHoldOnForecast([bad, firing], 0.8)).toBeNull();
    expect(shouldHoldOnForecast([bad], 0)).toBeNull();
    expect(worstForecast([firing])).toBeNull();
  });

  it('the hold reason names the forecast, its inputs, the projected sizes, the probability and the release route', () => {
    const f = forecastGuardrail(base({ shadow: arm(12, 60), control: arm(2, 60), elapsedSeconds: 15, remainingSeconds: 105 }));
    expect(forecastHoldReason('v-2-0-0', f, 0.8, 'POST /api/v1/items/x/risk/release')).toBe(
      'forecast hold: v-2-0-0 errorRate +16.7 pp [−2.4 pp, +35.7 pp] vs control on 60 vs 60; projected 480 vs 480 at the analysis in 105 s → P(guardrail increase beyond +1 pp fires) 96.5 % ≥ 80 %. Release: POST /api/v1/items/x/risk/release',
    );
  });
});

describe('a step, forecast (step.ts)', () => {
  const plan = { steps: [{ percentage: 5 }, { percentage: 20, analysisSeconds: 300 }], analysisSeconds: 120, minSessionsPerArm: 300, guardrails: [{ metric: 'errorRate', direction: 'increase' as const, maxDelta: 0.01 }, { metric: 'latencyMean', direction: 'increase' as const, maxDelta: 50 }], maxInconclusive: 3, onComplete: 'promote' as const };
  const totals = (sessions: number, errorSessions: number) => ({ sessions, errorSessions, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} });
  const t0 = 1_800_000_000_000;

  it('forecasts each guardrail at the next analysis (the step\'s own period) and holds a running plan on the worst', () => {
    const f = forecastStep({ shadow: 'v-2', plan, state: { status: 'running', step: 0, stepStartedAt: t0, lastAnalysisAt: null, inconclusive: 0, reason: null }, shadowTotals: totals(60, 12), controlTotals: totals(60, 2), tuning: 600, now: t0 + 15_000, holdAt: 0.8 });
    expect(f.analysisDueAt).toBe(t0 + 120_000);
    expect(f.guardrails.map((g) => [g.metric, g.status])).toEqual([['errorRate', 'forecast'], ['latencyMean', 'unmeasured']]);
    expect(f.guardrails[0].remainingSeconds).toBe(105);
    // Golden case 1's counts; the Jeffreys-smoothed projection variance moves it by < 0.01.
    expect(Math.abs(f.guardrails[0].probability! - golden.cases[0].expected.probability!)).toBeLessThan(0.01);
    expect(f.worst).toBe(f.guardrails[0]);
    expect(f.hold).toBe(f.guardrails[0]);
  });

  it('the next analysis follows the last one (held inconclusive) and the step\'s own period; a paused plan is forecast, not held', () => {
    const st = { status: 'paused' as const, step: 1, stepStartedAt: t0, lastAnalysisAt: t0 + 300_000, inconclusive: 1, reason: 'x' };
    const f = forecastStep({ shadow: 'v-2', plan, state: st, shadowTotals: totals(600, 120), controlTotals: totals(600, 20), tuning: 600, now: t0 + 310_000, holdAt: 0.8 });
    expect(f.analysisDueAt).toBe(t0 + 600_000);
    expect(f.hold).toBeNull();
  });

  it('armSummary reads each metric as build-evidence compares it', () => {
    const t = { sessions: 100, errorSessions: 5, requests: 400, requestErrors: 8, latency: { count: 3, sum: 600, sumSq: 120_200 }, conversions: { buy: 20 }, perf: { lcp: { count: 2, sum: 3000, sumSq: 4_520_000 } } };
    expect(armSummary('errorRate', t)).toEqual({ n: 100, mean: 0.05, variance: 0.05 * 0.95, projectionVariance: (5.5 / 101) * (1 - 5.5 / 101) });
    expect(armSummary('requestErrorRate', t)).toEqual({ n: 400, mean: 0.02, variance: 0.02 * 0.98, projectionVariance: (8.5 / 401) * (1 - 8.5 / 401) });
    expect(armSummary('conversion:buy', t)).toEqual({ n: 100, mean: 0.2, variance: 0.2 * 0.8, projectionVariance: (20.5 / 101) * (1 - 20.5 / 101) });
    expect(armSummary('latencyMean', t)).toEqual({ n: 3, mean: 200, variance: 100 });
    expect(armSummary('perf:lcp', t)).toEqual({ n: 2, mean: 1500, variance: 20_000 });
    expect(armSummary('errorRate', undefined).n).toBe(0);
  });
});

describe('how a held step ended (holdOutcome)', () => {
  const h = { shadow: 'v-2', stepStartedAt: 1000, heldAt: 20_000 };
  const st = (over: Record<string, unknown> = {}) => ({ status: 'paused' as const, step: 0, stepStartedAt: 1000, lastAnalysisAt: null, inconclusive: 0, reason: 'forecast hold: …', ...over });
  const profile = (shadows: { name: string; rolloutState?: ReturnType<typeof st> | null }[], state = 'active') => ({ state, updatedAt: 48_300, shadows });

  it('undecided while the step is held or released at the same step', () => {
    expect(holdOutcome(h, profile([{ name: 'v-2', rolloutState: st() }]))).toBeNull();
    expect(holdOutcome(h, profile([{ name: 'v-2', rolloutState: st({ status: 'running' }) }]))).toBeNull();
  });

  it('the guardrail\'s rollback gives the lead time; other endings do not', () => {
    expect(holdOutcome(h, profile([{ name: 'v-2', rolloutState: st({ status: 'rolled_back', reason: 'guardrail: beyond the tolerated +2 pp' }) }]))).toEqual({ outcome: 'rolled_back', decidedAt: 48_300, leadMs: 28_300, reason: 'guardrail: beyond the tolerated +2 pp' });
    expect(holdOutcome(h, profile([{ name: 'v-2', rolloutState: st() }], 'rolled_back'))).toMatchObject({ outcome: 'rolled_back', leadMs: 28_300 });
    expect(holdOutcome(h, profile([{ name: 'v-2', rolloutState: st({ status: 'running', step: 1, stepStartedAt: 48_300 }) }]))).toMatchObject({ outcome: 'advanced', leadMs: null });
    expect(holdOutcome(h, profile([{ name: 'v-2', rolloutState: st({ status: 'completed' }) }]))).toMatchObject({ outcome: 'completed', leadMs: null });
    expect(holdOutcome(h, profile([]))).toMatchObject({ outcome: 'removed', leadMs: null, reason: null });
  });
});

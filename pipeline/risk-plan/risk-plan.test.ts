import { FIXED_PLAN, RISK_TIERS, describeSizing, planForRisk, tierFor } from './size.ts';
import { betaDraw, forecastStep, shouldHoldEarly, type ArmCounts, type Judge } from './forecast.ts';
import { Prng } from '../simulator/prng.ts';

describe('risk → plan', () => {
  it('tiers cover [0, 1] in order; riskier tiers start smaller, analyse longer and need more sessions', () => {
    expect([0, 0.149, 0.15, 0.34, 0.35, 0.59, 0.6, 1].map((p) => tierFor(p).tier)).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high', 'very_high', 'very_high']);
    for (let i = 1; i < RISK_TIERS.length; i++) {
      const [a, b] = [RISK_TIERS[i - 1].plan, RISK_TIERS[i].plan];
      expect(b.steps[0]).toBeLessThan(a.steps[0]);
      expect(b.analysisSeconds).toBeGreaterThan(a.analysisSeconds);
      expect(b.minSessionsPerArm).toBeGreaterThan(a.minSessionsPerArm);
      expect(b.guardrails[0].maxDelta).toBeLessThan(a.guardrails[0].maxDelta);
    }
    // Steps strictly increase and never pass 50 % (a control arm of equal size needs the rest).
    for (const t of [...RISK_TIERS.map((x) => x.plan), FIXED_PLAN]) {
      expect(t.steps.every((s, i) => i === 0 || s > t.steps[i - 1])).toBe(true);
      expect(Math.max(...t.steps)).toBeLessThanOrEqual(50);
    }
  });

  it('the prior (20 %) sizes a medium plan and says it was the prior', () => {
    const r = planForRisk({ probability: 0.2, source: 'prior', modelVersion: null });
    expect(r.sizedBy).toEqual({ probability: 0.2, source: 'prior', modelVersion: null, tier: 'medium', overridden: [] });
    expect(r.plan.steps).toEqual([5, 15, 30, 50]);
    expect(describeSizing(r.sizedBy, r.plan)).toMatch(/^risk 20.0 % \(the prior \(too little history for a model\)\) → medium tier: start 5 %/);
  });

  it('operator fields win; a full operator plan is the operator\'s', () => {
    const r = planForRisk({ probability: 0.7, source: 'model', modelVersion: 3 }, { steps: [1, 50], onComplete: 'promote' });
    expect(r.plan).toMatchObject({ steps: [1, 50], onComplete: 'promote', analysisSeconds: 300, minSessionsPerArm: 800 });
    expect(r.sizedBy).toMatchObject({ source: 'model', tier: 'very_high', overridden: ['steps', 'onComplete'] });
    const full = planForRisk({ probability: 0.7, source: 'model', modelVersion: 3 }, { ...FIXED_PLAN });
    expect(full.sizedBy).toMatchObject({ source: 'operator', tier: null, modelVersion: null });
    expect(full.plan).toEqual(FIXED_PLAN);
    // The mapping's own objects are never mutated by an override.
    expect(RISK_TIERS[3].plan.steps).toEqual([1, 2, 5, 10, 25, 50]);
  });
});

describe('guardrail forecast', () => {
  /** Fixed-horizon stand-in for the analysis: 95 % Wald interval of the rate difference beyond +1 pp. */
  const judge: Judge = (s: ArmCounts, c: ArmCounts) => {
    if (s.sessions < 30 || c.sessions < 30) return 'unmeasured';
    const ps = s.errorSessions / s.sessions;
    const pc = c.errorSessions / c.sessions;
    const se = Math.sqrt((ps * (1 - ps)) / s.sessions + (pc * (1 - pc)) / c.sessions) || 1e-9;
    return ps - pc - 1.96 * se > 0.01 ? 'regressed' : 'pass';
  };

  it('Beta draws have the right mean (seeded)', () => {
    const rng = new Prng('beta');
    let sum = 0;
    for (let i = 0; i < 20000; i++) sum += betaDraw(rng, 3, 7);
    expect(sum / 20000).toBeCloseTo(0.3, 2);
  });

  it('a clearly regressing shadow is forecast to fail before the analysis can say so; a healthy one is not', () => {
    // 15 s into a 60 s step: 30 sessions per arm, shadow 6 with errors vs control 1.
    const bad = forecastStep({ shadow: { sessions: 30, errorSessions: 6 }, control: { sessions: 30, errorSessions: 1 }, elapsedSeconds: 15, stepSeconds: 60, judge, seed: 'a' });
    expect(bad.now).toBe('pass'); // too early for the interval to exclude +1 pp …
    expect(bad.failProbability).toBeGreaterThan(0.8); // … but the end of the step will
    expect(shouldHoldEarly(bad)).toBe(true);
    expect(bad.expectedShadowSessions).toBe(120);
    console.log(`forecast: P(fail at step end) ${bad.failProbability}`);
    const good = forecastStep({ shadow: { sessions: 30, errorSessions: 1 }, control: { sessions: 30, errorSessions: 1 }, elapsedSeconds: 20, stepSeconds: 60, judge, seed: 'a' });
    expect(good.failProbability).toBeLessThan(0.1);
    expect(shouldHoldEarly(good)).toBe(false);
  });

  it('is reproducible for the same seed and says nothing new once the analysis already fails', () => {
    const input = { shadow: { sessions: 50, errorSessions: 6 }, control: { sessions: 50, errorSessions: 2 }, elapsedSeconds: 30, stepSeconds: 60, judge, seed: 'x' };
    expect(forecastStep(input)).toEqual(forecastStep(input));
    const already = forecastStep({ ...input, shadow: { sessions: 200, errorSessions: 60 }, control: { sessions: 200, errorSessions: 4 } });
    expect(already.now).toBe('regressed');
    expect(shouldHoldEarly(already)).toBe(false);
  });
});

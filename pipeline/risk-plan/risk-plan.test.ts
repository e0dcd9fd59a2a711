import { FIXED_PLAN, RISK_TIERS, describeSizing, planForRisk, tierFor } from './size.ts';

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

import { byLine, defaultPlan, draftToPlan, kindLabel, parseSteps, planToDraft, rolloutPutBody, statusLabel, validatePlan, weightsLine } from './rollout.ts';
import type { ShadowConfigView } from './types.ts';

const view: ShadowConfigView = {
  itemId: 'i', profileVersion: 4, state: 'active', holdout: 5, guardrail: false,
  shadows: [
    { name: 'a', artifact: { sha256: 'x', size: 1 }, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: { api: 'https://a.example' }, traffic: { percentage: 5, match: 'all', rules: [] }, control: true,
      rollout: { steps: [{ percentage: 5 }, { percentage: 20, analysisSeconds: 300 }], analysisSeconds: 60, minSessionsPerArm: 200, guardrails: [], maxInconclusive: 3, onComplete: 'hold' },
      rolloutState: { status: 'running', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 1, reason: null } },
    { name: 'b', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: 10, match: 'all', rules: [] } },
  ],
};

test('steps are typed as text, with an optional period per step', () => {
  expect(parseSteps('5, 20@300s, 50%')).toEqual({ steps: [{ percentage: 5 }, { percentage: 20, analysisSeconds: 300 }, { percentage: 50 }], error: null });
  expect(parseSteps('20, 5').error).toMatch(/raise/);
  expect(parseSteps('five').error).toMatch(/not a share/);
  expect(parseSteps('0').error).toMatch(/above 0/);
  expect(parseSteps(' ').error).toMatch(/at least one/);
  expect(planToDraft(view.shadows[0].rollout!).steps).toBe('5, 20@300s');
  expect(draftToPlan(planToDraft(view.shadows[0].rollout!))).toEqual(view.shadows[0].rollout);
});

test('validation uses the server paths', () => {
  const d = { ...defaultPlan(), steps: '10, 5', analysisSeconds: 0, guardrails: [{ metric: 'cpu', direction: 'increase' as const, maxDelta: -1 }] };
  expect(validatePlan(d, 'shadows/1/rollout').map((e) => e.path)).toEqual(['shadows/1/rollout/steps', 'shadows/1/rollout/analysisSeconds', 'shadows/1/rollout/guardrails/0/metric', 'shadows/1/rollout/guardrails/0/maxDelta']);
  expect(validatePlan(defaultPlan(), 'p')).toEqual([]);
});

test('the PUT body changes only what the Rollout tab edits', () => {
  const plan = draftToPlan(defaultPlan());
  const body = rolloutPutBody(view, { shadow: 'b', plan });
  expect(body.shadows[1].rollout).toEqual(plan);
  expect(body.shadows[0]).not.toHaveProperty('rollout');
  expect(body.shadows[0]).not.toHaveProperty('rolloutState');
  expect(body.shadows[0]).not.toHaveProperty('artifact');
  expect(body.shadows[0].endpoints).toEqual({ api: 'https://a.example' });
  expect(body).toEqual(expect.objectContaining({ holdout: 5 }));
  expect(body).not.toHaveProperty('guardrail');
  expect(body).not.toHaveProperty('schedule');
  expect(rolloutPutBody(view, { shadow: 'a', plan: null }).shadows[0].rollout).toBeNull();
  expect(rolloutPutBody(view, { guardrail: true })).toEqual(expect.objectContaining({ guardrail: true }));
  expect(rolloutPutBody(view, { bandit: null })).toEqual(expect.objectContaining({ bandit: null }));
});

test('labels and sentences', () => {
  expect(statusLabel(view.shadows[0].rolloutState, view.shadows[0].rollout)).toBe('Running · step 1 of 2 (5%) · 1 inconclusive');
  expect(statusLabel(null, null)).toBe('No plan');
  expect(kindLabel('shadow_rollback')).toBe('Shadow rolled back');
  expect(byLine({ id: '1', shadow: 'a', kind: 'rollback', rule: 'inconclusive_limit', automated: true, actor: 'system:rollout', profileVersion: 5, step: 0, percentage: 5, reason: '', evidence: {}, at: 0 })).toBe('automatic (inconclusive limit)');
  expect(weightsLine([{ arm: 'a', weight: 0.1 }, { arm: 'b', weight: 0.851 }])).toBe('a 10% · b 85.1%');
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../errors.ts';
import { parsePlan, planIssues, planFromSchedule, startState, type RolloutPlan, type RolloutState } from './plan.ts';
import { applyDecision, decideRollout, type DecisionRecord, type RolloutDecision } from './decide.ts';
import { judgeGuardrail, type ArmEvidence, type MetricComparison } from './evidence.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

interface Case {
  name: string;
  plan: string;
  state: RolloutState;
  evidence: string | null;
  baseline: boolean;
  now: number;
  expect: Record<string, unknown>;
}
const golden = JSON.parse(readFileSync(path.join(here, 'cases.json'), 'utf8')) as { plans: Record<string, unknown>; evidence: Record<string, unknown>; cases: Case[] };

/** JSON has no NaN: null in a comparison stands for it. */
function nanify<T>(v: T): T {
  if (v === null) return NaN as unknown as T;
  if (Array.isArray(v)) return v.map(nanify) as unknown as T;
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, k === 'srm' && x === null ? null : nanify(x)])) as T;
  return v;
}

describe('rollout plan', () => {
  it('fills defaults and accepts numbers or step objects', () => {
    const p = parsePlan({ steps: [5, { percentage: 20, analysisSeconds: 120 }, 50] });
    expect(p).toEqual({
      steps: [{ percentage: 5 }, { percentage: 20, analysisSeconds: 120 }, { percentage: 50 }],
      analysisSeconds: 60, minSessionsPerArm: 200, guardrails: [], maxInconclusive: 3, onComplete: 'hold',
    });
  });

  it('names every field at fault', () => {
    const { issues } = planIssues(
      { steps: [20, 5, 101], analysisSeconds: 3, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }, { metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }] },
      'shadows/0/rollout',
    );
    expect(issues.map((i) => i.path).sort()).toEqual(['shadows/0/rollout/analysisSeconds', 'shadows/0/rollout/guardrails/1', 'shadows/0/rollout/steps/1', 'shadows/0/rollout/steps/2']);
    const bad = planIssues({ steps: [], guardrails: [{ metric: 'cpu', direction: 'up', maxDelta: -1 }], onComplete: 'ship', typo: 1 }, 'r').issues.map((i) => i.path).sort();
    expect(bad).toEqual(['r', 'r/guardrails/0/direction', 'r/guardrails/0/maxDelta', 'r/guardrails/0/metric', 'r/onComplete', 'r/steps']);
  });

  it('refuses guardrails on a shadow without a control cohort', () => {
    expect(() => parsePlan({ steps: [5], guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0 }] }, 'rollout', { hasControl: false })).toThrow(ValidationError);
    expect(parsePlan({ steps: [5] }, 'rollout', { hasControl: false }).guardrails).toEqual([]);
  });

  it('honours the configured minimum analysis period', () => {
    expect(planIssues({ steps: [5], analysisSeconds: 2 }, 'r', { hasControl: true, limits: { minAnalysisSeconds: 1 } }).issues).toEqual([]);
    expect(planIssues({ steps: [5], analysisSeconds: 2 }, 'r').issues[0].message).toMatch(/at least 10 seconds/);
  });

  it('turns a legacy timer schedule into a plan without guardrails or sample requirement', () => {
    expect(planFromSchedule([{ percentage: 10, holdSeconds: 30 }, { percentage: 50, holdSeconds: 60 }])).toEqual({
      steps: [{ percentage: 10 }, { percentage: 50, analysisSeconds: 60 }], analysisSeconds: 30, minSessionsPerArm: 0, guardrails: [], maxInconclusive: 3, onComplete: 'hold',
    });
  });
});

describe('guardrail judgement', () => {
  const c = (ci: [number, number], valid = true): MetricComparison => ({ valid, diff: (ci[0] + ci[1]) / 2, ci, p: 0.01, significant: ci[0] > 0 || ci[1] < 0, alpha: 0.05, shadow: { n: 500, value: 0.1 }, control: { n: 500, value: 0.05 } });
  it('regresses only when the whole interval is beyond the margin', () => {
    const g = { metric: 'errorRate', direction: 'increase' as const, maxDelta: 0.01 };
    expect(judgeGuardrail(g, c([0.011, 0.05])).verdict).toBe('regressed');
    expect(judgeGuardrail(g, c([0.01, 0.05])).verdict).toBe('pass');
    expect(judgeGuardrail(g, c([-0.05, -0.011])).verdict).toBe('pass');
    expect(judgeGuardrail({ ...g, direction: 'decrease' }, c([-0.05, -0.011])).verdict).toBe('regressed');
    expect(judgeGuardrail(g, c([NaN, NaN], false)).verdict).toBe('unmeasured');
    expect(judgeGuardrail(g, undefined)).toMatchObject({ verdict: 'unmeasured', shadowN: 0, controlN: 0 });
  });
});

describe('decideRollout golden cases', () => {
  it.each(golden.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const plan = parsePlan(golden.plans[c.plan], 'rollout', { hasControl: true, limits: { minAnalysisSeconds: 1 } });
    const evidence = c.evidence === null ? null : nanify(golden.evidence[c.evidence] as ArmEvidence);
    const d = decideRollout({ shadow: 'checkout-v2', plan, state: c.state, evidence, baseline: c.baseline, now: c.now });
    expect(d.kind).toBe(c.expect.kind);
    if (d.kind === 'none') return;
    const { kind: _k, ...rest } = c.expect;
    expect(d.record).toMatchObject(rest);
    // Every decision names its evidence: arm sizes, the guardrails judged, the rule, a sentence.
    expect(d.record.sessions).toEqual(evidence?.sessions ?? { shadow: 0, control: 0 });
    expect(d.record.guardrails).toHaveLength(plan.guardrails.length);
    expect(d.record.reason).toMatch(/^checkout-v2 step \d\/\d \(\d+%\): /);
  });

  it('writes the rule\'s numbers into the sentence', () => {
    const plan = parsePlan(golden.plans.std);
    const d = decideRollout({ shadow: 'checkout-v2', plan, state: startState(0), evidence: nanify(golden.evidence.regressed as ArmEvidence), baseline: true, now: 10_000 });
    expect(d.kind === 'rollback' && d.record.reason).toBe(
      'checkout-v2 step 1/3 (5%): errorRate +10 pp [+4 pp, +16 pp] vs control is beyond the tolerated +1 pp (always-valid p<0.001, 400 vs 410): roll back this shadow.',
    );
  });
});

function recordOf(d: RolloutDecision): DecisionRecord {
  if (d.kind === 'none') throw new Error(`expected a decision, got none (${d.why})`);
  return d.record;
}

describe('applyDecision', () => {
  const plan: RolloutPlan = parsePlan({ steps: [5, 20], guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }] });
  const ev = nanify(golden.evidence.healthy as ArmEvidence);
  it('walks a plan from start to completion', () => {
    let s = startState(0);
    const d1 = decideRollout({ shadow: 's', plan, state: s, evidence: ev, baseline: true, now: 60_000 });
    expect(d1.kind).toBe('advance');
    s = applyDecision(s, recordOf(d1), 61_000);
    expect(s).toEqual({ status: 'running', step: 1, stepStartedAt: 61_000, lastAnalysisAt: null, inconclusive: 0, reason: null });
    const d2 = decideRollout({ shadow: 's', plan, state: s, evidence: ev, baseline: true, now: 121_000 });
    expect(d2.kind).toBe('complete');
    s = applyDecision(s, recordOf(d2), 121_000);
    expect(s.status).toBe('completed');
    expect(decideRollout({ shadow: 's', plan, state: s, evidence: ev, baseline: true, now: 999_000 }).kind).toBe('none');
  });

  it('a hold records the analysis time and count', () => {
    const s = startState(0);
    const d = decideRollout({ shadow: 's', plan, state: s, evidence: null, baseline: true, now: 60_000 });
    expect(d.kind).toBe('hold');
    expect(applyDecision(s, recordOf(d), 60_500)).toMatchObject({ lastAnalysisAt: 60_500, inconclusive: 1, status: 'running' });
  });
});

import { earlyHoldRows, fmtLead, forecastHoldRows, forecastRows, holdRows, pct, planSummary, riskSummary, splitSizing, toneFor } from './risk.ts';
import type { RiskHoldView, RiskScoreView } from './types.ts';

const base: RiskScoreView = { id: 'a', itemId: 'i', version: '1.1.0', shadow: null, phase: 'ingest', source: 'model', modelVersion: 3, probability: 0.42, low: null, high: null, explanation: [{ feature: 'new_origins', value: 2, contribution: 0.9 }, { feature: 'script_growth', value: 0.3125, contribution: 0.2 }, { feature: 'major_bump', value: 0, contribution: -0.1 }], note: 'model v3 …', evidenceJson: null, at: 1000 };

test('ingest score with the inputs that pushed it up, then the newest live update', () => {
  expect(riskSummary([])).toBeNull();
  const s = riskSummary([base])!;
  expect(s).toMatchObject({ version: '1.1.0', atIngest: '42.0 %', source: 'model v3', pushedUp: ['new_origins = 2 (+0.90)', 'script_growth = 0.313 (+0.20)'], now: null, tone: 'bad' });
  const upd: RiskScoreView = { ...base, id: 'b', phase: 'update', shadow: 'next', probability: 0.08, at: 2000, evidenceJson: JSON.stringify({ shadowSessions: 120, shadowErrorSessions: 2, baselineRate: 0.021, baseline: 'control:next' }) };
  const t = riskSummary([upd, base])!;
  expect(t).toMatchObject({ now: '8.0 %', shadow: 'next', tone: 'ok', nowDetail: '2 of 120 shadow sessions with errors vs 2.1 % on control:next' });
});

test('the prior says so and shows its interval', () => {
  const s = riskSummary([{ ...base, source: 'prior', modelVersion: null, probability: 0.2, low: 0.013, high: 0.527, explanation: [] }])!;
  expect(s).toMatchObject({ source: 'prior (too little history for a model)', interval: '1.3 %–52.7 %', pushedUp: [], tone: 'warn' });
  expect([toneFor(0.1), toneFor(0.2), toneFor(0.5)]).toEqual(['ok', 'warn', 'bad']);
});

test('the plan the score chose is read back from the ingest note (tier, plan, operator fields); a replacing ingest has none', () => {
  const prior = 'too little history for a model: 0 labelled rollouts in the last 90 days (0 regressions); training needs 30 with 5 of each outcome. Using the prior Beta(1, 4) updated with those outcomes: 20.0 % (90 % interval 1.3 %–52.7 %), the same for every version; no change feature is used';
  const sized = `${prior}. Sized: risk 20.0 % (the prior (too little history for a model)) → medium tier: start 5 %, steps 5/15/30/50 %, 120 s analyses, 300 sessions per arm, onComplete promote`;
  expect(splitSizing(sized)).toEqual({ note: prior, plan: { tier: 'medium', text: 'start 5 %, steps 5/15/30/50 %, 120 s analyses, 300 sessions per arm, onComplete promote', overridden: null } });
  expect(splitSizing(`${prior}. Sized: risk 72.0 % (model v2) → very_high tier: start 1 %, steps 1/50 %, 300 s analyses, 800 sessions per arm, onComplete hold; operator set steps`).plan)
    .toEqual({ tier: 'very high', text: 'start 1 %, steps 1/50 %, 300 s analyses, 800 sessions per arm, onComplete hold', overridden: 'operator set steps' });
  expect(splitSizing('x. Sized: plan set by the operator: start 50 %, steps 50 %, 300 s analyses, 0 sessions per arm, onComplete hold').plan).toEqual({ tier: null, text: 'start 50 %, steps 50 %, 300 s analyses, 0 sessions per arm, onComplete hold', overridden: null });
  expect(splitSizing(prior)).toEqual({ note: prior, plan: null });
  const s = riskSummary([{ ...base, source: 'prior', modelVersion: null, probability: 0.2, explanation: [], note: sized }])!;
  expect(s).toMatchObject({ sourceKind: 'prior', note: prior, plan: { tier: 'medium' }, current: '20.0 %', trend: null, ingestTone: 'warn' });
  const up = riskSummary([{ ...base, source: 'prior', modelVersion: null, probability: 0.2, explanation: [], note: sized }, { ...base, id: 'u', phase: 'update', probability: 0.93, at: 5000, note: '' }])!;
  expect(up).toMatchObject({ now: '93.0 %', current: '93.0 %', trend: 'up', tone: 'bad', ingestTone: 'warn' });
});

test('early holds in words: reason from the evidence, status, lead time before the rollback; only an unreleased, undecided hold is active', () => {
  const h: RiskHoldView = { itemId: 'i', version: '1.1.0', shadow: 'v-1-1-0', scoreId: 's1', baseScoreId: 'b1', probability: 0.956, evidence: { shadowSessions: 12, shadowErrorSessions: 7, baselineSessions: 11, baselineErrorSessions: 0, baseline: 'control' }, heldAt: 10_000, profileVersion: 4, releasedBy: null, outcome: null, decidedAt: null, leadMs: null };
  const [a] = holdRows([h]);
  expect(a).toEqual({ key: 's1', shadow: 'v-1-1-0', version: '1.1.0', reason: 'risk 95.6 % after 7 of 12 shadow sessions with errors vs 0 of 11 on control', heldAt: 10_000, status: 'holding the step', lead: null, active: true });
  expect(holdRows([{ ...h, profileVersion: null }])[0]).toMatchObject({ status: 'hold being applied', active: true });
  expect(holdRows([{ ...h, releasedBy: 'alice' }])[0]).toMatchObject({ status: 'released by alice', active: false, lead: null });
  const rolled = holdRows([{ ...h, outcome: 'regression', decidedAt: 24_000, leadMs: 14_000 }, { ...h, scoreId: 's0', heldAt: 1000, outcome: 'success', decidedAt: 2000 }]);
  expect(rolled.map((r) => [r.key, r.status, r.lead, r.active])).toEqual([['s1', 'rolled back', 'held 14 s before the rollback', false], ['s0', 'the rollout completed', null, false]]);
  expect(holdRows([{ ...h, releasedBy: 'bob', outcome: 'regression', leadMs: 185_000 }])[0]).toMatchObject({ status: 'rolled back (released by bob before)', lead: 'held 3 min 5 s before the rollback' });
  expect([fmtLead(850), fmtLead(14_400), fmtLead(120_000), fmtLead(-2000)]).toEqual(['850 ms', '14 s', '2 min', '−2 s']);
});

test('a probability that is not certain is never shown as 100 % or 0 %', () => {
  expect([pct(0.99996), pct(1), pct(0.9994), pct(0.0004), pct(0), pct(0.2)]).toEqual(['> 99.9 %', '> 99.9 %', '99.9 %', '< 0.1 %', '< 0.1 %', '20.0 %']);
});

describe('[#13] structured plan and guardrail forecast', () => {
  const plan = { version: '1.1.0', shadow: 'v-1-1-0', scoreId: 's', tier: 'very_high', source: 'prior', probability: 0.2, modelVersion: null, steps: [5, 15], analysisSeconds: 120, minSessionsPerArm: 300, guardrails: [], maxInconclusive: 3, onComplete: 'promote', overridden: ['steps'], overriddenBy: 'alice', sizing: '', at: 1 };
  it('planSummary words the structured plan as describeSizing does, with who overrode what', () => {
    expect(planSummary(plan)).toEqual({ tier: 'very high', text: 'start 5 %, steps 5/15 %, 120 s analyses, 300 sessions per arm, onComplete promote', overridden: 'alice set steps' });
    expect(planSummary({ ...plan, overridden: [], overriddenBy: null }).overridden).toBeNull();
    expect(planSummary({ ...plan, source: 'operator', tier: null }).tier).toBeNull();
  });

  const g = { metric: 'errorRate', direction: 'increase' as const, maxDelta: 0.02, status: 'forecast', probability: 0.93, now: { diff: 0.167, se: 0.05, ciLow: -0.024, ciHigh: 0.357, shadowN: 56, controlN: 49 }, projected: { shadowN: 771.6, controlN: 700.2, se: 0.01, halfWidth: 0.03, boundary: 0.05, spread: 0.05 }, rates: { shadow: 3, control: 3 }, elapsedSeconds: 20, remainingSeconds: 105 };
  it('forecastRows: the comparison now, the projected sizes, the probability against the threshold', () => {
    const rows = forecastRows([{ shadow: 'v-2', step: 0, stepStartedAt: 0, analysisDueAt: 0, at: 0, status: 'running', guardrails: [g, { ...g, metric: 'latencyMean', direction: 'decrease', maxDelta: 50, status: 'unmeasured', probability: null, now: { ...g.now, diff: null, ciLow: null, ciHigh: null } }], worst: g, hold: g, holdAt: 0.9 }], 0.9);
    expect(rows[0]).toEqual({ key: 'v-2/0/errorRate/increase', shadow: 'v-2', guardrail: 'errorRate may rise by at most +2 pp', now: '+16.7 pp [−2.4 pp, +35.7 pp] on 56 vs 49', projected: '~772 vs 700 at the analysis in 1 min 45 s', probability: '93.0 %', tone: 'bad' });
    expect(rows[1]).toMatchObject({ guardrail: 'latencyMean may fall by at most −50 ms', now: '56 vs 49 observations', projected: '—', probability: 'too little data yet', tone: 'ok' });
  });

  it('forecastHoldRows: reason, status and lead time', () => {
    const h = { itemId: 'i', shadow: 'v-2', step: 0, stepStartedAt: 5, guardrail: g, probability: 0.93, holdAt: 0.9, heldAt: 1000, reason: 'r', profileVersion: 3, releasedBy: null, outcome: null, decidedAt: null, leadMs: null, outcomeReason: null };
    expect(forecastHoldRows([h])[0]).toMatchObject({ reason: 'forecast 93.0 % that errorRate fails by the step\'s analysis (≥ 90.0 %)', status: 'holding the step', lead: null, active: true });
    expect(forecastHoldRows([{ ...h, releasedBy: 'bob', outcome: 'rolled_back', decidedAt: 29_300, leadMs: 28_300 }])[0]).toMatchObject({ status: 'rolled back (released by bob before)', lead: 'held 28 s before the rollback', active: false });
  });
});

describe('earlyHoldRows', () => {
  const base = { itemId: 'i', step: 0, stepStartedAt: 1000, profileVersion: 5, evidence: null, releasedBy: null, releasedAt: null, releaseReason: null, endedBy: null, endedAt: null } as const;
  it('lists only the holds the in-memory tables do not show, newest first; active ones can be released', () => {
    const shown = [{ key: 'v-1@1000', shadow: 'v-1', version: '', reason: 'r', heldAt: 2000, status: 'holding the step', lead: null, active: true }];
    const rows = earlyHoldRows([
      { ...base, id: 'a', kind: 'forecast', shadow: 'v-1', key: 'v-1@1000', heldAt: 2000, reason: 'forecast hold: x', status: 'active' },
      { ...base, id: 'b', kind: 'forecast', shadow: 'v-2', key: 'v-2@1000', heldAt: 3000, reason: 'forecast hold: y', status: 'active' },
      { ...base, id: 'c', kind: 'risk', shadow: 'v-3', key: 'b1', heldAt: null, reason: 'risk hold u1: z', status: 'released', releasedBy: 'bob' },
      { ...base, id: 'd', kind: 'risk', shadow: 'v-4', key: 'b2', heldAt: 500, reason: 'risk hold u2: w', status: 'ended', endedBy: 'rollback' },
      { ...base, id: 'profile:i:v-1:1500', kind: 'forecast', shadow: 'v-1', key: 'v-1@1500', heldAt: null, reason: 'forecast hold: x', status: 'active' },
    ], shown);
    expect(rows.map((r) => [r.key, r.status, r.active])).toEqual([['b', 'holding the step', true], ['d', 'ended (rollback)', false], ['c', 'released by bob', false]]);
  });
});

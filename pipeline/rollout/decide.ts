/**
 * The rollout decision function: (plan, state, evidence, now) → what to do with one shadow.
 * Pure; the analyzer (pipeline/app wiring) calls it and submits every decision other than
 * `none` as a command on the item's command topic, where the profile writer re-checks it
 * against the current state and applies it (one writer per item).
 *
 * Rules, in order (docs/rollouts.md has the operator's version):
 *  1. A plan that completed or was rolled back decides nothing.
 *  2. Safety checks run at EVERY call while the plan is running or paused — not only at the
 *     analysis period — because the comparisons are always-valid (sequential): looking after
 *     every window does not inflate the false-rollback rate.
 *     a. SRM flagged (p < 0.001)                      → rollback, rule `srm`
 *     b. any guardrail regressed beyond its margin    → rollback, rule `guardrail`
 *  3. A paused plan decides nothing more (pause stops advancing, not protecting).
 *  4. An analysis is due once `analysisSeconds` (of the step) passed since the step began or
 *     since the last analysis; before that: `none`.
 *  5. At an analysis:
 *     a. an arm below `minSessionsPerArm`, or a guardrail metric without a valid comparison
 *        → inconclusive: the count goes up; at `maxInconclusive` in a row → rollback, rule
 *        `inconclusive_limit` ("no data" is never success); below it → hold, rule
 *        `insufficient_data` / `guardrail_unmeasured`;
 *     b. otherwise every guardrail passed → advance to the next step (rule `passed`), or after
 *        the last step → complete (rule `passed`, then `onComplete`: hold or promote).
 */
import { formatDelta, judgeGuardrail, type ArmEvidence, type GuardrailResult, type SrmEvidence } from './evidence.ts';
import { stepSeconds, type OnComplete, type RolloutPlan, type RolloutState } from './plan.ts';

export type DecisionKind = 'advance' | 'rollback' | 'hold' | 'complete';
export type DecisionRule = 'srm' | 'guardrail' | 'inconclusive_limit' | 'insufficient_data' | 'guardrail_unmeasured' | 'passed';

/** The audited record of one decision: everything it was decided on, and the rule that fired. */
export interface DecisionRecord {
  shadow: string;
  kind: DecisionKind;
  rule: DecisionRule;
  /** One sentence for the timeline and the audit log. */
  reason: string;
  /** A scheduled analysis (true) or a safety check between analyses (false). */
  scheduled: boolean;
  step: number;
  percentage: number;
  /** Step and share after the decision (advance), else null. */
  nextStep: number | null;
  nextPercentage: number | null;
  stepStartedAt: number;
  at: number;
  /** Inconclusive analyses in a row after this decision. */
  inconclusive: number;
  maxInconclusive: number;
  minSessionsPerArm: number;
  /** Whether the shadow has a control cohort (a baseline) at all. */
  baseline: boolean;
  sessions: { shadow: number; control: number };
  srm: SrmEvidence | null;
  guardrails: GuardrailResult[];
  /** What completion does (complete only). */
  onComplete: OnComplete | null;
}

export type RolloutDecision = { kind: 'none'; why: string } | { kind: DecisionKind; record: DecisionRecord };

export interface DecideInput {
  shadow: string;
  plan: RolloutPlan;
  state: RolloutState;
  /** Evidence since the current step began; null when nothing at all arrived. */
  evidence: ArmEvidence | null;
  /** The shadow has a control cohort. Without one only the shadow's sessions are counted. */
  baseline: boolean;
  now: number;
}

const EMPTY: ArmEvidence = { sessions: { shadow: 0, control: 0 }, metrics: {}, srm: null };

function fmtP(p: number | null): string {
  if (p === null) return 'p n/a';
  return p < 0.001 ? 'p<0.001' : `p=${p.toFixed(3)}`;
}

function regressionSentence(g: GuardrailResult): string {
  const tol = formatDelta(g.metric, g.direction === 'increase' ? g.maxDelta : -g.maxDelta);
  return `${g.metric} ${formatDelta(g.metric, g.estimate!)} [${formatDelta(g.metric, g.ciLow!)}, ${formatDelta(g.metric, g.ciHigh!)}] vs control is beyond the tolerated ${tol} (always-valid ${fmtP(g.p)}, ${g.shadowN} vs ${g.controlN})`;
}

export function decideRollout(input: DecideInput): RolloutDecision {
  const { plan, state, now, shadow, baseline } = input;
  if (state.status === 'completed' || state.status === 'rolled_back') return { kind: 'none', why: `plan ${state.status}` };
  const ev = input.evidence ?? EMPTY;
  const step = Math.min(state.step, plan.steps.length - 1);
  const pct = plan.steps[step].percentage;
  const guardrails = plan.guardrails.map((g) => judgeGuardrail(g, ev.metrics[g.metric]));
  const due = now >= (state.lastAnalysisAt ?? state.stepStartedAt) + stepSeconds(plan, step) * 1000;
  const head = `${shadow} step ${step + 1}/${plan.steps.length} (${pct}%)`;
  const record = (kind: DecisionKind, rule: DecisionRule, reason: string, extra: Partial<DecisionRecord> = {}): RolloutDecision => ({
    kind,
    record: {
      shadow, kind, rule, reason, scheduled: due, step, percentage: pct, nextStep: null, nextPercentage: null,
      stepStartedAt: state.stepStartedAt, at: now, inconclusive: state.inconclusive, maxInconclusive: plan.maxInconclusive,
      minSessionsPerArm: plan.minSessionsPerArm, baseline, sessions: { ...ev.sessions }, srm: ev.srm, guardrails, onComplete: null, ...extra,
    },
  });

  // 2. Safety checks at every call (running or paused).
  if (ev.srm?.flagged) {
    return record('rollback', 'srm', `${head}: sample ratio mismatch (p${ev.srm.p < 0.001 ? '<0.001' : `=${ev.srm.p.toFixed(4)}`}, exposures ${JSON.stringify(ev.srm.observed)}); the comparison cannot be trusted: roll back this shadow.`);
  }
  const regressed = guardrails.filter((g) => g.verdict === 'regressed');
  if (regressed.length > 0) {
    return record('rollback', 'guardrail', `${head}: ${regressed.map(regressionSentence).join('; ')}: roll back this shadow.`);
  }
  if (state.status === 'paused') return { kind: 'none', why: 'plan paused' };
  if (!due) return { kind: 'none', why: 'analysis not due' };

  // 5. A scheduled analysis.
  const need = plan.minSessionsPerArm;
  const short = ev.sessions.shadow < need || (baseline && ev.sessions.control < need);
  const unmeasured = guardrails.filter((g) => g.verdict === 'unmeasured');
  if (short || unmeasured.length > 0) {
    const n = state.inconclusive + 1;
    const why = short
      ? `too little data: ${ev.sessions.shadow} shadow${baseline ? ` and ${ev.sessions.control} control` : ''} sessions, ${need} per arm needed`
      : `no valid comparison yet for ${unmeasured.map((g) => g.metric).join(', ')}`;
    if (n >= plan.maxInconclusive) {
      return record('rollback', 'inconclusive_limit', `${head}: ${why} — ${n} inconclusive analyses in a row (limit ${plan.maxInconclusive}); no data is not success: roll back this shadow.`, { inconclusive: n });
    }
    return record('hold', short ? 'insufficient_data' : 'guardrail_unmeasured', `${head}: ${why}; hold (inconclusive ${n} of ${plan.maxInconclusive}).`, { inconclusive: n });
  }
  const passed = guardrails.length
    ? `every guardrail within its margin (${guardrails.map((g) => `${g.metric} ${formatDelta(g.metric, g.estimate!)}, upper ${formatDelta(g.metric, g.direction === 'increase' ? g.ciHigh! : g.ciLow!)}`).join('; ')}; ${ev.sessions.shadow} vs ${ev.sessions.control} sessions)`
    : need > 0
      ? `${ev.sessions.shadow} shadow sessions reached (no guardrails)`
      : 'step time elapsed (no guardrails, no sample requirement)';
  if (step + 1 >= plan.steps.length) {
    return record('complete', 'passed', `${head}: ${passed}; last step passed — plan complete, ${plan.onComplete === 'promote' ? 'promote the shadow' : 'hold at ' + pct + '%'}.`, { inconclusive: 0, onComplete: plan.onComplete });
  }
  const next = plan.steps[step + 1].percentage;
  return record('advance', 'passed', `${head}: ${passed}; advance to ${next}%.`, { inconclusive: 0, nextStep: step + 1, nextPercentage: next });
}

/**
 * The state after an accepted decision (the profile writer applies it). `none` never reaches
 * here. Advancing starts the next step's clock at `now`; a hold records the analysis time so the
 * next analysis is one period later.
 */
export function applyDecision(state: RolloutState, rec: DecisionRecord, now: number): RolloutState {
  switch (rec.kind) {
    case 'advance':
      return { status: 'running', step: rec.nextStep!, stepStartedAt: now, lastAnalysisAt: null, inconclusive: 0, reason: null };
    case 'hold':
      return { ...state, lastAnalysisAt: now, inconclusive: rec.inconclusive };
    case 'complete':
      return { ...state, status: 'completed', lastAnalysisAt: now, inconclusive: 0, reason: rec.reason };
    case 'rollback':
      return { ...state, status: 'rolled_back', lastAnalysisAt: now, inconclusive: rec.inconclusive, reason: rec.reason };
  }
}

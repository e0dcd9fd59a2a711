/**
 * The Rollout tab's model (plain TS, unit-tested): rollout plans as edited (a draft with the
 * steps as text), the PUT body that saves a plan, a bandit or the item's guardrail flag on top
 * of the current shadow config, local validation with the server's field paths, and the
 * timeline's sentences. Components only render (console/README.md).
 */
import type { BanditPlanView, Guardrail, PutShadowConfig, RolloutPlanView, RolloutStateView, ShadowConfigView, TimelineEntry } from './types.ts';
import type { FieldError } from './api.ts';
import { draftToShadow, shadowToDraft } from './editor.ts';

export const GUARDRAIL_METRICS = ['errorRate', 'requestErrorRate', 'latencyMean'] as const;
export const METRIC_RE = /^(errorRate|requestErrorRate|latencyMean|conversion:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}|perf:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/;

/** A plan as edited: steps typed as "5, 20, 50". */
export interface PlanDraft {
  steps: string;
  analysisSeconds: number;
  minSessionsPerArm: number;
  maxInconclusive: number;
  onComplete: 'hold' | 'promote';
  guardrails: Guardrail[];
}

export function defaultPlan(): PlanDraft {
  return { steps: '5, 20, 50', analysisSeconds: 60, minSessionsPerArm: 200, maxInconclusive: 3, onComplete: 'hold', guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }] };
}

export function planToDraft(p: RolloutPlanView): PlanDraft {
  return {
    steps: p.steps.map((s) => (s.analysisSeconds ? `${s.percentage}@${s.analysisSeconds}s` : String(s.percentage))).join(', '),
    analysisSeconds: p.analysisSeconds, minSessionsPerArm: p.minSessionsPerArm, maxInconclusive: p.maxInconclusive, onComplete: p.onComplete,
    guardrails: p.guardrails.map((g) => ({ ...g })),
  };
}

/** "5, 20@300s, 50" → steps; a step may carry its own analysis period after "@". */
export function parseSteps(text: string): { steps: RolloutPlanView['steps']; error: string | null } {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) return { steps: [], error: 'Add at least one step' };
  const steps: RolloutPlanView['steps'] = [];
  for (const p of parts) {
    const m = /^(\d+(?:\.\d{1,2})?)\s*%?(?:\s*@\s*(\d+)\s*s?)?$/.exec(p);
    if (!m) return { steps: [], error: `“${p}” is not a share such as 20 or 20@300s` };
    const percentage = Number(m[1]);
    if (!(percentage > 0 && percentage <= 100)) return { steps: [], error: `${percentage}% is not above 0 and at most 100` };
    if (steps.length && percentage <= steps[steps.length - 1].percentage) return { steps: [], error: 'Each step must raise the share' };
    steps.push(m[2] ? { percentage, analysisSeconds: Number(m[2]) } : { percentage });
  }
  return { steps, error: null };
}

export function draftToPlan(d: PlanDraft): RolloutPlanView {
  return {
    steps: parseSteps(d.steps).steps, analysisSeconds: d.analysisSeconds, minSessionsPerArm: d.minSessionsPerArm,
    maxInconclusive: d.maxInconclusive, onComplete: d.onComplete, guardrails: d.guardrails.map((g) => ({ ...g })),
  };
}

/** Local checks with the server's paths (`shadows/<i>/rollout/…`); the server checks again. */
export function validatePlan(d: PlanDraft, prefix: string): FieldError[] {
  const errs: FieldError[] = [];
  const s = parseSteps(d.steps);
  if (s.error) errs.push({ path: `${prefix}/steps`, message: s.error });
  if (!(Number.isInteger(d.analysisSeconds) && d.analysisSeconds >= 1)) errs.push({ path: `${prefix}/analysisSeconds`, message: 'Whole seconds, at least 1' });
  if (!(Number.isInteger(d.minSessionsPerArm) && d.minSessionsPerArm >= 0)) errs.push({ path: `${prefix}/minSessionsPerArm`, message: 'A whole number, 0 or more' });
  if (!(Number.isInteger(d.maxInconclusive) && d.maxInconclusive >= 1)) errs.push({ path: `${prefix}/maxInconclusive`, message: 'At least 1' });
  d.guardrails.forEach((g, i) => {
    if (!METRIC_RE.test(g.metric)) errs.push({ path: `${prefix}/guardrails/${i}/metric`, message: 'errorRate, requestErrorRate, latencyMean, conversion:<point> or perf:<name>' });
    if (!(Number.isFinite(g.maxDelta) && g.maxDelta >= 0)) errs.push({ path: `${prefix}/guardrails/${i}/maxDelta`, message: 'A number, 0 or more' });
  });
  return errs;
}

/**
 * The PUT body that changes only what the Rollout tab edits, on top of the current view: one
 * shadow's plan (`plan: null` removes it), the bandit (`null` removes it), the guardrail flag.
 * Everything else is re-sent as it is, so a save never clears another field.
 */
export function rolloutPutBody(view: ShadowConfigView, change: { shadow?: string; plan?: RolloutPlanView | null; bandit?: BanditPlanView | null; guardrail?: boolean }): PutShadowConfig {
  const shadows = (view.shadows ?? []).map((s) => {
    const base = draftToShadow(shadowToDraft(s)) as PutShadowConfig['shadows'][number] & { rollout?: RolloutPlanView | null; rolloutState?: unknown };
    delete base.rolloutState;
    if (change.shadow === s.name && change.plan !== undefined) base.rollout = change.plan;
    return base;
  });
  const body: PutShadowConfig = { shadows };
  if (view.holdout != null) body.holdout = view.holdout;
  if (change.guardrail !== undefined) body.guardrail = change.guardrail;
  if (change.bandit !== undefined) body.bandit = change.bandit;
  return body;
}

export function statusLabel(st: RolloutStateView | null | undefined, plan: RolloutPlanView | null | undefined): string {
  if (!plan || !st) return 'No plan';
  const step = `step ${st.step + 1} of ${plan.steps.length} (${plan.steps[Math.min(st.step, plan.steps.length - 1)].percentage}%)`;
  switch (st.status) {
    case 'running': return `Running · ${step}${st.inconclusive ? ` · ${st.inconclusive} inconclusive` : ''}`;
    case 'paused': return `Paused · ${step}`;
    case 'completed': return `Completed · ${step}`;
    case 'rolled_back': return `Rolled back · ${step}`;
  }
}

const KIND_LABELS: Record<string, string> = {
  advance: 'Advanced', rollback: 'Rolled back', hold: 'Held', complete: 'Completed', start: 'Plan started', pause: 'Paused', resume: 'Resumed', skip: 'Skipped',
  restart: 'Restarted', shadow_rollback: 'Shadow rolled back', shadow_activate: 'Shadow activated', reweight: 'Reweighted', bandit_start: 'Bandit started',
  bandit_pause: 'Bandit paused', bandit_resume: 'Bandit resumed', bandit_stop: 'Bandit stopped', promote: 'Promoted', promotion_rollback: 'Promotion rolled back',
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind;
}

/** Who decided: "automatic (guardrail)" or the operator's name. */
export function byLine(d: TimelineEntry): string {
  return d.automated ? `automatic${d.rule ? ` (${d.rule.replace(/_/g, ' ')})` : ''}` : d.actor;
}

/** Weights as "a 10% · b 85% · control 5%". */
export function weightsLine(weights: readonly { arm: string; weight: number }[]): string {
  return weights.map((w) => `${w.arm} ${Math.round(w.weight * 1000) / 10}%`).join(' · ');
}

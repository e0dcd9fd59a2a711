/**
 * Rollout plans: the model of `shadows[i].rollout` in a shadow config (docs/rollouts.md).
 *
 * A plan ramps one shadow through `steps` (percentages of the users matching its rules). At every
 * step, each `analysisSeconds`, an analysis compares the shadow with its control cohort on every
 * guardrail and decides (decide.ts): advance, roll this shadow back, or hold. After the last step
 * the plan completes and holds the shadow at its last share or promotes it (`onComplete`).
 *
 * Pure: parsing with defaults and validation (one ValidationError naming every field at fault),
 * and the runtime state a plan starts with. No clock: `now` comes from the caller.
 */
import { z } from 'zod';
import { ValidationError, type FieldIssue } from '../errors.ts';

/** Metrics a guardrail (or a bandit) may watch, with the unit of a delta on them. */
export const METRIC_RE = /^(errorRate|requestErrorRate|latencyMean|conversion:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}|perf:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/;

/** Unit of a metric's value and of a delta on it (rates are fractions: 0.01 = 1 percentage point). */
export function metricUnit(metric: string): 'fraction' | 'ms' | 'score' {
  if (metric === 'errorRate' || metric === 'requestErrorRate' || metric.startsWith('conversion:')) return 'fraction';
  // CLS is unitless (a layout-shift score); every other perf metric is a duration in ms.
  if (metric === 'perf:cls') return 'score';
  return 'ms';
}

/** Direction in which a change of the metric is harmful. */
export type Direction = 'increase' | 'decrease';

/**
 * One guardrail: the shadow regresses when the sequential comparison with its control proves that
 * the metric moved in `direction` by more than `maxDelta` (absolute, in the metric's unit).
 */
export interface Guardrail {
  metric: string;
  direction: Direction;
  /** Tolerated harm, ≥ 0, in the metric's unit (rates: fraction; latency and perf: ms). */
  maxDelta: number;
}

export interface PlanStep {
  /** Share of the users matching the shadow's rules, 0 < p ≤ 100. */
  percentage: number;
  /** Seconds between analyses at this step; absent = the plan's analysisSeconds. */
  analysisSeconds?: number;
}

export type OnComplete = 'hold' | 'promote';

export interface RolloutPlan {
  steps: PlanStep[];
  /** Seconds from a step's start (and between analyses) to its next analysis. */
  analysisSeconds: number;
  /** Sessions each arm (shadow and control) needs before an analysis can pass. */
  minSessionsPerArm: number;
  guardrails: Guardrail[];
  /** Analyses in a row that cannot decide (too little data) before the shadow is rolled back. */
  maxInconclusive: number;
  onComplete: OnComplete;
}

export const PLAN_DEFAULTS = Object.freeze({ analysisSeconds: 60, minSessionsPerArm: 200, maxInconclusive: 3, onComplete: 'hold' as OnComplete });
export const MAX_STEPS = 20;
export const MAX_GUARDRAILS = 20;
/** Longest analysis period (a day): a plan is about automation within minutes, not weeks. */
export const MAX_ANALYSIS_SECONDS = 86_400;

/** Limits that differ between production and tests (configuration, not plan fields). */
export interface PlanLimits {
  /** Shortest analysisSeconds accepted (PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS; default 10). */
  minAnalysisSeconds: number;
}
export const DEFAULT_PLAN_LIMITS: PlanLimits = Object.freeze({ minAnalysisSeconds: 10 });

const guardrailSchema = z.strictObject({
  metric: z.string().regex(METRIC_RE, 'must be errorRate, requestErrorRate, latencyMean, conversion:<point> or perf:<name>'),
  direction: z.enum(['increase', 'decrease'], { message: 'must be "increase" or "decrease" (the harmful direction)' }),
  maxDelta: z.number().min(0, 'must be ≥ 0').refine(Number.isFinite, 'must be finite'),
});

const stepSchema = z.union([
  z.number(),
  z.strictObject({ percentage: z.number(), analysisSeconds: z.number().int('must be whole seconds').optional() }),
]);

const planSchema = z.strictObject({
  steps: z.array(stepSchema).min(1, 'needs at least one step').max(MAX_STEPS, `at most ${MAX_STEPS} steps`),
  analysisSeconds: z.number().int('must be whole seconds').default(PLAN_DEFAULTS.analysisSeconds),
  minSessionsPerArm: z.number().int('must be a whole number').min(0, 'must be ≥ 0').max(10_000_000, 'at most 10,000,000').default(PLAN_DEFAULTS.minSessionsPerArm),
  guardrails: z.array(guardrailSchema).max(MAX_GUARDRAILS, `at most ${MAX_GUARDRAILS} guardrails`).default([]),
  maxInconclusive: z.number().int('must be a whole number').min(1, 'must be ≥ 1').max(100, 'at most 100').default(PLAN_DEFAULTS.maxInconclusive),
  onComplete: z.enum(['hold', 'promote'], { message: 'must be "hold" or "promote"' }).default(PLAN_DEFAULTS.onComplete),
});

function zIssues(error: z.ZodError, prefix: string): FieldIssue[] {
  return error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter((s) => s !== '').join('/'), message: i.message }));
}

function secondsIssue(v: number, path: string, limits: PlanLimits): FieldIssue | null {
  if (v < limits.minAnalysisSeconds) return { path, message: `must be at least ${limits.minAnalysisSeconds} seconds (PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS)` };
  if (v > MAX_ANALYSIS_SECONDS) return { path, message: `must be at most ${MAX_ANALYSIS_SECONDS} seconds` };
  return null;
}

/**
 * Issues of a plan (after defaults), paths under `prefix` (e.g. `shadows/0/rollout`). Besides the
 * shape: steps strictly increasing in (0, 100]; no two guardrails on the same metric and
 * direction; guardrails need a baseline, so a shadow whose control is off may have none.
 */
export function planIssues(input: unknown, prefix: string, ctx: { hasControl: boolean; limits?: PlanLimits } = { hasControl: true }): { plan: RolloutPlan | null; issues: FieldIssue[] } {
  const limits = ctx.limits ?? DEFAULT_PLAN_LIMITS;
  const parsed = planSchema.safeParse(input);
  if (!parsed.success) return { plan: null, issues: zIssues(parsed.error, prefix) };
  const d = parsed.data;
  const issues: FieldIssue[] = [];
  const steps: PlanStep[] = d.steps.map((s) => (typeof s === 'number' ? { percentage: s } : { ...s }));
  steps.forEach((s, i) => {
    const at = `${prefix}/steps/${i}`;
    if (!(s.percentage > 0 && s.percentage <= 100) || !Number.isFinite(s.percentage)) issues.push({ path: typeof d.steps[i] === 'number' ? at : `${at}/percentage`, message: 'must be a percentage above 0 and at most 100' });
    else if (Math.round(s.percentage * 100) !== s.percentage * 100) issues.push({ path: typeof d.steps[i] === 'number' ? at : `${at}/percentage`, message: 'at most two decimals' });
    else if (i > 0 && !(s.percentage > steps[i - 1].percentage)) issues.push({ path: typeof d.steps[i] === 'number' ? at : `${at}/percentage`, message: `steps must increase (previous step is ${steps[i - 1].percentage}%)` });
    if (s.analysisSeconds !== undefined) {
      const si = secondsIssue(s.analysisSeconds, `${at}/analysisSeconds`, limits);
      if (si) issues.push(si);
    }
  });
  const si = secondsIssue(d.analysisSeconds, `${prefix}/analysisSeconds`, limits);
  if (si) issues.push(si);
  const seen = new Map<string, number>();
  d.guardrails.forEach((g, i) => {
    const k = `${g.metric}\u0000${g.direction}`;
    if (seen.has(k)) issues.push({ path: `${prefix}/guardrails/${i}`, message: `duplicate guardrail on ${g.metric} (${g.direction}); also guardrails/${seen.get(k)}` });
    seen.set(k, i);
  });
  if (!ctx.hasControl && d.guardrails.length > 0) {
    issues.push({ path: `${prefix}/guardrails`, message: 'guardrails compare the shadow with its control cohort; this shadow has `control: false`, so it cannot have guardrails' });
  }
  if (issues.length > 0) return { plan: null, issues };
  return {
    plan: { steps, analysisSeconds: d.analysisSeconds, minSessionsPerArm: d.minSessionsPerArm, guardrails: d.guardrails.map((g) => ({ ...g })), maxInconclusive: d.maxInconclusive, onComplete: d.onComplete },
    issues: [],
  };
}

/** Parse a plan with defaults; throws one ValidationError naming every issue. */
export function parsePlan(input: unknown, prefix = 'rollout', ctx: { hasControl: boolean; limits?: PlanLimits } = { hasControl: true }): RolloutPlan {
  const { plan, issues } = planIssues(input, prefix, ctx);
  if (!plan) throw new ValidationError('invalid rollout plan', issues);
  return plan;
}

/** Seconds between analyses at step `i`. */
export function stepSeconds(plan: RolloutPlan, i: number): number {
  return plan.steps[i]?.analysisSeconds ?? plan.analysisSeconds;
}

export type RolloutStatus = 'running' | 'paused' | 'completed' | 'rolled_back';

/**
 * Runtime state of a shadow's plan, kept in the profile beside the plan and changed only by
 * commands through the profile writer (so it survives restarts and has one writer).
 */
export interface RolloutState {
  status: RolloutStatus;
  /** Index of the applied step. */
  step: number;
  /** Epoch ms when the applied step began (its share took effect). */
  stepStartedAt: number;
  /** Epoch ms of the last analysis at this step; null before the first. */
  lastAnalysisAt: number | null;
  /** Analyses in a row at this step that could not decide. */
  inconclusive: number;
  /** Why the plan is paused, rolled back or completed (the rule, or the operator's reason). */
  reason: string | null;
}

/** State of a plan that has just been (re)started: step 0 applied at `now`. */
export function startState(now: number): RolloutState {
  return { status: 'running', step: 0, stepStartedAt: now, lastAnalysisAt: null, inconclusive: 0, reason: null };
}

/** A plan equal in meaning to the legacy timer schedule: no guardrails, no sample requirement. */
export function planFromSchedule(steps: { percentage: number; holdSeconds: number }[]): RolloutPlan {
  const first = steps[0]?.holdSeconds ?? PLAN_DEFAULTS.analysisSeconds;
  return {
    steps: steps.map((s) => (s.holdSeconds === first ? { percentage: s.percentage } : { percentage: s.percentage, analysisSeconds: s.holdSeconds })),
    analysisSeconds: first,
    minSessionsPerArm: 0,
    guardrails: [],
    maxInconclusive: PLAN_DEFAULTS.maxInconclusive,
    onComplete: 'hold',
  };
}

/**
 * Risk sizes the rollout (issue #13, item 4): the documented mapping from a version's risk
 * score to the rollout plan of its proactive shadow — starting share, steps, analysis time and
 * sessions per arm. Pure; README.md has the table and the reasons.
 *
 * The riskier the version, the smaller its first exposure and its increments, the longer each
 * analysis and the more sessions each arm needs before a step may pass (a smaller effect can then
 * be ruled out), and the tighter the guardrail. An operator's explicit plan always wins: the
 * mapping only fills what the operator left out, and the result records what sized it.
 */

import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { zodIssues } from '../shadowing/manifest.ts';

/** Structurally the plan of pipeline/rollout (issue #12): `shadows[i].rollout`. */
export interface SizedPlan {
  steps: number[];
  analysisSeconds: number;
  minSessionsPerArm: number;
  guardrails: { metric: string; direction: 'increase' | 'decrease'; maxDelta: number }[];
  maxInconclusive: number;
  onComplete: 'hold' | 'promote';
}

export type RiskTier = 'low' | 'medium' | 'high' | 'very_high';

export interface Tier {
  tier: RiskTier;
  /** Upper bound (exclusive) of the probability this tier covers. */
  below: number;
  plan: SizedPlan;
}

const errorGuard = (maxDelta: number) => [{ metric: 'errorRate', direction: 'increase' as const, maxDelta }];

/**
 * The mapping. Shares are of the users matching the shadow's rules; with a control arm of equal
 * size (issue 11) a shadow can reach at most 50 %, so every plan ends there. Sessions per arm are
 * what a two-proportion comparison needs to see roughly the tier's tolerated error-rate increase
 * at a 2 % baseline.
 */
export const RISK_TIERS: readonly Tier[] = Object.freeze([
  { tier: 'low', below: 0.15, plan: { steps: [10, 25, 50], analysisSeconds: 60, minSessionsPerArm: 200, guardrails: errorGuard(0.02), maxInconclusive: 3, onComplete: 'promote' } },
  { tier: 'medium', below: 0.35, plan: { steps: [5, 15, 30, 50], analysisSeconds: 120, minSessionsPerArm: 300, guardrails: errorGuard(0.015), maxInconclusive: 3, onComplete: 'promote' } },
  { tier: 'high', below: 0.6, plan: { steps: [2, 5, 10, 25, 50], analysisSeconds: 180, minSessionsPerArm: 500, guardrails: errorGuard(0.01), maxInconclusive: 4, onComplete: 'promote' } },
  // Very likely to regress: crawl, and let an operator decide at the end.
  { tier: 'very_high', below: Infinity, plan: { steps: [1, 2, 5, 10, 25, 50], analysisSeconds: 300, minSessionsPerArm: 800, guardrails: errorGuard(0.005), maxInconclusive: 5, onComplete: 'hold' } },
]) as readonly Tier[];

/** The one plan every version gets when risk does not size it (the benchmark's "fixed plan"). */
export const FIXED_PLAN: SizedPlan = Object.freeze({ steps: [5, 20, 50], analysisSeconds: 60, minSessionsPerArm: 200, guardrails: errorGuard(0.01), maxInconclusive: 3, onComplete: 'promote' }) as SizedPlan;

export interface SizedBy {
  probability: number;
  source: 'model' | 'prior' | 'operator';
  modelVersion: number | null;
  tier: RiskTier | null;
  /** Fields the operator set explicitly (kept as given). */
  overridden: string[];
}

export function tierFor(probability: number): Tier {
  if (!Number.isFinite(probability)) return RISK_TIERS[RISK_TIERS.length - 1];
  return RISK_TIERS.find((t) => probability < t.below) ?? RISK_TIERS[RISK_TIERS.length - 1];
}

/**
 * The plan for a version with this risk, with the operator's explicit fields laid over it
 * (`override`: any subset of a plan). A full operator plan is used as is (`source: operator`).
 */
export function planForRisk(score: { probability: number; source: 'model' | 'prior'; modelVersion: number | null }, override: Partial<SizedPlan> = {}): { plan: SizedPlan; sizedBy: SizedBy } {
  const t = tierFor(score.probability);
  const overridden = (Object.keys(override) as (keyof SizedPlan)[]).filter((k) => override[k] !== undefined);
  const plan: SizedPlan = { ...t.plan, steps: [...t.plan.steps], guardrails: t.plan.guardrails.map((g) => ({ ...g })) };
  for (const k of overridden) (plan as unknown as Record<string, unknown>)[k] = override[k];
  const full = overridden.length === Object.keys(t.plan).length;
  return {
    plan,
    sizedBy: { probability: score.probability, source: full ? 'operator' : score.source, modelVersion: full ? null : score.modelVersion, tier: full ? null : t.tier, overridden },
  };
}

/** One line for the audit log and the console. */
export function describeSizing(s: SizedBy, plan: SizedPlan): string {
  const what = `start ${plan.steps[0]} %, steps ${plan.steps.join('/')} %, ${plan.analysisSeconds} s analyses, ${plan.minSessionsPerArm} sessions per arm, onComplete ${plan.onComplete}`;
  if (s.source === 'operator') return `plan set by the operator: ${what}`;
  const by = s.source === 'model' ? `model v${s.modelVersion}` : 'the prior (too little history for a model)';
  return `risk ${(s.probability * 100).toFixed(1)} % (${by}) → ${s.tier} tier: ${what}${s.overridden.length ? `; operator set ${s.overridden.join(', ')}` : ''}`;
}

/** An operator's explicit plan fields (any subset), checked before anything is built. */
export const planOverrideSchema = z.strictObject({
  steps: z.array(z.number().gt(0).max(50)).min(1).max(20).refine((a) => a.every((x, i) => i === 0 || x > a[i - 1]), 'steps must increase').optional(),
  analysisSeconds: z.number().int().min(10).max(86_400).optional(),
  minSessionsPerArm: z.number().int().min(0).max(10_000_000).optional(),
  guardrails: z.array(z.strictObject({ metric: z.string().min(1).max(80), direction: z.enum(['increase', 'decrease']), maxDelta: z.number().min(0) })).max(20).optional(),
  maxInconclusive: z.number().int().min(1).max(100).optional(),
  onComplete: z.enum(['hold', 'promote']).optional(),
});

export function parsePlanOverride(v: unknown): Partial<SizedPlan> {
  const r = planOverrideSchema.safeParse(v ?? {});
  if (!r.success) throw new ValidationError('rollout plan fields are invalid', zodIssues(r.error, 'rollout'));
  return r.data as Partial<SizedPlan>;
}

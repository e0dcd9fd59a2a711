/**
 * Bandit plans: the model of a profile's `bandit` (docs/rollouts.md, "Bandits").
 *
 * A bandit allocates the users that the item's shadows take (their traffic shares, unchanged)
 * among its arms — two or more shadows, plus the control cohort as an arm — by Thompson
 * sampling on one primary metric, reweighting every `reweightSeconds`. Each arm keeps at least
 * `floorShare`; until every arm has `burnInSessions` sessions the weights stay equal; an arm
 * whose guardrail regresses against the control is dropped (weight 0, its users re-assigned).
 *
 * Pure: parsing with defaults, validation against the shadows it names, the starting state.
 */
import { z } from 'zod';
import { ValidationError, type FieldIssue } from '../errors.ts';
import { METRIC_RE, type Guardrail } from '../rollout/plan.ts';
import { segmentSplitIssues, segmentSplitSchema, startCells, type CellState, type SegmentSplit } from '../segment-allocation/plan.ts';

/** The reserved arm name of the control cohort (the original, instrumented, no rewrites). */
export const CONTROL_ARM = 'control';

export interface BanditPlan {
  /** Shadow names, in a fixed order (the order of the arm ranges for new users). */
  arms: string[];
  /** The control cohort is an arm too (and the guardrails' reference). */
  control: boolean;
  /** Primary metric: conversion:<point>, errorRate, requestErrorRate, latencyMean or perf:<name>. */
  metric: string;
  /** Which direction of the metric is better (default: higher for conversions, lower otherwise). */
  better: 'higher' | 'lower';
  /** Smallest weight of a live arm, as a fraction (0.05 = 5 %); live arms × floorShare ≤ 1. */
  floorShare: number;
  /** Sessions every live arm needs before the weights leave equal shares. */
  burnInSessions: number;
  /** Seconds between reweightings. */
  reweightSeconds: number;
  /** Checked on each shadow arm against the control at every reweighting; a regression drops the arm. */
  guardrails: Guardrail[];
  /** Per-segment allocation (pipeline/segment-allocation); absent or null = one allocation for everyone. */
  segments?: SegmentSplit | null;
}

export interface BanditLimits {
  /** Shortest reweightSeconds accepted (PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS; default 60). */
  minReweightSeconds: number;
}
export const DEFAULT_BANDIT_LIMITS: BanditLimits = Object.freeze({ minReweightSeconds: 60 });
export const BANDIT_DEFAULTS = Object.freeze({ control: true, floorShare: 0.05, burnInSessions: 100, reweightSeconds: 60 });
export const MAX_ARMS = 16;

const guardrailSchema = z.strictObject({
  metric: z.string().regex(METRIC_RE, 'must be errorRate, requestErrorRate, latencyMean, conversion:<point> or perf:<name>'),
  direction: z.enum(['increase', 'decrease'], { message: 'must be "increase" or "decrease" (the harmful direction)' }),
  maxDelta: z.number().min(0, 'must be ≥ 0'),
});

const schema = z.strictObject({
  arms: z.array(z.string().min(1)).min(2, 'a bandit needs at least two shadows').max(MAX_ARMS, `at most ${MAX_ARMS} arms`),
  control: z.boolean().default(BANDIT_DEFAULTS.control),
  metric: z.string().regex(METRIC_RE, 'must be errorRate, requestErrorRate, latencyMean, conversion:<point> or perf:<name>'),
  better: z.enum(['higher', 'lower'], { message: 'must be "higher" or "lower"' }).optional(),
  floorShare: z.number().min(0, 'must be from 0 to 0.5').max(0.5, 'must be from 0 to 0.5').default(BANDIT_DEFAULTS.floorShare),
  burnInSessions: z.number().int('must be a whole number').min(0).max(10_000_000).default(BANDIT_DEFAULTS.burnInSessions),
  reweightSeconds: z.number().int('must be whole seconds').max(86_400, 'at most a day').default(BANDIT_DEFAULTS.reweightSeconds),
  guardrails: z.array(guardrailSchema).max(20).default([]),
  segments: segmentSplitSchema.nullable().optional(),
});

/** Arms in allocation order: the shadows as listed, then the control when it is an arm. */
export function armsOf(plan: Pick<BanditPlan, 'arms' | 'control'>): string[] {
  return plan.control ? [...plan.arms, CONTROL_ARM] : [...plan.arms];
}

/**
 * Issues of a bandit plan, paths under `prefix` (e.g. `bandit`). `shadows` are the profile's
 * shadows: every arm must be one of them, all with the same targeting (the bandit shares one
 * population among them).
 */
export function banditIssues(
  input: unknown,
  prefix: string,
  shadows: readonly { name: string; traffic: { match: string; rules: unknown[] }; control?: boolean }[],
  limits: BanditLimits = DEFAULT_BANDIT_LIMITS,
): { plan: BanditPlan | null; issues: FieldIssue[] } {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    return { plan: null, issues: parsed.error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].join('/'), message: i.message })) };
  }
  const d = parsed.data;
  const issues: FieldIssue[] = [];
  const byName = new Map(shadows.map((s) => [s.name, s]));
  const seen = new Set<string>();
  d.arms.forEach((a, i) => {
    if (a === CONTROL_ARM) issues.push({ path: `${prefix}/arms/${i}`, message: `"${CONTROL_ARM}" is the control cohort; include it with "control": true` });
    else if (!byName.has(a)) issues.push({ path: `${prefix}/arms/${i}`, message: `no shadow named "${a}" (shadows: ${[...byName.keys()].join(', ') || 'none'})` });
    if (seen.has(a)) issues.push({ path: `${prefix}/arms/${i}`, message: `duplicate arm "${a}"` });
    seen.add(a);
  });
  const targeting = (n: string) => {
    const t = byName.get(n)?.traffic;
    return t ? JSON.stringify({ match: t.match, rules: t.rules }) : '';
  };
  const first = targeting(d.arms[0]);
  d.arms.forEach((a, i) => {
    if (byName.has(a) && targeting(a) !== first) {
      issues.push({ path: `${prefix}/arms/${i}`, message: `arm "${a}" targets other users than "${d.arms[0]}"; a bandit's arms must share one population (same match and rules)` });
    }
  });
  if (d.reweightSeconds < limits.minReweightSeconds) {
    issues.push({ path: `${prefix}/reweightSeconds`, message: `must be at least ${limits.minReweightSeconds} seconds (PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS)` });
  }
  const k = d.arms.length + (d.control ? 1 : 0);
  if (d.floorShare * k > 1 + 1e-9) issues.push({ path: `${prefix}/floorShare`, message: `${k} arms × ${d.floorShare} exceeds 1; at most ${Math.floor((1 / k) * 1000) / 1000}` });
  if (!d.control && d.guardrails.length > 0) issues.push({ path: `${prefix}/guardrails`, message: 'guardrails compare each arm with the control; they need "control": true' });
  if (d.segments) issues.push(...segmentSplitIssues(d.segments, `${prefix}/segments`));
  if (issues.length > 0) return { plan: null, issues };
  const better = d.better ?? (d.metric.startsWith('conversion:') ? 'higher' : 'lower');
  return { plan: { arms: [...d.arms], control: d.control, metric: d.metric, better, floorShare: d.floorShare, burnInSessions: d.burnInSessions, reweightSeconds: d.reweightSeconds, guardrails: d.guardrails.map((g) => ({ ...g })), ...(d.segments ? { segments: { ...d.segments, cells: [...d.segments.cells] } } : {}) }, issues: [] };
}

export function parseBandit(input: unknown, shadows: Parameters<typeof banditIssues>[2], limits?: BanditLimits, prefix = 'bandit'): BanditPlan {
  const { plan, issues } = banditIssues(input, prefix, shadows, limits);
  if (!plan) throw new ValidationError('invalid bandit', issues);
  return plan;
}

export type BanditStatus = 'running' | 'paused' | 'stopped';

/** Runtime state, kept in the profile and changed only through commands (reweight, control). */
export interface BanditState {
  status: BanditStatus;
  /** Number of reweightings so far; the weights below belong to this epoch. */
  epoch: number;
  /** Weight per arm (fractions summing to 1; dropped arms 0), in `armsOf(plan)` order. */
  weights: { arm: string; weight: number }[];
  /** Arms dropped by a guardrail, with the epoch at which they were dropped and why. */
  dropped: { arm: string; epoch: number; reason: string }[];
  startedAt: number;
  lastReweightAt: number | null;
  reason: string | null;
  /** Per-segment weights and drops (pipeline/segment-allocation), one per cell of plan.segments. */
  cells?: CellState[];
}

export function startBandit(plan: BanditPlan, now: number): BanditState {
  const arms = armsOf(plan);
  const weights = arms.map((arm) => ({ arm, weight: 1 / arms.length }));
  return { status: 'running', epoch: 0, weights, dropped: [], startedAt: now, lastReweightAt: null, reason: null, ...(plan.segments ? { cells: startCells(plan.segments, weights) } : {}) };
}

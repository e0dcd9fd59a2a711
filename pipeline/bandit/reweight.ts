/**
 * The bandit's decision function: (plan, state, per-arm evidence, now) → reweight or nothing.
 * Pure; the analyzer submits a `reweight` decision as a command on the item's command topic and
 * the profile writer applies it with `applyReweight` (one writer per item, audited with the
 * record below as evidence).
 *
 * Rules, in order:
 *  1. A stopped bandit decides nothing.
 *  2. At every call (running or paused): a live shadow arm whose guardrail regressed against the
 *     control (the always-valid rule of the rollout plans, rollout/evidence.ts) is dropped →
 *     reweight now, without waiting for the period.
 *  3. Paused: nothing more (weights frozen; assignment goes on with them).
 *  4. Every `reweightSeconds` since the start or the last reweighting → reweight (Thompson
 *     sampling, thompson.ts). When no live arm is left the bandit stops: its population gets the
 *     original.
 */
import { murmur3 } from '../traffic-split/hash.ts';
import { judgeGuardrail, type GuardrailResult, type MetricComparison } from '../rollout/evidence.ts';
import { armsOf, type BanditPlan, type BanditState } from './plan.ts';
import { computeWeights, type ArmStats, type ArmWeight } from './thompson.ts';

export interface ReweightRecord {
  /** Epoch of the new weights (previous + 1). */
  epoch: number;
  phase: 'burn_in' | 'thompson' | 'stopped';
  metric: string;
  better: 'higher' | 'lower';
  /** Seed of the posterior draws (murmur3 of "<itemId>:<run>:<epoch>"), so the weights can be recomputed. */
  seed: number;
  draws: number;
  arms: ArmWeight[];
  /** Arms dropped by this decision, with the guardrail results that dropped them. */
  drops: { arm: string; reason: string; guardrails: GuardrailResult[] }[];
  /** Guardrail results of every live shadow arm (the audit evidence). */
  guardrails: Record<string, GuardrailResult[]>;
  /** A scheduled reweighting (true) or an immediate one for a drop (false). */
  scheduled: boolean;
  reason: string;
  at: number;
}

export type ReweightDecision = { kind: 'none'; why: string } | { kind: 'reweight'; record: ReweightRecord };

export interface ReweightInput {
  itemId: string;
  plan: BanditPlan;
  state: BanditState;
  /** Primary-metric statistics per arm (control included when it is an arm) since the bandit started. */
  stats: ArmStats[];
  /** Per shadow arm: comparisons with the control per metric (for the guardrails). */
  comparisons: Record<string, Record<string, MetricComparison | undefined>>;
  now: number;
}

function pct(w: number): string {
  return `${Math.round(w * 1000) / 10}%`;
}

export function decideReweight(input: ReweightInput): ReweightDecision {
  const { plan, state, now } = input;
  if (state.status === 'stopped') return { kind: 'none', why: 'bandit stopped' };
  const already = new Set(state.dropped.map((d) => d.arm));
  const guardrails: Record<string, GuardrailResult[]> = {};
  const drops: ReweightRecord['drops'] = [];
  for (const arm of plan.arms) {
    if (already.has(arm)) continue;
    const results = plan.guardrails.map((g) => judgeGuardrail(g, input.comparisons[arm]?.[g.metric]));
    guardrails[arm] = results;
    const bad = results.filter((r) => r.verdict === 'regressed');
    if (bad.length > 0) {
      drops.push({ arm, guardrails: results, reason: bad.map((r) => `${r.metric} ${r.direction} beyond ${r.maxDelta} vs control (estimate ${r.estimate}, interval [${r.ciLow}, ${r.ciHigh}], always-valid p=${r.p})`).join('; ') });
    }
  }
  const due = now >= (state.lastReweightAt ?? state.startedAt) + plan.reweightSeconds * 1000;
  if (drops.length === 0) {
    if (state.status === 'paused') return { kind: 'none', why: 'bandit paused' };
    if (!due) return { kind: 'none', why: 'reweighting not due' };
  }
  const epoch = state.epoch + 1;
  const seed = murmur3(`${input.itemId}:${state.startedAt}:${epoch}`);
  const dropped = new Set([...already, ...drops.map((d) => d.arm)]);
  // The control is the reference, never dropped; with only the control left there is nothing to learn.
  const liveShadows = plan.arms.filter((a) => !dropped.has(a));
  if (liveShadows.length === 0) for (const a of armsOf(plan)) dropped.add(a);
  const w = computeWeights(armsOf(plan), input.stats, { better: plan.better, floorShare: plan.floorShare, burnInSessions: plan.burnInSessions, dropped, seed });
  const weights = w.arms.map((a) => `${a.arm} ${pct(a.weight)}`).join(', ');
  const dropText = drops.map((d) => `dropped ${d.arm}: ${d.reason}`).join('; ');
  const reason =
    w.phase === 'stopped'
      ? `${dropText}; no shadow arm left — bandit stopped, its users get the original.`
      : `${dropText ? dropText + '; ' : ''}epoch ${epoch}: ${w.note}: ${weights}.`;
  return {
    kind: 'reweight',
    record: { epoch, phase: w.phase, metric: plan.metric, better: plan.better, seed, draws: w.draws, arms: w.arms, drops, guardrails, scheduled: due, reason, at: now },
  };
}

/** The state after an accepted reweighting. */
export function applyReweight(state: BanditState, rec: ReweightRecord, now: number): BanditState {
  return {
    ...state,
    status: rec.phase === 'stopped' ? 'stopped' : state.status,
    epoch: rec.epoch,
    weights: rec.arms.map((a) => ({ arm: a.arm, weight: a.weight })),
    dropped: [...state.dropped, ...rec.drops.map((d) => ({ arm: d.arm, epoch: rec.epoch, reason: d.reason }))],
    lastReweightAt: now,
    reason: rec.phase === 'stopped' ? rec.reason : state.reason,
  };
}

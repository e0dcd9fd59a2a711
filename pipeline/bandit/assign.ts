/**
 * Bandit assignment (pure): which arm a user in the bandit's population gets.
 *
 * The population is unchanged by the bandit: the users that trafficSplit puts in any arm's
 * shadow (or in a control cohort of one) — the arms' traffic shares and rules decide WHO is in
 * the experiment; the bandit decides WHICH arm. So reweighting never moves a user into or out of
 * the experiment, and the SRM check on the population stays meaningful.
 *
 * - A user with a sticky record whose arm is still live keeps that arm (StickyIndex).
 * - Otherwise the arm is `pickArm(u, weights)`: u = murmur3("<seed>:bandit:<userId>") / 2³² and
 *   the arms own consecutive slices of [0, 1) in allocation order, sized by weight. Two resolvers
 *   with the same weights therefore pick the same arm for a new user without talking; the sticky
 *   record they write makes the choice survive the next reweighting.
 */
import { murmur3 } from '../traffic-split/hash.ts';
import { ORIGINAL } from '../domain/types.ts';
import { armsOf, CONTROL_ARM, type BanditPlan, type BanditState } from './plan.ts';

/** A traffic decision as the resolver has it (variant `control` carries the shadow it belongs to). */
export interface PopulationDecision {
  variant: string;
  controlOf?: string;
}
import type { StickyIndex, StickyRecord } from './sticky.ts';

/** Uniform in [0, 1) per (seed, user), independent of the assignment and holdout hashes. */
export function banditUnit(seed: string, userId: string): number {
  return murmur3(`${seed}:bandit:${userId}`) / 4294967296;
}

/** The arm whose slice of [0, 1) holds u; arms with weight 0 own nothing; null when all are 0. */
export function pickArm(u: number, weights: readonly { arm: string; weight: number }[]): string | null {
  let total = 0;
  for (const w of weights) if (w.weight > 0) total += w.weight;
  if (!(total > 0)) return null;
  let acc = 0;
  let last: string | null = null;
  for (const w of weights) {
    if (!(w.weight > 0)) continue;
    acc += w.weight / total;
    last = w.arm;
    if (u < acc) return w.arm;
  }
  return last; // rounding: u just below 1
}

/** Whether `arm` can take users now. */
export function armLive(state: Pick<BanditState, 'status' | 'weights'>, arm: string): boolean {
  if (state.status === 'stopped') return false;
  return (state.weights.find((w) => w.arm === arm)?.weight ?? 0) > 0;
}

/** Whether a traffic decision puts the user in the bandit's population. */
export function inPopulation(plan: BanditPlan, d: PopulationDecision): boolean {
  if (d.variant === CONTROL_ARM) return d.controlOf !== undefined && plan.arms.includes(d.controlOf);
  return d.variant !== ORIGINAL && plan.arms.includes(d.variant);
}

export interface BanditAnswer {
  /** Variant to serve: a shadow, `control` or `original` (stopped bandit). */
  variant: string;
  /** For `control`: the arm whose control cohort it is (the first shadow arm for the bandit's control). */
  controlOf?: string;
  /** The sticky record to publish (a first exposure, or a re-assignment after a drop). */
  record: StickyRecord | null;
  sticky: boolean;
}

/**
 * The bandit's answer for a user whom trafficSplit placed in its population, or null when the
 * bandit does not apply (not in the population). A stopped bandit (every arm dropped) sends its
 * population to the original.
 */
export function assignBandit(
  args: {
    itemId: string; userId: string; seed: string; plan: BanditPlan; state: BanditState; sticky: StickyIndex; decision: PopulationDecision; now: number;
    /**
     * The user's cell of per-segment allocation (pipeline/segment-allocation/cells.ts): its
     * weights (allocation order, global drops zeroed) pick the arm of a new user, and an arm
     * cut off in the cell (weight 0) is not kept for a sticky user there. Absent: the global weights.
     */
    cellName?: string | null;
    cellWeights?: readonly { arm: string; weight: number }[] | null;
  },
): BanditAnswer | null {
  const { plan, state } = args;
  const cw = args.cellName ? args.cellWeights ?? null : null;
  if (!inPopulation(plan, args.decision)) return null;
  const serve = (arm: string) => (arm === CONTROL_ARM ? { variant: CONTROL_ARM, controlOf: plan.arms[0] } : { variant: arm });
  if (state.status === 'stopped') return { variant: ORIGINAL, record: null, sticky: false };
  const held = args.sticky.get(args.itemId, args.userId, state.startedAt);
  if (held && armLive(state, held.arm) && (cw === null || liveIn(cw, held.arm))) return { ...serve(held.arm), record: null, sticky: true };
  const ordered = cw !== null ? cw : armsOf(plan).map((arm) => ({ arm, weight: state.weights.find((w) => w.arm === arm)?.weight ?? 0 }));
  const arm = pickArm(banditUnit(args.seed, args.userId), ordered);
  if (arm === null) return { variant: ORIGINAL, record: null, sticky: false };
  return { ...serve(arm), record: { itemId: args.itemId, userId: args.userId, run: state.startedAt, arm, epoch: state.epoch, at: args.now, cell: cw !== null ? args.cellName! : null }, sticky: false };
}

function liveIn(weights: readonly { arm: string; weight: number }[], arm: string): boolean {
  for (let i = 0; i < weights.length; i++) if (weights[i].arm === arm) return weights[i].weight > 0;
  return false;
}

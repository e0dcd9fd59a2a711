/**
 * Early holds as every process knows them (issue #13, item 4): the pure fold of
 * pipeline/early-holds over the rollout decisions this process follows (pipeline/rollout's
 * DecisionLog, rebuilt from penumbra.rollout.decisions at start) and the item's current profile
 * (rebuilt from the compacted penumbra.shadow.profiles). Nothing here is kept in memory of its
 * own, so a restarted process, or an API process that did not place the hold, answers the same as
 * the process that did: GET /api/v1/items/{itemId}/risk lists the holds, and
 * POST /api/v1/items/{itemId}/risk/release resumes the newest active one from any process.
 */
import type { FeatureContext } from './features.ts';
import { rolloutHandles } from '../rollout/feature.ts';
import { foldHolds, type EarlyHold } from '../early-holds/holds.ts';

/** Decisions the fold reads per item: the DecisionLog's bound (older holds come from the profile alone). */
const DECISIONS_PER_ITEM = 500;

export function earlyHolds(ctx: FeatureContext, itemId: string): EarlyHold[] {
  const log = rolloutHandles.get(ctx)?.decisions;
  const decisions = log ? log.query(itemId, { kinds: ['pause', 'resume', 'rollback', 'shadow_rollback', 'restart', 'complete', 'advance', 'promote', 'promotion_rollback'], limit: DECISIONS_PER_ITEM }) : [];
  return foldHolds(itemId, decisions, ctx.profileStore.get(itemId));
}

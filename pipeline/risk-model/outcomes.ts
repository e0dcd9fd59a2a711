/**
 * Rollout outcomes — the risk model's labels — read off the stream of shadow profiles. Pure:
 * (previous profile of an item, next profile) → the outcome the change ends, or null.
 *
 * A version's rollout ends when the profile serving it
 *  - is rolled back while it had shadows → `regression`; cause `guardrail_rollback` when a
 *    system component did it (the alert evaluator's guardrail, the rollout analysis), else
 *    `operator_rollback` (an operator judged it bad: counted as a regression too, see README);
 *  - has its rollout schedule reach `done` while active → `success` (`schedule_done`);
 *  - is replaced by a newer version while active with shadows and not rolled back → `success`
 *    (`superseded`): the version ran without any guardrail rolling it back until the next one.
 * The version is the profile's itemVersion; the shadow is the schedule's, else the first one.
 * Only transitions count: replaying the same profile, or a profile first seen after a restart,
 * yields nothing, and the outcome id is deterministic so a repeat stores once.
 */
import type { ShadowProfile } from '../domain/types.ts';
import type { RolloutOutcome } from '../../schemas/types.generated.ts';

export function outcomeId(itemId: string, version: string, shadow: string | null, profileVersion: number): string {
  return `${itemId}@${version}/${shadow ?? '-'}#${profileVersion}`;
}

export function detectOutcome(prev: ShadowProfile | undefined, next: ShadowProfile, startedAt: number | null = null): RolloutOutcome | null {
  if (!prev || prev.itemId !== next.itemId || next.profileVersion <= prev.profileVersion) return null;
  const shadow = next.schedule?.shadow ?? next.shadows[0]?.name ?? null;
  const base = { itemId: next.itemId, version: next.itemVersion, shadow, actor: next.updatedBy, profileVersion: next.profileVersion, startedAt, decidedAt: next.updatedAt };
  if (prev.state === 'active' && next.state === 'rolled_back' && prev.itemVersion === next.itemVersion && prev.shadows.length > 0) {
    const system = next.updatedBy.startsWith('system:');
    return { id: outcomeId(next.itemId, next.itemVersion, shadow, next.profileVersion), ...base, outcome: 'regression', cause: system ? 'guardrail_rollback' : 'operator_rollback' };
  }
  if (next.state === 'active' && next.schedule?.status === 'done' && prev.schedule?.status !== 'done' && prev.itemVersion === next.itemVersion) {
    return { id: outcomeId(next.itemId, next.itemVersion, shadow, next.profileVersion), ...base, outcome: 'success', cause: 'schedule_done' };
  }
  if (prev.itemVersion !== next.itemVersion && prev.state === 'active' && prev.shadows.length > 0) {
    const prevShadow = prev.schedule?.shadow ?? prev.shadows[0]?.name ?? null;
    return { id: outcomeId(prev.itemId, prev.itemVersion, prevShadow, next.profileVersion), ...base, version: prev.itemVersion, shadow: prevShadow, outcome: 'success', cause: 'superseded' };
  }
  return null;
}

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

/**
 * `versionOf(shadow)` names the version a shadow carries when it is a version shadow
 * (pipeline/version-shadows); other shadows carry the profile's itemVersion.
 */
export function detectOutcome(prev: ShadowProfile | undefined, next: ShadowProfile, startedAt: number | null = null, versionOf: (shadow: string) => string | undefined = () => undefined): RolloutOutcome | null {
  if (!prev || prev.itemId !== next.itemId || next.profileVersion <= prev.profileVersion) return null;
  const shadow = next.schedule?.shadow ?? next.shadows[0]?.name ?? null;
  const version = (shadow && versionOf(shadow)) || next.itemVersion;
  const base = { itemId: next.itemId, version, shadow, actor: next.updatedBy, profileVersion: next.profileVersion, startedAt, decidedAt: next.updatedAt };
  if (prev.state === 'active' && next.state === 'rolled_back' && prev.itemVersion === next.itemVersion && prev.shadows.length > 0) {
    const system = next.updatedBy.startsWith('system:');
    return { id: outcomeId(next.itemId, version, shadow, next.profileVersion), ...base, outcome: 'regression', cause: system ? 'guardrail_rollback' : 'operator_rollback' };
  }
  if (next.state === 'active' && next.schedule?.status === 'done' && prev.schedule?.status !== 'done' && prev.itemVersion === next.itemVersion && next.schedule.shadow === prev.schedule?.shadow) {
    return { id: outcomeId(next.itemId, version, shadow, next.profileVersion), ...base, outcome: 'success', cause: 'schedule_done' };
  }
  // Replaced while running and never rolled back: a newer version became the original, or a
  // version shadow gave way (to a newer candidate, or to its own promotion).
  const prevShadow = prev.schedule?.shadow ?? prev.shadows[0]?.name ?? null;
  const prevVersion = (prevShadow && versionOf(prevShadow)) || prev.itemVersion;
  const versionShadowGone = prevShadow !== null && versionOf(prevShadow) !== undefined && !next.shadows.some((s) => s.name === prevShadow);
  if (prev.state === 'active' && prev.shadows.length > 0 && (prev.itemVersion !== next.itemVersion || versionShadowGone)) {
    return { id: outcomeId(prev.itemId, prevVersion, prevShadow, next.profileVersion), ...base, version: prevVersion, shadow: prevShadow, outcome: 'success', cause: 'superseded' };
  }
  return null;
}

/**
 * Rollout outcomes — the risk model's labels — read off the stream of shadow profiles. Pure:
 * (previous profile of an item, next profile) → the outcome the change ends, or null.
 *
 * The rollout is the tracked shadow's (the version shadow, else the first shadow with a rollout
 * plan, else the first shadow). It ends when
 *  - the profile serving it is rolled back while it had shadows → `regression`; cause
 *    `guardrail_rollback` when a system component did it (the alert evaluator's guardrail), else
 *    `operator_rollback` (an operator judged it bad: counted as a regression too, see README);
 *  - the tracked shadow alone is rolled back (its plan's analysis, pipeline/rollout, or an
 *    operator's per-shadow rollback) → `regression`; cause `analysis_rollback` for
 *    system:rollout, `guardrail_rollback` for another system actor, else `operator_rollback`;
 *  - its rollout plan completes while active → `success` (`plan_done`);
 *  - it is promoted (pipeline/promote) → `success` (`promoted`);
 *  - it is replaced by a newer version while active with shadows and not rolled back → `success`
 *    (`superseded`): the version ran without any guardrail rolling it back until the next one.
 * The version is the one the tracked shadow carries (a version shadow's), else the profile's.
 * Only transitions count: replaying the same profile, or a profile first seen after a restart,
 * yields nothing, and the outcome id is deterministic so a repeat stores once.
 */
import type { ShadowProfile, ShadowSpec } from '../domain/types.ts';
import type { RolloutOutcome } from '../../schemas/types.generated.ts';

export function outcomeId(itemId: string, version: string, shadow: string | null, profileVersion: number): string {
  return `${itemId}@${version}/${shadow ?? '-'}#${profileVersion}`;
}

/** The shadow whose rollout an outcome is about. */
export function trackedShadow(p: ShadowProfile, versionOf: (shadow: string) => string | undefined = () => undefined): string | null {
  return p.shadows.find((s) => versionOf(s.name) !== undefined)?.name ?? p.shadows.find((s) => s.rollout)?.name ?? p.shadows[0]?.name ?? null;
}

const rolledBack = (s: ShadowSpec | undefined): boolean => s !== undefined && (s.state === 'rolled_back' || s.rolloutState?.status === 'rolled_back');

/**
 * `versionOf(shadow)` names the version a shadow carries when it is a version shadow
 * (pipeline/version-shadows); other shadows carry the profile's itemVersion.
 */
export function detectOutcome(prev: ShadowProfile | undefined, next: ShadowProfile, startedAt: number | null = null, versionOf: (shadow: string) => string | undefined = () => undefined): RolloutOutcome | null {
  if (!prev || prev.itemId !== next.itemId || next.profileVersion <= prev.profileVersion) return null;
  const shadow = trackedShadow(prev, versionOf) ?? trackedShadow(next, versionOf);
  const version = (shadow && versionOf(shadow)) || next.itemVersion;
  const base = { itemId: next.itemId, version, shadow, actor: next.updatedBy, profileVersion: next.profileVersion, startedAt, decidedAt: next.updatedAt };
  const id = outcomeId(next.itemId, version, shadow, next.profileVersion);
  const system = next.updatedBy.startsWith('system:');
  if (prev.state === 'active' && next.state === 'rolled_back' && prev.itemVersion === next.itemVersion && prev.shadows.length > 0) {
    return { id, ...base, outcome: 'regression', cause: system ? 'guardrail_rollback' : 'operator_rollback' };
  }
  const before = prev.shadows.find((s) => s.name === shadow);
  const after = next.shadows.find((s) => s.name === shadow);
  if (prev.itemVersion === next.itemVersion && before && after && prev.state === 'active') {
    if (!rolledBack(before) && rolledBack(after)) {
      return { id, ...base, outcome: 'regression', cause: next.updatedBy === 'system:rollout' ? 'analysis_rollback' : system ? 'guardrail_rollback' : 'operator_rollback' };
    }
    if (next.state === 'active' && before.rolloutState?.status !== 'completed' && after.rolloutState?.status === 'completed') {
      return { id, ...base, outcome: 'success', cause: 'plan_done' };
    }
  }
  // Replaced while running and never rolled back: a newer version became the original, or a
  // version shadow gave way (to a newer candidate, or to its own promotion).
  const prevVersion = (shadow && versionOf(shadow)) || prev.itemVersion;
  const versionShadowGone = shadow !== null && versionOf(shadow) !== undefined && !after;
  if (prev.state === 'active' && prev.shadows.length > 0 && !rolledBack(before) && (prev.itemVersion !== next.itemVersion || versionShadowGone)) {
    const promoted = next.promotion && next.promotion !== prev.promotion && next.promotion.at !== prev.promotion?.at && next.promotion.shadow === shadow;
    return { id: outcomeId(prev.itemId, prevVersion, shadow, next.profileVersion), ...base, version: prevVersion, shadow, outcome: 'success', cause: promoted ? 'promoted' : 'superseded' };
  }
  return null;
}

/**
 * Early holds rebuilt from what is already durable (issue #13, item 4): the rollout decisions the
 * profile writer publishes on penumbra.rollout.decisions (the hold's `pause` by `system:forecast`
 * or `system:risk`, with its evidence; the `resume` that released it and who sent it) and the
 * item's current profile (compacted: a held step is `paused` with the hold's reason). Pure: every
 * process folds the same records into the same answer, so a restarted process, or an API process
 * that never placed the hold, knows it, releases it, and sees it released.
 *
 * Decisions (README):
 *  - a hold is ACTIVE exactly while its shadow's plan is paused with the hold's own reason — the
 *    profile is the truth; the decisions give its history (when, evidence, who released it);
 *  - a `resume` of the held shadow releases it (`releasedBy` = the resume's actor: the release
 *    route's operator, or the rollout control route's); a rollback, restart, completion or
 *    promotion ends it; a profile no longer paused with that reason ends it too (`endedBy`
 *    'profile' — its decisions may have aged out of the topic's retention);
 *  - a step paused with a hold's reason whose decision is gone is still a hold (rebuilt from the
 *    profile alone: no evidence, `heldAt` null), so it can always be released;
 *  - the key that is held at most once: a forecast hold's step run (`<shadow>@<stepStartedAt>`),
 *    a risk hold's ingest score (`baseScoreId`).
 */
import type { ShadowProfile } from '../domain/types.ts';

export type HoldKind = 'forecast' | 'risk';

/** The actors of the two early holds on the command topic. */
export const HOLD_ACTORS: Readonly<Record<string, HoldKind>> = { 'system:forecast': 'forecast', 'system:risk': 'risk' };
/** Reason prefixes of the holds' pauses (guardrail-forecast FORECAST_HOLD_PREFIX, risk-model RISK_HOLD_PREFIX). */
const REASON_PREFIX: Readonly<Record<HoldKind, string>> = { forecast: 'forecast hold:', risk: 'risk hold ' };

/** The fields of a rollout decision this needs (pipeline/rollout DecisionView). */
export interface DecisionLike {
  id: string;
  itemId: string;
  shadow: string | null;
  kind: string;
  actor: string;
  profileVersion: number;
  step: number | null;
  reason: string;
  evidence: unknown;
  at: number;
}

export interface EarlyHold {
  /** The pause decision's id; `profile:<itemId>:<shadow>:<stepStartedAt>` when rebuilt from the profile alone. */
  id: string;
  kind: HoldKind;
  itemId: string;
  shadow: string;
  /** Held step (index) and when that step run began. */
  step: number | null;
  stepStartedAt: number | null;
  /** Held at most once per key (see the module comment). */
  key: string | null;
  heldAt: number | null;
  profileVersion: number | null;
  /** The pause's reason as the profile carries it (the hold's sentence with its numbers). */
  reason: string;
  /** The hold's evidence (the forecast, or the risk update), null when rebuilt from the profile. */
  evidence: Record<string, unknown> | null;
  status: 'active' | 'released' | 'ended';
  releasedBy: string | null;
  releasedAt: number | null;
  releaseReason: string | null;
  /** What ended a hold that was not released: a decision kind (rollback, restart, …) or 'profile'. */
  endedBy: string | null;
  endedAt: number | null;
}

/** Decision kinds that end a held step other than a release. */
const ENDING = new Set(['rollback', 'shadow_rollback', 'restart', 'complete', 'advance', 'promote', 'promotion_rollback']);

const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

/** The pause's reason inside the decision's sentence ("<actor> paused the plan of <s> at step n (p%): <reason>"). */
function pauseReason(sentence: string, kind: HoldKind): string {
  const i = sentence.indexOf(`: ${REASON_PREFIX[kind]}`);
  return i >= 0 ? sentence.slice(i + 2) : sentence;
}

function keyOf(kind: HoldKind, shadow: string, evidence: Record<string, unknown> | null, stepStartedAt: number | null): string | null {
  if (kind === 'risk') return typeof evidence?.baseScoreId === 'string' ? evidence.baseScoreId : null;
  return stepStartedAt === null ? null : `${shadow}@${stepStartedAt}`;
}

/** A hold from its pause decision, or null when the decision is not an early hold. */
export function holdFromDecision(d: DecisionLike): EarlyHold | null {
  const kind = HOLD_ACTORS[d.actor];
  if (!kind || d.kind !== 'pause' || !d.shadow) return null;
  const evidence = obj(d.evidence);
  const stepStartedAt = typeof evidence?.stepStartedAt === 'number' ? evidence.stepStartedAt : null;
  return {
    id: d.id, kind, itemId: d.itemId, shadow: d.shadow, step: d.step, stepStartedAt, key: keyOf(kind, d.shadow, evidence, stepStartedAt),
    heldAt: d.at, profileVersion: d.profileVersion, reason: pauseReason(d.reason, kind), evidence,
    status: 'active', releasedBy: null, releasedAt: null, releaseReason: null, endedBy: null, endedAt: null,
  };
}

/**
 * The holds of one item from its decisions (any order; applied by profile version, the writer's
 * order) and its current profile, oldest first.
 */
export function foldHolds(itemId: string, decisions: readonly DecisionLike[], profile: ShadowProfile | undefined): EarlyHold[] {
  const holds: EarlyHold[] = [];
  const ordered = decisions.filter((d) => d.itemId === itemId).sort((a, b) => a.profileVersion - b.profileVersion || a.at - b.at);
  for (const d of ordered) {
    const h = holdFromDecision(d);
    if (h) {
      holds.push(h);
      continue;
    }
    const open = holds.find((x) => x.status === 'active' && x.shadow === d.shadow);
    if (!open) continue;
    if (d.kind === 'resume') Object.assign(open, { status: 'released', releasedBy: d.actor, releasedAt: d.at, releaseReason: d.reason });
    else if (ENDING.has(d.kind)) Object.assign(open, { status: 'ended', endedBy: d.kind, endedAt: d.at });
  }
  // The profile is the truth about what is held now.
  for (const h of holds) {
    if (h.status === 'active' && !heldByProfile(profile, h.shadow, h.reason)) Object.assign(h, { status: 'ended', endedBy: 'profile', endedAt: profile?.updatedAt ?? null });
  }
  for (const s of profile?.shadows ?? []) {
    const st = s.rolloutState;
    if (!st || st.status !== 'paused' || !st.reason || holds.some((h) => h.status === 'active' && h.shadow === s.name)) continue;
    const kind = (Object.keys(REASON_PREFIX) as HoldKind[]).find((k) => st.reason!.startsWith(REASON_PREFIX[k]));
    if (!kind) continue;
    holds.push({
      id: `profile:${itemId}:${s.name}:${st.stepStartedAt}`, kind, itemId, shadow: s.name, step: st.step, stepStartedAt: st.stepStartedAt,
      key: kind === 'forecast' ? `${s.name}@${st.stepStartedAt}` : null, heldAt: null, profileVersion: null, reason: st.reason, evidence: null,
      status: 'active', releasedBy: null, releasedAt: null, releaseReason: null, endedBy: null, endedAt: null,
    });
  }
  return holds;
}

function heldByProfile(p: ShadowProfile | undefined, shadow: string, reason: string): boolean {
  // The item's own state does not matter: an item-wide rollback leaves a held plan paused (held).
  if (!p) return false;
  const st = p.shadows.find((s) => s.name === shadow)?.rolloutState;
  return st?.status === 'paused' && st.reason === reason;
}

/** The hold an operator's release resumes: the newest active one (either kind), else null. */
export function activeHold(holds: readonly EarlyHold[]): EarlyHold | null {
  return [...holds].reverse().find((h) => h.status === 'active') ?? null;
}

/** Was this key held before (released or not)? — a key is held at most once. */
export function heldBefore(holds: readonly EarlyHold[], kind: HoldKind, key: string): boolean {
  return holds.some((h) => h.kind === kind && h.key === key);
}

/** The release: a `resume` of the held shadow through the command topic, naming the hold it releases. */
export function releaseCommand(h: EarlyHold, reason: string | undefined): { payload: { shadow: string; action: 'resume'; evidence: Record<string, unknown> }; reason: string } {
  const step = h.step === null ? '' : ` (step ${h.step + 1})`;
  return {
    payload: { shadow: h.shadow, action: 'resume', evidence: { kind: 'early_hold_release', holdId: h.id, holdKind: h.kind, heldAt: h.heldAt } },
    reason: reason ?? `operator released the ${h.kind} hold of ${h.shadow}${step}`,
  };
}

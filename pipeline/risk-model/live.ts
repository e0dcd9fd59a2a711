/**
 * The live half of the risk score (issue #13, item 4), pure: which running rollout an ingest
 * score belongs to, whether arriving telemetry is enough to update it, and whether the updated
 * score holds the rollout's step early. The wiring (feature.ts) feeds it profiles, the score and
 * the evidence (history.ts) and sends what it decides through the item's command topic.
 *
 * Decisions (README "Prior meets evidence" and "Early hold"):
 *  - the baseline is the shadow's control cohort; a shadow without one (`control: false`) gets
 *    no update — the original sends no telemetry, so there is nothing fair to compare with;
 *  - an update needs MIN_ARM_SESSIONS sessions in BOTH arms and MIN_NEW_SESSIONS more shadow
 *    sessions than the previous update (so a score is not re-published for every window);
 *  - a hold needs the updated probability at or above `holdAt`, the shadow's rollout plan
 *    running (pipeline/rollout), and no earlier hold or operator release for this score.
 */
import type { ShadowProfile, ShadowSpec } from '../domain/types.ts';
import type { RiskScore } from '../../schemas/types.generated.ts';
import { trackedShadow } from './outcomes.ts';

export const MIN_ARM_SESSIONS = 10;
export const MIN_NEW_SESSIONS = 10;

export interface Evidence {
  shadowSessions: number;
  shadowErrorSessions: number;
  baselineSessions: number;
  baselineErrorSessions: number;
  baseline: string;
}

/**
 * The running shadow an ingest score is about: the version's own shadow (proactive), or — for a
 * replacing ingest — the tracked shadow (outcomes.ts: the first with a rollout plan, else the
 * first) of the profile serving that version.
 * Null when that rollout is not running (rolled back, promoted, replaced).
 */
export function liveShadow(p: ShadowProfile | undefined, base: RiskScore): ShadowSpec | null {
  if (!p || p.state !== 'active' || p.shadows.length === 0) return null;
  if (base.shadow) return p.shadows.find((s) => s.name === base.shadow) ?? null;
  if (p.itemVersion !== base.version) return null;
  const name = trackedShadow(p) ?? p.shadows[0].name;
  return p.shadows.find((s) => s.name === name) ?? null;
}

export type UpdateVerdict = { update: true } | { update: false; why: 'no_control' | 'too_few_sessions' | 'nothing_new' };

export function shouldUpdate(spec: ShadowSpec, e: Evidence, lastShadowSessions: number): UpdateVerdict {
  if (spec.control === false) return { update: false, why: 'no_control' };
  if (e.shadowSessions < MIN_ARM_SESSIONS || e.baselineSessions < MIN_ARM_SESSIONS) return { update: false, why: 'too_few_sessions' };
  if (e.shadowSessions < lastShadowSessions + MIN_NEW_SESSIONS) return { update: false, why: 'nothing_new' };
  return { update: true };
}

/** Hold the shadow's running step early: the updated risk reached holdAt (0 = never hold). */
export function shouldHold(p: ShadowProfile, shadow: string, probability: number, holdAt: number, alreadyHeldOrReleased: boolean): boolean {
  if (holdAt <= 0 || alreadyHeldOrReleased) return false;
  if (p.state !== 'active' || p.shadows.find((s) => s.name === shadow)?.rolloutState?.status !== 'running') return false;
  return probability >= holdAt;
}

/** The reason recorded on the command topic and in the audit: the numbers the hold rests on. */
export function holdReason(u: RiskScore, e: Evidence, holdAt: number): string {
  return `${RISK_HOLD_PREFIX} ${u.id}: risk ${(u.probability * 100).toFixed(1)} % ≥ ${(holdAt * 100).toFixed(0)} % — ` +
    `${u.shadow}: ${e.shadowErrorSessions}/${e.shadowSessions} sessions with errors vs ${e.baseline} ${e.baselineErrorSessions}/${e.baselineSessions}` +
    `; ${u.note}. Release: POST /api/v1/items/${u.itemId}/risk/release`;
}

/** Prefix of a risk hold's pause reason (the alert evaluator only resumes pauses of its own prefix). */
export const RISK_HOLD_PREFIX = 'risk hold';

/** The key whose by-item partition elects the member that runs scheduled retraining. */
export const RETRAIN_ELECTION_KEY = 'penumbra:risk-retrain-schedule';

/**
 * Whether this process runs the scheduled retraining: the one processors member whose metrics
 * processor owns RETRAIN_ELECTION_KEY's by-item partition (exactly one member of the group, outside
 * a rebalance). A process without a metrics processor, or one whose processor cannot tell (no
 * `owns`), trains: it is alone.
 */
export function electedToRetrain(proc: { owns?: (itemId: string) => boolean } | null | undefined): boolean {
  if (!proc?.owns) return true;
  return proc.owns(RETRAIN_ELECTION_KEY);
}

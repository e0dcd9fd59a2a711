/**
 * Attribution of a telemetry batch (pure): is it what it claims to be?
 *
 * Reads the batch envelope (itemId, userId, variant, controlOf, the `token` from resolve/launch),
 * the assignment key ring, the clock and the item's current profile; returns the `verified`,
 * `unverifiedReason` and `controlOf` that the collector stamps on every event of the batch.
 * Unverified events are still stored (nothing is lost); they are kept out of comparisons, alerts
 * and guardrails downstream.
 *
 * Order of checks (the first failure is the reason):
 *   1. the token: missing, malformed, unknown_key, bad_signature, expired, or mismatch when a
 *      claim disagrees with the batch's item, user, variant or controlOf (token.ts);
 *   2. the current profile (`profileMismatch`, shared with the metrics processor): `unknown_item`
 *      when the item has no profile here, `unknown_variant` when the variant is neither
 *      `original`, a current shadow, nor `control` of a current shadow whose control cohort is
 *      on, `unknown_profile_version` when the batch claims a profile version this profile never
 *      had (above the current one, or not a safe non-negative integer: issue 17 item 2 — one
 *      event with profileVersion 9e15 used to restart a cumulative aggregate and freeze the live
 *      comparison).
 *   3. `pinned` (issue 14): the user is pinned to a variant of the item (opted out, opted into a
 *      beta, or pinned by an operator). Such users chose their variant, so their sessions would
 *      bias a comparison of randomly assigned arms; they are stored, and kept out like the
 *      unverified ones (LaunchDarkly and Statsig exclude overrides from results the same way).
 *
 * Profile version (decided): the token's profile version is NOT required to equal the batch's.
 * The page of a shadow built for profile version N legitimately keeps running — and keeps its
 * token — while the profile moves to N+1, N+2 (a ramp step, a rollback and re-activation); and a
 * page's artifact version can be newer than a lagging resolver's. Requiring equality would turn
 * legitimate sessions unverified at every config change. It buys no protection either: forging
 * needs a token whose HMAC verifies for that user, item and variant, and the profile version adds
 * nothing to that. What IS checked is that the claimed version exists: 0 ≤ profileVersion ≤ the
 * current one. An older one is legitimate (a page still running from before a ramp step) and the
 * cumulative aggregates simply ignore it; a newer one than the profile ever had can only be
 * forged (or a profile the collector has not read yet — a few ms after a change; those events are
 * stored unverified, not lost). How old a session may be to count belongs to the statistics.
 *
 * Cost: one HMAC-SHA256 and two small JSON parses per batch; nothing is cached per user.
 */
import type { ShadowProfile } from '../domain/types.ts';
import { CONTROL, ORIGINAL } from '../domain/types.ts';
import { verifyAssignment, type KeyRing, type VerifyFailure } from '../assignment-token/token.ts';

export type ProfileMismatch = 'unknown_item' | 'unknown_variant' | 'unknown_profile_version';
export type UnverifiedReason = VerifyFailure | ProfileMismatch | 'pinned';

export interface Attribution {
  verified: boolean;
  unverifiedReason: UnverifiedReason | null;
  /** The control cohort the batch belongs to (variant control only), else null. */
  controlOf: string | null;
}

export interface BatchIdentity {
  itemId: string;
  userId: string;
  variant: string;
  /** Claimed for variant control: the shadow whose control cohort the session is in. */
  controlOf?: string | null;
  token?: unknown;
  /** The batch's profile version (absent: not checked — tools and tests that predate the check). */
  profileVersion?: number;
}

/**
 * What the item's current profile does not have: the item, the variant (or the control cohort it
 * claims), or the profile version. null = known. Pure; the collector stamps the reason on the
 * batch (stored unverified) and the metrics processor refuses such events before they create any
 * state (defence in depth: events can reach telemetry.raw without the collector).
 */
export function profileMismatch(profile: ShadowProfile | undefined, e: { variant: string; controlOf?: string | null; profileVersion?: number }): ProfileMismatch | null {
  if (profile === undefined) return 'unknown_item';
  if (e.variant !== ORIGINAL) {
    const controlOf = e.variant === CONTROL && typeof e.controlOf === 'string' ? e.controlOf : null;
    const known = e.variant === CONTROL
      ? profile.shadows.some((s) => s.name === controlOf && s.control !== false)
      : profile.shadows.some((s) => s.name === e.variant);
    if (!known) return 'unknown_variant';
  }
  if (e.profileVersion !== undefined && !(Number.isSafeInteger(e.profileVersion) && e.profileVersion >= 0 && e.profileVersion <= profile.profileVersion)) {
    return 'unknown_profile_version';
  }
  return null;
}

export function attributeBatch(b: BatchIdentity, ring: KeyRing, nowMs: number, profile: ShadowProfile | undefined, pinned = false): Attribution {
  const controlOf = b.variant === CONTROL && typeof b.controlOf === 'string' ? b.controlOf : null;
  const unverified = (reason: UnverifiedReason): Attribution => ({ verified: false, unverifiedReason: reason, controlOf });
  const v = verifyAssignment(b.token, ring, nowMs, {
    itemId: b.itemId, userId: b.userId, variant: b.variant,
    // A controlOf on a non-control batch is a disagreement too (the token has none).
    controlOf: b.controlOf ?? null,
  });
  if (!v.ok) return unverified(v.reason);
  const mismatch = profileMismatch(profile, { variant: b.variant, controlOf, profileVersion: b.profileVersion });
  if (mismatch) return unverified(mismatch);
  if (pinned) return unverified('pinned');
  return { verified: true, unverifiedReason: null, controlOf };
}

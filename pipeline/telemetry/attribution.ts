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
 *   2. the current profile: `unknown_item` when the item has no profile here, `unknown_variant`
 *      when the variant is neither `original`, a current shadow, nor `control` of a current
 *      shadow whose control cohort is on (issue 17 item 2 uses the same reason strings).
 *
 * Profile version (decided): the token's profile version is NOT required to equal the batch's.
 * The page of a shadow built for profile version N legitimately keeps running — and keeps its
 * token — while the profile moves to N+1, N+2 (a ramp step, a rollback and re-activation); and a
 * page's artifact version can be newer than a lagging resolver's. Requiring equality would turn
 * legitimate sessions unverified at every config change. It buys no protection either: forging
 * needs a token whose HMAC verifies for that user, item and variant, and the profile version adds
 * nothing to that. Bounds on the profile version (how old a session may be to count) belong to the
 * statistics, which know the ramp history.
 *
 * Cost: one HMAC-SHA256 and two small JSON parses per batch; nothing is cached per user.
 */
import type { ShadowProfile } from '../domain/types.ts';
import { CONTROL, ORIGINAL } from '../domain/types.ts';
import { verifyAssignment, type KeyRing, type VerifyFailure } from '../assignment-token/token.ts';

export type UnverifiedReason = VerifyFailure | 'unknown_item' | 'unknown_variant';

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
}

export function attributeBatch(b: BatchIdentity, ring: KeyRing, nowMs: number, profile: ShadowProfile | undefined): Attribution {
  const controlOf = b.variant === CONTROL && typeof b.controlOf === 'string' ? b.controlOf : null;
  const unverified = (reason: UnverifiedReason): Attribution => ({ verified: false, unverifiedReason: reason, controlOf });
  const v = verifyAssignment(b.token, ring, nowMs, {
    itemId: b.itemId, userId: b.userId, variant: b.variant,
    // A controlOf on a non-control batch is a disagreement too (the token has none).
    controlOf: b.controlOf ?? null,
  });
  if (!v.ok) return unverified(v.reason);
  if (profile === undefined) return unverified('unknown_item');
  if (b.variant !== ORIGINAL) {
    const known = b.variant === CONTROL
      ? profile.shadows.some((s) => s.name === controlOf && s.control !== false)
      : profile.shadows.some((s) => s.name === b.variant);
    if (!known) return unverified('unknown_variant');
  }
  return { verified: true, unverifiedReason: null, controlOf };
}

/**
 * Preferences (pure): a user pinned to a variant of an item — opted out of experiments
 * (`original`) or into a beta (a shadow). What a pin does to a resolve decision, and what a
 * device may ask for itself.
 *
 * Decision order (docs: README.md beside this file):
 *   no profile / invalid profile / rolled back  → the pin is ignored (a rollback sends everyone,
 *                                                 pinned users included, to the original)
 *   pin `original`                              → original, reason `pinned`
 *   pin to a shadow the profile has             → that shadow, reason `pinned`
 *   pin to a shadow the profile no longer has   → ignored (the normal decision), the pin stays
 * so a pin wins over every targeting rule, share, holdout and segment — but never over rollback.
 * Pinned decisions have bucket -1 and reason `pinned`, which keeps them out of the SRM population.
 */
import { ORIGINAL, type SplitDecision } from '../domain/types.ts';
import type { CompiledProfile } from '../traffic-split/traffic-split.ts';
import type { PinPolicy } from '../../schemas/types.generated.ts';

const PINNED_ORIGINAL: SplitDecision = Object.freeze({ variant: ORIGINAL, bucket: -1, reason: 'pinned' });

/** The decision a pin forces, or null when the pin does not apply (then decide as usual). */
export function pinnedDecision(pin: string | undefined, compiled: CompiledProfile | undefined): SplitDecision | null {
  if (pin === undefined || compiled === undefined || !compiled.valid || compiled.rolledBack) return null;
  if (pin === ORIGINAL) return PINNED_ORIGINAL;
  const shadows = compiled.shadows;
  for (let i = 0; i < shadows.length; i++) {
    // A shadow rolled back on its own (pipeline/rollout) is a rollback too: the pin waits.
    if (shadows[i].name === pin) return shadows[i].rolledBack ? null : { variant: pin, bucket: -1, reason: 'pinned' };
  }
  return null;
}

/** Without a policy record devices may opt out and opt into nothing. */
export const DEFAULT_POLICY: Pick<PinPolicy, 'deviceOptOut' | 'deviceOptIn'> = { deviceOptOut: true, deviceOptIn: [] };

/** Why a device may not set (or remove) this pin; null when it may. */
export function deviceRefusal(
  variant: string | null,
  policy: Pick<PinPolicy, 'deviceOptOut' | 'deviceOptIn'> | undefined,
  shadows: readonly string[],
  existing: { source: string } | undefined,
): { field: string; message: string } | null {
  const p = policy ?? DEFAULT_POLICY;
  if (existing && existing.source !== 'device') {
    return { field: 'variant', message: 'an operator pinned this user; only an operator can change it' };
  }
  if (variant === null) return null;
  if (variant === ORIGINAL) return p.deviceOptOut ? null : { field: 'variant', message: 'this item does not let devices opt out' };
  if (!p.deviceOptIn.includes(variant)) return { field: 'variant', message: `devices may not opt into "${variant}" (allowed: ${['original', ...p.deviceOptIn].join(', ')})` };
  if (!shadows.includes(variant)) return { field: 'variant', message: `the item has no shadow "${variant}"` };
  return null;
}

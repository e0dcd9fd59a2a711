/**
 * Per-segment allocation in the console (pure helpers of SegmentAllocation.svelte): the
 * override form's draft (one percentage per arm) → the weights the API takes, with the field at
 * fault named as the API would (`weights/<arm>`).
 */
import type { FieldError } from './api.ts';

export type OverrideDraft = Record<string, string>;

/** A draft with the cell's current weights, in whole percent. */
export function draftOf(weights: readonly { arm: string; weight: number }[]): OverrideDraft {
  return Object.fromEntries(weights.map((w) => [w.arm, String(Math.round(w.weight * 1000) / 10)]));
}

/** Weights (percent; the API normalises) or the fields at fault. */
export function draftToWeights(d: OverrideDraft): { weights: Record<string, number> | null; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const weights: Record<string, number> = {};
  for (const [arm, text] of Object.entries(d)) {
    const v = text.trim() === '' ? 0 : Number(text);
    if (!Number.isFinite(v) || v < 0) errors.push({ path: `weights/${arm}`, message: 'a share ≥ 0 (percent)' });
    else weights[arm] = v;
  }
  if (errors.length === 0 && !Object.values(weights).some((v) => v > 0)) errors.push({ path: 'weights', message: 'at least one arm needs a share above 0' });
  return errors.length ? { weights: null, errors } : { weights, errors };
}

/**
 * A pin wins over the split, never over a rollback — also not over its shadow's OWN rollback
 * (a per-shadow rollback of pipeline/rollout sends that shadow's users to the original).
 */
import { pinnedDecision } from './pin.ts';
import { compileProfile } from '../traffic-split/traffic-split.ts';
import type { ShadowProfile } from '../domain/types.ts';

const shadow = (name: string, extra: Partial<ShadowProfile['shadows'][number]> = {}) => ({
  name, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {},
  traffic: { percentage: 10, match: 'all' as const, rules: [] }, ...extra,
});
const profile = (over: Partial<ShadowProfile> = {}): ShadowProfile => ({ itemId: 'i', profileVersion: 3, state: 'active', seed: 'i', holdout: 0, itemVersion: '1', shadows: [shadow('a'), shadow('b')], updatedBy: 't', updatedAt: 0, ...over });

test('a pin to a shadow is served, to an unknown variant not, and nothing is served over a rollback', () => {
  expect(pinnedDecision('a', compileProfile(profile()))).toEqual({ variant: 'a', bucket: -1, reason: 'pinned' });
  expect(pinnedDecision('zzz', compileProfile(profile()))).toBeNull();
  expect(pinnedDecision(undefined, compileProfile(profile()))).toBeNull();
  expect(pinnedDecision('a', compileProfile(profile({ state: 'rolled_back' })))).toBeNull();
  // The pinned shadow rolled back on its own: the pin waits; its sibling's pins still hold.
  const alone = compileProfile(profile({ shadows: [shadow('a', { state: 'rolled_back' }), shadow('b')] }));
  expect(pinnedDecision('a', alone)).toBeNull();
  expect(pinnedDecision('b', alone)).toEqual({ variant: 'b', bucket: -1, reason: 'pinned' });
});

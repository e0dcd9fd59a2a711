import type { ShadowProfile } from '../domain/types.ts';
import { claimsFor, signAssignment, type KeyRing } from '../assignment-token/token.ts';
import { attributeBatch, profileMismatch } from './attribution.ts';
import { validateBatch } from './batch.ts';

const ring: KeyRing = [{ kid: 'k1', secret: Buffer.alloc(32, 9) }];
const other: KeyRing = [{ kid: 'k1', secret: Buffer.alloc(32, 8) }];
const NOW = 1_764_200_000_000;
const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
const profile: ShadowProfile = {
  itemId: 'com.example.shop', profileVersion: 7, state: 'active', seed: 'com.example.shop', holdout: 0, itemVersion: '1.0.0',
  shadows: [
    { name: 'checkout-v2', instrumentation, endpoints: {}, traffic: { percentage: 10, match: 'all', rules: [] }, control: true },
    { name: 'no-baseline', instrumentation, endpoints: {}, traffic: { percentage: 10, match: 'all', rules: [] }, control: false },
  ],
  updatedBy: 't', updatedAt: 0,
};
const token = (variant: string, controlOf?: string, opts: { userId?: string; at?: number; ttl?: number; keys?: KeyRing; pv?: number } = {}) =>
  signAssignment(claimsFor({ itemId: 'com.example.shop', userId: opts.userId ?? 'u1', variant, controlOf, profileVersion: opts.pv ?? 5 }, opts.at ?? NOW, opts.ttl ?? 3600), opts.keys ?? ring);
const batch = (variant: string, tok: unknown, controlOf?: string) => ({ itemId: 'com.example.shop', userId: 'u1', variant, controlOf, token: tok });
const attr = (b: ReturnType<typeof batch>, p: ShadowProfile | null = profile) => attributeBatch(b, ring, NOW, p ?? undefined);

describe('attributeBatch', () => {
  it('verifies the shadow and its control, with the control cohort named', () => {
    expect(attr(batch('checkout-v2', token('checkout-v2')))).toEqual({ verified: true, unverifiedReason: null, controlOf: null });
    expect(attr(batch('control', token('control', 'checkout-v2'), 'checkout-v2'))).toEqual({ verified: true, unverifiedReason: null, controlOf: 'checkout-v2' });
    expect(attr(batch('original', token('original'))).verified).toBe(true);
  });

  it('keeps a page built for an older profile version verified: the version is not compared', () => {
    // Token from a resolve at version 5, page built at 3, profile now at 7: one legitimate session.
    expect(attr(batch('checkout-v2', token('checkout-v2', undefined, { pv: 5 }))).verified).toBe(true);
  });

  it.each([
    ['no token', batch('checkout-v2', undefined), 'missing'],
    ['not a token', batch('checkout-v2', 42), 'missing'],
    ['garbage', batch('checkout-v2', 'a.b'), 'malformed'],
    ['another key', batch('checkout-v2', token('checkout-v2', undefined, { keys: other })), 'bad_signature'],
    ['unknown key id', batch('checkout-v2', token('checkout-v2', undefined, { keys: [{ kid: 'zz', secret: Buffer.alloc(32) }] })), 'unknown_key'],
    ['expired', batch('checkout-v2', token('checkout-v2', undefined, { at: NOW - 7200_000 })), 'expired'],
    ['a token for another variant', batch('checkout-v2', token('original')), 'mismatch'],
    ['a token for another user', batch('checkout-v2', token('checkout-v2', undefined, { userId: 'u2' })), 'mismatch'],
    ["another shadow's control", batch('control', token('control', 'checkout-v2'), 'other'), 'mismatch'],
    ['a control token claimed as no control', batch('control', token('control', 'checkout-v2')), 'mismatch'],
  ])('%s → unverified (%s)', (_label, b, reason) => {
    expect(attr(b)).toEqual({ verified: false, unverifiedReason: reason, controlOf: b.variant === 'control' ? (b.controlOf ?? null) : null });
  });

  it('flags what the current profile does not know: unknown_item, unknown_variant', () => {
    expect(attr(batch('checkout-v2', token('checkout-v2')), null).unverifiedReason).toBe('unknown_item');
    expect(attr(batch('gone', token('gone'))).unverifiedReason).toBe('unknown_variant');
    // A shadow whose control is off has no control cohort to hear from.
    expect(attr(batch('control', token('control', 'no-baseline'), 'no-baseline')).unverifiedReason).toBe('unknown_variant');
  });

  it('flags a profile version the profile never had (issue 17 item 2): above the current one, or not a safe integer', () => {
    const withPv = (pv: number) => ({ ...batch('checkout-v2', token('checkout-v2')), profileVersion: pv });
    expect(attr(withPv(9e15)).unverifiedReason).toBe('unknown_profile_version');
    expect(attr(withPv(8)).unverifiedReason).toBe('unknown_profile_version'); // profile is at 7
    expect(attr(withPv(1.5)).unverifiedReason).toBe('unknown_profile_version');
    expect(attr(withPv(7))).toEqual({ verified: true, unverifiedReason: null, controlOf: null });
    expect(attr(withPv(0)).verified).toBe(true); // older versions are real sessions; the aggregates ignore them
  });

  it('profileMismatch is the same check without a token (what the metrics processor applies)', () => {
    expect(profileMismatch(profile, { variant: 'checkout-v2', profileVersion: 7 })).toBeNull();
    expect(profileMismatch(profile, { variant: 'control', controlOf: 'checkout-v2', profileVersion: 3 })).toBeNull();
    expect(profileMismatch(undefined, { variant: 'original', profileVersion: 1 })).toBe('unknown_item');
    expect(profileMismatch(profile, { variant: 'nope', profileVersion: 1 })).toBe('unknown_variant');
    expect(profileMismatch(profile, { variant: 'original', profileVersion: 9e15 })).toBe('unknown_profile_version');
    expect(profileMismatch(profile, { variant: 'original', profileVersion: -1 })).toBe('unknown_profile_version');
  });

  it('is stamped on every event of the batch, which is stored either way', () => {
    const body = {
      itemId: 'com.example.shop', version: '1.0.0', variant: 'control', controlOf: 'checkout-v2', profileVersion: 3, sessionId: 's1', userId: 'u1',
      sentAt: NOW, token: token('control', 'checkout-v2'),
      events: [{ id: 'e1', type: 'usage', name: 'buy', ts: NOW }, { id: 'e2', type: 'perf', name: 'lcp', ts: NOW, value: 812 }],
    };
    const ok = validateBatch(body, NOW, (b) => attributeBatch(b, ring, NOW, profile));
    expect(ok.ok && ok.result.events.map((e) => [e.controlOf, e.verified, e.unverifiedReason])).toEqual([['checkout-v2', true, null], ['checkout-v2', true, null]]);
    const forged = validateBatch({ ...body, token: undefined }, NOW, (b) => attributeBatch(b, ring, NOW, profile));
    expect(forged.ok && forged.result.events.map((e) => [e.verified, e.unverifiedReason])).toEqual([[false, 'missing'], [false, 'missing']]);
  });
});

describe('pinned users (issue 14)', () => {
  it('a valid batch of a pinned user is kept out of comparisons as pinned; an invalid one keeps its own reason', () => {
    expect(attributeBatch(batch('checkout-v2', token('checkout-v2')), ring, NOW, profile, true)).toEqual({ verified: false, unverifiedReason: 'pinned', controlOf: null });
    expect(attributeBatch(batch('checkout-v2', undefined), ring, NOW, profile, true).unverifiedReason).toBe('missing');
    expect(attributeBatch(batch('checkout-v2', token('checkout-v2')), ring, NOW, profile, false).verified).toBe(true);
  });
});

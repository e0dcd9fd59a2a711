import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.ts';
import { claimsFor, parseKeyRing, signAssignment, verifyAssignment, type AssignmentClaims, type KeyRing } from './token.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Tokens printed by golden.py (Python's own hmac/base64/json): an independent implementation.
const golden = JSON.parse(readFileSync(path.join(here, 'golden.json'), 'utf8')) as {
  kid: string;
  claims: { sub: string; item: string; var: string; ctl?: string; pv: number; iat: number; exp: number };
  token: string;
}[];
const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const ring = (kid: string): KeyRing => [{ kid, secret: SECRET }];
const toClaims = (c: (typeof golden)[number]['claims']): AssignmentClaims => ({
  itemId: c.item, userId: c.sub, variant: c.var, profileVersion: c.pv, iat: c.iat, exp: c.exp, ...(c.ctl ? { controlOf: c.ctl } : {}),
});

describe('assignment token', () => {
  it.each(golden.map((g) => [g.claims.var, g] as const))('signs %s byte-for-byte like the Python reference', (_v, g) => {
    expect(signAssignment(toClaims(g.claims), ring(g.kid))).toBe(g.token);
  });

  it.each(golden.map((g) => [g.claims.var, g] as const))('verifies the Python reference token for %s', (_v, g) => {
    const r = verifyAssignment(g.token, ring(g.kid), g.claims.iat * 1000);
    expect(r).toEqual({ ok: true, claims: toClaims(g.claims) });
  });

  it('writes the claims JSON exactly as JSON.stringify of the claims object would (quotes, escapes, unicode)', () => {
    for (const userId of ['plain', 'q"uote', 'back\\slash', 'ctl\u0001\n', 'emoji-😀', '\u2028sep']) {
      const c: AssignmentClaims = { itemId: 'i"t', userId, variant: 'control', controlOf: 's\\1', profileVersion: 7, iat: 1, exp: 2 };
      const payload = Buffer.from(signAssignment(c, ring('k')).split('.')[1], 'base64url').toString('utf8');
      expect(payload).toBe(JSON.stringify({ iss: 'penumbra', sub: userId, item: 'i"t', var: 'control', ctl: 's\\1', pv: 7, iat: 1, exp: 2 }));
    }
  });

  const base = claimsFor({ itemId: 'it', userId: 'u1', variant: 'control', controlOf: 's1', profileVersion: 4 }, 1_764_200_000_000, 600);
  const keys = parseKeyRing(`new:${Buffer.alloc(32, 7).toString('base64')},old:${SECRET.toString('base64url')}`);

  it('rotation: the first key signs, every key verifies', () => {
    const t = signAssignment(base, keys);
    expect(JSON.parse(Buffer.from(t.split('.')[0], 'base64url').toString()).kid).toBe('new');
    const oldToken = signAssignment(base, [keys[1]]);
    expect(verifyAssignment(oldToken, keys, 1_764_200_000_000).ok).toBe(true);
    expect(verifyAssignment(oldToken, [keys[0]], 1_764_200_000_000)).toMatchObject({ ok: false, reason: 'unknown_key' });
  });

  it('names why a token fails', () => {
    const now = 1_764_200_000_000;
    const t = signAssignment(base, keys);
    const [h, p, s] = t.split('.');
    expect(verifyAssignment(undefined, keys, now)).toMatchObject({ ok: false, reason: 'missing' });
    expect(verifyAssignment('', keys, now)).toMatchObject({ ok: false, reason: 'missing' });
    expect(verifyAssignment('a.b', keys, now)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifyAssignment('x'.repeat(5000), keys, now)).toMatchObject({ ok: false, reason: 'malformed' });
    // Claims changed after signing (another variant) → signature no longer verifies.
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), var: 's1' })).toString('base64url');
    expect(verifyAssignment(`${h}.${forged}.${s}`, keys, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
    // alg=none style downgrade is refused as malformed.
    const none = Buffer.from(JSON.stringify({ alg: 'none', kid: 'new' })).toString('base64url');
    expect(verifyAssignment(`${none}.${p}.${s}`, keys, now)).toMatchObject({ ok: false, reason: 'malformed' });
    // Expiry with 60 s leeway for device clocks.
    expect(verifyAssignment(t, keys, (base.exp + 59) * 1000).ok).toBe(true);
    expect(verifyAssignment(t, keys, (base.exp + 60) * 1000)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('flags a token that disagrees with the batch', () => {
    const now = 1_764_200_000_000;
    const t = signAssignment(base, keys);
    expect(verifyAssignment(t, keys, now, { itemId: 'it', variant: 'control', controlOf: 's1', userId: 'u1', profileVersion: 4 }).ok).toBe(true);
    expect(verifyAssignment(t, keys, now, { variant: 's1' })).toMatchObject({ ok: false, reason: 'mismatch', detail: expect.stringContaining('variant') });
    expect(verifyAssignment(t, keys, now, { itemId: 'other' })).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verifyAssignment(t, keys, now, { controlOf: 's2' })).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verifyAssignment(t, keys, now, { controlOf: null })).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('refuses weak or malformed key rings with the variable named', () => {
    expect(() => parseKeyRing('k1:c2hvcnQ=')).toThrow(ConfigError);
    expect(() => parseKeyRing('k1:c2hvcnQ=')).toThrow(/PENUMBRA_ASSIGNMENT_KEYS: key "k1" has 5 bytes/);
    expect(() => parseKeyRing('')).toThrow(/empty/);
    expect(() => parseKeyRing(`bad kid:${SECRET.toString('base64')}`)).toThrow(/key id/);
    expect(() => parseKeyRing(`a:${SECRET.toString('base64')},a:${SECRET.toString('base64')}`)).toThrow(/twice/);
  });
});

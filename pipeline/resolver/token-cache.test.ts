import { signAssignment, verifyAssignment, type KeyRing } from '../assignment-token/token.ts';
import { SignedTokenCache } from './token-cache.ts';

const ring: KeyRing = [{ kid: 'k1', secret: Buffer.alloc(32, 7) }];
const claims = { itemId: 'item', userId: 'u1', variant: 'fast', profileVersion: 3 };
const T0 = 1_764_200_000;

test('a token for the same claims is reused within the window, then signed afresh', () => {
  const c = new SignedTokenCache(60);
  const a = c.token(claims, T0, 86_400, ring);
  // Exactly what signing would give at T0.
  expect(a).toEqual({ token: signAssignment({ ...claims, iat: T0, exp: T0 + 86_400 }, ring), iat: T0, exp: T0 + 86_400 });
  expect(c.token(claims, T0 + 59, 86_400, ring)).toEqual(a);
  expect(c.hits).toBe(1);
  const b = c.token(claims, T0 + 60, 86_400, ring);
  expect(b.exp).toBe(T0 + 60 + 86_400);
  expect(b.token).not.toBe(a.token);
  // A reused token still verifies, with the claims of the decision.
  const v = verifyAssignment(a.token, ring, (T0 + 59) * 1000, { ...claims, controlOf: null });
  expect(v.ok).toBe(true);
});

test('another decision, profile version, lifetime or signing key never gets a cached token', () => {
  const c = new SignedTokenCache(60);
  const a = c.token(claims, T0, 86_400, ring).token;
  const others: (typeof claims & { controlOf?: string })[] = [{ ...claims, variant: 'original' }, { ...claims, profileVersion: 4 }, { ...claims, userId: 'u2' }, { ...claims, variant: 'control', controlOf: 'fast' }];
  for (const other of others) {
    const t = c.token(other, T0 + 1, 86_400, ring);
    expect(t.token).not.toBe(a);
    expect(verifyAssignment(t.token, ring, (T0 + 1) * 1000, { ...other, controlOf: other.controlOf ?? null }).ok).toBe(true);
  }
  expect(c.token(claims, T0 + 1, 3600, ring).exp).toBe(T0 + 1 + 3600);
  const rotated: KeyRing = [{ kid: 'k2', secret: Buffer.alloc(32, 9) }, ...ring];
  const r = c.token(claims, T0 + 2, 86_400, rotated);
  expect(JSON.parse(Buffer.from(r.token.split('.')[0], 'base64url').toString()).kid).toBe('k2');
  // A clock that went back re-signs rather than hand out a token issued "in the future".
  const c2 = new SignedTokenCache(60);
  c2.token(claims, T0, 86_400, ring);
  expect(c2.token(claims, T0 - 5, 86_400, ring).exp).toBe(T0 - 5 + 86_400);
});

test('memory is bounded by maxEntries', () => {
  const c = new SignedTokenCache(60, 100);
  for (let i = 0; i < 1000; i++) c.token({ ...claims, userId: `u${i}` }, T0, 86_400, ring);
  expect(c.size).toBeLessThanOrEqual(100);
  expect(c.signed).toBe(1000);
});

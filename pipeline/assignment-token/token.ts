/**
 * Signed assignment tokens (pure, no I/O): what resolve and launch hand a device so that its
 * telemetry is attributable. A token says "the resolver assigned user U of item I to variant V
 * (the control cohort of shadow S, when V = control) under profile version P, until EXP".
 * The collector verifies it and flags events whose token is missing, expired, forged or
 * disagrees with the batch; flagged events are stored but never enter comparisons, alerts or
 * guardrails.
 *
 * Format: a JWS compact serialisation (RFC 7515) with HS256 (HMAC-SHA256, RFC 7518 §3.2), so any
 * JWT library can decode and verify it (PyJWT in a notebook, jose in a backend):
 *
 *   base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(key, header "." claims))
 *   header = {"alg":"HS256","typ":"JWT","kid":<key id>}
 *   claims = {"iss":"penumbra","sub":userId,"item":itemId,"var":variant,
 *             "ctl":controlOf (only for variant "control"),"pv":profileVersion,"iat":s,"exp":s}
 *
 * The signature covers the exact transmitted bytes, so no JSON canonicalisation is needed.
 * Keys: a key ring, the first key signs and every key verifies (rotation: add the new key
 * second, deploy everywhere, move it first, drop the old one after the longest token lifetime).
 * Comparison of signatures is constant-time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors.ts';

export const TOKEN_ISSUER = 'penumbra';
/** Default lifetime: a day, so a long session keeps a valid token; devices refresh on resolve. */
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 60 * 60;
/** Minimum secret length: HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3). */
export const MIN_SECRET_BYTES = 32;
/** Longest token accepted at all (bytes of the compact form): bounds work on hostile input. */
export const MAX_TOKEN_LENGTH = 2048;

export interface SigningKey {
  /** Key id, carried in the token header; [A-Za-z0-9_-]{1,32}. */
  kid: string;
  secret: Buffer;
}

/** The first key signs; all verify. */
export type KeyRing = readonly SigningKey[];

export interface AssignmentClaims {
  itemId: string;
  userId: string;
  /** `original`, a shadow name, or `control`. */
  variant: string;
  /** For variant `control`: the shadow whose control cohort the user belongs to. */
  controlOf?: string;
  profileVersion: number;
  /** Issued at / expires, epoch seconds. */
  iat: number;
  exp: number;
}

export type VerifyFailure = 'missing' | 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'mismatch';

export type VerifyResult = { ok: true; claims: AssignmentClaims } | { ok: false; reason: VerifyFailure; detail: string };

/** What the batch claims; any field given must equal the token's. */
export interface ExpectedClaims {
  itemId?: string;
  userId?: string;
  variant?: string;
  controlOf?: string | null;
  profileVersion?: number;
}

const KID_RE = /^[A-Za-z0-9_-]{1,32}$/;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * Parses `kid:secret,kid:secret` where secret is base64 or base64url of ≥ 32 bytes
 * (e.g. `openssl rand -base64 32`). Throws ConfigError naming `name` on any fault.
 */
export function parseKeyRing(raw: string, name = 'PENUMBRA_ASSIGNMENT_KEYS'): KeyRing {
  const keys: SigningKey[] = [];
  const seen = new Set<string>();
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf(':');
    const kid = i > 0 ? part.slice(0, i) : '';
    const enc = i > 0 ? part.slice(i + 1) : '';
    if (!KID_RE.test(kid)) throw new ConfigError(`${name}: key id "${kid}" must match ${KID_RE.source}`);
    if (seen.has(kid)) throw new ConfigError(`${name}: key id "${kid}" appears twice`);
    const secret = Buffer.from(enc.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (secret.length < MIN_SECRET_BYTES) {
      throw new ConfigError(`${name}: key "${kid}" has ${secret.length} bytes; use at least ${MIN_SECRET_BYTES} random bytes, base64 (openssl rand -base64 32)`);
    }
    seen.add(kid);
    keys.push({ kid, secret });
  }
  if (keys.length === 0) throw new ConfigError(`${name} is empty: give at least one kid:base64secret`);
  return keys;
}

function hmac(secret: Buffer, signingInput: string): Buffer {
  return createHmac('sha256', secret).update(signingInput).digest();
}

/** base64url of each key's JWS header: the same bytes for every token the key signs. */
const headers = new WeakMap<SigningKey, string>();

/**
 * Signs claims with the ring's first key. On the resolve path (once per answer), so the header
 * is encoded once per key and the claims JSON is written directly: the same bytes as
 * JSON.stringify of {iss, sub, item, var, ctl?, pv, iat, exp} in that order (token.test.ts
 * holds that), without building the intermediate object.
 */
export function signAssignment(claims: AssignmentClaims, ring: KeyRing): string {
  const key = ring[0];
  if (!key) throw new ConfigError('assignment key ring is empty');
  let header = headers.get(key);
  if (header === undefined) headers.set(key, (header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }))));
  const j = JSON.stringify;
  const ctl = claims.controlOf !== undefined ? `,"ctl":${j(claims.controlOf)}` : '';
  const body = `{"iss":"${TOKEN_ISSUER}","sub":${j(claims.userId)},"item":${j(claims.itemId)},"var":${j(claims.variant)}${ctl},"pv":${j(claims.profileVersion)},"iat":${j(claims.iat)},"exp":${j(claims.exp)}}`;
  const input = `${header}.${b64url(body)}`;
  return `${input}.${hmac(key.secret, input).toString('base64url')}`;
}

/** Claims for a resolve decision issued `nowMs`, valid for `ttlSeconds`. */
export function claimsFor(
  d: { itemId: string; userId: string; variant: string; controlOf?: string; profileVersion: number },
  nowMs: number,
  ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS,
): AssignmentClaims {
  const iat = Math.floor(nowMs / 1000);
  return { ...d, iat, exp: iat + ttlSeconds };
}

function parseJson(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const B64URL_RE = /^[A-Za-z0-9_-]+$/;

/**
 * Verifies signature, expiry (with `leewaySeconds` for device clock skew) and, when given, that
 * the token's claims equal what the batch claims. Never throws.
 */
export function verifyAssignment(
  token: unknown,
  ring: KeyRing,
  nowMs: number,
  expect: ExpectedClaims = {},
  leewaySeconds = 60,
): VerifyResult {
  if (typeof token !== 'string' || token === '') return { ok: false, reason: 'missing', detail: 'no assignment token' };
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed', detail: 'token too long' };
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL_RE.test(p))) return { ok: false, reason: 'malformed', detail: 'not a compact JWS' };
  const header = parseJson(parts[0]);
  if (!header || header.alg !== 'HS256' || typeof header.kid !== 'string') {
    return { ok: false, reason: 'malformed', detail: 'header must be {"alg":"HS256","kid":…}' };
  }
  const key = ring.find((k) => k.kid === header.kid);
  if (!key) return { ok: false, reason: 'unknown_key', detail: `unknown key id ${JSON.stringify(header.kid).slice(0, 40)}` };
  const expected = hmac(key.secret, `${parts[0]}.${parts[1]}`);
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'bad_signature', detail: 'signature does not verify' };
  }
  const c = parseJson(parts[1]);
  if (
    !c || c.iss !== TOKEN_ISSUER || typeof c.sub !== 'string' || typeof c.item !== 'string' || typeof c.var !== 'string' ||
    (c.ctl !== undefined && typeof c.ctl !== 'string') || !Number.isSafeInteger(c.pv) || !Number.isSafeInteger(c.iat) ||
    !Number.isSafeInteger(c.exp)
  ) {
    return { ok: false, reason: 'malformed', detail: 'claims incomplete' };
  }
  const claims: AssignmentClaims = {
    itemId: c.item, userId: c.sub, variant: c.var, profileVersion: c.pv as number, iat: c.iat as number, exp: c.exp as number,
    ...(typeof c.ctl === 'string' ? { controlOf: c.ctl } : {}),
  };
  if (claims.exp + leewaySeconds <= nowMs / 1000) return { ok: false, reason: 'expired', detail: `expired at ${new Date(claims.exp * 1000).toISOString()}` };
  const diff: string[] = [];
  if (expect.itemId !== undefined && expect.itemId !== claims.itemId) diff.push('itemId');
  if (expect.userId !== undefined && expect.userId !== claims.userId) diff.push('userId');
  if (expect.variant !== undefined && expect.variant !== claims.variant) diff.push('variant');
  if (expect.controlOf !== undefined && (expect.controlOf ?? undefined) !== claims.controlOf) diff.push('controlOf');
  if (expect.profileVersion !== undefined && expect.profileVersion !== claims.profileVersion) diff.push('profileVersion');
  if (diff.length > 0) return { ok: false, reason: 'mismatch', detail: `token disagrees with the batch on ${diff.join(', ')}` };
  return { ok: true, claims };
}

/**
 * Operator authentication and role authorisation.
 *
 * Tokens come from PENUMBRA_TOKENS (`name:role:token,…`) or a tokens file (same entries, one
 * per line, `#` comments). Only sha256 digests are kept in memory and compared with
 * timingSafeEqual against every entry (no early exit), so neither the token nor its position
 * leaks through timing. Roles are ordered viewer < operator < admin.
 *
 * Failed authentications (a bearer token that matches no entry) are throttled per client
 * (PENUMBRA_RATE_AUTH_FAILURES): once a client's failure bucket is empty, every request of it
 * that presents a token gets 429 before the token is even looked at, valid or not — otherwise a
 * guesser could keep guessing and read success from the status.
 *
 * The live stream cannot send headers (EventSource), so instead of a token in the URL (where it
 * lands in proxy logs and browser history) it takes a stream ticket: a random, single-use value
 * that expires after STREAM_TICKET_TTL_MS, issued by POST /api/v1/stream/ticket to a caller who
 * authenticated with the header. `?access_token=` is accepted nowhere.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RequestHandler } from 'express';
import { AuthError, ConfigError, RateLimitedError } from '../../pipeline/errors.ts';
import { keyOf, type TokenBuckets, type TrustFn } from './rate-limit.ts';

export const STREAM_TICKET_TTL_MS = 30_000;
const MAX_TICKETS = 10_000;

export type Role = 'viewer' | 'operator' | 'admin';
export const ROLE_RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export interface Principal {
  name: string;
  role: Role;
}

interface TokenEntry extends Principal {
  digest: Buffer;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function parseTokens(spec: string, source: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const parts = spec.split(/[,\n]/).map((s) => s.trim()).filter((s) => s && !s.startsWith('#'));
  for (const [i, part] of parts.entries()) {
    const m = /^([A-Za-z0-9._@-]{1,64}):(viewer|operator|admin):(\S{16,})$/.exec(part);
    if (!m) {
      throw new ConfigError(`${source}: entry ${i + 1} must be name:role:token with role viewer|operator|admin and a token of at least 16 characters`, [{ path: `${source}[${i}]`, message: 'malformed token entry' }]);
    }
    entries.push({ name: m[1], role: m[2] as Role, digest: digest(m[3]) });
  }
  return entries;
}

export class TokenStore {
  private failures: TokenBuckets | null = null;
  private trust: TrustFn = () => false;
  private readonly tickets = new Map<string, { who: Principal; expires: number }>();

  constructor(private readonly entries: TokenEntry[]) {}

  /** Throttle failed authentications per client (createDeviceLimits wires it). */
  throttleFailures(buckets: TokenBuckets, trust: TrustFn): void {
    this.failures = buckets;
    this.trust = trust;
  }

  /**
   * Authenticates a token presented by `req`: the principal, or null (a failure, counted for
   * the client). Throws RateLimitedError when the client has failed too often recently.
   */
  authenticateRequest(req: IncomingMessage, token: string): Principal | null {
    const key = this.failures ? keyOf(req, { trust: this.trust }) : '';
    const wait = this.failures?.wait(key) ?? 0;
    if (wait > 0) throw new RateLimitedError(wait);
    const who = this.authenticate(token);
    if (!who) this.failures?.take(key);
    return who;
  }

  /** A request with a valid bearer token (a backend caller): not limited per address. */
  isService(req: IncomingMessage): boolean {
    const m = BEARER.exec(req.headers.authorization ?? '');
    if (!m) return false;
    try {
      return this.authenticateRequest(req, m[1]) !== null;
    } catch {
      return false; // throttled guesser: an anonymous device as far as limits go
    }
  }

  /** A single-use stream ticket for `who`, valid STREAM_TICKET_TTL_MS. */
  issueTicket(who: Principal, now = Date.now()): { ticket: string; expiresAt: number } {
    for (const [k, v] of this.tickets) {
      if (v.expires > now && this.tickets.size < MAX_TICKETS) break;
      this.tickets.delete(k); // expired, or the oldest when full (Map order is issue order)
    }
    const ticket = `pst_${randomBytes(24).toString('base64url')}`;
    const expiresAt = now + STREAM_TICKET_TTL_MS;
    this.tickets.set(ticket, { who, expires: expiresAt });
    return { ticket, expiresAt };
  }

  /** Redeems a ticket once: the principal it was issued to, or null (unknown, used, expired). */
  redeemTicket(ticket: string, now = Date.now()): Principal | null {
    const t = this.tickets.get(ticket);
    if (!t) return null;
    this.tickets.delete(ticket);
    return t.expires > now ? t.who : null;
  }

  get size(): number {
    return this.entries.length;
  }

  authenticate(token: string): Principal | null {
    const d = digest(token);
    let found: TokenEntry | null = null;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, d) && !found) found = e;
    }
    return found ? { name: found.name, role: found.role } : null;
  }
}

/**
 * Load tokens from config; when none is configured, create an admin token once, store it
 * (0600) under the data folder and return it so `npm start` can print it.
 */
export function loadTokenStore(opts: { tokens: string | null; tokensFile: string | null; dataDir: string; createIfMissing: boolean }): { store: TokenStore; created?: { name: string; token: string; file: string } } {
  if (opts.tokens) return { store: new TokenStore(parseTokens(opts.tokens, 'PENUMBRA_TOKENS')) };
  if (opts.tokensFile) return { store: new TokenStore(parseTokens(readFileSync(opts.tokensFile, 'utf8'), opts.tokensFile)) };
  const file = path.join(opts.dataDir, 'tokens');
  if (existsSync(file)) return { store: new TokenStore(parseTokens(readFileSync(file, 'utf8'), file)) };
  if (!opts.createIfMissing) return { store: new TokenStore([]) };
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const token = `pnb_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `# created by penumbra start; one name:role:token per line\nadmin:admin:${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { store: new TokenStore(parseTokens(`admin:admin:${token}`, file)), created: { name: 'admin', token, file } };
}

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Middleware: authenticate the bearer token and require at least `role`. With `ticket: true`
 * (GET /api/v1/stream only) a `?ticket=` from POST /api/v1/stream/ticket stands in for the header.
 */
export function requireRole(store: TokenStore, role: Role, opts: { ticket?: boolean } = {}): RequestHandler {
  return (req, res, next) => {
    const m = BEARER.exec(req.headers.authorization ?? '');
    let who: Principal | null;
    if (m) {
      try {
        who = store.authenticateRequest(req, m[1]);
      } catch (err) {
        return next(err);
      }
      if (!who) return next(new AuthError('unauthorized', 'Unknown or revoked token'));
    } else if (opts.ticket && typeof req.query.ticket === 'string') {
      who = store.redeemTicket(req.query.ticket);
      if (!who) return next(new AuthError('unauthorized', 'Unknown, used or expired stream ticket (POST /api/v1/stream/ticket issues one)'));
    } else {
      return next(new AuthError('unauthorized', 'This route needs an operator token: Authorization: Bearer <token>'));
    }
    if (ROLE_RANK[who.role] < ROLE_RANK[role]) {
      return next(new AuthError('forbidden', `Role ${who.role} may not do this; it needs ${role} or higher`));
    }
    res.locals.principal = who;
    next();
  };
}

/**
 * Operator authentication and role authorisation.
 *
 * Tokens come from PENUMBRA_TOKENS (`name:role:token,…`) or a tokens file (same entries, one
 * per line, `#` comments). Only sha256 digests are kept in memory and compared with
 * timingSafeEqual against every entry (no early exit), so neither the token nor its position
 * leaks through timing. Roles are ordered viewer < operator < admin.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RequestHandler } from 'express';
import { AuthError, ConfigError } from '../../pipeline/errors.ts';

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
  constructor(private readonly entries: TokenEntry[]) {}

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
  mkdirSync(opts.dataDir, { recursive: true });
  const token = `pnb_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `# created by penumbra start; one name:role:token per line\nadmin:admin:${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { store: new TokenStore(parseTokens(`admin:admin:${token}`, file)), created: { name: 'admin', token, file } };
}

/** Middleware: authenticate the bearer token and require at least `role`. */
export function requireRole(store: TokenStore, role: Role): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    // Also accept ?access_token= for EventSource, which cannot set headers (SSE only).
    const token = m?.[1] ?? (req.path.endsWith('/stream') && typeof req.query.access_token === 'string' ? req.query.access_token : undefined);
    if (!token) return next(new AuthError('unauthorized', 'This route needs an operator token: Authorization: Bearer <token>'));
    const who = store.authenticate(token);
    if (!who) return next(new AuthError('unauthorized', 'Unknown or revoked token'));
    if (ROLE_RANK[who.role] < ROLE_RANK[role]) {
      return next(new AuthError('forbidden', `Role ${who.role} may not do this; it needs ${role} or higher`));
    }
    res.locals.principal = who;
    next();
  };
}

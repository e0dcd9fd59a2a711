/**
 * A raw node:http fast path for GET /api/v1/resolve, in front of Express.
 *
 * Why: resolve is the hottest device route and Express's per-request machinery (router walk,
 * middleware chain, res helpers) cost more than the decision itself — Express alone reaches
 * only ~0.4-0.5× of a bare node:http handler here. The fast path answers the common, valid
 * request with the same Resolver, the same assignment logging, the same headers and the same
 * JSON as the Express route; anything unusual (bad or unknown parameters, repeated keys,
 * rate-limited clients, other methods) returns false and falls through to the Express route,
 * which produces the 422/429 problem+json. So behaviour has one definition: the Express route
 * plus its zod schema; this file only skips work for requests that route would accept.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resolver } from '../../pipeline/resolver/resolver.ts';

const PATH = '/api/v1/resolve';
const ITEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ATTR_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
const LIMITS: Record<string, [number, number]> = {
  userId: [1, 256], deviceType: [1, 32], country: [1, 8], userGroup: [1, 64], appVersion: [1, 64],
};

export interface FastPathOptions {
  resolver: Resolver;
  /** Same token bucket parameters as the Express route (per client address). */
  rate: { perSecond: number; burst: number };
}

export function createResolveFastPath(opts: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || !url || !url.startsWith(PATH) || (url.length > PATH.length && url[PATH.length] !== '?')) return false;
    const qs = new URLSearchParams(url.slice(PATH.length + 1));
    let itemId: string | undefined;
    let userId: string | undefined;
    let deviceType: string | undefined;
    let country: string | undefined;
    let userGroup: string | undefined;
    let appVersion: string | undefined;
    let attributes: Record<string, string> | undefined;
    let nAttrs = 0;
    const seen = new Set<string>();
    for (const [k, v] of qs) {
      if (seen.has(k)) return false; // repeated keys: let the Express route refuse them
      seen.add(k);
      if (k === 'itemId') {
        if (!ITEM_ID.test(v)) return false;
        itemId = v;
        continue;
      }
      if (k.startsWith('attr.')) {
        const name = k.slice(5);
        if (!ATTR_NAME.test(name) || v.length > 256 || ++nAttrs > 32) return false;
        (attributes ??= {})[name] = v;
        continue;
      }
      const lim = LIMITS[k];
      if (!lim || v.length < lim[0] || v.length > lim[1]) return false; // unknown parameter or bad length
      if (k === 'userId') userId = v;
      else if (k === 'deviceType') deviceType = v;
      else if (k === 'country') country = v;
      else if (k === 'userGroup') userGroup = v;
      else appVersion = v;
    }
    if (itemId === undefined || userId === undefined) return false;

    // Same client key as Express with trust proxy 'loopback': X-Forwarded-For only from loopback.
    const remote = req.socket.remoteAddress ?? 'unknown';
    let client = remote;
    const xff = req.headers['x-forwarded-for'];
    if (typeof xff === 'string' && (remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1')) {
      const parts = xff.split(',');
      client = parts[parts.length - 1].trim() || remote;
    }
    const now = Date.now();
    let b = buckets.get(client);
    if (!b) {
      if (buckets.size >= 100_000) buckets.clear();
      b = { tokens: opts.rate.burst, at: now };
      buckets.set(client, b);
    }
    b.tokens = Math.min(opts.rate.burst, b.tokens + ((now - b.at) / 1000) * opts.rate.perSecond);
    b.at = now;
    if (b.tokens < 1) return false; // Express answers the 429 problem (and shares no bucket state)
    b.tokens -= 1;

    const answer = opts.resolver.resolve({ itemId, userId, deviceType, country, userGroup, appVersion, attributes }, req.headers);
    const body = JSON.stringify(answer);
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      'Access-Control-Allow-Origin': '*',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.end(body);
    return true;
  };
}

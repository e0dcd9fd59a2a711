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
import { keyOf, type ClientIdentity, type TokenBuckets } from './rate-limit.ts';

const PATH = '/api/v1/resolve';
const ITEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ATTR_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
const LIMITS: Record<string, [number, number]> = {
  userId: [1, 256], deviceType: [1, 32], country: [1, 8], userGroup: [1, 64], appVersion: [1, 64],
};

const KEY_BITS: Record<string, number> = { __proto__: null, itemId: 1, userId: 2, deviceType: 4, country: 8, userGroup: 16, appVersion: 32 } as unknown as Record<string, number>;

/**
 * The query's name/value pairs in order, as URLSearchParams yields them. A query without `%` or
 * `+` needs no decoding, so it is split directly (the common device request); anything encoded
 * goes through URLSearchParams itself, so decoding has one definition.
 */
export function queryPairs(query: string): Iterable<[string, string]> {
  if (query.includes('%') || query.includes('+')) return new URLSearchParams(query);
  const out: [string, string][] = [];
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (end > start) {
      const eq = query.indexOf('=', start);
      out.push(eq < 0 || eq > end ? [query.slice(start, end), ''] : [query.slice(start, eq), query.slice(eq + 1, end)]);
    }
    start = end + 1;
  }
  return out;
}

export interface FastPathOptions {
  resolver: Resolver;
  /** The Express route's own buckets and client identity (rate-limit.ts): one limit, shared. */
  buckets: TokenBuckets;
  identity: ClientIdentity;
}

export function createResolveFastPath(opts: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { buckets, identity } = opts;
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || !url || !url.startsWith(PATH) || (url.length > PATH.length && url[PATH.length] !== '?')) return false;
    const query = url.slice(PATH.length + 1);
    let itemId: string | undefined;
    let userId: string | undefined;
    let deviceType: string | undefined;
    let country: string | undefined;
    let userGroup: string | undefined;
    let appVersion: string | undefined;
    let attributes: Record<string, string> | undefined;
    let nAttrs = 0;
    let seen = 0;
    for (const [k, v] of queryPairs(query)) {
      // Repeated keys: let the Express route refuse them.
      const bit = KEY_BITS[k];
      if (bit !== undefined) {
        if (seen & bit) return false;
        seen |= bit;
      } else if (attributes !== undefined && Object.hasOwn(attributes, k.slice(5))) return false;
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

    // A backend caller with a valid token is not limited per address (issue 15, item 8); a
    // device takes a token from the same bucket the Express route uses. An empty bucket falls
    // through to Express, which answers the 429 problem from the same (empty) bucket.
    if (buckets.spec.perSecond > 0 && !(req.headers.authorization && identity.isService(req))) {
      if (buckets.take(keyOf(req, identity)) > 0) return false;
    }

    const body = opts.resolver.resolveJson({ itemId, userId, deviceType, country, userGroup, appVersion, attributes }, req.headers);
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

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
import type { ResolveRequest, Resolver } from '../../pipeline/resolver/resolver.ts';
import { keyOf, type ClientIdentity, type TokenBuckets } from './rate-limit.ts';

const PATH = '/api/v1/resolve';
const ITEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ATTR_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
const LIMITS: Record<string, [number, number]> = {
  userId: [1, 256], deviceType: [1, 32], country: [1, 8], userGroup: [1, 64], appVersion: [1, 64],
};

const KEY_BITS: Record<string, number> = { __proto__: null, itemId: 1, userId: 2, deviceType: 4, country: 8, userGroup: 16, appVersion: 32 } as unknown as Record<string, number>;

/**
 * The query splitter (one definition for the fast path and queryPairs): calls `fn(state, name,
 * value)` for every pair, in the order and with the decoding of URLSearchParams, and stops at
 * the first `false` (then returns false). A query without `%` or `+` needs no decoding, so it is
 * split directly (the common device request) without building a pair or a list — `state` is
 * passed through so the hot caller needs no closure either; anything encoded goes through
 * URLSearchParams itself, so decoding has one definition.
 */
export function eachQueryPair<S>(query: string, state: S, fn: (state: S, name: string, value: string) => boolean): boolean {
  if (query.includes('%') || query.includes('+')) {
    for (const [k, v] of new URLSearchParams(query)) if (!fn(state, k, v)) return false;
    return true;
  }
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (end > start) {
      const eq = query.indexOf('=', start);
      const ok = eq < 0 || eq > end ? fn(state, query.slice(start, end), '') : fn(state, query.slice(start, eq), query.slice(eq + 1, end));
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

const collect = (out: [string, string][], k: string, v: string): boolean => {
  out.push([k, v]);
  return true;
};

/** The query's name/value pairs in order, as URLSearchParams yields them (eachQueryPair; tests compare the two). */
export function queryPairs(query: string): [string, string][] {
  const out: [string, string][] = [];
  eachQueryPair(query, out, collect);
  return out;
}

export interface FastPathOptions {
  resolver: Resolver;
  /** The Express route's own buckets and client identity (rate-limit.ts): one limit, shared. */
  buckets: TokenBuckets;
  identity: ClientIdentity;
}

/** A resolve query being read: the request fields plus what the reading has seen so far. */
interface Reading extends ResolveRequest {
  /** KEY_BITS of the named parameters seen (repeats are declined). */
  seen: number;
  nAttrs: number;
}

/**
 * Takes one name/value pair into `r`; false declines the request (to the Express route).
 * The rules are the Express route's zod schema's, for the requests it accepts.
 */
function take(r: Reading, k: string, v: string): boolean {
  // Repeated keys: let the Express route refuse them.
  const bit = KEY_BITS[k];
  if (bit !== undefined) {
    if (r.seen & bit) return false;
    r.seen |= bit;
  } else if (r.attributes !== undefined && Object.hasOwn(r.attributes, k.slice(5))) return false;
  if (k === 'itemId') {
    if (!ITEM_ID.test(v)) return false;
    r.itemId = v;
    return true;
  }
  if (k.startsWith('attr.')) {
    const name = k.slice(5);
    if (!ATTR_NAME.test(name) || v.length > 256 || ++r.nAttrs > 32) return false;
    (r.attributes ??= {})[name] = v;
    return true;
  }
  const lim = LIMITS[k];
  if (!lim || v.length < lim[0] || v.length > lim[1]) return false; // unknown parameter or bad length
  if (k === 'userId') r.userId = v;
  else if (k === 'deviceType') r.deviceType = v;
  else if (k === 'country') r.country = v;
  else if (k === 'userGroup') r.userGroup = v;
  else r.appVersion = v;
  return true;
}

/**
 * The resolve request in `query`, or null when the fast path declines it. Reads the pairs with
 * eachQueryPair, straight into the request (issue 15 item 3: an array per pair and one for the
 * list were garbage on every answer).
 */
export function readResolveQuery(query: string): ResolveRequest | null {
  const r: Reading = { itemId: '', userId: '', deviceType: undefined, country: undefined, userGroup: undefined, appVersion: undefined, attributes: undefined, seen: 0, nAttrs: 0 };
  if (!eachQueryPair(query, r, take)) return null;
  // itemId and userId are required (bits 1 and 2).
  return (r.seen & 3) === 3 ? r : null;
}

/**
 * The answer's headers as one flat list, the same names, values and order as before (writeHead
 * with an object); slot 3 is the Content-Length, set per answer. One list per fast path, reused:
 * writeHead copies it into the header block synchronously.
 */
const HEADERS = (): (string | number)[] => [
  'Content-Type', 'application/json; charset=utf-8',
  'Content-Length', 0,
  'Cache-Control', 'no-store',
  'Access-Control-Allow-Origin', '*',
  'X-Content-Type-Options', 'nosniff',
  'Referrer-Policy', 'no-referrer',
];

export function createResolveFastPath(opts: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { buckets, identity, resolver } = opts;
  const headers = HEADERS();
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || !url || !url.startsWith(PATH) || (url.length > PATH.length && url.charCodeAt(PATH.length) !== 63 /* ? */)) return false;
    const request = readResolveQuery(url.slice(PATH.length + 1));
    if (request === null) return false;

    // A backend caller with a valid token is not limited per address (issue 15, item 8); a
    // device takes a token from the same bucket the Express route uses. An empty bucket falls
    // through to Express, which answers the 429 problem from the same (empty) bucket.
    if (buckets.spec.perSecond > 0 && !(req.headers.authorization && identity.isService(req))) {
      if (buckets.take(keyOf(req, identity)) > 0) return false;
    }

    const body = resolver.resolveJson(request, req.headers);
    headers[3] = resolver.lastJsonBytes;
    res.writeHead(200, headers);
    res.end(body);
    return true;
  };
}

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

    // A backend caller with a valid token is not limited per address (issue 15, item 8); a
    // device takes a token from the same bucket the Express route uses. An empty bucket falls
    // through to Express, which answers the 429 problem from the same (empty) bucket.
    if (buckets.spec.perSecond > 0 && !(req.headers.authorization && identity.isService(req))) {
      if (buckets.take(keyOf(req, identity)) > 0) return false;
    }

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

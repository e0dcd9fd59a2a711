/**
 * Per-client token buckets for the unauthenticated device routes, and the one definition of
 * "client" that every limit shares (the Express routes, the raw resolve fast path and the
 * failed-authentication throttle).
 *
 * - Client key: the address Express computes under PENUMBRA_TRUST_PROXY (X-Forwarded-For is read
 *   only from trusted peers, via proxy-addr — the library Express itself uses), with IPv4-mapped
 *   IPv6 folded to IPv4 and every IPv6 address reduced to its /64: one subscriber or host holds
 *   a whole /64, so per-address buckets would give it 2^64 fresh buckets.
 * - Memory: at most `maxClients` buckets per limit; the least recently seen client is evicted
 *   (a Map kept in recency order), never the whole table — clearing everything let a flood of
 *   new addresses reset the bucket of the client being limited.
 * - Backend callers: a request carrying a valid operator token (any role) is a known service,
 *   not an anonymous device, and is not limited per address (issue 15, item 8); the limits exist
 *   to keep anonymous devices from starving each other.
 * In-memory and per process: the point is fairness on this instance, not global quotas.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import type { RequestHandler } from 'express';
import proxyaddr from 'proxy-addr';
import { RateLimitedError } from '../../pipeline/errors.ts';
import { DEFAULT_RATE_LIMITS, type RateSpec } from '../../pipeline/config/config.ts';

export type TrustFn = (addr: string, i: number) => boolean;

/** proxy-addr's trust function for a PENUMBRA_TRUST_PROXY value (as Express compiles it). */
export function compileTrust(value: string | number | boolean): TrustFn {
  if (value === true) return () => true;
  if (value === false) return () => false;
  if (typeof value === 'number') return (_a, i) => i < value;
  return proxyaddr.compile(value.split(',').map((s) => s.trim()).filter(Boolean));
}

/** Expands an IPv6 address to its 8 groups (no zone id); null when it is not IPv6. */
function ipv6Groups(addr: string): number[] | null {
  const a = addr.split('%')[0];
  if (!isIPv6(a)) return null;
  let head = a;
  let tail = '';
  const dbl = a.indexOf('::');
  if (dbl >= 0) {
    head = a.slice(0, dbl);
    tail = a.slice(dbl + 2);
  }
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [w, x, y, z] = g.split('.').map(Number);
        out.push((w << 8) | x, (y << 8) | z);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  if (dbl < 0) return h;
  return [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/** The bucket key of an address: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 as its /64. */
export function clientKey(address: string): string {
  // No colon: not IPv6 (isIPv6 would say no after a regex; this is the per-request common case).
  if (!address.includes(':')) return address;
  const g = ipv6Groups(address);
  if (!g) return address;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

/** Whether a connection's peer is a trusted proxy, per trust function (a socket's peer never changes). */
const peerTrust = new WeakMap<TrustFn, WeakMap<object, boolean>>();

/** Strips leading and trailing spaces (0x20 only), as the `forwarded` parser does per entry. */
function trimSpaces(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) === 0x20) a++;
  while (b > a && s.charCodeAt(b - 1) === 0x20) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Client address of a raw request under the trust function (same answer as Express's req.ip).
 * The common shapes — no X-Forwarded-For, or one address in it — are answered here with the
 * trust decision for the connection's peer computed once per connection (issue 15: proxy-addr
 * split, reversed and re-parsed the header and the peer address on every resolve); anything
 * else goes through proxy-addr itself (rate-limit.test.ts compares the two).
 */
export function clientAddress(req: IncomingMessage, trust: TrustFn): string {
  const socket = req.socket as object | undefined;
  const peer = req.socket?.remoteAddress;
  const xff = req.headers['x-forwarded-for'];
  if (socket && typeof peer === 'string' && (xff === undefined || (typeof xff === 'string' && !xff.includes(',')))) {
    const one = xff === undefined ? '' : trimSpaces(xff);
    if (one === '') return peer;
    let bySocket = peerTrust.get(trust);
    if (!bySocket) peerTrust.set(trust, (bySocket = new WeakMap()));
    let trusted = bySocket.get(socket);
    if (trusted === undefined) bySocket.set(socket, (trusted = trust(peer, 0)));
    return trusted ? one : peer;
  }
  // A socket that closed before the request was handled has no remoteAddress any more; proxy-addr
  // then answers undefined, and clientKey crashed on it (TypeError seen in a test log).
  try {
    return (proxyaddr(req as Parameters<typeof proxyaddr>[0], trust) as string | undefined) ?? 'unknown';
  } catch {
    return req.socket?.remoteAddress ?? 'unknown';
  }
}

/** A client's bucket, also a link of the recency list (oldest → newest). */
interface Bucket {
  key: string;
  tokens: number;
  at: number;
  older: Bucket | null;
  newer: Bucket | null;
}

/**
 * Token buckets per client key, LRU-bounded. Recency is a doubly linked list through the
 * buckets themselves: a client seen again moves to the newest end by relinking two neighbours
 * (issue 15 item 3: the previous Map delete + re-insert per request cost a hash of the key twice
 * and left a deleted entry behind that made the 100k-entry table rehash as it filled).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private oldest: Bucket | null = null;
  private newest: Bucket | null = null;
  evicted = 0;

  constructor(readonly spec: RateSpec, private readonly maxClients = 100_000) {}

  get size(): number {
    return this.buckets.size;
  }

  private unlink(b: Bucket): void {
    if (b.older) b.older.newer = b.newer;
    else this.oldest = b.newer;
    if (b.newer) b.newer.older = b.older;
    else this.newest = b.older;
    b.older = b.newer = null;
  }

  private append(b: Bucket): void {
    b.older = this.newest;
    if (this.newest) this.newest.newer = b;
    else this.oldest = b;
    this.newest = b;
  }

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b) {
      // The newest end is the most recently seen: the first one there is the least recently seen.
      if (b !== this.newest) {
        this.unlink(b);
        this.append(b);
      }
    } else {
      b = { key, tokens: this.spec.burst, at: now, older: null, newer: null };
      if (this.buckets.size >= this.maxClients && this.oldest) {
        const o = this.oldest;
        this.unlink(o);
        this.buckets.delete(o.key);
        this.evicted++;
      }
      this.buckets.set(key, b);
      this.append(b);
    }
    b.tokens = Math.min(this.spec.burst, b.tokens + ((now - b.at) / 1000) * this.spec.perSecond);
    b.at = now;
    return b;
  }

  /** Takes one token: 0 when allowed, else the seconds to wait (Retry-After). */
  take(key: string, now = Date.now()): number {
    if (this.spec.perSecond <= 0) return 0;
    const b = this.bucket(key, now);
    if (b.tokens < 1) return Math.max(1, Math.ceil((1 - b.tokens) / this.spec.perSecond));
    b.tokens -= 1;
    return 0;
  }

  /** Seconds to wait before a token is available, without taking one (0 = available). */
  wait(key: string, now = Date.now()): number {
    if (this.spec.perSecond <= 0) return 0;
    const b = this.buckets.get(key);
    if (!b) return 0;
    const tokens = Math.min(this.spec.burst, b.tokens + ((now - b.at) / 1000) * this.spec.perSecond);
    return tokens < 1 ? Math.max(1, Math.ceil((1 - tokens) / this.spec.perSecond)) : 0;
  }
}

/** Who is calling, for the limits: shared by Express middleware and the raw fast path. */
export interface ClientIdentity {
  trust: TrustFn;
  /** True when the request carries a valid operator token (a backend caller, not a device). */
  isService(req: IncomingMessage): boolean;
}

export function keyOf(req: IncomingMessage, id: Pick<ClientIdentity, 'trust'>): string {
  return clientKey(clientAddress(req, id.trust));
}

/** Express middleware over shared buckets: 429 problem+json with Retry-After when empty. */
export function rateLimit(buckets: TokenBuckets, id: ClientIdentity): RequestHandler {
  return (req, _res, next) => {
    if (buckets.spec.perSecond <= 0 || id.isService(req)) return next();
    const wait = buckets.take(keyOf(req, id));
    if (wait > 0) return next(new RateLimitedError(wait));
    next();
  };
}

/** Fallback identity for routers built without one (unit tests): socket address, no services. */
export const SOCKET_IDENTITY: ClientIdentity = { trust: () => false, isService: () => false };

/** One set of buckets per process, shared by every route and fast path of the same limit. */
export interface DeviceLimits {
  identity: ClientIdentity;
  resolve: TokenBuckets;
  telemetry: TokenBuckets;
  files: TokenBuckets;
  runtimeConfig: TokenBuckets;
  artifacts: TokenBuckets;
}

export function createDeviceLimits(
  cfg: { trustProxy: string | number | boolean; rateLimits: import('../../pipeline/config/config.ts').RateLimits },
  tokens: { throttleFailures(b: TokenBuckets, trust: TrustFn): void; isService(req: IncomingMessage): boolean },
): DeviceLimits {
  const r = cfg.rateLimits;
  const trust = compileTrust(cfg.trustProxy);
  tokens.throttleFailures(new TokenBuckets(r.authFailures, r.maxClients), trust);
  const identity: ClientIdentity = { trust, isService: (req) => tokens.isService(req) };
  return {
    identity,
    resolve: new TokenBuckets(r.resolve, r.maxClients),
    telemetry: new TokenBuckets(r.telemetry, r.maxClients),
    files: new TokenBuckets(r.files, r.maxClients),
    runtimeConfig: new TokenBuckets(r.runtimeConfig, r.maxClients),
    artifacts: new TokenBuckets(r.artifacts, r.maxClients),
  };
}

/** Limits for routers built without a composition (defaults, socket address, no services). */
export function defaultDeviceLimits(): DeviceLimits {
  const d = DEFAULT_RATE_LIMITS;
  return {
    identity: SOCKET_IDENTITY,
    resolve: new TokenBuckets(d.resolve, d.maxClients),
    telemetry: new TokenBuckets(d.telemetry, d.maxClients),
    files: new TokenBuckets(d.files, d.maxClients),
    runtimeConfig: new TokenBuckets(d.runtimeConfig, d.maxClients),
    artifacts: new TokenBuckets(d.artifacts, d.maxClients),
  };
}

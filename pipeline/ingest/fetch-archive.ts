/**
 * Ingest by URL (`archiveRef` on penumbra.items.ingest) without becoming an SSRF vector.
 *
 * Whoever can write to the ingest topic chooses the URL, and the fetch runs inside our network.
 * So (issue 17, item 5):
 * - the allow-list (PENUMBRA_INGEST_URL_ALLOW) is matched on the PARSED URL: same origin
 *   (scheme, host, port) and a path under the entry's path, segment-wise. A string prefix let
 *   `https://cdn.example.com@169.254.169.254/…` through (userinfo `cdn.example.com`, host the
 *   metadata service); URLs with userinfo are refused outright;
 * - the host is resolved by us, every address it resolves to is checked, and the connection
 *   goes to the checked address (a custom `lookup`, so a second DNS answer cannot swap in
 *   another address between check and connect — DNS rebinding). Loopback, private, link-local,
 *   CGNAT, multicast, reserved and unspecified addresses are refused, IPv4-mapped / NAT64 IPv6
 *   forms included. PENUMBRA_INGEST_URL_ALLOW_PRIVATE=true lifts this for development only;
 * - redirects are not followed (a 3xx is a refusal: the allow-list would not cover its target);
 * - the body is streamed and counted: past `maxBytes` the request is aborted, whatever
 *   Content-Length said; the whole exchange has a deadline.
 */
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import net, { BlockList } from 'node:net';
import type { LookupFunction } from 'node:net';
import { UnavailableError, ValidationError } from '../errors.ts';

export interface AllowEntry {
  origin: string;
  /** Path prefix, always ending in `/` (segment-wise match). */
  path: string;
}

export function parseAllowList(entries: string[]): AllowEntry[] {
  return entries.map((e) => {
    const u = new URL(e);
    return { origin: u.origin, path: u.pathname.endsWith('/') ? u.pathname : `${u.pathname}/` };
  });
}

/** Why `raw` is not an allowed archive URL, or null with the parsed URL. */
export function allowedUrl(raw: string, allow: AllowEntry[]): { url: URL } | { why: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { why: 'not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { why: 'only http(s) URLs' };
  if (url.username || url.password) return { why: 'URLs with credentials (user@host) are refused' };
  const path = url.pathname;
  const ok = allow.some((a) => a.origin === url.origin && (path === a.path.slice(0, -1) || path.startsWith(a.path)));
  return ok ? { url } : { why: 'not under an allowed origin and path (PENUMBRA_INGEST_URL_ALLOW)' };
}

const blocked = new BlockList();
for (const [net4, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net4, bits, 'ipv4');
for (const [net6, bits] of [
  ['::', 128], ['::1', 128], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) blocked.addSubnet(net6, bits, 'ipv6');

/** The IPv4 address embedded in an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedV4(addr: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(addr);
  if (!m) return null;
  if (m[1]) return m[1];
  const hi = parseInt(m[2], 16);
  const lo = parseInt(m[3], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for addresses an ingest fetch must never reach. */
export function isPrivateAddress(addr: string): boolean {
  const family = net.isIP(addr);
  if (family === 4) return blocked.check(addr, 'ipv4');
  if (family === 6) {
    const v4 = embeddedV4(addr);
    if (v4) return blocked.check(v4, 'ipv4');
    return blocked.check(addr, 'ipv6');
  }
  return true; // not an address at all: refuse
}

type Resolve = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolve: Resolve = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** A `lookup` for http.request that only ever hands out checked addresses. */
function checkedLookup(resolve: Resolve, allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, cb: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void) => {
    resolve(hostname.replace(/^\[|\]$/g, '')).then(
      (addrs) => {
        if (addrs.length === 0) return cb(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
        const bad = addrs.find((a) => isPrivateAddress(a.address));
        if (bad && !allowPrivate) {
          return cb(Object.assign(new Error(`${hostname} resolves to ${bad.address}, a private, loopback or link-local address`), { code: 'EPRIVATE' }), '', 0);
        }
        if (options?.all) return cb(null, addrs.map((a) => ({ address: a.address, family: a.family })));
        cb(null, addrs[0].address, addrs[0].family);
      },
      (err: NodeJS.ErrnoException) => cb(err, '', 0),
    );
  }) as LookupFunction;
}

export interface FetchArchiveOptions {
  allow: AllowEntry[];
  maxBytes: number;
  allowPrivate?: boolean;
  timeoutMs?: number;
  /** DNS resolution (tests inject answers; default the system resolver). */
  resolve?: Resolve;
}

const refuse = (why: string) => new ValidationError(`archiveRef refused: ${why}`, [{ path: 'archiveRef', message: why }]);

export async function fetchArchive(raw: string, opts: FetchArchiveOptions): Promise<Buffer> {
  const checked = allowedUrl(raw, opts.allow);
  if ('why' in checked) throw refuse(checked.why);
  const { url } = checked;
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(literal) && isPrivateAddress(literal) && !opts.allowPrivate) throw refuse(`${literal} is a private, loopback or link-local address`);
  const lookup = checkedLookup(opts.resolve ?? systemResolve, opts.allowPrivate ?? false);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<Buffer>((resolve, reject) => {
    const req = client.request(url, { method: 'GET', lookup, timeout: opts.timeoutMs ?? 30_000, headers: { 'user-agent': 'penumbra-ingest' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return reject(refuse(`answered HTTP ${status} (redirects are not followed)`));
      }
      if (status !== 200) {
        res.resume();
        return reject(refuse(`answered HTTP ${status}`));
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > opts.maxBytes) {
        req.destroy();
        return reject(refuse(`is ${declared} bytes, more than ${opts.maxBytes}`));
      }
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > opts.maxBytes) {
          req.destroy();
          reject(refuse(`sent more than ${opts.maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks, n)));
      res.on('error', (err) => reject(err));
    });
    req.on('timeout', () => req.destroy(refuse(`no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof ValidationError) return reject(err);
      // A refused address or a name that does not exist is the record's fault (dead letter); a
      // connection that failed is an outage of the source, retried like any other.
      if (err.code === 'EPRIVATE') return reject(refuse(err.message));
      if (err.code === 'ENOTFOUND') return reject(refuse(`host not found: ${err.message}`));
      reject(new UnavailableError(`archiveRef ${url.origin} could not be fetched: ${err.message}`, err));
    });
    req.end();
  });
}

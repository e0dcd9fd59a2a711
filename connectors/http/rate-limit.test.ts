/**
 * The per-client limits' pure core (issue 17, item 7; issue 15, item 8): IPv6 clients keyed by
 * their /64, least-recently-seen eviction instead of clearing every bucket, and the client
 * address under a configurable set of trusted proxies.
 */
import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { TokenBuckets, clientAddress, clientKey, compileTrust } from './rate-limit.ts';

test('an IPv6 /64 is one client; IPv4-mapped IPv6 is its IPv4 address', () => {
  expect(clientKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
  expect(clientKey('2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe('2001:db8:1:2::/64');
  expect(clientKey('2001:0db8:0001:0002:0:0:0:9')).toBe('2001:db8:1:2::/64');
  expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
  expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  expect(clientKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
  expect(clientKey('203.0.113.9')).toBe('203.0.113.9');
  expect(clientKey('::1')).toBe('0:0:0:0::/64');
});

test('a client rotating addresses inside its /64 shares one bucket', () => {
  const b = new TokenBuckets({ perSecond: 1, burst: 10 });
  const now = 1_000_000;
  let refused = 0;
  for (let i = 0; i < 100; i++) if (b.take(clientKey(`2001:db8:aa:bb::${i.toString(16)}`), now) > 0) refused++;
  expect(refused).toBe(90);
  expect(b.size).toBe(1);
});

test('a flood of new clients evicts the least recently seen, not the limited client', () => {
  const b = new TokenBuckets({ perSecond: 1, burst: 5 }, 100);
  const now = 1_000_000;
  for (let i = 0; i < 5; i++) expect(b.take('abuser', now)).toBe(0);
  expect(b.take('abuser', now)).toBeGreaterThan(0);
  // Before: at maxClients the whole table was cleared, which handed the abuser a full bucket.
  for (let i = 0; i < 1000; i++) {
    b.take(`fresh-${i}`, now);
    expect(b.take('abuser', now)).toBeGreaterThan(0); // still empty: it is the most recent entry
  }
  expect(b.size).toBe(100);
  expect(b.evicted).toBe(1000 - 99);
});

test('evicts exactly the least recently seen client (against a Map-order reference)', () => {
  // The reference is the previous implementation's rule: a Map in recency order, re-inserted on
  // every take, its first key evicted when full. Same takes, same answers, same survivors.
  const spec = { perSecond: 2, burst: 3 };
  const b = new TokenBuckets(spec, 50);
  const ref = new Map<string, { tokens: number; at: number }>();
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let now = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    now += Math.floor(rnd() * 40);
    const key = `c${Math.floor(rnd() ** 2 * 120)}`;
    let r = ref.get(key);
    if (r) ref.delete(key);
    else {
      r = { tokens: spec.burst, at: now };
      if (ref.size >= 50) ref.delete(ref.keys().next().value as string);
    }
    ref.set(key, r);
    r.tokens = Math.min(spec.burst, r.tokens + ((now - r.at) / 1000) * spec.perSecond);
    r.at = now;
    const expected = r.tokens < 1 ? Math.max(1, Math.ceil((1 - r.tokens) / spec.perSecond)) : ((r.tokens -= 1), 0);
    const got = b.take(key, now);
    if (got !== expected) mismatches.push(`step ${i} ${key}: ${got} vs ${expected}`);
  }
  expect(mismatches).toEqual([]);
  expect(b.size).toBe(ref.size);
  for (const [k, r] of ref) {
    const tokens = Math.min(spec.burst, r.tokens + ((now - r.at) / 1000) * spec.perSecond);
    expect(b.wait(k, now)).toBe(tokens < 1 ? Math.max(1, Math.ceil((1 - tokens) / spec.perSecond)) : 0);
  }
  expect(b.evicted).toBeGreaterThan(1000);
});

test('Retry-After is the wait for one token; perSecond 0 disables the limit', () => {
  const b = new TokenBuckets({ perSecond: 0.5, burst: 1 });
  expect(b.take('c', 0)).toBe(0);
  expect(b.take('c', 0)).toBe(2);
  expect(b.wait('c', 0)).toBe(2);
  expect(b.take('c', 2000)).toBe(0);
  const off = new TokenBuckets({ perSecond: 0, burst: 0 });
  for (let i = 0; i < 100; i++) expect(off.take('c', 0)).toBe(0);
  expect(off.size).toBe(0);
});

const req = (remote: string, xff?: string) => ({ socket: { remoteAddress: remote }, connection: { remoteAddress: remote }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as unknown as IncomingMessage;

test('X-Forwarded-For counts only from trusted proxies (PENUMBRA_TRUST_PROXY)', () => {
  const loopback = compileTrust('loopback');
  expect(clientAddress(req('127.0.0.1', '203.0.113.7'), loopback)).toBe('203.0.113.7');
  expect(clientAddress(req('198.51.100.1', '203.0.113.7'), loopback)).toBe('198.51.100.1'); // spoofed from outside
  // Several hops: the rightmost untrusted address is the client.
  expect(clientAddress(req('127.0.0.1', '1.1.1.1, 203.0.113.7'), loopback)).toBe('203.0.113.7');
  const none = compileTrust(false);
  expect(clientAddress(req('127.0.0.1', '203.0.113.7'), none)).toBe('127.0.0.1');
  const lb = compileTrust('10.0.0.0/8, loopback');
  expect(clientAddress(req('10.1.2.3', '203.0.113.7'), lb)).toBe('203.0.113.7');
  expect(clientAddress(req('127.0.0.1', '203.0.113.7, 10.9.9.9'), lb)).toBe('203.0.113.7');
  const oneHop = compileTrust(1);
  expect(clientAddress(req('198.51.100.1', '203.0.113.7'), oneHop)).toBe('203.0.113.7');
});

test('a request whose socket already closed (no remoteAddress) is keyed "unknown", not a crash', () => {
  const gone = { socket: {}, connection: {}, headers: {} } as unknown as IncomingMessage;
  const loopback = compileTrust('loopback');
  expect(clientAddress(gone, loopback)).toBe('unknown');
  expect(clientKey(clientAddress(gone, loopback))).toBe('unknown');
  const goneXff = { socket: {}, connection: {}, headers: { 'x-forwarded-for': '203.0.113.7' } } as unknown as IncomingMessage;
  expect(clientAddress(goneXff, loopback)).toBe('unknown');
});

test('the one-address shortcut answers exactly what proxy-addr answers', () => {
  const trusts = [compileTrust('loopback'), compileTrust(false), compileTrust(true), compileTrust('10.0.0.0/8, loopback'), compileTrust(1), compileTrust(0)];
  const peers = ['127.0.0.1', '10.1.2.3', '198.51.100.1', '::1', '::ffff:127.0.0.1', '2001:db8::1'];
  const headers = [undefined, '', ' ', '203.0.113.7', ' 203.0.113.7 ', '203.0.113.7\t', 'not-an-ip', '2001:db8::9', '  a b  ', '1.1.1.1, 203.0.113.7', '1.1.1.1,', ',', '203.0.113.7 ,10.9.9.9'];
  let n = 0;
  for (const trust of trusts) {
    for (const peer of peers) {
      for (const xff of headers) {
        const r = { socket: { remoteAddress: peer }, connection: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } } as unknown as IncomingMessage;
        const want = proxyaddr(r as Parameters<typeof proxyaddr>[0], trust);
        // Twice: the second call answers from the per-connection trust cache.
        expect([clientAddress(r, trust), clientAddress(r, trust)]).toEqual([want, want]);
        n++;
      }
    }
  }
  expect(n).toBe(trusts.length * peers.length * headers.length);
  for (const a of ['203.0.113.9', 'not-an-ip', '10.0.0.1']) expect(clientKey(a)).toBe(a);
});


/**
 * Ingest by URL is not an SSRF (issue 17, item 5). Real HTTP servers on loopback stand in for
 * the allowed CDN and for an internal service; DNS answers that would point at private or
 * link-local addresses are injected (no traffic ever leaves loopback).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { allowedUrl, fetchArchive, isPrivateAddress, parseAllowList } from './fetch-archive.ts';
import { ValidationError } from '../errors.ts';

let cdn: http.Server;
let internal: http.Server;
let cdnPort = 0;
let internalPort = 0;
const internalHits: string[] = [];
const BODY = Buffer.alloc(64 * 1024, 7);

beforeAll(async () => {
  cdn = http.createServer((req, res) => {
    if (req.url === '/items/a.zip') return void res.end(BODY);
    if (req.url === '/items/redirect.zip') return void res.writeHead(302, { location: `http://127.0.0.1:${internalPort}/secret` }).end();
    if (req.url === '/items/lying.zip') {
      // Declares a small body, sends a large one: only counting while streaming catches it.
      res.writeHead(200, { 'content-length': '10' });
      res.flushHeaders();
      res.socket?.write(Buffer.alloc(1024 * 1024, 1));
      return;
    }
    if (req.url === '/items/chunked.zip') {
      res.writeHead(200);
      for (let i = 0; i < 40; i++) res.write(Buffer.alloc(64 * 1024, 2));
      return void res.end();
    }
    res.writeHead(404).end();
  });
  internal = http.createServer((req, res) => {
    internalHits.push(req.url ?? '');
    res.end('metadata-secret');
  });
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
  cdnPort = (cdn.address() as AddressInfo).port;
  internalPort = (internal.address() as AddressInfo).port;
});
afterAll(async () => {
  cdn.closeAllConnections();
  await new Promise((r) => cdn.close(r));
  await new Promise((r) => internal.close(r));
});

const refusedWith = async (p: Promise<unknown>, re: RegExp) => {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ValidationError);
  expect((err as ValidationError).issues[0].path).toBe('archiveRef');
  expect((err as Error).message).toMatch(re);
};

test('the allow-list is matched on the parsed origin and path, not as a string prefix', () => {
  const allow = parseAllowList(['https://cdn.example.com', 'https://assets.example.com/items/']);
  // The review's attack: a string prefix accepted userinfo that names the allowed host.
  expect(allowedUrl('https://cdn.example.com@169.254.169.254/latest/meta-data/', allow)).toEqual({ why: expect.stringMatching(/credentials/) });
  expect(allowedUrl('https://cdn.example.com.evil.net/a.zip', allow)).toEqual({ why: expect.stringMatching(/not under/) });
  expect(allowedUrl('https://cdn.example.com:8443/a.zip', allow)).toEqual({ why: expect.stringMatching(/not under/) });
  expect(allowedUrl('http://cdn.example.com/a.zip', allow)).toEqual({ why: expect.stringMatching(/not under/) });
  expect(allowedUrl('https://assets.example.com/items-evil/a.zip', allow)).toEqual({ why: expect.stringMatching(/not under/) });
  expect(allowedUrl('https://assets.example.com/other/../items/a.zip', allow)).toHaveProperty('url'); // normalised by URL
  expect(allowedUrl('https://cdn.example.com/any/a.zip', allow)).toHaveProperty('url');
  expect(allowedUrl('https://assets.example.com/items/a.zip', allow)).toHaveProperty('url');
  expect(allowedUrl('file:///etc/passwd', allow)).toEqual({ why: expect.stringMatching(/http/) });
});

test.each([
  ['127.0.0.1', true], ['10.1.2.3', true], ['172.16.0.1', true], ['192.168.1.1', true], ['169.254.169.254', true], ['100.64.0.1', true],
  ['0.0.0.0', true], ['::1', true], ['::', true], ['fe80::1', true], ['fd00::1', true], ['::ffff:169.254.169.254', true], ['::ffff:a9fe:a9fe', true],
  ['64:ff9b::a9fe:a9fe', true], ['93.184.216.34', false], ['2606:2800:220:1:248:1893:25c8:1946', false], ['not-an-ip', true],
])('%s is private: %s', (addr, want) => {
  expect(isPrivateAddress(addr)).toBe(want);
});

test('an allowed host that resolves to a private or link-local address is refused before any connection', async () => {
  const allow = parseAllowList([`http://cdn.test:${internalPort}/`]);
  for (const address of ['169.254.169.254', '127.0.0.1', '10.0.0.5', '::1']) {
    const resolve = async () => [{ address, family: address.includes(':') ? 6 : 4 }];
    await refusedWith(fetchArchive(`http://cdn.test:${internalPort}/secret`, { allow, maxBytes: 1e6, resolve }), new RegExp(`resolves to ${address.replace(/[.:]/g, '\\$&')}`));
  }
  // One private address among public ones is enough to refuse (the connection could pick it).
  const mixed = async () => [{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }];
  await refusedWith(fetchArchive(`http://cdn.test:${internalPort}/secret`, { allow, maxBytes: 1e6, resolve: mixed }), /resolves to 127\.0\.0\.1/);
  // A literal private address in an allowed entry is refused too.
  await refusedWith(fetchArchive(`http://127.0.0.1:${internalPort}/secret`, { allow: parseAllowList([`http://127.0.0.1:${internalPort}/`]), maxBytes: 1e6 }), /private/);
  expect(internalHits).toEqual([]);
});

describe('with private addresses allowed (development setting), on loopback', () => {
  const opts = () => ({ allow: parseAllowList([`http://127.0.0.1:${cdnPort}/items/`]), maxBytes: 1024 * 1024, allowPrivate: true });

  test('an allowed URL is fetched', async () => {
    expect((await fetchArchive(`http://127.0.0.1:${cdnPort}/items/a.zip`, opts())).equals(BODY)).toBe(true);
  });

  test('redirects are not followed', async () => {
    await refusedWith(fetchArchive(`http://127.0.0.1:${cdnPort}/items/redirect.zip`, opts()), /HTTP 302 \(redirects are not followed\)/);
    expect(internalHits).toEqual([]);
  });

  test('the body is capped while it streams, whatever Content-Length says', async () => {
    await refusedWith(fetchArchive(`http://127.0.0.1:${cdnPort}/items/chunked.zip`, opts()), /more than 1048576 bytes/);
    await refusedWith(fetchArchive(`http://127.0.0.1:${cdnPort}/items/chunked.zip`, { ...opts(), maxBytes: 100_000 }), /more than 100000 bytes/);
    const lying = await fetchArchive(`http://127.0.0.1:${cdnPort}/items/lying.zip`, { ...opts(), maxBytes: 100_000 }).then((b) => b.length, (e: Error) => e.message);
    // Node's parser stops at the declared length: never more than the cap in memory either way.
    expect(typeof lying === 'number' ? lying <= 100_000 : /more than|fetched/.test(lying)).toBe(true);
  });
});

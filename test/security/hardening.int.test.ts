/**
 * The attacks of the security review (issue 17) and issue 15's backend callers, each against
 * the real stack: one Penumbra (real Kafka, registry, blob store, both listeners) for the whole
 * file, real HTTP servers on loopback standing in for a CDN and an internal service, real
 * headless Chromium for the per-item origins. docs/security.md lists each attack with its test.
 *
 * Requests come from 127.0.0.1, a trusted proxy by default (PENUMBRA_TRUST_PROXY=loopback), so
 * each test plays its own client through X-Forwarded-For and the limits never cross tests.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Consumer } from 'kafkajs';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../../pipeline/shadowing/fixtures.ts';
import { itemOriginLabel } from '../../connectors/http/content-origin.ts';
import { DLQ_VALUE_PREFIX_BYTES } from '../../pipeline/kafka/dlq.ts';
import type { DeadLetter } from '../../schemas/types.generated.ts';
import { waitFor } from '../wait-for.ts';
import { requires } from '../requires.ts';

const A = 'com.example.apirefs';
const B = 'com.example.multipage';
const RETENTION = 64 * 1024 * 1024;

let t: TestPenumbra;
let browser: Browser | undefined;
let contentPort = 0;
let cdn: http.Server;
let internal: http.Server;
let cdnPort = 0;
let internalPort = 0;
const outsideHits: string[] = [];
const letters: DeadLetter[] = [];
let dlqConsumer: Consumer;
const versions: Record<string, { version: string; entry: string }> = {};

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const as = (client: string, extra: Record<string, string> = {}) => ({ 'x-forwarded-for': client, ...extra });

beforeAll(async () => {
  const hit = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    outsideHits.push(`${name} ${req.url}`);
    res.end('secret');
  };
  cdn = http.createServer(hit('cdn'));
  internal = http.createServer(hit('internal'));
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
  cdnPort = (cdn.address() as AddressInfo).port;
  internalPort = (internal.address() as AddressInfo).port;
  contentPort = await freePort();
  t = await startTestPenumbra('hardening', {
    PENUMBRA_CONTENT_PORT: String(contentPort),
    // One origin per item; every *.localhost name is loopback to browsers.
    PENUMBRA_CONTENT_URL: `http://*.localhost:${contentPort}`,
    PENUMBRA_INGEST_URL_ALLOW: `http://localhost:${cdnPort}/items/`,
    PENUMBRA_RATE_RESOLVE: '5:10',
    // One failure refilled per 10 s: the throttle test cannot be outrun by a slow machine.
    PENUMBRA_RATE_AUTH_FAILURES: '0.1:5',
    PENUMBRA_STREAMS_PER_TOKEN: '2',
    PENUMBRA_MAX_CONNECTIONS: '20',
    PENUMBRA_HEADERS_TIMEOUT_MS: '2000',
    PENUMBRA_TOPIC_RETENTION_BYTES: String(RETENTION),
  });
  for (const [name, fmt] of [['api-refs', 'zip'], ['multi-page-web', 'tar.gz']] as const) {
    const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive(name, fmt), goldenConfig(name, fixtureTree(name)), `item.${fmt}`) });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { item: { itemId: string; versions: { version: string; entry: string }[] } };
    versions[body.item.itemId] = body.item.versions[0];
  }
  dlqConsumer = t.p.ctx.kafka.consumer({ groupId: `hardening-dlq-${randomUUID()}` });
  await dlqConsumer.connect();
  await dlqConsumer.subscribe({ topic: t.cfg.topics.dlq, fromBeginning: true });
  void dlqConsumer.run({ eachMessage: async ({ message }) => void letters.push(await t.p.ctx.codec.decode('dead-letter', message.value)) });
});

afterAll(async () => {
  await browser?.close();
  await dlqConsumer?.disconnect();
  await t?.stop();
  await new Promise((r) => cdn?.close(r));
  await new Promise((r) => internal?.close(r));
});

// ---- item 3: regex rules ---------------------------------------------------------------------

test('the review\'s regex patterns are accepted and a hostile value resolves in milliseconds, not hours', async () => {
  for (const pattern of ['^' + '(a|a)'.repeat(39) + '$', '^(a|a){16}(a|a){16}$']) {
    const cur = await fetch(`${t.url}/api/v1/items/${B}/shadow-config`, { headers: t.auth('operator') });
    const cfg = goldenConfig('multi-page-web', fixtureTree('multi-page-web'));
    cfg.traffic = { percentage: 50, match: 'all', rules: [{ attribute: 'userGroup', op: 'regex', pattern }] };
    const put = await fetch(`${t.url}/api/v1/items/${B}/shadow-config`, { method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': cur.headers.get('etag')! }, body: JSON.stringify({ shadows: [cfg] }) });
    expect({ pattern, status: put.status }).toEqual({ pattern, status: 200 });
    // Backend caller (token): not rate limited, so every call reaches the resolver.
    for (const userGroup of ['a'.repeat(63) + 'b', 'a'.repeat(64)]) {
      const res = await fetch(`${t.url}/api/v1/resolve?itemId=${B}&userId=u-${userGroup.length}&userGroup=${userGroup}`, { headers: t.auth('viewer'), signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { reason: string }).reason).toMatch(/no_match|assigned|not_in_share/);
    }
  }
});

// ---- item 4: bounded memory and disk -------------------------------------------------------

test('a refused 500 KiB body leaves a bounded dead letter: prefix, length and SHA-256', async () => {
  const body = Buffer.concat([Buffer.from('{"broken": '), Buffer.alloc(500 * 1024, 0x61)]);
  const res = await fetch(`${t.url}/api/v1/telemetry`, { method: 'POST', headers: as('198.51.100.4', { 'content-type': 'application/json' }), body });
  expect(res.status).toBe(400);
  const sha = createHash('sha256').update(body).digest('hex');
  const letter = await waitFor('dead letter', () => letters.find((l) => l.valueSha256 === sha), 20_000, 50);
  expect(letter.value!.length).toBe(DLQ_VALUE_PREFIX_BYTES);
  expect(letter.value!.equals(body.subarray(0, DLQ_VALUE_PREFIX_BYTES))).toBe(true);
  expect(letter).toMatchObject({ valueLength: body.length, valueTruncated: true, errorCode: 'malformed-json', processor: 'collector' });
});

test('non-compacted topics are created with a size-based retention', async () => {
  const admin = t.p.ctx.kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [t.cfg.topics.dlq, t.cfg.topics.telemetryRaw, t.cfg.topics.shadowProfiles].map((name) => ({ type: 2, name, configNames: ['retention.bytes', 'cleanup.policy'] })) });
    const byTopic = Object.fromEntries(resources.map((r) => [r.resourceName, Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue]))]));
    expect(byTopic[t.cfg.topics.dlq]['retention.bytes']).toBe(String(RETENTION));
    expect(byTopic[t.cfg.topics.telemetryRaw]['retention.bytes']).toBe(String(RETENTION));
    expect(byTopic[t.cfg.topics.shadowProfiles]['cleanup.policy']).toBe('compact'); // state topics keep every key
  } finally {
    await admin.disconnect();
  }
});

test('artifacts stream from the blob store byte for byte', async () => {
  const item = (await (await fetch(`${t.url}/api/v1/items/${A}`, { headers: t.auth('viewer') })).json()) as { versions: { variants: { name: string; sha256: string; size: number }[] }[] };
  for (const v of item.versions[0].variants) {
    const res = await fetch(`${t.url}/api/v1/items/${A}/artifacts/${v.name}`, { headers: t.auth('viewer') });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(v.size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(v.sha256);
  }
});

// ---- item 5: ingest by URL ------------------------------------------------------------------

test('ingest by URL: userinfo tricks and allowed hosts that resolve to loopback are refused; the audit names the topic', async () => {
  const send = (requestId: string, value: { archive?: Buffer; archiveRef?: string; itemId?: string; submittedBy?: string }) =>
    t.p.ctx.producer.send([{ topic: t.cfg.topics.itemsIngest, key: value.itemId ?? 'x', value: { requestId, itemId: value.itemId ?? 'com.example.jsentry', archive: value.archive ?? null, archiveRef: value.archiveRef ?? null, shadowConfigJson: null, submittedBy: value.submittedBy ?? 'data-eng', submittedAt: Date.now(), proactive: null, rolloutJson: null } }]);
  const run = randomUUID().slice(0, 8);
  // The review's shape: the allowed origin as userinfo, the real host somewhere else.
  await send(`userinfo-${run}`, { archiveRef: `http://localhost:${cdnPort}@127.0.0.1:${internalPort}/items/secret` });
  // Allowed origin and path, but `localhost` resolves to a loopback address.
  await send(`resolved-${run}`, { archiveRef: `http://localhost:${cdnPort}/items/a.zip` });
  // A path outside the allowed one.
  await send(`path-${run}`, { archiveRef: `http://localhost:${cdnPort}/private/a.zip` });
  // A record that claims to be from an admin, with a valid inline archive.
  await send(`claim-${run}`, { archive: await fixtureArchive('js-entry', 'zip'), submittedBy: 'admin' });

  const reason = (id: string) => waitFor(`dead letter ${id}`, () => letters.find((l) => l.reason.includes(id))?.reason, 30_000, 50);
  expect(await reason(`userinfo-${run}`)).toMatch(/credentials/);
  expect(await reason(`resolved-${run}`)).toMatch(/resolves to (127\.0\.0\.1|::1), a private, loopback or link-local address/);
  expect(await reason(`path-${run}`)).toMatch(/not under an allowed origin and path/);
  expect(outsideHits).toEqual([]); // nothing was ever fetched

  const audit = await waitFor('audited topic ingest', async () => {
    const r = (await (await fetch(`${t.url}/api/v1/audit?itemId=com.example.jsentry`, { headers: t.auth('viewer') })).json()) as { entries: { actor: string; reason: string | null }[] };
    return r.entries.find((e) => e.reason?.includes(`claim-${run}`));
  }, 30_000, 100);
  expect(audit.actor).toBe(`topic:${t.cfg.topics.itemsIngest}`);
  expect(audit.reason).toContain('submittedBy "admin" (claimed by the record)');
});

// ---- item 6: origins and connections ------------------------------------------------------

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('end', () => resolve(got));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy());
  });
}

function get(port: number, p: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('an absolute-form request for /d/ on the API port is redirected, never served as an item page there', async () => {
  const { version, entry } = versions[A];
  const apiPort = Number(new URL(t.url).port);
  const target = `/d/${A}/${version}/original/${entry}`;
  for (const form of [`http://127.0.0.1:${apiPort}${target}`, `http://evil.example${target}`]) {
    const answer = await rawRequest(apiPort, `GET ${form} HTTP/1.1\r\nHost: 127.0.0.1:${apiPort}\r\nConnection: close\r\n\r\n`);
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 308 Permanent Redirect');
    expect(answer).toMatch(new RegExp(`location: http://${itemOriginLabel(A)}\\.localhost:${contentPort}${target.replace(/\./g, '\\.')}`, 'i'));
    expect(answer).not.toMatch(/<html|<script/i);
  }
});

test('one origin per item: an item is served only on its own host', async () => {
  const { version, entry } = versions[A];
  const p = `/d/${A}/${version}/original/${entry}`;
  expect((await get(contentPort, p, `${itemOriginLabel(A)}.localhost:${contentPort}`)).status).toBe(200);
  const other = await get(contentPort, p, `${itemOriginLabel(B)}.localhost:${contentPort}`);
  expect(other.status).toBe(404);
  expect(other.body).toContain('one origin per item');
  expect((await get(contentPort, p, `127.0.0.1:${contentPort}`)).status).toBe(404);
  // /launch sends a browser to the item's own host.
  const launch = await fetch(`${t.url}/launch/${A}?userId=u-launch`, { redirect: 'manual', headers: as('198.51.100.30') });
  expect(launch.status).toBe(302);
  expect(new URL(launch.headers.get('location')!).host).toBe(`${itemOriginLabel(A)}.localhost:${contentPort}`);
});

test('both listeners cap connections and close clients that never finish their headers', async () => {
  for (const server of [t.p.server]) {
    expect(server.maxConnections).toBe(20);
    expect(server.headersTimeout).toBe(2000);
  }
  // Slowloris: headers never completed → closed after the headers timeout (408 or a bare close).
  const started = Date.now();
  const slow = await rawRequest(contentPort, `GET /d/${A}/x/original/index.html HTTP/1.1\r\nHost: x\r\nX-Slow: `);
  expect(Date.now() - started).toBeLessThan(9_000);
  expect(slow === '' || slow.startsWith('HTTP/1.1 408')).toBe(true);
  // Connection cap: the 21st concurrent connection is dropped at once.
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      sockets.push(await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(contentPort, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      }));
    }
    const extra = await new Promise<{ closedWithin: number; data: string }>((resolve) => {
      const t0 = Date.now();
      let data = '';
      const s = net.connect(contentPort, '127.0.0.1', () => s.write(`GET /d/${A}/x/original/index.html HTTP/1.1\r\nHost: x\r\n\r\n`));
      s.on('data', (d) => (data += d));
      s.on('close', () => resolve({ closedWithin: Date.now() - t0, data }));
      s.on('error', () => undefined);
    });
    // A full request on it got no answer at all: the connection was dropped, not served.
    expect(extra.data).toBe('');
    expect(extra.closedWithin).toBeLessThan(10_000);
  } finally {
    for (const s of sockets) s.destroy();
  }
});

requires(['chromium'])('in Chromium, two items\' pages cannot read each other\'s storage', async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${t.url}/launch/${A}?userId=storage-a`);
  expect(new URL(page.url()).host).toBe(`${itemOriginLabel(A)}.localhost:${contentPort}`);
  await page.evaluate(() => localStorage.setItem('secret', 'item A'));
  expect(await page.evaluate(() => localStorage.getItem('secret'))).toBe('item A');
  await page.goto(`${t.url}/launch/${B}?userId=storage-b`);
  expect(new URL(page.url()).host).toBe(`${itemOriginLabel(B)}.localhost:${contentPort}`);
  const seen = await page.evaluate(async (aUrl) => {
    const frame = document.createElement('iframe');
    frame.src = aUrl;
    document.body.appendChild(frame);
    await new Promise((r) => frame.addEventListener('load', r));
    let viaFrame: string;
    try {
      viaFrame = String(frame.contentWindow!.localStorage.getItem('secret'));
    } catch (e) {
      viaFrame = (e as Error).name;
    }
    return { own: localStorage.getItem('secret'), viaFrame, origin: window.origin };
  }, `http://${itemOriginLabel(A)}.localhost:${contentPort}/d/${A}/${versions[A].version}/original/${versions[A].entry}`);
  expect(seen.own).toBeNull();
  expect(seen.viaFrame).toBe('SecurityError');
  expect(seen.origin).toBe(`http://${itemOriginLabel(B)}.localhost:${contentPort}`);
  await context.close();
}, 60_000);

test('live streams are capped per token', async () => {
  const open: AbortController[] = [];
  const openStream = async () => {
    const ac = new AbortController();
    const res = await fetch(`${t.url}/api/v1/stream`, { headers: t.auth('viewer'), signal: ac.signal });
    open.push(ac);
    return res.status;
  };
  try {
    expect(await openStream()).toBe(200);
    expect(await openStream()).toBe(200);
    const third = await fetch(`${t.url}/api/v1/stream`, { headers: t.auth('viewer') });
    expect(third.status).toBe(429);
    expect(((await third.json()) as { detail: string }).detail).toMatch(/PENUMBRA_STREAMS_PER_TOKEN/);
    // Another token is not affected; a closed stream frees its slot.
    expect(await openStream().then(() => (open.pop()!.abort(), 200))).toBe(200);
    const adminStream = new AbortController();
    expect((await fetch(`${t.url}/api/v1/stream`, { headers: t.auth('admin'), signal: adminStream.signal })).status).toBe(200);
    adminStream.abort();
    open.shift()!.abort();
    await waitFor('slot freed', async () => {
      const ac = new AbortController();
      const res = await fetch(`${t.url}/api/v1/stream`, { headers: t.auth('viewer'), signal: ac.signal });
      if (res.status === 200) open.push(ac);
      else await res.arrayBuffer();
      return res.status === 200 || undefined;
    }, 5000, 50);
  } finally {
    for (const ac of open) ac.abort();
  }
});

// ---- item 7 and issue 15 item 8: rate limits, authentication ------------------------------

async function resolveStatus(headers: Record<string, string>, itemId = A): Promise<number> {
  const res = await fetch(`${t.url}/api/v1/resolve?itemId=${itemId}&userId=u${Math.random()}`, { headers });
  await res.arrayBuffer();
  return res.status;
}

/**
 * Sends anonymous resolves as `client` until the first 429 (at most 60) and returns how many
 * were answered before it, with the most the bucket may have allowed meanwhile: burst 10 plus
 * 5/s of refill over the elapsed time (the machine may be slow; the bound stays exact).
 */
async function untilLimited(headers: Record<string, string>): Promise<{ answered: number; allowed: number; limited: boolean }> {
  const t0 = Date.now();
  let answered = 0;
  for (let i = 0; i < 60; i++) {
    const s = await resolveStatus(headers);
    if (s === 429) return { answered, allowed: 10 + Math.ceil(((Date.now() - t0) / 1000) * 5), limited: true };
    expect(s).toBe(200);
    answered++;
  }
  return { answered, allowed: 10 + Math.ceil(((Date.now() - t0) / 1000) * 5), limited: false };
}

test('the resolve fast path and the Express route share one bucket per client', async () => {
  const client = as('203.0.113.10');
  // Burst 10, then 429: the fast path's refusal falls through to the Express route, which finds
  // the same empty bucket. With a bucket of its own (before), Express answered another 10.
  const r = await untilLimited(client);
  expect(r.limited).toBe(true);
  expect(r.answered).toBeGreaterThanOrEqual(10);
  expect(r.answered).toBeLessThanOrEqual(r.allowed);
  // /launch draws from the same bucket: right after, it is refused within what the refill
  // (5/s) allows — a bucket of its own would let 10 through first.
  const t0 = Date.now();
  let launched = 0;
  for (;;) {
    const res = await fetch(`${t.url}/launch/${A}?userId=x`, { headers: client, redirect: 'manual' });
    await res.arrayBuffer();
    if (res.status === 429) {
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      break;
    }
    expect(res.status).toBe(302);
    launched++;
    expect(launched).toBeLessThanOrEqual(Math.ceil(((Date.now() - t0) / 1000) * 5) + 1);
  }
});

test('an IPv6 /64 is one client', async () => {
  // Every request from another address of the same /64.
  const t0 = Date.now();
  let answered = 0;
  let limited = false;
  for (let i = 1; i <= 60 && !limited; i++) {
    const s = await resolveStatus(as(`2001:db8:77:1:${i.toString(16)}::${(i * 7).toString(16)}`));
    if (s === 429) limited = true;
    else answered++;
  }
  expect(limited).toBe(true);
  expect(answered).toBeLessThanOrEqual(10 + Math.ceil(((Date.now() - t0) / 1000) * 5));
  expect(await resolveStatus(as('2001:db8:77:2::1'))).toBe(200); // the next /64 is another client
});

test('a backend caller with a service token is not throttled per address; anonymous devices still are', async () => {
  const client = '203.0.113.11';
  const withToken: number[] = [];
  for (let i = 0; i < 40; i++) withToken.push(await resolveStatus(as(client, t.auth('viewer'))));
  expect(withToken.every((s) => s === 200)).toBe(true);
  const anonymous = await untilLimited(as(client));
  expect(anonymous.limited).toBe(true);
  expect(anonymous.answered).toBeLessThanOrEqual(anonymous.allowed);
  // While the address is limited, the service caller is still answered.
  expect(await resolveStatus(as(client, t.auth('viewer')))).toBe(200);
  // A wrong token is no exemption.
  expect((await untilLimited(as('203.0.113.12', { authorization: 'Bearer not-a-token-0123456789' }))).limited).toBe(true);
});

test('failed authentications are throttled per client, then even a valid token waits', async () => {
  const guesser = '203.0.113.20';
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) {
    const res = await fetch(`${t.url}/api/v1/whoami`, { headers: as(guesser, { authorization: `Bearer guess-${i}-0123456789abcdef` }) });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
  const valid = await fetch(`${t.url}/api/v1/whoami`, { headers: as(guesser, t.auth('admin')) });
  expect(valid.status).toBe(429);
  expect(Number(valid.headers.get('retry-after'))).toBeGreaterThan(0);
  expect((await fetch(`${t.url}/api/v1/whoami`, { headers: as('203.0.113.21', t.auth('admin')) })).status).toBe(200);
});

test('the CLI takes PENUMBRA_TOKEN', async () => {
  const run = await new Promise<{ status: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ['bin/penumbra.js', 'rollback', B, '--url', t.url, '--reason', 'cli token test'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PENUMBRA_TOKEN: TOKENS.operator, PENUMBRA_DATA_DIR: t.dataDir },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => resolve({ status, out }));
  });
  expect(run).toMatchObject({ status: 0 });
  const profile = (await (await fetch(`${t.url}/api/v1/items/${B}/shadow-config`, { headers: t.auth('viewer') })).json()) as { state: string };
  expect(profile.state).toBe('rolled_back');
}, 60_000);

test('the data folder is 0700 and blobs are 0600', () => {
  expect(statSync(t.dataDir).mode & 0o777).toBe(0o700);
  const blobs = path.join(t.dataDir, 'blobs');
  const files = readdirSync(blobs, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) expect({ f: f.name, mode: (statSync(path.join(f.parentPath, f.name)).mode & 0o777).toString(8) }).toEqual({ f: f.name, mode: '600' });
});

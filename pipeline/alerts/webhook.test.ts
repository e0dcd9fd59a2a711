/**
 * The alert webhook does not follow redirects and signs its body (issue 17, item 7). Real HTTP
 * receivers on loopback: one that redirects to an "internal" service, one that checks the
 * signature the way docs/security.md tells receivers to.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook, signWebhookBody, verifyWebhookSignature } from './webhook.ts';

const SECRET = 'whsec-0123456789abcdef';
let receiver: http.Server;
let internal: http.Server;
let base = '';
const internalHits: string[] = [];
const received: { body: string; signature?: string; timestamp?: string }[] = [];

beforeAll(async () => {
  internal = http.createServer((req, res) => {
    internalHits.push(req.url ?? '');
    res.end('ok');
  });
  await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
  const internalUrl = `http://127.0.0.1:${(internal.address() as AddressInfo).port}/admin`;
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/redirect') return void res.writeHead(307, { location: internalUrl }).end();
      received.push({ body, signature: req.headers[SIGNATURE_HEADER] as string, timestamp: req.headers[TIMESTAMP_HEADER] as string });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => receiver.close(r));
  await new Promise((r) => internal.close(r));
});

test('a redirecting receiver is not followed (the alert body never reaches the redirect target)', async () => {
  const hook = new Webhook(`${base}/redirect`, { secret: SECRET, retries: 2, backoffMs: 10 });
  hook.send({ id: 'a1', message: 'errors up' });
  await hook.idle();
  expect(hook.stats).toMatchObject({ sent: 0, failed: 1, retries: 0 });
  expect(internalHits).toEqual([]);
});

test('every body is signed: HMAC-SHA256 over "<timestamp>.<body>", verifiable by the receiver', async () => {
  const hook = new Webhook(`${base}/hook`, { secret: SECRET });
  hook.send({ id: 'a2', message: 'latency up' });
  await hook.idle();
  expect(hook.stats.sent).toBe(1);
  const got = received.at(-1)!;
  expect(JSON.parse(got.body)).toEqual({ id: 'a2', message: 'latency up' });
  expect(got.signature).toBe(signWebhookBody(SECRET, Number(got.timestamp), got.body));
  expect(verifyWebhookSignature(SECRET, { signature: got.signature, timestamp: got.timestamp }, got.body)).toBe(true);
  // A forged body, another secret or a stale timestamp fail the check.
  expect(verifyWebhookSignature(SECRET, { signature: got.signature, timestamp: got.timestamp }, got.body.replace('latency', 'nothing'))).toBe(false);
  expect(verifyWebhookSignature('another-secret-0123456', { signature: got.signature, timestamp: got.timestamp }, got.body)).toBe(false);
  expect(verifyWebhookSignature(SECRET, { signature: got.signature, timestamp: got.timestamp }, got.body, { now: Date.now() + 3600_000 })).toBe(false);
});

/**
 * The collector route (connectors/http/telemetry-router.ts) with a producer stub in place of
 * Kafka: its health follows what it answers — ok while the broker acknowledges, degraded while
 * a batch waits too long for the acknowledgement, degraded while it answers 503, ok again once
 * a produce is acknowledged. (The same with a real broker killed under load:
 * test/faults/broker-restart.int.test.ts.)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createTelemetryRouter } from '../../connectors/http/telemetry-router.ts';
import { OpenApiRegistry } from '../../connectors/http/openapi.ts';
import { problemHandler } from '../../connectors/http/problem.ts';
import { topicNames } from '../config/config.ts';
import type { AvroProducer, OutRecord } from '../kafka/client.ts';
import { UnavailableError } from '../errors.ts';
import { CollectorHealth, STALL_MS } from './health.ts';

/** A producer whose next sends succeed, fail or wait, as the test says. */
class StubProducer {
  mode: 'ack' | 'hold' = 'ack';
  held: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  sent: OutRecord[] = [];
  async send(records: OutRecord[]): Promise<void> {
    if (this.mode === 'ack') {
      this.sent.push(...records);
      return;
    }
    await new Promise<void>((resolve, reject) => this.held.push({ resolve, reject }));
  }
}

const producer = new StubProducer();
const health = new CollectorHealth();
const { router, sender } = createTelemetryRouter({
  producer: producer as unknown as AvroProducer, topics: topicNames('t.'), openapi: new OpenApiRegistry(), health,
  // Attribution is not under test here: the batches are stored unverified (no token, no profile).
  keys: [{ kid: 'k1', secret: Buffer.alloc(32, 1) }], profile: () => undefined,
});
const app = express();
app.use(router);
app.use(problemHandler(() => {}));
let server: http.Server;
let url = '';

beforeAll(async () => {
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/telemetry`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

let n = 0;
function post(): Promise<Response> {
  const now = Date.now();
  const body = { itemId: 'com.example.notes', version: '1.0.0', variant: 'original', profileVersion: 1, sessionId: 's-1', userId: 'u-1', sentAt: now, events: [{ id: `e-${n++}`, type: 'usage', name: 'buy', ts: now }] };
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}
const check = (now = Date.now()) => health.check(now, sender.pending());

test('ok while acknowledged; stalled, refusing, then recovered as the broker stops and starts answering', async () => {
  expect((await post()).status).toBe(202);
  expect(check()).toMatchObject({ status: 'ok', recent: { acknowledged: 1, produceFailures: 0, answered503: 0 }, pending: { batches: 0, records: 0 } });

  // The broker stops answering: the batch waits; past STALL_MS the collector is degraded.
  producer.mode = 'hold';
  const waiting = post();
  for (let i = 0; i < 100 && producer.held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(producer.held).toHaveLength(1);
  expect(check()).toMatchObject({ status: 'ok', pending: { batches: 1, records: 1 } });
  const later = check(Date.now() + STALL_MS + 100);
  expect(later.status).toBe('degraded');
  expect(later.detail).toMatch(/1 batch\(es\), 1 record\(s\) waiting for Kafka's acknowledgement/);

  // The produce fails: the device is answered 503 (problem+json) and the collector is refusing.
  producer.held.shift()!.reject(new UnavailableError('Kafka did not acknowledge 1 record(s): connect ECONNREFUSED 127.0.0.1:9092'));
  const res = await waiting;
  expect(res.status).toBe(503);
  expect(((await res.json()) as { type: string }).type).toBe('https://penumbra.dev/problems/unavailable');
  const refusing = check();
  expect(refusing).toMatchObject({ status: 'degraded', recent: { acknowledged: 1, produceFailures: 1, answered503: 1 }, pending: { batches: 0, records: 0, oldestMs: 0 } });
  expect(refusing.detail).toMatch(/^refusing telemetry: 1 batch\(es\) answered 503 in the last 60 s and none acknowledged since \(Kafka did not acknowledge 1 record\(s\): connect ECONNREFUSED/);
  expect(refusing.lastFailure?.reason).toMatch(/ECONNREFUSED/);

  // The broker is back: the next batch is acknowledged and the collector is ok; the 503 stays counted.
  producer.mode = 'ack';
  expect((await post()).status).toBe(202);
  expect(check()).toMatchObject({ status: 'ok', recent: { acknowledged: 2, produceFailures: 1, answered503: 1 } });
  expect(producer.sent.filter((r) => r.topic === 't.telemetry.raw')).toHaveLength(2);
});

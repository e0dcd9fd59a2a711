/**
 * A produce response lost after the broker appended the batch (the broker died or the
 * connection dropped between append and answer) — what the broker-restart test hits by chance.
 * The fault is injected at the network edge: the real broker receives and stores every request,
 * only the answer to one batch is replaced by a connection error, on every retry, so the send
 * fails to its caller (the collector answers 503; the client will retry).
 *
 * Was a defect (fixed in pipeline/kafka/client.ts): kafkajs's idempotent producer rolls the
 * partition's sequence number back when a produce fails (sendMessages.js: updateSequence(…,
 * -messages.length)). The next, different batch with the same record count then carries the
 * sequence numbers of the batch the broker already stored; the broker takes it for a retry of
 * that batch, answers success with the old offset and does NOT store it. The caller gets its
 * ack — the collector answers 202 — for records that are nowhere. AvroProducer now replaces its
 * idempotent producer after any failed send (a fresh producer id, fresh sequences); the second
 * test fails if an acknowledged batch is missing from the topic.
 */
import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
// kafkajs's Broker class: the produce call is where the answer is replaced (CommonJS internals).
// @ts-expect-error kafkajs ships no types for its internal modules
import Broker from 'kafkajs/src/broker/index.js';
import { loadConfig, topicNames, type PenumbraConfig } from '../../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../../pipeline/kafka/client.ts';
import { provisionAll } from '../../pipeline/kafka/setup.ts';
import { telemetryEvent } from '../../connectors/duckdb-sink/fixtures.ts';
import { kafkaFor } from '../stack-helpers.ts';

const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
const prefix = `t-lost-ack-${randomUUID().slice(0, 8)}.`;
const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 1 };

type Produce = (this: unknown, req: { topicData: { topic: string; partitions: { messages: { value: Buffer }[] }[] }[] }) => Promise<unknown>;
const proto = (Broker as unknown as { prototype: { produce: Produce } }).prototype;
const original = proto.produce;
afterAll(() => {
  proto.produce = original;
});

/** What the scenario left on the topic (filled by the first test, judged by the second). */
const onTopic: string[] = [];
let batchB: string[] = [];

test('scenario: the answer to batch A is lost on every retry (A fails to its caller), then batch B is acknowledged', async () => {
  const kafka = createKafka(cfg.kafkaBrokers, 'lost-ack-test');
  const { codec } = await provisionAll(kafka, cfg);
  const producer = new AvroProducer(kafka, codec);
  await producer.connect();
  const batch = (tag: string) => Array.from({ length: 5 }, (_, i) => {
    const e = telemetryEvent(i, `${tag}-${i}`);
    return { topic: cfg.topics.telemetryRaw, key: 'same-session', value: e };
  });
  const A = batch('A');
  const B = batch('B');
  batchB = B.map((r) => r.value.id);
  let injected = 0;
  proto.produce = async function (this: unknown, req) {
    const res = await original.call(this, req); // the broker stores it…
    const carriesA = req.topicData.some((t) => t.partitions.some((p) => p.messages.some((m) => m.value.includes(Buffer.from('A-0')))));
    if (carriesA) {
      injected++;
      throw new kafkajs.KafkaJSConnectionError('injected: connection closed before the produce response'); // …the answer is lost
    }
    return res;
  };
  await expect(producer.send(A)).rejects.toThrow(/did not acknowledge/);
  expect(injected).toBeGreaterThan(0);
  await producer.send(B); // acknowledged
  await producer.disconnect();
  proto.produce = original;

  const consumer = kafkaFor('lost-ack-reader').consumer({ groupId: `${prefix}reader` });
  await consumer.connect();
  await consumer.subscribe({ topic: cfg.topics.telemetryRaw, fromBeginning: true });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        onTopic.push((await codec.decode('telemetry-event', message.value)).id);
        if (onTopic.length >= 10) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  process.stderr.write(`lost-ack: injected ${injected} lost answers; on the topic: ${onTopic.join(' ')}\n`);
  // A was stored although its caller saw a failure (a client retry is de-duplicated by id).
  expect(onTopic).toEqual(expect.arrayContaining(A.map((r) => r.value.id)));
}, 120_000);

test('fixed defect idempotent-sequence-rollback (the producer is replaced after a failed send): the acknowledged batch B is on the topic', () => {
  expect(batchB).toHaveLength(5);
  expect(onTopic).toEqual(expect.arrayContaining(batchB));
});

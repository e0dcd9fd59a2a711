/**
 * The exposure worker against the real broker and registry: every queued exposure reaches the
 * topic with its key on the partition kafkajs's default partitioner gives its userId, also when
 * the worker thread dies with batches in flight (the AssignmentLog keeps them and retries).
 */
import { randomUUID } from 'node:crypto';
import { Partitioners, type Kafka } from 'kafkajs';
import { loadConfig } from '../config/config.ts';
import { createKafka } from '../kafka/client.ts';
import { AvroCodec } from '../kafka/registry.ts';
import type { Assignment } from '../../schemas/types.generated.ts';
import { AssignmentLog } from './assignment-log.ts';
import { ExposureProducer } from './exposure-producer.ts';

const cfg = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
const topic = `t-expo-worker-${randomUUID().slice(0, 8)}.assignments`;
let kafka: Kafka;
let codec: AvroCodec;

beforeAll(async () => {
  kafka = createKafka(cfg.kafkaBrokers, 'exposure-worker-test');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  codec = new AvroCodec(cfg.schemaRegistryUrl);
  await codec.registerForTopic(topic, 'assignment');
});

const assignment = (i: number): Assignment => ({
  id: `e-${i}`, itemId: 'com.example.notes', userId: `user-${i}-é`, variant: i % 2 ? 'fast' : 'original', profileVersion: 2, bucket: i,
  reason: 'assigned', controlOf: null, deviceType: 'android', country: 'DE', userGroup: null, appVersion: null, attributes: { plan: 'pro' },
  derived: [], resolverId: 'r1', ts: 1_764_200_000_000 + i,
});

test('every exposure reaches Kafka, keyed and partitioned by userId, across a worker that dies mid-run', async () => {
  const producer = new ExposureProducer({ brokers: cfg.kafkaBrokers, clientId: 'exposure-worker-test', codec, topic });
  const log = new AssignmentLog({ send: (b) => producer.send(b), flushMs: 10, maxBatch: 40, retryInitialMs: 20 });
  const N = 400;
  for (let i = 0; i < N / 2; i++) log.enqueue(assignment(i));
  // Let some batches go out, then kill the thread while more are queued or in flight.
  const t0 = Date.now();
  while (log.stats().sent === 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 10));
  expect(log.stats().sent).toBeGreaterThan(0);
  for (let i = N / 2; i < N; i++) log.enqueue(assignment(i));
  await producer.thread!.terminate();
  expect(await log.drain(60_000)).toBe(true);
  expect(producer.started).toBeGreaterThanOrEqual(2);
  expect(log.stats()).toMatchObject({ sent: N, dropped: 0, depth: 0 });
  await log.stop();
  await producer.stop();

  const partitionOf = Partitioners.DefaultPartitioner();
  const meta = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
  const seen = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: `reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.size}/${N} exposures`)), 30_000);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const a = (await codec.decode('assignment', message.value!)) as Assignment;
        expect(message.key!.toString('utf8')).toBe(a.userId);
        // The same partition a string key gets from kafkajs (the worker sends the UTF-8 bytes).
        expect(partition).toBe(partitionOf({ topic, partitionMetadata: meta, message: { key: a.userId, value: null } }));
        expect(a).toEqual(assignment(Number(a.id.slice(2))));
        seen.set(a.id, (seen.get(a.id) ?? 0) + 1);
        if (seen.size === N) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  // At-least-once: a batch whose ack died with the worker may be there twice, none is missing.
  expect(seen.size).toBe(N);
});

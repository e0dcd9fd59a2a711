/**
 * The Kafka layer against the real broker and registry: provisioning, Confluent framing,
 * processor at-least-once flow, DLQ for undecodable records, schema evolution rules.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { loadConfig, topicNames, type PenumbraConfig } from '../config/config.ts';
import { createKafka, AvroProducer } from './client.ts';
import { provisionAll } from './setup.ts';
import { AvroCodec, SchemaRegistrationError, DecodeError } from './registry.ts';
import { runProcessor, type RunningProcessor } from './processor.ts';
import type { Assignment, DeadLetter } from '../../schemas/types.generated.ts';

const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
const prefix = `t-kafka-${randomUUID().slice(0, 8)}.`;
const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 2 };

let kafka: Kafka;
let codec: AvroCodec;
let producer: AvroProducer;
const running: RunningProcessor[] = [];

beforeAll(async () => {
  kafka = createKafka(cfg.kafkaBrokers, 'kafka-int-test');
  ({ codec } = await provisionAll(kafka, cfg));
  producer = new AvroProducer(kafka, codec);
  await producer.connect();
});

afterAll(async () => {
  for (const r of running) await r.stop();
  await producer?.disconnect();
});

function assignment(i: number): Assignment {
  return {
    id: `a-${i}`, itemId: 'com.example.notes', userId: `u-${i}`, variant: i % 2 ? 'checkout-v2' : 'original',
    profileVersion: 3, bucket: i, reason: 'assigned', controlOf: null, deviceType: 'android', country: null, userGroup: null,
    appVersion: '1.4.0', attributes: { plan: 'pro' }, derived: [], resolverId: 'r1', ts: 1764200000000 + i,
  };
}

async function readAll(topic: string, n: number, timeoutMs = 20000): Promise<{ key: string | null; value: Buffer }[]> {
  const consumer = kafka.consumer({ groupId: `reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: { key: string | null; value: Buffer }[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length}/${n} records on ${topic}`)), timeoutMs);
    void consumer.run({
      eachMessage: async ({ message }) => {
        got.push({ key: message.key?.toString() ?? null, value: message.value! });
        if (got.length >= n) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return got;
}

test('provisioning creates every topic, compacts state topics and registers <topic>-value subjects', async () => {
  const admin = kafka.admin();
  await admin.connect();
  const list = await admin.listTopics();
  for (const t of Object.values(cfg.topics)) expect(list).toContain(t);
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [cfg.topics.shadowProfiles, cfg.topics.itemsCatalog, cfg.topics.comparisons, cfg.topics.telemetryRaw].map((name) => ({ type: 2, name, configNames: ['cleanup.policy'] })),
  });
  const policy = Object.fromEntries(resources.map((r) => [r.resourceName, r.configEntries[0]?.configValue]));
  expect(policy[cfg.topics.shadowProfiles]).toBe('compact');
  expect(policy[cfg.topics.itemsCatalog]).toBe('compact');
  // Latest comparisons per item (pipeline/comparisons-topic): state, so compacted.
  expect(policy[cfg.topics.comparisons]).toBe('compact');
  expect(policy[cfg.topics.telemetryRaw]).toBe('delete');
  // The live view's provisional windows are worthless after minutes: a 10 min time bound.
  const live = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: cfg.topics.telemetryLive, configNames: ['cleanup.policy', 'retention.ms'] }] });
  expect(Object.fromEntries(live.resources[0].configEntries.map((e) => [e.configName, e.configValue]))).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': '600000' });
  await admin.disconnect();
  const subjects = (await (await fetch(`${cfg.schemaRegistryUrl}/subjects`)).json()) as string[];
  for (const t of Object.values(cfg.topics)) expect(subjects).toContain(`${t}-value`);
  // Provisioning again is a no-op, not an error.
  const again = await provisionAll(kafka, cfg);
  expect(again.topics.created).toEqual([]);
});

test('records are Confluent-framed Avro whose schema id resolves in the registry', async () => {
  await producer.send([{ topic: cfg.topics.assignments, key: 'u-1', value: assignment(1) }]);
  const [rec] = await readAll(cfg.topics.assignments, 1);
  expect(rec.value[0]).toBe(0);
  const id = rec.value.readInt32BE(1);
  const res = await fetch(`${cfg.schemaRegistryUrl}/schemas/ids/${id}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { schema: string };
  expect(JSON.parse(body.schema).name).toBe('Assignment');
  expect(await codec.decode('assignment', rec.value)).toEqual(assignment(1));
});

test('a processor hands decoded records to its handler and dead-letters garbage with bytes and offset', async () => {
  const seen: string[] = [];
  const proc = await runProcessor(
    { kafka, codec, producer, dlqTopic: cfg.topics.dlq },
    {
      name: 'test-proc', groupId: `${prefix}proc`, topic: cfg.topics.assignments, schema: 'assignment',
      validate: (v) => (v.bucket > 9999 ? [{ path: 'bucket', message: 'must be < 10000' }] : []),
      handle: (recs) => {
        for (const r of recs) seen.push(r.value.id);
        return recs.map((r) => ({ topic: cfg.topics.audit, key: r.value.itemId, value: { id: `audit-${r.value.id}`, itemId: r.value.itemId, actor: 'test', role: 'system', action: 'seen', outcome: 'accepted', reason: null, beforeJson: null, afterJson: null, evidenceJson: null, requestId: null, at: 1 } }));
      },
    },
  );
  running.push(proc);
  const garbage = Buffer.from('definitely not avro');
  await producer.send([2, 3].map((i) => ({ topic: cfg.topics.assignments, key: `u-${i}`, value: assignment(i) })));
  await producer.sendRaw(cfg.topics.assignments, [{ key: 'u-x', value: garbage }]);
  await producer.send([{ topic: cfg.topics.assignments, key: 'u-9', value: { ...assignment(9), bucket: 12000 } }]);

  const dlq = await readAll(cfg.topics.dlq, 2);
  const letters = await Promise.all(dlq.map((d) => codec.decode('dead-letter', d.value)));
  const byCode = Object.fromEntries(letters.map((l: DeadLetter) => [l.errorCode, l]));
  expect(byCode.decode.value).toEqual(garbage);
  expect(byCode.decode.sourceTopic).toBe(cfg.topics.assignments);
  expect(byCode.decode.offset).not.toBeNull();
  expect(byCode.decode.reason).toMatch(/magic byte/);
  expect(byCode.validation.reason).toMatch(/bucket: must be < 10000/);
  const audit = await readAll(cfg.topics.audit, 3);
  expect(audit.length).toBeGreaterThanOrEqual(3);
  expect(seen).toEqual(expect.arrayContaining(['a-1', 'a-2', 'a-3']));
  expect(seen).not.toContain('a-9');
});

describe('schema evolution against the real registry (BACKWARD)', () => {
  const subject = `${prefix}evolution-value`;
  const v1 = { type: 'record', name: 'Evo', namespace: 'dev.penumbra.test', fields: [{ name: 'a', type: 'string' }] };

  test('a compatible change (new field with a default) is accepted', async () => {
    const id1 = await codec.register(subject, 'alert', v1);
    const v2 = { ...v1, fields: [...v1.fields, { name: 'b', type: 'int', default: 0 }] };
    const id2 = await codec.register(subject, 'alert', v2);
    expect(id2).not.toBe(id1);
  });

  test('an incompatible change (new field without default) is refused with a readable error', async () => {
    const bad = { ...v1, fields: [...v1.fields, { name: 'c', type: 'string' }] };
    const err = await codec.register(subject, 'alert', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaRegistrationError);
    expect((err as Error).message).toContain(subject);
    expect((err as Error).message).toMatch(/refused by the registry/);
  });

  test('a record written with an older schema is read into the latest shape', async () => {
    const old = { type: 'record', name: 'Assignment', namespace: 'dev.penumbra', fields: [
      { name: 'id', type: 'string' }, { name: 'itemId', type: 'string' }, { name: 'userId', type: 'string' },
      { name: 'variant', type: 'string' }, { name: 'profileVersion', type: 'long' }, { name: 'bucket', type: 'int' },
      { name: 'reason', type: 'string' }, { name: 'resolverId', type: 'string' }, { name: 'ts', type: 'long' } ] };
    const id = await codec.register(`${prefix}old-assign-value`, 'assignment', old);
    const avsc = await import('avsc');
    const body = avsc.default.Type.forSchema(old as never).toBuffer({ id: 'o1', itemId: 'i', userId: 'u', variant: 'original', profileVersion: 1, bucket: 5, reason: 'assigned', resolverId: 'r', ts: 2 });
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    framed.writeInt32BE(id, 1);
    const v = await codec.decode('assignment', framed);
    expect(v).toMatchObject({ id: 'o1', deviceType: null, attributes: {}, derived: [] });
    await expect(codec.decode('assignment', Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 1, 2]))).rejects.toBeInstanceOf(DecodeError);
  });
});

/**
 * Issue 2 acceptance: a record written by Penumbra's producer is decoded by an independent
 * client — Confluent's Python client (confluent-kafka AvroDeserializer + SchemaRegistryClient)
 * pointed at our registry. Also: `kcat -L` lists every topic of the contract.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadConfig, topicNames, type PenumbraConfig } from '../../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../../pipeline/kafka/client.ts';
import { provisionAll } from '../../pipeline/kafka/setup.ts';
import type { TelemetryEvent, AuditEntry } from '../../schemas/types.generated.ts';
import { uniquePrefix } from '../stack-helpers.ts';
import { requires } from '../requires.ts';

const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS!, SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL! });
const prefix = uniquePrefix('wire');
const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 1 };

function python(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('python3', args);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

// Both tests read topics of this file's prefix; provisioned once, whichever of them runs.
let codec: Awaited<ReturnType<typeof provisionAll>>['codec'];
let kafka: ReturnType<typeof createKafka>;
beforeAll(async () => {
  kafka = createKafka(cfg.kafkaBrokers, 'wire-test');
  ({ codec } = await provisionAll(kafka, cfg));
}, 60_000);

requires(['python:confluent_kafka.schema_registry.avro'])('Confluent-framed Avro written by Penumbra decodes with confluent-kafka against our registry', async () => {
  const producer = new AvroProducer(kafka, codec);
  await producer.connect();
  const ev: TelemetryEvent = { id: randomUUID(), itemId: 'com.example.notes', version: '1.4.0', variant: 'checkout-v2', profileVersion: 3, sessionId: 's-1', userId: 'u-1', type: 'request', name: 'api', ts: 1764200000420, value: 182.5, attrs: { status: '200', path: '/v1/notes' }, sentAt: 1764200001000, receivedAt: 1764200001005, controlOf: null, verified: true, unverifiedReason: null };
  const audit: AuditEntry = { id: randomUUID(), itemId: 'com.example.notes', actor: 'ada', role: 'operator', action: 'rollback', outcome: 'accepted', reason: 'p95 regression', beforeJson: '{"state":"active"}', afterJson: '{"state":"rolled_back"}', evidenceJson: null, requestId: 'r-1', at: 1764200002000 };
  await producer.send([{ topic: cfg.topics.telemetryRaw, key: ev.sessionId, value: ev }, { topic: cfg.topics.audit, key: audit.itemId, value: audit }]);
  await producer.disconnect();

  const tel = await python(['test/wire/decode_with_confluent.py', cfg.kafkaBrokers.join(','), cfg.schemaRegistryUrl, cfg.topics.telemetryRaw, '1']);
  expect(tel.err).not.toMatch(/Traceback/);
  expect(tel.code).toBe(0);
  const [line] = tel.out.trim().split('\n').map((l) => JSON.parse(l) as { schemaId: number; key: string; value: Record<string, unknown> });
  expect(line.key).toBe('s-1');
  expect(line.schemaId).toBe(codec.schemaIdFor(cfg.topics.telemetryRaw));
  expect(line.value).toEqual({ ...ev, type: 'request' });

  const aud = await python(['test/wire/decode_with_confluent.py', cfg.kafkaBrokers.join(','), cfg.schemaRegistryUrl, cfg.topics.audit, '1']);
  expect(aud.code).toBe(0);
  expect(JSON.parse(aud.out.trim()).value).toEqual(audit);
}, 90000);

requires(['kcat'])('kcat lists every topic of the contract', () => {
  const r = spawnSync('kcat', ['-b', cfg.kafkaBrokers[0], '-L'], { encoding: 'utf8', timeout: 20000 });
  expect(r.status).toBe(0);
  for (const t of Object.values(cfg.topics)) expect(r.stdout).toContain(`topic "${t}"`);
});

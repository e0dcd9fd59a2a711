/**
 * Load generator for the soaks and benches, run as a process of its own: produces telemetry
 * events (connectors/duckdb-sink/fixtures.ts shape, receivedAt = now) to `<prefix>telemetry.raw`
 * at `--rate` events/s for `--seconds`, in 100 ms slices, and prints one JSON line per second
 * `{ produced, at }` plus a final `{ done: true, produced }`. Like the collector: key = session id,
 * partition = the item's (itemPartition over telemetry.raw's partitions), so the metrics processor
 * windows them without the repartition hop (pipeline/telemetry/README.md "Scaling").
 *
 *   node --import tsx bench/produce-load.ts --prefix P --rate 10000 --seconds 600
 *
 * Topics must exist (the caller provisions them).
 */
import { parseArgs } from 'node:util';
import { loadConfig, topicNames } from '../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../pipeline/kafka/client.ts';
import { AvroCodec } from '../pipeline/kafka/registry.ts';
import { telemetryEvent } from '../connectors/duckdb-sink/fixtures.ts';
import { itemPartition } from '../pipeline/telemetry/item-partition.ts';
import { partitionCount } from '../pipeline/telemetry/repartition.ts';

const { values } = parseArgs({ options: { prefix: { type: 'string' }, rate: { type: 'string', default: '10000' }, seconds: { type: 'string', default: '60' } } });
const prefix = values.prefix!;
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const cfg = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
const topic = topicNames(prefix).telemetryRaw;
const codec = new AvroCodec(cfg.schemaRegistryUrl);
await codec.registerForTopic(topic, 'telemetry-event');
const kafka = createKafka(cfg.kafkaBrokers, 'soak-load');
const admin = kafka.admin();
await admin.connect();
const partitions = await partitionCount(admin, topic);
await admin.disconnect();
const producer = new AvroProducer(kafka, codec);
await producer.connect();
const run = Math.random().toString(36).slice(2, 8);
let produced = 0;
const t0 = Date.now();
const end = t0 + seconds * 1000;
let lastReport = t0;
while (Date.now() < end) {
  const slice = Date.now();
  // Catch up to the target: events due by now minus those sent.
  const due = Math.min(Math.floor(((slice - t0) / 1000) * rate) + Math.ceil(rate / 10), Math.ceil(seconds * rate));
  const n = Math.max(0, due - produced);
  for (let i = 0; i < n; i += 4000) {
    const now = Date.now();
    await producer.send(Array.from({ length: Math.min(4000, n - i) }, (_, k) => {
      const e = telemetryEvent(produced + i + k, `${run}-${produced + i + k}`);
      return { topic, key: e.sessionId, partition: itemPartition(e.itemId, partitions), value: { ...e, ts: now, sentAt: now, receivedAt: now } };
    }));
  }
  produced += n;
  if (Date.now() - lastReport >= 1000) {
    lastReport = Date.now();
    process.stdout.write(`${JSON.stringify({ produced, at: lastReport })}\n`);
  }
  const wait = 100 - (Date.now() - slice);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await producer.disconnect();
process.stdout.write(`${JSON.stringify({ done: true, produced, at: Date.now() })}\n`);
process.exit(0);

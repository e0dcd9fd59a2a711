/**
 * Consumer-group processor base.
 *
 * Reads: one topic of Avro records (Confluent framing). Writes: whatever the pure handler
 * returns, plus dead letters. Guarantee: at-least-once — outputs are produced (and acknowledged
 * by the broker) before the input offsets are committed, so a crash replays the uncommitted tail
 * and never loses input; downstream consumers dedupe by record id. Records that fail to decode or
 * validate go to the DLQ with topic/partition/offset, raw bytes and reason, and are committed
 * past (a poison record must not stall the partition). A dependency outage (registry down,
 * broker not acking) is retriable: the batch is not committed and kafkajs retries it.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { SchemaName } from '../../schemas/index.ts';
import type { SchemaTypes } from '../../schemas/types.generated.ts';
import { PenumbraError, type FieldIssue } from '../errors.ts';
import type { AvroCodec } from './registry.ts';
import type { AvroProducer, OutRecord } from './client.ts';
import { deadLetter } from './dlq.ts';

export interface Decoded<N extends SchemaName> {
  key: string | null;
  value: SchemaTypes[N];
  partition: number;
  offset: string;
  timestamp: number;
  raw: KafkaMessage;
}

export interface ProcessorSpec<N extends SchemaName> {
  /** Name used in logs, metrics and dead letters. */
  name: string;
  groupId: string;
  topic: string;
  schema: N;
  /** Extra semantic validation after decoding; issues send the record to the DLQ. */
  validate?: (value: SchemaTypes[N]) => FieldIssue[];
  /** Turns a batch of decoded records into output records; may be async for I/O at the edge. */
  handle: (records: Decoded<N>[]) => Promise<OutRecord[]> | OutRecord[];
  fromBeginning?: boolean;
  /** Max records per handler call (kafkajs batches can be large). */
  maxBatch?: number;
}

export interface ProcessorDeps {
  kafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  dlqTopic: string;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface RunningProcessor {
  consumer: Consumer;
  /** Resolves once the consumer joined its group and is fetching. */
  ready: Promise<void>;
  stats: { processed: number; deadLettered: number; batches: number };
  stop(): Promise<void>;
}

export async function runProcessor<N extends SchemaName>(deps: ProcessorDeps, spec: ProcessorSpec<N>): Promise<RunningProcessor> {
  const consumer = deps.kafka.consumer({ groupId: spec.groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 100 });
  const stats = { processed: 0, deadLettered: 0, batches: 0 };
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  consumer.on(consumer.events.GROUP_JOIN, () => resolveReady());
  await consumer.connect();
  await consumer.subscribe({ topic: spec.topic, fromBeginning: spec.fromBeginning ?? true });
  const maxBatch = spec.maxBatch ?? 1000;

  async function processChunk(payload: EachBatchPayload, messages: KafkaMessage[]): Promise<void> {
    const { batch } = payload;
    const good: Decoded<N>[] = [];
    const dead: OutRecord[] = [];
    for (const m of messages) {
      try {
        const value = await deps.codec.decode(spec.schema, m.value);
        const issues = spec.validate?.(value) ?? [];
        if (issues.length > 0) {
          dead.push({ topic: deps.dlqTopic, key: null, value: deadLetter({ reason: `invalid ${spec.schema}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, errorCode: 'validation', processor: spec.name, sourceTopic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value }) });
          continue;
        }
        good.push({ key: m.key?.toString('utf8') ?? null, value, partition: batch.partition, offset: m.offset, timestamp: Number(m.timestamp), raw: m });
      } catch (err) {
        if (err instanceof PenumbraError && !err.retriable) {
          dead.push({ topic: deps.dlqTopic, key: null, value: deadLetter({ reason: err.message, error: err, processor: spec.name, sourceTopic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value }) });
        } else {
          throw err; // retriable: leave uncommitted, kafkajs retries the batch
        }
      }
    }
    const out = good.length > 0 ? await spec.handle(good) : [];
    await deps.producer.send([...out, ...dead]);
    stats.processed += good.length;
    stats.deadLettered += dead.length;
    const last = messages[messages.length - 1];
    payload.resolveOffset(last.offset);
    // Explicit commit (autoCommit is off): only after the outputs above were acknowledged.
    await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
    await payload.heartbeat();
  }

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async (payload) => {
      stats.batches++;
      const msgs = payload.batch.messages;
      for (let i = 0; i < msgs.length; i += maxBatch) {
        if (!payload.isRunning() || payload.isStale()) return;
        await processChunk(payload, msgs.slice(i, i + maxBatch));
      }
    },
  });

  return {
    consumer,
    ready,
    stats,
    async stop() {
      await consumer.disconnect();
    },
  };
}

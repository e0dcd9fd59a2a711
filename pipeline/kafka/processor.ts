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
  /** The current consumer (replaced when the processor restarts after a crash). */
  readonly consumer: Consumer;
  /** Resolves once the consumer joined its group and is fetching. */
  ready: Promise<void>;
  stats: { processed: number; deadLettered: number; batches: number; restarts: number; lastCrash: string | null };
  /** False while the consumer is down between a crash and its restart. */
  readonly running: boolean;
  stop(): Promise<void>;
}

export async function runProcessor<N extends SchemaName>(deps: ProcessorDeps, spec: ProcessorSpec<N>): Promise<RunningProcessor> {
  const stats = { processed: 0, deadLettered: 0, batches: 0, restarts: 0, lastCrash: null as string | null };
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const maxBatch = spec.maxBatch ?? 1000;
  let consumer!: Consumer;
  let running = false;
  let stopped = false;

  async function processChunk(payload: EachBatchPayload, messages: KafkaMessage[]): Promise<void> {
    const { batch } = payload;
    const good: Decoded<N>[] = [];
    const dead: OutRecord[] = [];
    let beatAt = Date.now();
    for (const m of messages) {
      // Decoding a chunk can outlast the session timeout (a registry lookup per garbage record):
      // heartbeat within it, or the broker evicts this member and the chunk is handled again
      // (pipeline/telemetry/slow-batch.int.test.ts shows it for the metrics processor).
      if (Date.now() - beatAt >= 1000) {
        beatAt = Date.now();
        await payload.heartbeat().catch(() => undefined);
      }
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

  /**
   * (Re)start the consumer. kafkajs restarts by itself after retriable failures; a crash it does
   * not restart from (e.g. evicted from the group under load and then a non-retriable error)
   * would leave the group without this member forever, so we build a fresh consumer after a
   * short backoff. Uncommitted input is simply processed again (at-least-once).
   */
  async function start(): Promise<void> {
    const c = deps.kafka.consumer({ groupId: spec.groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 100 });
    consumer = c;
    c.on(c.events.GROUP_JOIN, () => {
      running = true;
      resolveReady();
    });
    c.on(c.events.CRASH, (e) => {
      const { error, restart } = e.payload as { error: Error; restart: boolean };
      stats.lastCrash = `${new Date().toISOString()} ${error?.message ?? String(error)}`;
      deps.log?.('processor crashed', { processor: spec.name, error: error?.message, restart });
      if (restart || stopped) return;
      running = false;
      stats.restarts++;
      setTimeout(() => {
        if (stopped) return;
        void c
          .disconnect()
          .catch(() => {})
          .then(() => (stopped ? undefined : start()))
          .catch((err: unknown) => deps.log?.('processor restart failed', { processor: spec.name, error: String(err) }));
      }, 1000).unref();
    });
    await c.connect();
    await c.subscribe({ topic: spec.topic, fromBeginning: spec.fromBeginning ?? true });
    await c.run({
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
  }
  await start();

  return {
    get consumer() {
      return consumer;
    },
    get running() {
      return running;
    },
    ready,
    stats,
    async stop() {
      stopped = true;
      running = false;
      await consumer.disconnect();
    },
  };
}

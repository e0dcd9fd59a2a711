/**
 * Follow a topic into in-memory state: a fresh consumer group per process (every process needs
 * every record; nothing is committed), from the beginning or from the end. `ready` resolves once
 * the records that existed at start have been applied, so state rebuilt from compacted topics
 * is complete before a process answers. Decode failures are reported, not fatal: state topics
 * are written only by Penumbra, and a poison record must not stop a resolver.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { SchemaName } from '../../schemas/index.ts';
import type { SchemaTypes } from '../../schemas/types.generated.ts';
import type { AvroCodec } from './registry.ts';

export interface Follower {
  consumer: Consumer;
  ready: Promise<void>;
  stop(): Promise<void>;
}

export async function followTopic<N extends SchemaName>(opts: {
  kafka: Kafka;
  codec: AvroCodec;
  topic: string;
  schema: N;
  groupPrefix: string;
  fromBeginning?: boolean;
  onRecord: (value: SchemaTypes[N], meta: { key: string | null; partition: number; offset: string; timestamp: number }) => void;
  onError?: (err: unknown) => void;
  /**
   * A record with a null value (a tombstone on a compacted topic: the key's state was deleted).
   * Without this callback tombstones are skipped, as before.
   */
  onTombstone?: (key: string | null, meta: { partition: number; offset: string; timestamp: number }) => void;
  /**
   * How long an idle fetch waits at the broker (default 250 ms). A fetch returns as soon as
   * `minBytes` are there, so with the default minBytes (1) this bounds only idle polls: a longer
   * wait costs no latency, saves CPU (each idle poll wakes the process and the broker), but makes
   * stop() slower by up to that long (kafkajs waits for the fetch in flight).
   */
  maxWaitTimeInMs?: number;
  /**
   * Bytes the broker waits for before answering (default 1: every record at once). A large value
   * with `maxWaitTimeInMs` turns the follower into a poll every maxWaitTimeInMs that takes what
   * accumulated in one wake-up — for views that may lag by that long (e.g. the resolver list),
   * so a burst of records does not wake the process once per record.
   */
  minBytes?: number;
}): Promise<Follower> {
  const fromBeginning = opts.fromBeginning ?? true;
  const pending = new Map<number, bigint>();
  if (fromBeginning) {
    const admin = opts.kafka.admin();
    await admin.connect();
    try {
      for (const e of await admin.fetchTopicOffsets(opts.topic)) {
        if (BigInt(e.high) > BigInt(e.low)) pending.set(e.partition, BigInt(e.high));
      }
    } finally {
      await admin.disconnect();
    }
  }
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const groupId = `${opts.groupPrefix}follow-${randomUUID()}`;
  const consumer = opts.kafka.consumer({
    groupId,
    // A fetch returns as soon as a record arrives (minBytes 1), so this bounds only idle polls:
    // a short value costs CPU (a dozen followers per process) without making changes faster.
    maxWaitTimeInMs: opts.maxWaitTimeInMs ?? 250,
    minBytes: opts.minBytes ?? 1,
    sessionTimeout: 10000,
    // The group has this one member and never rebalances: the heartbeat only keeps it alive, so
    // 3 s (Kafka's own default interval) against the 10 s session is enough, and a resolver's nine
    // followers send a third of the heartbeats they did at 1 s (idle CPU, issue 15).
    heartbeatInterval: 3000,
  });
  if (pending.size === 0 && fromBeginning) resolveReady();
  if (!fromBeginning) consumer.on(consumer.events.GROUP_JOIN, () => resolveReady());
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      try {
        if (message.value) {
          const value = await opts.codec.decode(opts.schema, message.value);
          opts.onRecord(value, { key: message.key?.toString() ?? null, partition, offset: message.offset, timestamp: Number(message.timestamp) });
        } else opts.onTombstone?.(message.key?.toString() ?? null, { partition, offset: message.offset, timestamp: Number(message.timestamp) });
      } catch (err) {
        opts.onError?.(err);
      }
      const want = pending.get(partition);
      if (want !== undefined && BigInt(message.offset) + 1n >= want) {
        pending.delete(partition);
        if (pending.size === 0) resolveReady();
      }
    },
  });
  return {
    consumer,
    ready,
    async stop() {
      await consumer.disconnect();
      // A follower's group is this process's alone and never commits: once stopped it would stay
      // behind as an Empty group on the broker (one per one-shot read, e.g. the segment evaluator
      // loading its state), so it is deleted. Best effort: the broker expires it anyway.
      // No retries and a short bound: a process stopping while Kafka is down must not wait on this.
      const admin = opts.kafka.admin({ retry: { retries: 0 } });
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          (async () => {
            await admin.connect();
            await admin.deleteGroups([groupId]);
          })(),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 2000).unref())),
        ]);
      } catch {
        // Already gone, or the coordinator is unreachable: nothing the caller could do about it.
      } finally {
        clearTimeout(timer);
        await admin.disconnect().catch(() => {});
      }
    },
  };
}

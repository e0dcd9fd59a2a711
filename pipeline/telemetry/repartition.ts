/**
 * Repartition stage (issue 15 item 4): telemetry.raw (key sessionId) → telemetry.by-item (key
 * itemId), so the metrics processor's window stage can run as N members and still be exact —
 * every event of an item reaches the one member that owns the item's by-item partition, as a
 * Kafka Streams repartition topic does.
 *
 * Runs ONLY when telemetry.raw and telemetry.by-item differ in partition count (no hop-free path;
 * health `directPath: false`): with equal counts the window stage reads partition p of
 * telemetry.raw anyway and forwards its records that are not in their item's partition itself
 * (metrics-processor.ts, README "The hop-free path") — raw is fetched once, and this group is not
 * used (an old deployment's `<prefix>telemetry-repartition` offsets are simply abandoned).
 * The forwarding pieces (`forwardMessage`, `forwardProducer`, `sendForwards`) are shared with it.
 *
 * Reads: penumbra.telemetry.raw in consumer group `<prefix>telemetry-repartition` (members share
 * the partitions); forwards every record.
 * Writes: for the others, each record's value BYTES unchanged (same schema id, same headers, same
 * timestamp — nothing is decoded or re-encoded; header `penumbra-src` = raw partition:offset, so
 * dead letters downstream name the raw position) to `<prefix>telemetry.by-item`, partition =
 * itemPartition(itemId) (Kafka's default partitioner on the item id, item-partition.ts), key
 * itemId; a record whose item id cannot be read goes to penumbra.dlq (processor
 * `telemetry-repartition`, source telemetry.raw with partition and offset).
 * telemetry.raw stays keyed by session: data engineers and the warehouse sink consume it as before.
 *
 * Item id: read from the frame without decoding (item-partition.ts `itemIdOf`), trusted for a
 * writer schema id only after the first record of that id decoded fully (codec) and agreed; a
 * record whose fast read fails is decoded fully, so a bad one gets the codec's precise reason in
 * its dead letter (and a registry outage is retried by refetching, like the processor did).
 *
 * Guarantee, at-least-once: a batch's records (and dead letters) are acknowledged by Kafka
 * (acks=all, idempotent producer) before its offset is committed; a crash between the two
 * re-forwards that tail. A re-forwarded event carries its event id, so the window stage's
 * de-duplication drops it while its windows are open — which the window stage makes sure of for
 * a crash: it lets the wall clock close windows only when this group has no lag on telemetry.raw
 * (`repartitionLag`), so a partition orphaned by a killed member holds the windows open until
 * its next owner re-forwarded it. Only a re-forward whose windows had closed by EVENT time (the
 * watermark passed them on other events) is counted in the next window's `late`, never added.
 */
import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type IHeaders, type Kafka, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import type { TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer, OutRecord } from '../kafka/client.ts';
import { deadLetter } from '../kafka/dlq.ts';
import { PenumbraError } from '../errors.ts';
import { isDirect, itemIdOf, itemPartition, STALE_CHECK_MASK } from './item-partition.ts';

export const REPARTITIONER = 'telemetry-repartition';
/**
 * Records per by-item partition in one produce call (see handleBatch): kafkajs groups a send's
 * messages per partition by copying the partition's array for every message, so a call costs
 * O(k²) copies and garbage for k records of one partition — 2,000-record slices (k ≈ 500 on 4
 * partitions) left ~2 KB of garbage per event; 128 keeps it ~0.5 KB for a few more requests.
 */
const PER_PARTITION_SLICE = 128;
/** Header on each by-item record: `<raw partition>:<raw offset>` of the record it copies. */
export const SOURCE_HEADER = 'penumbra-src';

/** The telemetry.raw position a by-item record copies (null when the header is absent or malformed). */
export function sourceOf(headers: IHeaders | undefined): { partition: number; offset: string } | null {
  const h = headers?.[SOURCE_HEADER];
  const v = Buffer.isBuffer(h) ? h.toString() : typeof h === 'string' ? h : null;
  const m = v ? /^(\d+):(\d+)$/.exec(v) : null;
  return m ? { partition: Number(m[1]), offset: m[2] } : null;
}

/**
 * The by-item copy of a raw record (shared by this stage and the window stage's forwarding,
 * metrics-processor.ts): the value BYTES, headers and timestamp unchanged, key = item id,
 * partition = itemPartition(item), plus header `penumbra-src` = the raw position.
 */
export function forwardMessage(item: string, m: KafkaMessage, rawPartition: number, byItemPartitions: number): Message {
  const partition = itemPartition(item, byItemPartitions);
  return { key: item, value: m.value, partition, headers: { ...(m.headers as IHeaders | undefined), [SOURCE_HEADER]: `${rawPartition}:${m.offset}` }, timestamp: m.timestamp };
}

/** A producer for forwards: acks=all per send, several requests in flight, not idempotent (see startRepartitioner). */
export function forwardProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
}

/**
 * Produce forwarded records (`out[p]`: the records for by-item partition p), all calls in flight
 * at once, in slices of at most PER_PARTITION_SLICE records per partition: kafkajs's
 * per-partition grouping is quadratic in a call's records of one partition (8 % of a member's
 * CPU with one send per fetched batch, in the processor bench's profile).
 */
export function sendForwards(producer: Producer, byItemTopic: string, out: readonly Message[][]): Promise<unknown>[] {
  const sends: Promise<unknown>[] = [];
  for (let i = 0; ; i += PER_PARTITION_SLICE) {
    const messages: Message[] = [];
    for (const list of out) for (let j = i; j < list.length && j < i + PER_PARTITION_SLICE; j++) messages.push(list[j]);
    if (messages.length === 0) break;
    sends.push(producer.sendBatch({ acks: -1, topicMessages: [{ topic: byItemTopic, messages }] }));
  }
  return sends;
}

export interface RepartitionDeps {
  kafka: Kafka;
  codec: AvroCodec;
  /** Its kafkajs producer (idempotent, acks=all) forwards the bytes; its `send` the dead letters. */
  producer: AvroProducer;
  topics: TopicNames;
  groupPrefix: string;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface RepartitionStats {
  forwarded: number;
  /** Records already in their item's partition of telemetry.raw: left to the window stage (not forwarded). */
  direct: number;
  deadLettered: number;
  /** Records whose item id needed the full decode (first of a schema id, or a fast read that failed). */
  fullDecodes: number;
  batches: number;
  commits: number;
  joinedAt: number | null;
}

export interface Repartitioner {
  consumer: Consumer;
  stats: RepartitionStats;
  /** Partitions of telemetry.by-item (fixed at start; the item → partition map depends on it). */
  partitions: number;
  /** Partitions of telemetry.raw (fixed at start). */
  rawPartitions: number;
  /**
   * Whether records already in their item's raw partition skip the hop (`isDirect`): only when
   * raw and by-item have the same partition count; otherwise everything is forwarded, as before.
   */
  directPath: boolean;
  /** telemetry.raw partitions assigned to this member (current generation). */
  readonly assigned: number[];
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** Partition count of a topic (metadata; throws when the topic does not exist). */
export async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const n = topics[0]?.partitions.length ?? 0;
  if (n === 0) throw new PenumbraError('unavailable', `topic ${topic} has no partitions (not provisioned?)`);
  return n;
}

/**
 * Records of telemetry.raw not yet forwarded by the repartition group (end offset − committed
 * offset, summed over partitions; a partition the group never committed counts from its start).
 */
export async function repartitionLag(admin: Admin, topics: Pick<TopicNames, 'telemetryRaw'>, groupPrefix: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topics.telemetryRaw),
    admin.fetchOffsets({ groupId: `${groupPrefix}${REPARTITIONER}`, topics: [topics.telemetryRaw] }),
  ]);
  const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  let lag = 0;
  for (const o of ends) {
    const c = done.get(o.partition) ?? -1;
    lag += Number(o.high) - (c >= 0 ? c : Number(o.low));
  }
  return lag;
}

/**
 * Starts the stage — only when telemetry.raw and telemetry.by-item differ in partition count
 * (`directPath: false`); null otherwise, since then the window stage forwards the raw records
 * that are not in their item's partition itself (metrics-processor.ts).
 */
export async function startRepartitioner(deps: RepartitionDeps): Promise<Repartitioner | null> {
  const { topics } = deps;
  const groupId = `${deps.groupPrefix}${REPARTITIONER}`;
  const stats: RepartitionStats = { forwarded: 0, direct: 0, deadLettered: 0, fullDecodes: 0, batches: 0, commits: 0, joinedAt: null };
  const admin = deps.kafka.admin();
  await admin.connect();
  let partitions: number;
  let rawPartitions: number;
  try {
    partitions = await partitionCount(admin, topics.telemetryByItem);
    rawPartitions = await partitionCount(admin, topics.telemetryRaw);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  // The window stage reads the same counts and makes the same decision (metrics-processor.ts):
  // with equal counts it reads telemetry.raw itself and forwards what is not direct — this stage
  // is not needed (README "The hop-free path": its old group is simply abandoned).
  const directPath = rawPartitions === partitions;
  if (directPath) return null;
  if (!directPath) deps.log?.(`repartition: telemetry.raw has ${rawPartitions} partitions and telemetry.by-item ${partitions}: no hop-free path, every record is forwarded`, { rawPartitions, byItemPartitions: partitions });
  /**
   * The forwarding producer: acks=all, several requests in flight and not idempotent — a retried
   * request may duplicate or reorder records on by-item, which the window stage de-duplicates by
   * event id and aggregates in any order (windows do not depend on arrival order unless late).
   */
  const forward = forwardProducer(deps.kafka);
  let commits: Promise<void> = Promise.resolve();
  /** Writer schema ids whose fast item-id read agreed with a full decode. */
  const trusted = new Set<number>();
  const consumer = deps.kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 50 });
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  let assigned: number[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    stats.joinedAt ??= Date.now();
    assigned = [...(e.payload.memberAssignment[topics.telemetryRaw] ?? [])].sort((a, b) => a - b);
    resolveReady();
  });

  /** The item id of a record, or the non-retriable error that makes it a dead letter. */
  async function itemOf(value: Buffer | null): Promise<string | PenumbraError> {
    const fast = itemIdOf(value);
    if (fast !== null && trusted.has(value!.readInt32BE(1))) return fast;
    stats.fullDecodes++;
    try {
      const e = await deps.codec.decode('telemetry-event', value);
      if (typeof e.itemId !== 'string') return new PenumbraError('validation', 'telemetry event has no itemId');
      if (fast === e.itemId) trusted.add(value!.readInt32BE(1));
      return e.itemId;
    } catch (err) {
      if (err instanceof PenumbraError && !err.retriable) return err;
      throw err; // registry down etc.: kafkajs refetches the batch from the last resolved offset
    }
  }

  async function handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    /** Forwarded records per by-item partition (the produce calls are cut per partition). */
    const out: Message[][] = Array.from({ length: partitions }, () => []);
    let forwarded = 0;
    let direct = 0;
    const dead: OutRecord[] = [];
    let last: string | null = null;
    let beatAt = Date.now();
    let seen = 0;
    for (const m of batch.messages) {
      // Every STALE_CHECK records, not each: kafkajs's isStale() builds a JSON key per call
      // (SeekOffsets.getKey), 5 % of a member's CPU in the processor bench's profile. A stale
      // batch (rebalance, seek) runs on by at most that many records, all de-duplicated later.
      if ((seen++ & STALE_CHECK_MASK) === 0 && (!payload.isRunning() || payload.isStale())) break;
      // A batch of undecodable records can take longer than the session (a registry round trip
      // each): heartbeat within it (slow-batch.int.test.ts).
      if (Date.now() - beatAt >= 1000) {
        beatAt = Date.now();
        await payload.heartbeat().catch(() => undefined);
        seen = 0; // a rebalance may have come meanwhile: check the next record
      }
      // Already in its item's partition (the collector's records): the window stage reads it from
      // telemetry.raw itself, including a dead letter if it does not decode.
      if (directPath && isDirect(m.value, batch.partition, rawPartitions, partitions)) {
        direct++;
        last = m.offset;
        continue;
      }
      // The frame read alone (no promise) once its schema id is trusted; itemOf otherwise.
      const fast = itemIdOf(m.value);
      const item = fast !== null && trusted.has(m.value!.readInt32BE(1)) ? fast : await itemOf(m.value);
      if (typeof item === 'string') {
        // The raw position rides along, so the window stage's dead letters name telemetry.raw.
        const fm = forwardMessage(item, m, batch.partition, partitions);
        forwarded++;
        out[fm.partition!].push(fm);
      } else {
        dead.push({ topic: topics.dlq, key: null, value: deadLetter({ reason: item.message, error: item, processor: REPARTITIONER, sourceTopic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value }) });
      }
      last = m.offset;
    }
    if (last === null) return;
    // Forwarded and dead-lettered, both acknowledged, before the offset moves past them.
    await deps.producer.connect();
    await Promise.all([...(dead.length > 0 ? [deps.producer.send(dead)] : []), ...sendForwards(forward, topics.telemetryByItem, out)]);
    stats.forwarded += forwarded;
    stats.direct += direct;
    stats.deadLettered += dead.length;
    payload.resolveOffset(last);
    // Issued after the acks, not awaited: the next fetch need not wait for the coordinator's round
    // trip. Chained, so commits land in order; a lost one only means a longer re-forward.
    commit([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
    stats.batches++;
  }

  /**
   * Offsets whose commit failed (typically a rebalance in progress), per partition: retried every
   * second while this member still owns the partition. Without the retry a partition with no newer
   * records keeps its old committed offset, `repartitionLag` never reaches 0, and the window stage
   * — whose wall clock closes windows only when that lag is 0 — holds them open for good (seen
   * once in CI: the multi-member test's survivors never closed their windows).
   */
  const failed = new Map<number, { topic: string; partition: number; offset: string }>();
  function commit(offsets: { topic: string; partition: number; offset: string }[]): void {
    commits = commits.then(() =>
      consumer.commitOffsets(offsets).then(
        () => {
          stats.commits++;
          for (const o of offsets) {
            const f = failed.get(o.partition);
            if (f && BigInt(f.offset) <= BigInt(o.offset)) failed.delete(o.partition);
          }
        },
        (err) => {
          for (const o of offsets) {
            const f = failed.get(o.partition);
            if (!f || BigInt(f.offset) < BigInt(o.offset)) failed.set(o.partition, o);
          }
          deps.log?.('repartition: commit failed, retried in 1 s while the partition is ours', { err: String(err) });
        },
      ),
    );
  }
  const retryTimer = setInterval(() => {
    if (failed.size === 0) return;
    for (const p of [...failed.keys()]) if (!assigned.includes(p)) failed.delete(p); // its next owner commits
    if (failed.size > 0) commit([...failed.values()]);
  }, 1000);
  retryTimer.unref();

  await forward.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: topics.telemetryRaw, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    // Batches of different partitions forward at once (their produces pipeline on the connection).
    partitionsConsumedConcurrently: 3,
    eachBatch: async (payload) => {
      await handleBatch(payload);
      await payload.heartbeat();
    },
  });

  return {
    consumer,
    stats,
    partitions,
    rawPartitions,
    directPath,
    get assigned() {
      return assigned;
    },
    ready,
    async stop() {
      // Finish the running batch, let its commit land, then leave: a clean stop re-forwards nothing.
      await consumer.stop().catch(() => undefined);
      clearInterval(retryTimer);
      await commits;
      await consumer.disconnect();
      await forward.disconnect().catch(() => undefined);
    },
  };
}

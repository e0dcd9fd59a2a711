/**
 * Metrics processor.
 *
 * Reads: `<prefix>telemetry.by-item` (Avro TelemetryEvent, key itemId: telemetry.raw's records
 * that were not in their item's partition, re-keyed) AND, on the hop-free path, penumbra.telemetry.raw
 * itself (the collector writes each event to its item's partition: `isDirect` records are windowed
 * from there; the others this stage FORWARDS to by-item itself — raw is fetched once — with the
 * repartition stage's produce code, committing raw only below its first un-acknowledged forward:
 * README "Forwarding in the window stage"; the repartition stage runs only when the partition
 * counts differ), in the consumer group
 * `<prefix>telemetry-metrics` with a co-partitioning assigner (co-partition.ts: partition p of both
 * topics to one member, into the one aggregator of p) — members share the partitions, and since
 * every event of an item is in partition p of one topic or the other, one member owns each item:
 * N members emit exactly the windows one would (issue 15 item 4) — and the
 * shared AssignmentIndex (penumbra.assignments) to join each event with its user's variant.
 * Writes: one `MetricWindow` record per closed window (10 s and 60 s, event-time, tumbling) to
 * penumbra.telemetry.metrics (key itemId), undecodable records to penumbra.dlq, and to the live
 * hub: `metrics` (each emitted window, after Kafka acknowledged it; plus, every 250 ms while
 * anyone listens, a `provisional: true` copy of the open 10 s windows that changed, so the
 * console sees new events within a fraction of a second rather than at window close), and
 * `comparison` (each shadow vs its control cohort on the cumulative aggregates — always-valid
 * sequential intervals — with SRM, after every emission), and `unverified` (an item's unverified
 * counts, at most once a tick while they change).
 *
 * Attribution: only VERIFIED events (assignment token checked by the collector) enter windows,
 * the cumulative aggregates and therefore comparisons, alerts and guardrails. An unverified event
 * is only counted per item × variant × reason (UnverifiedCounts: metrics API, Prometheus) — it
 * does not even move the watermark — and stays in telemetry.raw and the warehouse.
 *
 * Profile check (issue 17 item 2): an event whose variant (control cohort) or profile version the
 * item's current profile does not have (`profileMismatch`, the collector's check) is refused here
 * before it creates any state — no window, no aggregate, no assignment join — and counted in
 * `stats.profileRefused` by reason. The collector already stores such events unverified (and
 * those of items without a profile: `unknown_item`); this also covers records that reached
 * telemetry.raw another way.
 *
 * Time: `WindowAggregator` (pipeline/windows) with a watermark trailing the newest event time by
 * `allowedLatenessMs` (5 s) — never past the receive time: each event's `receivedAt` is capped
 * at this process's clock and the aggregator moves the watermark by min(ts, receivedAt), so a
 * future-dated event (ts up to now + 5 min passes the collector) cannot blind the pipeline
 * (issue 17 item 1). A 1 s timer also advances it by wall clock, so windows close on a
 * quiet stream — but only while the consumer is caught up (or has received nothing for 2 ticks)
 * AND telemetry.raw was read to its end by the group with every forward acknowledged
 * (`upstreamLag`: `telemetryRawLag`; the repartition group's lag when the counts differ): during
 * a catch-up, or while a killed member's raw partitions wait for their next owner, the wall clock
 * would run ahead of the backlog and turn it late.
 *
 * Guarantee — no event's contribution is ever lost, at-least-once output:
 * - windows are produced and ACKNOWLEDGED before any offset behind them is committed (a failed
 *   produce keeps them pending, retried on the next batch or tick, and holds the commits back);
 * - per partition the committed offset is the lowest one still feeding an OPEN window
 *   (offsets.ts), with metadata {watermark, next offset}; a restart (or the partition's next
 *   owner) replays from there into fresh windows, skips events whose windows were all emitted and
 *   never re-opens an emitted window (it raises its watermark to the committed one first);
 * - the aggregator de-duplicates by event id, and a window emitted twice is an upsert downstream
 *   (the warehouse keys metric_windows by item, variant, size, start).
 * Late events (window already closed) are counted in the `late` field of the next window of the
 * same item × variant × size, not added; they stay in telemetry.raw and the warehouse. A `late`
 * count still pending when the process dies is not replayed (best effort), and replayed events
 * whose 10 s window was emitted but 60 s window was not count as late for 10 s.
 *
 * Scaling: telemetry.raw is keyed by session, and records of other producers are spread over its
 * partitions; forwarded to by-item they are re-keyed by item, and this stage's per-item state — windows, the
 * cumulative aggregates behind comparisons, the `onEvent` listeners (rollout analyzer) — lives in
 * the member that owns the item's by-item partition (`owns(itemId)`). A member that loses a
 * partition in a rebalance drops the cumulative aggregates of its items (the new owner rebuilds
 * them from its replay, like a restart); readers in other processes get `owns() === false` and
 * delegate (README "Scaling").
 */
import type { Consumer, EachBatchPayload, Kafka, Admin, Message, Producer } from 'kafkajs';
import type { TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer, OutRecord } from '../kafka/client.ts';
import { deadLetter } from '../kafka/dlq.ts';
import { PenumbraError } from '../errors.ts';
import type { LiveHub } from '../live/hub.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import { WindowAggregator } from '../windows/window-aggregator.ts';
import type { WindowState } from '../windows/window-state.ts';
import { WINDOW_SIZES, type MetricWindow as AggregatedWindow, type TelemetryEvent, type WindowSize } from '../windows/types.ts';
import { openWindowRecord, toMetricWindowRecord, type MetricWindowRecord } from './metric-record.ts';
import { PartitionProgress, PendingForwards, contributionEnd, decodeCommitMeta, encodeCommitMeta, lastWindowEnd, rawCommitPoint, rawForwardLag, type ReplayMark } from './offsets.ts';
import type { AssignmentIndex } from './assignment-index.ts';
import { profileMismatch, type ProfileMismatch } from './attribution.ts';
import { srmCheck, DEFAULT_SRM_MIN_EXPOSURES, type ComparisonStore, type ComparisonView } from './comparisons.ts';
import { countsInComparisons } from '../windows/classify.ts';
import type { UnverifiedCounts } from './unverified.ts';
import { isDirect, itemIdOf, itemPartition, STALE_CHECK_MASK } from './item-partition.ts';
import { coPartitionAssigner } from './co-partition.ts';
import { forwardMessage, forwardProducer, partitionCount, repartitionLag, sendForwards, sourceOf } from './repartition.ts';

export const METRICS_PROCESSOR = 'telemetry-metrics';
/** Forwarded records awaiting their acks beyond which a batch waits (≈ 3 MB of record buffers). */
const MAX_FORWARDS_IN_FLIGHT = 20_000;

/**
 * Records of telemetry.raw the window stage's group has not yet windowed or forwarded with acks
 * (hop-free path; `rawForwardLag` in offsets.ts on the group's committed marks, `local` overriding
 * the partitions a member knows better). 0 means: raw read to the end and every forward on
 * telemetry.by-item — what the wall clock waits for, and what tests wait for.
 */
export async function telemetryRawLag(admin: Admin, topics: Pick<TopicNames, 'telemetryRaw'>, groupPrefix: string, local: ReadonlyMap<number, bigint> = new Map()): Promise<number> {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topics.telemetryRaw), admin.fetchOffsets({ groupId: `${groupPrefix}${METRICS_PROCESSOR}`, topics: [topics.telemetryRaw] })]);
  const c = new Map<number, { offset: bigint; hi: bigint | null }>();
  for (const p of committed[0]?.partitions ?? []) c.set(p.partition, { offset: BigInt(p.offset), hi: decodeCommitMeta(p.metadata)?.hi ?? null });
  return rawForwardLag(ends.map((o) => ({ partition: o.partition, high: BigInt(o.high), low: BigInt(o.low) })), c, local);
}

export interface MetricsProcessorOptions {
  /** How far the watermark trails the newest event time (default 5000 ms). */
  allowedLatenessMs?: number;
  windowSizes?: readonly WindowSize[];
  /** Wall-clock watermark / commit / provisional timer (default 1000 ms). */
  tickMs?: number;
  /** Publish provisional open 10 s windows on the hub while someone listens (default true). */
  provisional?: boolean;
  /** How often the provisional windows that changed are published (default 250 ms). */
  provisionalMs?: number;
  /**
   * Also write the provisional windows to `topics.telemetryLive` (default false), whether or not
   * anyone listens here: the API processes of a split deployment relay them on their streams
   * (README "Live windows across processes"). Fire and forget — a lost one is replaced 250 ms later.
   */
  liveTopic?: boolean;
  /** SRM is flagged only from this many bucketed users on (default 100). */
  srmMinExposures?: number;
}

export interface MetricsProcessorDeps {
  kafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  topics: TopicNames;
  groupPrefix: string;
  hub: LiveHub;
  profileStore: ProfileStore;
  assignments: AssignmentIndex;
  comparisons: ComparisonStore;
  unverified: UnverifiedCounts;
  /**
   * Records of telemetry.raw not yet windowed or forwarded (and acknowledged) by anyone; the wall
   * clock closes windows only at 0. Default: on the hop-free path this group's own raw positions
   * and commit marks (`rawForwardLag`, offsets.ts); without it (partition counts differ) the
   * repartition group's committed offsets (repartition.ts).
   */
  upstreamLag?: () => Promise<number>;
  /**
   * Called with every item's freshly computed comparisons (all its shadows), after the live hub
   * got them: the feature publishes them on the compacted comparisons topic for the processes
   * that do not compute them (pipeline/comparisons-topic).
   */
  onComparisons?: (itemId: string, views: ComparisonView[], now: number, profileVersion: number | null) => void;
  /**
   * Called once a tick for every item whose unverified counts changed since the last tick (the
   * feature republishes them on the comparisons topic: unverified events never lead to a
   * recomputation that would carry them).
   */
  onUnverified?: (itemId: string) => void;
  /**
   * Called once a tick for every item whose join counters changed since the last tick (the
   * feature republishes them for items that have no comparison to carry them).
   */
  onJoined?: (itemId: string) => void;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface MetricsProcessorStats {
  events: number;
  duplicates: number;
  /** Unverified events counted apart (UnverifiedCounts), not aggregated. */
  unverified: number;
  /** Events re-read after a restart whose windows had all been emitted (skipped). */
  replaySkipped: number;
  windows: number;
  provisional: number;
  comparisons: number;
  deadLettered: number;
  commits: number;
  batches: number;
  /** Events that arrived after their window of this size (ms) had closed: counted in the next window's `late`, not in its metrics. */
  lateBySize: Record<string, number>;
  /** Produce calls that failed (their windows stayed pending and were retried). */
  sendFailures: number;
  /** Provisional windows written to telemetry.live, and the produce calls of them that failed. */
  liveSent: number;
  liveSendFailures: number;
  /** When the consumer first joined its group (epoch ms). */
  joinedAt: number | null;
  /** Events refused before any state because the item's profile does not have their item, variant or profile version. */
  profileRefused: Record<ProfileMismatch, number>;
  /** Wall-clock advances held back because telemetry.raw was not read (and forwarded) to its end, or an input not to its end. */
  upstreamHeld: number;
  /** Events windowed straight from telemetry.raw (the hop-free path; counted in `events` too). */
  direct: number;
  /**
   * telemetry.raw records not in their item's partition, forwarded by this stage to
   * telemetry.by-item and acknowledged (the hop-free path; README "The hop-free path").
   */
  forwarded: number;
  /** Forward produce calls that failed (retried every second while the raw partition is ours). */
  forwardFailures: number;
}

export interface MetricsProcessor {
  consumer: Consumer;
  /**
   * The newest watermark over this member's partitions (−Infinity before any): each by-item
   * partition has its own WindowAggregator and watermark, as a Kafka Streams task has its own
   * stream time, so a partition's windows depend on that partition's events only.
   */
  readonly watermark: number;
  /** Resolves once the consumer joined its group. */
  ready: Promise<void>;
  stats: MetricsProcessorStats;
  /**
   * Whether this member owns the item (its by-item partition is assigned here): only the owner's
   * windows, comparisons and `onEvent` stream cover the item's events.
   */
  owns(itemId: string): boolean;
  /** Partitions of telemetry.by-item. */
  readonly partitions: number;
  health(): Record<string, unknown>;
  /** One timer pass now (tests): wall-clock advance, emit, commit. */
  tick(): Promise<void>;
  /**
   * Every de-duplicated event, as the live comparisons get it (other consumers in this process,
   * e.g. the rollout analyzer's arm aggregates, without decoding telemetry.raw a second time).
   */
  onEvent(listener: (e: TelemetryEvent) => void): () => void;
  stop(): Promise<void>;
}

/** Serialises batch handling and timer passes: emitted-and-acked must precede every commit. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

export async function startMetricsProcessor(deps: MetricsProcessorDeps, opts: MetricsProcessorOptions = {}): Promise<MetricsProcessor> {
  const sizes = [...(opts.windowSizes ?? WINDOW_SIZES)].sort((a, b) => a - b);
  const tickMs = opts.tickMs ?? 1000;
  const smallest = sizes[0];
  const stats: MetricsProcessorStats = { events: 0, duplicates: 0, unverified: 0, replaySkipped: 0, windows: 0, provisional: 0, comparisons: 0, deadLettered: 0, commits: 0, batches: 0, lateBySize: Object.fromEntries(sizes.map((s) => [String(s), 0])), sendFailures: 0, liveSent: 0, liveSendFailures: 0, joinedAt: null, profileRefused: { unknown_item: 0, unknown_variant: 0, unknown_profile_version: 0 }, upstreamHeld: 0, direct: 0, forwarded: 0, forwardFailures: 0 };
  const allowedLatenessMs = opts.allowedLatenessMs ?? 5000;
  const groupId = `${deps.groupPrefix}${METRICS_PROCESSOR}`;
  const topic = deps.topics.telemetryByItem;
  const rawTopic = deps.topics.telemetryRaw;
  const mutex = new Mutex();
  const listeners = new Set<(e: TelemetryEvent) => void>();
  /**
   * Offsets per INPUT topic-partition (key `inputKey(topic, p)`): with the hop-free path partition
   * number p of telemetry.raw and of telemetry.by-item feed the one aggregator of p, and each input
   * keeps its own commit rule and marks.
   */
  const progress = new Map<string, PartitionProgress>();
  const progressTopic = new Map<string, string>();
  /** Where each assigned input starts when nothing was processed from it yet (committed offset, else its low end). */
  const startAt = new Map<string, bigint>();
  const caughtUp = new Map<string, boolean>();
  /** Inputs that delivered a batch since their assignment. */
  const fetched = new Set<string>();
  /** item × variant keys with events since the last provisional publish. */
  const dirty = new Set<string>();
  /** Items with new unverified events since the last tick (their counts go out on the hub). */
  const unverifiedDirty = new Set<string>();
  /** Items joined since the last tick (only while someone listens: onJoined). */
  const joinedDirty = new Set<string>();
  const trackJoins = deps.onJoined !== undefined;
  let lastBatchAt = 0;
  let lastCommitAt = 0;
  let stopped = false;

  const admin: Admin = deps.kafka.admin();
  await admin.connect();
  const partitions = await partitionCount(admin, topic);
  const rawPartitions = await partitionCount(admin, rawTopic);
  /**
   * The hop-free path (README "Scaling"): raw records already in their item's partition are
   * windowed straight from telemetry.raw; it needs the same partition count on both topics (the
   * repartition stage makes the same decision from the same counts, item-partition.ts `isDirect`).
   */
  const directPath = rawPartitions === partitions;
  if (!directPath) deps.log?.(`metrics processor: telemetry.raw has ${rawPartitions} partitions and telemetry.by-item ${partitions}: no hop-free path, every event comes through the repartition hop`, { rawPartitions, byItemPartitions: partitions });
  const inputs: string[] = directPath ? [topic, rawTopic] : [topic];
  /** Writer schema ids whose frame read of the item id agreed with a full decode (raw input). */
  const frameAgrees = new Set<number>();
  const inputKey = (t: string, p: number): string => `${t === rawTopic ? 'raw' : 'by-item'}:${p}`;
  /** Partition numbers assigned to this member (current generation; the same on both inputs). */
  let owned = new Set<number>();
  const upstreamLag = deps.upstreamLag ?? (directPath ? () => rawLag() : () => repartitionLag(admin, deps.topics, deps.groupPrefix));
  /**
   * The forwarding (hop-free path): raw records of partition p that are not in their item's
   * partition go to telemetry.by-item from here, with the repartition stage's produce code
   * (repartition.ts: bytes unchanged, key item, header `penumbra-src`). Per raw input the forwards
   * not yet acknowledged (`PendingForwards`): raw's commit never passes them (`rawCommitPoint`).
   */
  const forward: Producer | null = directPath ? forwardProducer(deps.kafka) : null;
  const forwards = new Map<string, PendingForwards>();
  /** Forward sends in flight (each settles when acknowledged, or given up with its partition). */
  const inflight = new Set<Promise<void>>();
  /**
   * One aggregator per by-item partition: windows and watermark per partition (a partition that
   * joins late, after a rebalance, is not turned late by the others' progress — and N members
   * emit what one does). The issue-17 caps are split over the topic's partitions, so one process
   * holding all of them stays within the single aggregator's bounds.
   */
  const aggs = new Map<number, WindowAggregator>();
  const share = (cap: number) => Math.max(1, Math.ceil(cap / partitions));
  const aggFor = (p: number): WindowAggregator => {
    let a = aggs.get(p);
    if (!a) {
      aggs.set(p, (a = new WindowAggregator({
        windowSizes: sizes,
        allowedLatenessMs,
        maxArms: share(10_000),
        maxOpenWindows: share(200_000),
        maxDedupIds: share(1_000_000),
        // The ComparisonStore holds the cumulative aggregates this process compares on.
        cumulatives: false,
        onLate: (_e, lateFor) => {
          for (const size of lateFor) stats.lateBySize[String(size)]++;
        },
      })));
    }
    return a;
  };
  // Partition p of both inputs to the same member (co-partition.ts), as Kafka Streams requires.
  // Fetch sizes as the warehouse sink's (and the bench's peers'): kafkajs fetches again only once
  // every batch of the last fetch was handled, so on a backlog each fetch's round trip is time
  // this member does nothing; 4 MB per partition (≈ 25,000 telemetry records) instead of kafkajs's
  // 1 MB makes a quarter of those trips. A caught-up member's batches are small either way.
  const consumer = deps.kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 50, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 32 * 1024 * 1024, ...(directPath ? { partitionAssigners: [coPartitionAssigner] } : {}) });
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));

  // GROUP_JOIN fires before fetching starts for the new generation; batches wait for this.
  let assignment: Promise<void> = Promise.resolve();
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    stats.joinedAt ??= Date.now();
    const parts = [...new Set(inputs.flatMap((t) => e.payload.memberAssignment[t] ?? []))];
    const lost = [...owned].filter((p) => !parts.includes(p));
    owned = new Set(parts);
    assignment = mutex.run(async () => {
      // The next owner rebuilds these items' cumulative aggregates from its replay; kept here they
      // would go stale (and come back with a gap if the partition returned).
      if (lost.length > 0) deps.comparisons.dropItems((itemId) => lost.includes(itemPartition(itemId, partitions)));
      const marks = await fetchMarks(parts).catch(async (err) => {
        // Without the marks a replay could re-emit a partial copy of an emitted window: retry once
        // after a pause, then go on without them (logged) rather than stall the partitions.
        deps.log?.('metrics processor: reading commit metadata failed; retrying', { err: String(err) });
        await new Promise((r) => setTimeout(r, 1000));
        return fetchMarks(parts).catch((err2) => {
          deps.log?.('metrics processor: no commit metadata; replayed windows may be re-emitted partially', { err: String(err2) });
          return { marks: new Map<string, ReplayMark>(), starts: new Map<string, bigint>() };
        });
      });
      for (const k of [...progress.keys()]) {
        if (parts.includes(progress.get(k)!.partition)) continue;
        // Its open windows go with it: the next owner replays them from the committed offset. So
        // do its un-acked forwards: the next owner re-forwards from the committed marks' `hi`
        // (below the first of them), a copy that lands after all is de-duplicated by event id.
        progress.delete(k);
        progressTopic.delete(k);
        forwards.delete(k);
      }
      for (const p of [...aggs.keys()]) if (!parts.includes(p)) aggs.delete(p);
      startAt.clear();
      for (const [k, v] of marks.starts) startAt.set(k, v);
      const closed: AggregatedWindow[] = [];
      for (const p of parts) {
        // A partition kept across the rebalance keeps its progress and windows (kafkajs replays it
        // from the committed offset; those offsets are below `next` and de-duplicated by id).
        if (!aggs.has(p)) {
          // Both inputs' marks describe the one aggregator of p: windows ending at or before the
          // newer watermark were emitted (offsets.ts), and each input skips its own events below
          // its own `hi` whose windows all ended by then.
          let markWm = -Infinity;
          for (const t of inputs) markWm = Math.max(markWm, marks.marks.get(inputKey(t, p))?.wm ?? -Infinity);
          for (const t of inputs) {
            const mark = marks.marks.get(inputKey(t, p));
            progress.set(inputKey(t, p), new PartitionProgress(p, mark ? { wm: markWm, hi: mark.hi } : null));
            progressTopic.set(inputKey(t, p), t);
          }
          // Never re-open a window the previous owner emitted (see offsets.ts). A mark ahead of this
          // clock can only come from a future-dated event before issue 17's clamp: not trusted past now.
          const agg = aggFor(p);
          const wm = Number.isFinite(markWm) ? Math.min(markWm, Date.now() - allowedLatenessMs) : -Infinity;
          if (wm > agg.watermark) for (const w of agg.advanceWatermark(wm + allowedLatenessMs)) closed.push(w);
        }
        for (const t of inputs) {
          caughtUp.set(inputKey(t, p), false);
          fetched.delete(inputKey(t, p));
        }
      }
      for (const k of [...caughtUp.keys()]) if (!progress.has(k)) caughtUp.delete(k);
      if (closed.length > 0) await emit(closed, []);
      await settled();
    });
    resolveReady();
  });

  /**
   * Commit marks per input of the assigned partitions, and where each input starts (its committed
   * offset, else its low end: the consumer reads from the beginning) — an input nothing was read
   * from yet is committed at that start (with the partition's marks), so the next owner finds marks
   * on both inputs of p, and the wall clock knows it is caught up.
   */
  async function fetchMarks(parts: number[]): Promise<{ marks: Map<string, ReplayMark>; starts: Map<string, bigint> }> {
    const marks = new Map<string, ReplayMark>();
    const starts = new Map<string, bigint>();
    if (parts.length === 0) return { marks, starts };
    const res = await admin.fetchOffsets({ groupId, topics: inputs });
    for (const t of res) {
      const lows = new Map((await admin.fetchTopicOffsets(t.topic)).map((o) => [o.partition, BigInt(o.low)]));
      for (const p of t.partitions) {
        if (!parts.includes(p.partition)) continue;
        const m = decodeCommitMeta(p.metadata);
        if (m) marks.set(inputKey(t.topic, p.partition), m);
        const committed = BigInt(p.offset);
        starts.set(inputKey(t.topic, p.partition), committed >= 0n ? committed : (lows.get(p.partition) ?? 0n));
      }
    }
    return { marks, starts };
  }

  /** Closed windows and dead letters not yet acknowledged by Kafka (kept across a send failure). */
  const pendingWindows: MetricWindowRecord[] = [];
  const pendingDead: OutRecord[] = [];
  /**
   * The send of the previous emit, still waiting for Kafka's acknowledgement (null when none):
   * its windows and dead letters count as not acknowledged for the commit (`ackedWatermark`,
   * `commit`) until it settles. One send in flight at a time — the next emit waits for it first.
   */
  let emitting: Promise<void> | null = null;
  const sendingWindows = new Set<MetricWindowRecord>();
  let sendingDead = 0;

  /**
   * Produce closed windows (+ dead letters); once Kafka acknowledged them, tell the hub and
   * compare. Returns when the send has STARTED (the previous one settled first): a batch's
   * windows are acknowledged while the next batch is folded (issue 15 item 1: the member no
   * longer idles for a produce round trip per batch), and the commit stays behind them
   * meanwhile (`sendingWindows`/`sendingDead`). `settled()` waits for the acknowledgement.
   * A failed send (Kafka unavailable) puts them back in pending — the aggregator has already let
   * go of those windows — and `commit` stays behind them until a later emit or tick gets them out.
   */
  async function emit(closed: AggregatedWindow[], dead: OutRecord[]): Promise<void> {
    if (closed.length > 0) {
      const now = Date.now();
      for (const w of closed) pendingWindows.push(toMetricWindowRecord(w, now));
    }
    for (const d of dead) pendingDead.push(d);
    if (pendingWindows.length === 0 && pendingDead.length === 0) return;
    await settled();
    if (pendingWindows.length === 0 && pendingDead.length === 0) return;
    const records = pendingWindows.splice(0);
    const dl = pendingDead.splice(0);
    for (const r of records) sendingWindows.add(r);
    sendingDead += dl.length;
    emitting = deps.producer.send([...records.map((r) => ({ topic: deps.topics.telemetryMetrics, key: r.itemId, value: r })), ...dl]).then(
      () => {
        for (const r of records) sendingWindows.delete(r);
        sendingDead -= dl.length;
        stats.windows += records.length;
        stats.deadLettered += dl.length;
        for (const r of records) deps.hub.publish({ event: 'metrics', itemId: r.itemId, data: r });
        publishComparisons(records, Date.now());
      },
      (err: unknown) => {
        for (const r of records) sendingWindows.delete(r);
        sendingDead -= dl.length;
        pendingWindows.unshift(...records);
        pendingDead.unshift(...dl);
        stats.sendFailures++;
        deps.log?.('metrics processor: producing windows failed; will retry', { windows: records.length, err: String(err) });
      },
    ).finally(() => {
      emitting = null;
    });
  }

  /** Waits until no emit's send is in flight (acknowledged, or put back in pending on failure). */
  async function settled(): Promise<void> {
    while (emitting !== null) await emitting.catch(() => undefined);
  }

  /** Every window of partition `p` ending at or before this was emitted AND acknowledged. */
  function ackedWatermark(p: number): number {
    let wm = aggs.get(p)?.watermark ?? -Infinity;
    for (const r of pendingWindows) if (itemPartition(r.itemId, partitions) === p) wm = Math.min(wm, r.windowEnd - 1);
    for (const r of sendingWindows) if (itemPartition(r.itemId, partitions) === p) wm = Math.min(wm, r.windowEnd - 1);
    return wm;
  }

  function publishComparisons(records: MetricWindowRecord[], now: number): void {
    for (const itemId of new Set(records.map((r) => r.itemId))) {
      const profile = deps.profileStore.get(itemId);
      const srm = profile ? srmCheck(profile, deps.assignments.exposures(itemId, profile.profileVersion).counts, opts.srmMinExposures ?? DEFAULT_SRM_MIN_EXPOSURES) : null;
      const computed = deps.comparisons.compareItem(itemId, profile, srm, now);
      for (const c of computed) {
        stats.comparisons++;
        deps.hub.publish({ event: 'comparison', itemId, data: { itemId, variant: c.variant, comparison: c.comparison } });
      }
      if (computed.length > 0) deps.onComparisons?.(itemId, computed.map((c) => c.comparison), now, profile?.profileVersion ?? null);
    }
  }

  async function commit(force: boolean): Promise<void> {
    if (!force && Date.now() - lastCommitAt < 250) return;
    // An unsent (or un-acknowledged) dead letter's offset was tracked as done: commit nothing until it is out.
    if (pendingDead.length > 0 || sendingDead > 0) return;
    lastCommitAt = Date.now();
    const offsets: { topic: string; partition: number; offset: string; metadata: string }[] = [];
    for (const [key, prog] of progress) {
      const wm = ackedWatermark(prog.partition);
      // An input nothing was read from yet is committed where it starts, with the marks (fetchMarks).
      const start = startAt.get(key) ?? null;
      // A raw input never commits past a forward Kafka has not acknowledged (nor marks it done in
      // `hi`); by-item has no forwards, and its point is the window rule's alone.
      const point = rawCommitPoint(prog.safeOffset(wm) ?? start, prog.next ?? start, forwards.get(key)?.floor ?? null);
      if (point === null) continue;
      // Re-commit the same offset when the marks moved: the next owner must know which windows
      // were emitted since (a long-open 60 s window can pin the offset for a minute).
      const metadata = encodeCommitMeta({ wm, hi: point.hi });
      if (prog.committed !== null && point.offset <= prog.committed && metadata === prog.committedMeta) continue;
      offsets.push({ topic: progressTopic.get(key) ?? topic, partition: prog.partition, offset: point.offset.toString(), metadata });
      prog.committed = point.offset;
      prog.committedMeta = metadata;
    }
    if (offsets.length === 0) return;
    try {
      await consumer.commitOffsets(offsets);
      stats.commits++;
    } catch (err) {
      // A commit lost to a rebalance only means a longer replay; the windows are already safe.
      for (const o of offsets) {
        const prog = progress.get(inputKey(o.topic, o.partition));
        if (prog) {
          prog.committed = null;
          prog.committedMeta = null;
        }
      }
      deps.log?.('metrics processor: commit failed', { err: String(err) });
    }
  }

  /**
   * The item id of a raw record to forward, or the non-retriable error that makes it a dead letter
   * (the repartition stage's rule): the frame read alone once it agreed with a full decode for the
   * record's writer schema id, else the full decode (its precise reason goes in the dead letter).
   * Throws a retriable error (registry down).
   */
  async function forwardItemOf(value: Buffer | null): Promise<string | PenumbraError> {
    const fast = itemIdOf(value);
    if (fast !== null && frameAgrees.has(value!.readInt32BE(1))) return fast;
    try {
      const e = (await deps.codec.decode('telemetry-event', value)) as TelemetryEvent;
      if (typeof e.itemId !== 'string') return new PenumbraError('validation', 'telemetry event has no itemId');
      if (fast === e.itemId) frameAgrees.add(value!.readInt32BE(1));
      return e.itemId;
    } catch (err) {
      if (err instanceof PenumbraError && !err.retriable) return err;
      throw err;
    }
  }

  function forwardsInFlight(): number {
    let n = 0;
    for (const f of forwards.values()) n += f.records;
    return n;
  }

  /**
   * Send a batch's forwards (all produce calls at once, acks=all) and keep them pending on their
   * raw input until acknowledged. A failed send is retried every second while the raw partition
   * is still this member's (PendingForwards holds raw's commit meanwhile); after a rebalance the
   * next owner re-forwards from the committed marks instead.
   */
  function startForward(key: string, out: Message[][], first: bigint, records: number): void {
    let pend = forwards.get(key);
    if (!pend) forwards.set(key, (pend = new PendingForwards()));
    const mine = pend;
    const id = mine.add(first, records);
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    inflight.add(done);
    const finish = () => {
      inflight.delete(done);
      settle();
    };
    const attempt = (): void => {
      Promise.all(sendForwards(forward!, topic, out)).then(
        () => {
          mine.ack(id);
          stats.forwarded += records;
          finish();
        },
        (err) => {
          stats.forwardFailures++;
          deps.log?.('metrics processor: forwarding to telemetry.by-item failed; retried in 1 s while the raw partition is ours', { err: String(err) });
          if (stopped || forwards.get(key) !== mine) return finish();
          setTimeout(attempt, 1000).unref?.();
        },
      );
    };
    attempt();
  }

  /**
   * Records of telemetry.raw not yet windowed-or-forwarded-and-acknowledged by the group
   * (`rawForwardLag`): this member's raw partitions from its live positions (lowered to its
   * un-acked forwards), the others from the group's committed marks.
   */
  async function rawLag(): Promise<number> {
    const local = new Map<number, bigint>();
    for (const p of owned) {
      const k = inputKey(rawTopic, p);
      const point = rawCommitPoint(0n, progress.get(k)?.next ?? startAt.get(k) ?? null, forwards.get(k)?.floor ?? null);
      if (point) local.set(p, point.hi);
    }
    return telemetryRawLag(admin, deps.topics, deps.groupPrefix, local);
  }

  async function handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const key = inputKey(batch.topic, batch.partition);
    let prog = progress.get(key);
    if (!prog) {
      progress.set(key, (prog = new PartitionProgress(batch.partition)));
      progressTopic.set(key, batch.topic);
    }
    const aggregator = aggFor(batch.partition);
    const fromRaw = batch.topic === rawTopic;
    const closed: AggregatedWindow[] = [];
    const dead: OutRecord[] = [];
    let last: string | null = null;
    /** This batch's forwards per by-item partition, the raw offset of the first, and how many. */
    let fwd: Message[][] | null = null;
    let fwdFirst = -1;
    let fwdCount = 0;
    /** A retriable failure (registry down): what was handled before it is still sent and resolved, then kafkajs refetches. */
    let failure: unknown = null;
    let beatAt = Date.now();
    // Provisional windows are only built while someone listens (publishProvisional drops the set
    // otherwise): no per-event key string for nobody.
    const listening = opts.provisional !== false && (deps.hub.size > 0 || opts.liveTopic === true);
    const clock = Date.now();
    // An arm's LRU recency in the ComparisonStore is refreshed once per batch, not per event.
    deps.comparisons.newBatch();
    let seen = 0;
    for (const m of batch.messages) {
      // Every STALE_CHECK records, not each: kafkajs's isStale() builds a JSON key per call
      // (SeekOffsets.getKey), 5 % of a member's CPU in the processor bench's profile. A stale
      // batch (rebalance, seek) runs on by at most that many records, all de-duplicated later.
      if ((seen++ & STALE_CHECK_MASK) === 0 && (!payload.isRunning() || payload.isStale())) break;
      // A batch can take longer than the session timeout (thousands of records, each needing a
      // registry lookup: slow-batch.int.test.ts): heartbeat within it, or the broker evicts this
      // member and the partition is handled again. A failed heartbeat (rebalance under way) is
      // left to isStale() above; what was handled so far is still emitted below.
      if (Date.now() - beatAt >= 1000) {
        beatAt = Date.now();
        await payload.heartbeat().catch(() => undefined);
        seen = 0; // a rebalance may have come meanwhile: check the next record
      }
      // A number, not a BigInt per record (offsets.ts: exact below 2^53).
      const offset = Number(m.offset);
      if (fromRaw && !isDirect(m.value, batch.partition, rawPartitions, partitions)) {
        // Not in its item's partition (a foreign producer, older data, an unreadable frame):
        // forwarded to its item's by-item partition — unless this member, or the previous owner
        // before the committed marks, already did (a re-delivery or replay).
        if (!prog.forwardedBefore(offset)) {
          let item: string | PenumbraError;
          try {
            item = await forwardItemOf(m.value);
          } catch (err) {
            failure = err;
            break;
          }
          if (typeof item === 'string') {
            const fm = forwardMessage(item, m, batch.partition, partitions);
            (fwd ??= Array.from({ length: partitions }, () => []))[fm.partition!].push(fm);
            if (fwdFirst < 0) fwdFirst = offset;
            fwdCount++;
          } else {
            dead.push({ topic: deps.topics.dlq, key: null, value: deadLetter({ reason: item.message, error: item, processor: METRICS_PROCESSOR, sourceTopic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value }) });
          }
        }
        prog.track(offset, -Infinity);
        last = m.offset;
        continue;
      }
      let e: TelemetryEvent;
      try {
        // Synchronous when the writer schema is known (every record but the first of a schema id):
        // an await per record was a promise and a microtask turn per event.
        e = (deps.codec.decodeKnown('telemetry-event', m.value) ?? (await deps.codec.decode('telemetry-event', m.value))) as TelemetryEvent;
        if (typeof e.id !== 'string' || e.id === '' || !Number.isFinite(e.ts)) throw new PenumbraError('validation', 'telemetry event needs a non-empty id and a finite ts');
        // The frame said this partition (isDirect); a record whose decoded item disagrees would
        // split its item over two aggregators. No schema version does that (item-partition.ts).
        // Checked once per writer schema id (like the repartition stage's trust in the frame read).
        if (fromRaw && !frameAgrees.has(m.value!.readInt32BE(1))) {
          if (itemIdOf(m.value) !== e.itemId) throw new PenumbraError('validation', 'telemetry event: the item id read from the frame disagrees with the decoded record');
          frameAgrees.add(m.value!.readInt32BE(1));
        }
      } catch (err) {
        if (err instanceof PenumbraError && !err.retriable) {
          // Named by its telemetry.raw position (the repartition stage's header) when it has one.
          const src = sourceOf(m.headers);
          const at = src ? { sourceTopic: deps.topics.telemetryRaw, partition: src.partition, offset: src.offset } : { sourceTopic: batch.topic, partition: batch.partition, offset: m.offset };
          dead.push({ topic: deps.topics.dlq, key: null, value: deadLetter({ reason: err.message, error: err, processor: METRICS_PROCESSOR, ...at, key: m.key, value: m.value }) });
          prog.track(offset, -Infinity);
          last = m.offset;
          continue;
        }
        failure = err; // registry down etc.: nothing of this batch past here is resolved; kafkajs refetches
        break;
      }
      last = m.offset;
      if (!countsInComparisons(e)) {
        // Stored upstream, counted here, aggregated nowhere (and no watermark move: a forged
        // future timestamp must not turn everyone's events late).
        if (deps.unverified.add(e)) {
          stats.unverified++;
          unverifiedDirty.add(e.itemId);
        }
        prog.track(offset, -Infinity);
        continue;
      }
      // A variant or profile version the item's profile does not have: no state at all (bounded
      // memory, no reset). Items without a profile are the collector's `unknown_item`: stored
      // unverified, never aggregated; checked here only when a profile exists, so tools and tests
      // that feed an unprofiled item straight to the topic keep their windows.
      const itemProfile = deps.profileStore.get(e.itemId);
      const mismatch = itemProfile ? profileMismatch(itemProfile, e) : null;
      if (mismatch) {
        stats.profileRefused[mismatch]++;
        prog.track(offset, -Infinity);
        continue;
      }
      // The watermark never passes the receive time, nor this clock (issue 17 item 1). The clock
      // is read once per batch: every record of it was received before it was fetched.
      e.receivedAt = typeof e.receivedAt === 'number' && e.receivedAt <= clock ? e.receivedAt : clock;
      if (prog.alreadyEmitted(offset, lastWindowEnd(e.ts, sizes))) {
        stats.replaySkipped++;
        deps.comparisons.add(e); // the cumulative of this process never saw it
        if (listeners.size > 0) for (const l of listeners) l(e); // no Set iterator per event for nobody
        prog.track(offset, -Infinity);
        continue;
      }
      const wmBefore = aggregator.watermark;
      const dupBefore = aggregator.duplicates;
      const out = aggregator.add(e);
      for (const w of out) closed.push(w);
      if (aggregator.duplicates === dupBefore) {
        stats.events++;
        deps.comparisons.add(e);
        if (listeners.size > 0) for (const l of listeners) l(e); // no Set iterator per event for nobody
        deps.assignments.join(e);
        if (trackJoins) joinedDirty.add(e.itemId);
        if (listening) dirty.add(`${e.itemId}\u0000${e.variant}`);
        if (fromRaw) stats.direct++;
      } else stats.duplicates++;
      prog.track(offset, contributionEnd(e.ts, sizes, wmBefore));
    }
    // The forwards fly while the windows are produced; raw's commit waits for their acks (commit).
    if (fwd !== null) startForward(key, fwd, BigInt(fwdFirst), fwdCount);
    if (last !== null) {
      await emit(closed, dead);
      payload.resolveOffset(last);
    }
    if (failure !== null) throw failure;
    // Bounded memory when the broker is slow to acknowledge: wait (heartbeating) for the oldest.
    while (forwardsInFlight() > MAX_FORWARDS_IN_FLIGHT && inflight.size > 0) {
      await Promise.race([...inflight, new Promise((r) => setTimeout(r, 1000))]);
      await payload.heartbeat().catch(() => undefined);
    }
    fetched.add(key);
    caughtUp.set(key, last !== null && last === batch.messages[batch.messages.length - 1]?.offset && batch.offsetLag() === '0');
    lastBatchAt = Date.now();
    stats.batches++;
    // The commit's round trip overlaps the next batch's fold (its offsets and marks are computed
    // now, synchronously, from acknowledged state only); one commit request in flight at a time.
    if (committing === null) {
      committing = commit(false)
        .catch((err) => deps.log?.('metrics processor: commit failed', { err: String(err) }))
        .finally(() => {
          committing = null;
        });
    }
  }
  /** The batch path's commit request still in flight (timer passes and stop wait for it first). */
  let committing: Promise<void> | null = null;

  /** A produce of provisional windows to telemetry.live still in flight: the next pass waits for it. */
  let liveInFlight = false;
  function publishProvisional(): void {
    const local = deps.hub.size > 0;
    const remote = opts.liveTopic === true;
    if (opts.provisional === false || dirty.size === 0 || (!local && !remote)) {
      dirty.clear();
      return;
    }
    // A slow broker must not queue a produce every 250 ms: keep the changed keys for the next pass
    // (it sends their newest state) unless someone here listens and wants them now.
    if (remote && liveInFlight && !local) return;
    // WindowAggregator has no read-only view of its open windows yet; this reads its private map
    // without changing it (replace with a public peek when pipeline/windows grows one).
    const now = Date.now();
    const out: OutRecord[] = [];
    for (const aggregator of aggs.values()) {
      const open = (aggregator as unknown as { open: Map<string, WindowState> }).open;
      for (const w of open.values()) {
        if (w.windowSize !== smallest || !dirty.has(`${w.itemId}\u0000${w.variant}`)) continue;
        const r = openWindowRecord(w, now);
        stats.provisional++;
        if (local) deps.hub.publish({ event: 'metrics', itemId: r.itemId, data: { ...r, provisional: true } });
        if (remote && !liveInFlight) out.push({ topic: deps.topics.telemetryLive, key: r.itemId, value: r });
      }
    }
    dirty.clear();
    if (out.length === 0) return;
    liveInFlight = true;
    deps.producer.send(out).then(
      () => {
        stats.liveSent += out.length;
      },
      (err) => {
        stats.liveSendFailures++;
        deps.log?.('metrics processor: provisional windows not written to the live topic', { err: String(err) });
      },
    ).finally(() => {
      liveInFlight = false;
    });
  }

  const tick = () =>
    mutex.run(async () => {
      if (stopped) return;
      const now = Date.now();
      const idle = now - lastBatchAt >= 2 * tickMs;
      // Per partition: caught up (or the member idle after that partition's first batch of this
      // assignment — a partition just taken over in a rebalance waits for its replay, else the
      // clock would turn the previous owner's open windows late), and the repartition stage too.
      // With two inputs: p is due when one of them delivered and each that did is caught up.
      const due = [...aggs.keys()].filter((p) => {
        const keys = inputs.map((t) => inputKey(t, p)).filter((k) => fetched.has(k));
        return keys.length > 0 && (idle || keys.every((k) => caughtUp.get(k) === true));
      });
      let byClock = due.length > 0;
      if (byClock) {
        const lag = await upstreamLag().catch((err) => {
          deps.log?.('metrics processor: reading the repartition lag failed', { err: String(err) });
          return Infinity;
        });
        if (lag > 0) {
          byClock = false;
          stats.upstreamHeld++;
        }
      }
      // Then this member's own position against the by-item end offsets read NOW (after the
      // upstream check, so everything forwarded so far is below them): `caughtUp` is as old as the
      // partition's last batch, and records forwarded since must not be turned late.
      let ready = due;
      if (byClock) {
        const end = new Map<string, bigint>();
        let read = true;
        for (const t of inputs) {
          const ends = await admin.fetchTopicOffsets(t).catch((err) => {
            deps.log?.('metrics processor: reading end offsets failed', { topic: t, err: String(err) });
            return null;
          });
          if (ends === null) read = false;
          for (const o of ends ?? []) end.set(inputKey(t, o.partition), BigInt(o.high));
        }
        // Every input of p handled to its end (an input nothing was read from: its start).
        ready = due.filter((p) =>
          read && inputs.every((t) => {
            const k = inputKey(t, p);
            const next = progress.get(k)?.next ?? startAt.get(k) ?? null;
            return next !== null && next >= (end.get(k) ?? 0n);
          }));
        if (ready.length < due.length) stats.upstreamHeld++;
      }
      const closed: AggregatedWindow[] = [];
      if (byClock) for (const p of ready) for (const w of aggs.get(p)!.advanceWatermark(now)) closed.push(w);
      await emit(closed, []);
      // The timer pass waits for the acknowledgement (windows on Kafka and the hub when tick()
      // resolves: tests and the wall clock rely on it); batches do not (emit).
      await settled();
      await committing;
      await commit(true);
      for (const itemId of unverifiedDirty) {
        deps.hub.publish({ event: 'unverified', itemId, data: { itemId, unverified: deps.unverified.forItem(itemId) } });
        deps.onUnverified?.(itemId);
      }
      unverifiedDirty.clear();
      for (const itemId of joinedDirty) deps.onJoined?.(itemId);
      joinedDirty.clear();
    });

  /** Next offset to handle per assigned partition of an input: after the last one handled, else where it starts. */
  function positionsOf(t: string): Record<number, number | null> {
    const out: Record<number, number | null> = {};
    for (const [k, p] of progress) {
      if (progressTopic.get(k) !== t) continue;
      const next = p.next ?? startAt.get(k) ?? null;
      out[p.partition] = next === null ? null : Number(next);
    }
    return out;
  }

  function maxWatermark(): number {
    let wm = -Infinity;
    for (const a of aggs.values()) wm = Math.max(wm, a.watermark);
    return wm;
  }
  function minWatermark(): number {
    let wm = Infinity;
    for (const a of aggs.values()) if (Number.isFinite(a.watermark)) wm = Math.min(wm, a.watermark);
    return wm;
  }
  function sumBounds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of aggs.values()) for (const [k, v] of Object.entries(a.bounds)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  await forward?.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: inputs, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async (payload) => {
      await assignment;
      await mutex.run(() => handleBatch(payload));
      await payload.heartbeat();
    },
  });
  const timer = setInterval(() => {
    tick().catch((err) => deps.log?.('metrics processor: tick failed', { err: String(err) }));
  }, tickMs);
  timer.unref?.();
  // Outside the mutex on purpose: a read-only view must not queue behind batch handling, and JS
  // runs it between two events, so every window it reads is consistent.
  const liveTimer = setInterval(() => {
    try {
      publishProvisional();
    } catch (err) {
      deps.log?.('metrics processor: provisional publish failed', { err: String(err) });
    }
  }, opts.provisionalMs ?? 250);
  liveTimer.unref?.();

  return {
    consumer,
    get watermark() {
      return maxWatermark();
    },
    ready,
    stats,
    tick,
    partitions,
    owns: (itemId) => owned.has(itemPartition(itemId, partitions)),
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    health: () => ({
      ...stats,
      watermark: Number.isFinite(maxWatermark()) ? maxWatermark() : null,
      // The slowest partition's: how far behind the clock the oldest open windows are.
      watermarkLagMs: Number.isFinite(minWatermark()) ? Date.now() - minWatermark() : null,
      openWindows: [...aggs.values()].reduce((s, a) => s + a.openWindows, 0),
      bounds: { ...sumBounds(), comparisons: deps.comparisons.bounds },
      pendingWindows: pendingWindows.length,
      partitions: [...owned].sort((a, b) => a - b),
      // Next offset to handle per owned by-item partition (null when unknown), and per owned
      // telemetry.raw partition on the hop-free path.
      positions: positionsOf(topic),
      rawPositions: positionsOf(rawTopic),
      byItemPartitions: partitions,
      rawPartitions,
      // false: raw and by-item differ in partition count, every event takes the hop (the
      // repartition stage runs); true: this stage forwards the raw records not in their partition.
      directPath,
      forwardsInFlight: forwardsInFlight(),
      variantJoin: { ...deps.assignments.totals },
    }),
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearInterval(liveTimer);
      // Forwards in flight get their acks (10 s at most), so the last commit can pass them.
      await Promise.race([Promise.all([...inflight]), new Promise((r) => setTimeout(r, 10_000).unref?.())]);
      // Last commit with the newest marks, so the next owner replays as little as possible.
      await mutex.run(async () => {
        await settled();
        await committing;
        await commit(true);
      }).catch(() => undefined);
      await consumer.disconnect();
      await forward?.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => {});
    },
  };
}

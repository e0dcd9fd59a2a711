/**
 * Stream processing feature (registered in pipeline/app/features.ts): telemetry windows, live
 * statistics and alerts (rollout plans, which replaced the schedule advancer, are pipeline/rollout).
 *
 * Every process: follows penumbra.telemetry.metrics into the MetricsStore behind
 * GET /api/v1/items/{itemId}/metrics (and, where no metrics processor runs, republishes those
 * windows on the live hub), plus the alert rules/alerts routes (pipeline/alerts/feature.ts).
 * Processes that run the processors (`ctx.processors`) also: follow penumbra.assignments into the
 * AssignmentIndex (variant join, SRM), run the metrics processor (windows, comparisons; on the
 * hop-free path it forwards the telemetry.raw records not in their item's partition to
 * telemetry.by-item itself), the repartition stage only when telemetry.raw and telemetry.by-item
 * differ in partition count, and the alert evaluator. Several such processes
 * share both consumer groups; each owns the items of its by-item partitions (README "Scaling").
 *
 * Options are code, not environment: `streamOptions(prefix, {...})` sets them for the instance
 * using that topic prefix (tests shorten the lateness so windows close quickly); the factory's
 * argument gives the defaults.
 */
import os from 'node:os';
import { Router } from 'express';
import type { Feature, FeatureContext } from '../app/features.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import { createMetricsRouter } from '../../connectors/http/metrics-router.ts';
import { startAlerts, type AlertsOptions } from '../alerts/feature.ts';
import { AssignmentIndex } from './assignment-index.ts';
import { ComparisonStore, type ComparisonView } from './comparisons.ts';
import { UnverifiedCounts } from './unverified.ts';
import type { SequentialOptions } from '../stats/sequential.ts';
import { MetricsStore } from './metrics-store.ts';
import { startMetricsProcessor, type MetricsProcessor, type MetricsProcessorOptions } from './metrics-processor.ts';
import { startRepartitioner, type Repartitioner } from './repartition.ts';
import { comparisonsRecord, FollowedComparisons, PublishSchedule } from '../comparisons-topic/record.ts';
import { readerParquetSource } from '../../connectors/parquet-source/source.ts';

export interface StreamOptions {
  metrics?: MetricsProcessorOptions;
  alerts?: AlertsOptions;
  /** How long metric windows stay in memory for the route (default 2 h). */
  metricsRetentionMs?: number;
  /** Users remembered by the assignment join (default 1,000,000). */
  maxAssignedUsers?: number;
  /** α and tuning N* of the live sequential verdicts (default: tuning from PENUMBRA_SEQUENTIAL_TUNING). */
  sequential?: SequentialOptions;
}

const byPrefix = new Map<string, StreamOptions>();

/** Options for the Penumbra instance on topic prefix `prefix` (set before createPenumbra). */
export function streamOptions(prefix: string, opts: StreamOptions): void {
  byPrefix.set(prefix, opts);
}

export interface StreamHandle {
  metricsStore: MetricsStore;
  comparisons: ComparisonStore | null;
  /** Unverified events per item × variant × reason (processors only). */
  unverified: UnverifiedCounts | null;
  assignments: AssignmentIndex | null;
  processor: MetricsProcessor | null;
  repartitioner: Repartitioner | null;
  /** Comparisons followed from the comparisons topic (every process; pipeline/comparisons-topic). */
  followedComparisons: FollowedComparisons;
}

/** Handles of running instances, by FeatureContext (tests and the benchmark inspect them). */
export const streamHandles = new WeakMap<FeatureContext, StreamHandle>();

export function telemetryFeature(defaults: StreamOptions = {}): Feature {
  return async (ctx) => {
    const o: StreamOptions = { ...defaults, ...(byPrefix.get(ctx.cfg.topicPrefix) ?? {}) };
    const { cfg } = ctx;
    const stops: (() => Promise<void>)[] = [];
    const stopAll = async () => {
      for (const s of stops.reverse()) await s().catch((err) => ctx.log.warn('stream feature stop step failed', { err: String(err) }));
    };
    try {
      const metricsStore = new MetricsStore(o.metricsRetentionMs);
      let assignments: AssignmentIndex | null = null;
      let comparisons: ComparisonStore | null = null;
      let unverified: UnverifiedCounts | null = null;
      let processor: MetricsProcessor | null = null;
      let repartitioner: Repartitioner | null = null;
      let comparisonsPublished = 0;
      const schedule = new PublishSchedule({ minIntervalMs: 1000, refreshMs: cfg.comparisonsRefreshMs });
      let comparisonsPublishFailed = 0;

      if (ctx.processors) {
        // Per-item state only for items with a profile: item ids in telemetry are anonymous input.
        const idx = new AssignmentIndex(o.maxAssignedUsers, { isKnownItem: (itemId) => ctx.profileStore.get(itemId) !== undefined });
        assignments = idx;
        const assignmentFollower: Follower = await followTopic({
          kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.assignments, schema: 'assignment', groupPrefix: ctx.groupPrefix,
          onRecord: (a) => idx.apply(a), onError: (err) => ctx.log.warn('assignment decode failed', { err: String(err) }),
        });
        stops.push(() => assignmentFollower.stop());
        // Not awaited: a long assignment history must not hold up the start; joins and SRM fill in.
        void assignmentFollower.ready.then(() => ctx.log.debug('assignment index caught up', { users: idx.size }));
        comparisons = new ComparisonStore({ tuning: cfg.sequentialTuning, ...o.sequential });
        unverified = new UnverifiedCounts();
        repartitioner = await startRepartitioner({ kafka: ctx.kafka, codec: ctx.codec, producer: ctx.producer, topics: cfg.topics, groupPrefix: ctx.groupPrefix, log: ctx.log.warn });
        // Null when the partition counts match: the window stage forwards (README "The hop-free path").
        if (repartitioner) stops.push(() => repartitioner!.stop());
        // The owner publishes every recomputation (all shadows of the item, with its unverified
        // counts and join counters) on the compacted comparisons topic, keyed by item, for the
        // processes that do not compute them; besides, once a second, the items whose unverified
        // counts changed (throttled to one record per item per second — unverified events never
        // cause a recomputation; join counters change with verified events, which do, except for
        // an item with nothing to compare: then they go out like unverified counts) and a
        // keep-alive per owned item every refresh period (PublishSchedule). Not awaited: a lost
        // record is replaced by the next one, and the windows' path must not wait on it.
        const member = `${os.hostname()}:${process.pid}`;
        const uv = unverified;
        const publish = (itemId: string, views: ComparisonView[], meta: { computedAt: number; publishedAt: number; profileVersion: number | null }) => {
          comparisonsPublished++;
          const value = comparisonsRecord(itemId, views, { ...meta, member, unverified: uv.forItem(itemId), join: idx.joins(itemId) });
          ctx.producer.send([{ topic: cfg.topics.comparisons, key: itemId, value }]).catch((err) => {
            comparisonsPublishFailed++;
            ctx.log.warn('comparisons not published', { itemId, err: String(err) });
          });
        };
        const onComparisons = (itemId: string, views: ComparisonView[], now: number, profileVersion: number | null) => {
          schedule.recomputed(itemId, now, profileVersion);
          publish(itemId, views, { computedAt: now, publishedAt: now, profileVersion });
        };
        // Item ids in telemetry are anonymous input: only items with a profile get records.
        const onUnverified = (itemId: string) => {
          if (ctx.profileStore.get(itemId) !== undefined) schedule.countsChanged(itemId);
        };
        // Join counters ride on the recomputations; an item with nothing to compare (no shadow
        // with data) has none, so its changed counters go out like unverified counts.
        const onJoined = (itemId: string) => {
          if (ctx.profileStore.get(itemId) !== undefined && Object.keys(comparisons!.latestFor(itemId)).length === 0) schedule.countsChanged(itemId);
        };
        const scheduleTimer = setInterval(() => {
          const now = Date.now();
          for (const s of schedule.due(now, (itemId) => processor !== null && processor.owns(itemId))) {
            schedule.published(s.itemId, now, s.computedAt, s.profileVersion);
            publish(s.itemId, Object.values(comparisons!.latestFor(s.itemId)), { computedAt: s.computedAt, publishedAt: now, profileVersion: s.profileVersion });
          }
        }, Math.min(1000, cfg.comparisonsRefreshMs));
        scheduleTimer.unref?.();
        stops.push(async () => clearInterval(scheduleTimer));
        // A processors-only process has no live stream of its own: its provisional windows reach
        // the API processes' streams through telemetry.live (PENUMBRA_LIVE_WINDOWS, README).
        const liveTopic = cfg.liveWindows === 'topic' || (cfg.liveWindows === 'auto' && ctx.api === false);
        processor = await startMetricsProcessor(
          { kafka: ctx.kafka, codec: ctx.codec, producer: ctx.producer, topics: cfg.topics, groupPrefix: ctx.groupPrefix, hub: ctx.hub, profileStore: ctx.profileStore, assignments: idx, comparisons, unverified, onComparisons, onUnverified, onJoined, log: ctx.log.warn },
          { liveTopic, ...o.metrics },
        );
        stops.push(() => processor!.stop());
      }

      const owns = (itemId: string) => processor !== null && processor.owns(itemId);
      const metricsFollower = await followTopic({
        kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.telemetryMetrics, schema: 'metric-window', groupPrefix: ctx.groupPrefix,
        onRecord: (w) => {
          metricsStore.apply(w);
          // The owning processor publishes its windows itself (sooner); elsewhere — an API-only
          // process, or a processors member that does not own the item — the topic is the source.
          if (!owns(w.itemId)) ctx.hub.publish({ event: 'metrics', itemId: w.itemId, data: w });
        },
        onError: (err) => ctx.log.warn('metric window decode failed', { err: String(err) }),
      });
      stops.push(() => metricsFollower.stop());

      // Every process follows the comparisons topic: where the item's owner is another process
      // (an API-only process, or a processors member that does not own the item) the route and
      // the live stream answer from it. The owner itself publishes live events sooner (above).
      const followed = new FollowedComparisons(100_000, cfg.comparisonsStaleMs);
      const comparisonsFollower = await followTopic({
        kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.comparisons, schema: 'item-comparisons', groupPrefix: ctx.groupPrefix,
        onRecord: (r) => {
          const applied = followed.apply(r, Date.now());
          if (!applied || owns(r.itemId)) return;
          if (applied.recomputed) for (const [variant, comparison] of Object.entries(applied.views)) ctx.hub.publish({ event: 'comparison', itemId: r.itemId, data: { itemId: r.itemId, variant, comparison } });
          if (applied.unverifiedChanged) ctx.hub.publish({ event: 'unverified', itemId: r.itemId, data: { itemId: r.itemId, unverified: followed.unverified(r.itemId) } });
        },
        // A tombstone (null value) for an item: its owner deleted it; forget it here too.
        onTombstone: (key) => {
          if (key !== null) followed.remove(key);
        },
        onError: (err) => ctx.log.warn('comparisons record decode failed', { err: String(err) }),
      });
      stops.push(() => comparisonsFollower.stop());

      // The live view's provisional windows of items another process owns (README "Live windows
      // across processes"): from the end — an old provisional window is worth nothing — and only
      // where a live stream is served.
      let liveRelayed = 0;
      if (ctx.api !== false) {
        const liveFollower = await followTopic({
          kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.telemetryLive, schema: 'metric-window', groupPrefix: ctx.groupPrefix, fromBeginning: false,
          onRecord: (w) => {
            if (owns(w.itemId) || ctx.hub.size === 0) return;
            liveRelayed++;
            ctx.hub.publish({ event: 'metrics', itemId: w.itemId, data: { ...w, provisional: true } });
          },
          onError: (err) => ctx.log.warn('live window decode failed', { err: String(err) }),
        });
        stops.push(() => liveFollower.stop());
      }

      const alerts = await startAlerts(ctx, { assignments }, o.alerts);
      stops.push(() => alerts.stop());

      const router = Router();
      router.use(createMetricsRouter({
        store: metricsStore,
        // Only the member owning the item has its cumulative aggregates (README "Scaling"); every
        // other process answers what the owner last published on the comparisons topic.
        comparisons: (itemId) => (owns(itemId) ? comparisons!.latestFor(itemId) : followed.views(itemId)),
        comparisonsSource: (itemId) => (owns(itemId) ? 'this-process' : followed.has(itemId) ? 'topic' : processor ? 'another-member' : 'none'),
        comparisonsFreshness: (itemId) => (owns(itemId) ? null : followed.freshness(itemId, Date.now())),
        // The owner's own counts; elsewhere the owner's last record (v2), null before any.
        unverified: (itemId) => (owns(itemId) ? unverified!.forItem(itemId) : followed.unverified(itemId)),
        joins: (itemId) => (owns(itemId) ? assignments!.joins(itemId) : followed.join(itemId)),
        // The sink's folder, or the bucket's export (PENUMBRA_PARQUET_READ=s3: connectors/parquet-source).
        parquetDir: readerParquetSource(cfg),
        tokens: ctx.tokens,
        openapi: ctx.openapi,
      }));
      router.use(alerts.router);

      ctx.healthChecks.push(async () => {
        const proc = processor?.health() ?? null;
        // Windows Kafka has not acknowledged yet: the pipeline is behind, not down.
        const status: 'ok' | 'degraded' = proc && Number(proc.pendingWindows) > 0 ? 'degraded' : 'ok';
        return {
          streamProcessing: {
            status,
            metricsProcessor: proc,
            // Only when raw and by-item differ in partition count (directPath false: every event takes the hop); else null.
            repartition: repartitioner ? { ...repartitioner.stats, partitions: repartitioner.partitions, rawPartitions: repartitioner.rawPartitions, directPath: repartitioner.directPath } : null,
            metricWindowsInMemory: metricsStore.applied,
            assignmentsIndexed: assignments?.size ?? null,
            comparisonsTopic: { followedItems: followed.size, published: comparisonsPublished, publishFailed: comparisonsPublishFailed },
            liveWindowsRelayed: liveRelayed,
            unverifiedEvents: unverified ? { total: unverified.total, byReason: { ...unverified.byReason } } : null,
            alerts: alerts.health(),
          },
        };
      });
      streamHandles.set(ctx, { metricsStore, comparisons, unverified, assignments, processor, repartitioner, followedComparisons: followed });
      return { router, stop: stopAll };
    } catch (err) {
      await stopAll();
      throw err;
    }
  };
}

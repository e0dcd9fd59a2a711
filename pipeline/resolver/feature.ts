/**
 * The resolver feature: wires the Resolver, its assignment log, the resolver registry
 * (heartbeats on penumbra.resolvers) and the exposure counter into a FeatureContext, and mounts
 * the resolver router. Used by createPenumbra (features.ts) and by the resolver-only process
 * (run-resolver.ts), where Kafka may not be reachable yet: nothing here waits for Kafka —
 * followers start in the background with retry and the assignment log retries its batches.
 */
import os from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver, constants as perf } from 'node:perf_hooks';
import type { Feature, FeatureContext, FeatureHandle } from '../app/features.ts';
import { createResolverRouter } from '../../connectors/http/resolver-router.ts';
import { createResolveFastPath } from '../../connectors/http/resolve-fast-path.ts';
import { AssignmentLog } from './assignment-log.ts';
import { ExposureProducer } from './exposure-producer.ts';
import { StickyFeed } from '../bandit/sticky-feed.ts';
import { Resolver } from './resolver.ts';
import { ExposureCounter, ResolverRegistry, followInBackground } from './resolver-registry.ts';
import { keepCatalogSnapshot, loadCatalogSnapshot, snapshotPaths } from './catalog-snapshot.ts';
import { followPersonalState } from '../preferences/follow.ts';

/** Batch threshold of a polled resolver-list follower: far above what a second of heartbeats weighs. */
const REGISTRY_MIN_BYTES = 1 << 20;

export interface ResolverFeatureOptions {
  heartbeatMs?: number;
  staleMs?: number;
  /** Resolves once the codec has registered the topic schemas (lazy compositions only). */
  kafkaReady?: Promise<void>;
  /** Count exposures from process start. Default: from the first /exposures request (the
   * counter then replays the topic from the beginning), so processes nobody asks pay nothing
   * for decoding every assignment. */
  eagerExposures?: boolean;
  /**
   * Idle fetch wait of this feature's state followers (sticky, segments, pins, exposures);
   * default followTopic's 250 ms. Records still arrive at once (minBytes 1): a longer wait only
   * polls less when nothing happens. Resolver-only processes use 1 s (run-resolver.ts): ten of
   * them idling beside the main process cost the fan-out of a rollback its CPU (issue 15).
   */
  followWaitMs?: number;
  /**
   * Read the other resolvers' heartbeats in one wake-up per this many ms instead of one wake-up
   * per heartbeat (default: per heartbeat). See startResolver; run-resolver.ts uses 1 s.
   */
  registryPollMs?: number;
}

export interface ResolverParts {
  resolver: Resolver;
  assignments: AssignmentLog;
  /** Sticky bandit assignments of this resolver (pipeline/bandit/sticky-feed.ts). */
  sticky: StickyFeed;
  /** Resolves once the sticky topic was read up to its end at start. */
  stickyReady: Promise<void>;
  registry: ResolverRegistry;
  exposures: () => ExposureCounter;
}

export interface ResolverFeatureHandle extends FeatureHandle {
  parts: ResolverParts;
}

export function startResolver(ctx: FeatureContext, opts: ResolverFeatureOptions = {}): ResolverFeatureHandle {
  const { cfg, producer, profileStore, catalog, log } = ctx;
  const startedAt = Date.now();
  const warnOnce = new Map<string, number>();
  // Kafka being down makes every batch and heartbeat fail: log at most every 10 s per kind.
  const warn = (kind: string) => (err: unknown) => {
    const now = Date.now();
    if ((warnOnce.get(kind) ?? 0) + 10_000 > now) return;
    warnOnce.set(kind, now);
    log.warn(`resolver: ${kind} failed`, { err: err instanceof Error ? err.message : String(err) });
  };

  const catalogFile = snapshotPaths(cfg.dataDir, cfg.topicPrefix).catalog;
  loadCatalogSnapshot(catalogFile, catalog);
  const stopCatalogSnapshot = keepCatalogSnapshot(catalogFile, catalog, warn('catalog snapshot'));

  // Exposures are produced from a worker thread (exposure-producer.ts): kafkajs's per-record
  // produce work was a fifth of the resolve thread's CPU and a stall between answers.
  // PENUMBRA_EXPOSURE_WORKER=false keeps them on the event loop (one thread less: on a machine
  // with no core to spare the worker's hand-off is extra work — pipeline/resolver/README.md).
  const exposureProducer = cfg.exposureWorker === false ? null : new ExposureProducer({ brokers: cfg.kafkaBrokers, clientId: `penumbra-${ctx.resolverId}-exposures`, codec: ctx.codec, topic: cfg.topics.assignments });
  const assignments = new AssignmentLog({
    send: exposureProducer ? (batch) => exposureProducer.send(batch) : (batch) => producer.send(batch.map((a) => ({ topic: cfg.topics.assignments, key: a.userId, value: a }))),
    onError: warn('assignment batch'),
  });
  // Sticky bandit assignments: durable in the compacted penumbra.bandit.sticky (pipeline/bandit).
  const sticky = new StickyFeed({
    profiles: profileStore, resolverId: ctx.resolverId, onError: warn('sticky batch'),
    send: (batch) => producer.send(batch.map((r) => ({ topic: cfg.topics.banditSticky, key: r.key, value: r.value }))),
  });
  const resolver = new Resolver({ profiles: profileStore, catalog, log: assignments, resolverId: ctx.resolverId, keys: ctx.assignmentKeys, segments: ctx.segmentIndex, pins: ctx.pins, bandit: sticky });

  const registry = new ResolverRegistry({
    self: { resolverId: ctx.resolverId, host: os.hostname(), pid: process.pid, startedAt },
    versions: () => profileStore.versions(),
    publish: (s) => producer.send([{ topic: cfg.topics.resolvers, key: s.resolverId, value: s }]),
    intervalMs: opts.heartbeatMs,
    staleMs: opts.staleMs,
    onError: warn('heartbeat'),
  });
  const offProfiles = profileStore.onChange(() => registry.beat());
  registry.start();
  void opts.kafkaReady?.then(() => registry.beat());

  const before = opts.kafkaReady ? () => opts.kafkaReady! : undefined;
  const wait = opts.followWaitMs;
  // With registryPollMs, the other resolvers' heartbeats are read in one wake-up per period
  // (minBytes far above what a period of heartbeats weighs): a rollback makes EVERY resolver
  // heartbeat at once, and with records delivered one by one each of N resolvers woke N times
  // while the slowest of them was still applying the rollback (N² wake-ups on the cores the
  // fan-out needs). Resolver-only processes poll (their list is for people; stale means 15 s
  // without a heartbeat); the main API process does not, because `penumbra rollback` and the
  // console wait on ITS list to see every resolver arrive. Our own heartbeat enters our own
  // view at once either way (registry.beat).
  const resolversFollower = followInBackground({
    kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.resolvers, schema: 'resolver-status', groupPrefix: ctx.groupPrefix, before,
    ...(opts.registryPollMs ? { maxWaitTimeInMs: opts.registryPollMs, minBytes: REGISTRY_MIN_BYTES } : { maxWaitTimeInMs: wait }),
    onRecord: (s) => registry.apply(s), onError: warn('resolvers follower'),
  });

  // Segment memberships and pins (issue 14): every resolver holds them, rebuilt from their
  // compacted topics; until replayed, segments are unknown (pipeline/segments/segment-index.ts).
  const personal = followPersonalState(ctx, before, warn, wait);
  const stickyFollower = followInBackground({
    kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.banditSticky, schema: 'bandit-sticky', groupPrefix: ctx.groupPrefix, before, maxWaitTimeInMs: wait,
    onRecord: (r) => sticky.applyRemote(r), onError: warn('sticky follower'),
  });
  void stickyFollower.ready.then(() => {
    sticky.ready = true;
  });

  let counter: ExposureCounter | null = null;
  let exposureFollower: ReturnType<typeof followInBackground> | null = null;
  const exposures = (): ExposureCounter => {
    if (counter) return counter;
    const c = new ExposureCounter((itemId) => {
      const p = profileStore.get(itemId);
      return p ? { profileVersion: p.profileVersion, updatedAt: p.updatedAt } : { profileVersion: 0 };
    });
    counter = c;
    exposureFollower = followInBackground({
      kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.assignments, schema: 'assignment', groupPrefix: ctx.groupPrefix, before, maxWaitTimeInMs: wait,
      onRecord: (a) => c.apply(a), onError: warn('assignments follower'),
    });
    return c;
  };
  if (opts.eagerExposures) exposures();

  // Event-loop delay (how late a 100 ms timer fires): a resolve waits at least that long, so its
  // tail is the answer's tail (issue 15 item 3: resolve p99). Reported per health read and reset,
  // so a reader that polls gets the delay of its own interval. Not 10 ms: the monitor is a timer
  // on this loop, and at 10 ms it was 80 of an idle resolver's 116 wake-ups a second — with ten
  // resolvers and the broker on two cores, wake-ups that delay a rollback's fan-out. A stall is as
  // late for a 100 ms timer as for a 10 ms one; only short stalls between two ticks are sampled less.
  const LOOP_PERIOD_MS = 100;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_PERIOD_MS });
  loopDelay.enable();
  let loopSince = Date.now();
  // Garbage-collection pauses since the previous health read, young generation (scavenges) and
  // old generation (mark-compact, incremental marking steps) apart: the part of the loop's delay
  // that is this process's own heap rather than the machine's other load.
  const gc = { scavenges: 0, scavengeMs: 0, scavengeMaxMs: 0, markCompacts: 0, markCompactMs: 0, markCompactMaxMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind;
      if (kind === perf.NODE_PERFORMANCE_GC_MINOR) {
        gc.scavenges++;
        gc.scavengeMs += e.duration;
        gc.scavengeMaxMs = Math.max(gc.scavengeMaxMs, e.duration);
      } else if (kind === perf.NODE_PERFORMANCE_GC_MAJOR || kind === perf.NODE_PERFORMANCE_GC_INCREMENTAL) {
        gc.markCompacts++;
        gc.markCompactMs += e.duration;
        gc.markCompactMaxMs = Math.max(gc.markCompactMaxMs, e.duration);
      }
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  ctx.healthChecks.push(async () => {
    const s = assignments.stats();
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    // The histogram holds whole timer intervals (period + delay): the delay is what exceeds the period.
    const late = (ns: number) => (loopDelay.count === 0 ? 0 : Math.max(0, Math.round((ms(ns) - LOOP_PERIOD_MS) * 100) / 100));
    const r2 = (x: number) => Math.round(x * 100) / 100;
    const eventLoop = {
      status: 'ok' as const, sinceMs: Date.now() - loopSince,
      p50Ms: late(loopDelay.percentile(50)), p99Ms: late(loopDelay.percentile(99)), maxMs: late(loopDelay.max),
      gc: { scavenges: gc.scavenges, scavengeMs: r2(gc.scavengeMs), scavengeMaxMs: r2(gc.scavengeMaxMs), markCompacts: gc.markCompacts, markCompactMs: r2(gc.markCompactMs), markCompactMaxMs: r2(gc.markCompactMaxMs) },
      rssMiB: Math.round(process.memoryUsage.rss() / 2 ** 20),
    };
    loopDelay.reset();
    Object.assign(gc, { scavenges: 0, scavengeMs: 0, scavengeMaxMs: 0, markCompacts: 0, markCompactMs: 0, markCompactMaxMs: 0 });
    loopSince = Date.now();
    return {
      eventLoop,
      assignments: {
        // Retrying means batches are not reaching Kafka; drops mean exposures were lost.
        status: s.retrying > 0 ? 'degraded' : 'ok',
        depth: s.depth, capacity: s.capacity, dropped: s.dropped, sent: s.sent, failures: s.failures,
        ...(s.lastError && s.retrying > 0 ? { detail: s.lastError } : {}),
      },
      segmentIndex: { status: ctx.segmentIndex.isReady ? 'ok' : 'degraded', ...ctx.segmentIndex.stats(), pins: ctx.pins.size, ...(ctx.segmentIndex.isReady ? {} : { detail: 'segment memberships not loaded yet: segment rules match nobody until they are' }) },
      banditSticky: { status: sticky.ready ? 'ok' : 'degraded', users: sticky.index.size, ...sticky.counters, ...(sticky.ready ? {} : { detail: 'reading penumbra.bandit.sticky; new bandit picks are not recorded until caught up' }) },
      resolver: {
        status: profileStore.source === 'kafka' ? 'ok' : 'degraded',
        profileSource: profileStore.source,
        items: profileStore.all().length,
        heartbeats: registry.published,
        resolvers: registry.list().filter((r) => !r.stale).length,
        ...(profileStore.source !== 'kafka' ? { detail: `serving profiles from ${profileStore.source}; not caught up with Kafka` } : {}),
      },
    };
  });

  const router = createResolverRouter({ resolver, registry, exposures: (id) => exposures().view(id), tokens: ctx.tokens, openapi: ctx.openapi, limits: ctx.limits, contentUrl: ctx.contentUrl });

  // The fast path takes from the same buckets as the Express route: one limit, two code paths.
  const fastPath = createResolveFastPath({ resolver, buckets: ctx.limits.resolve, identity: ctx.limits.identity });

  return {
    router,
    fastPath,
    parts: { resolver, assignments, registry, exposures, sticky, stickyReady: stickyFollower.ready },
    async stop() {
      loopDelay.disable();
      gcObserver.disconnect();
      offProfiles();
      registry.stop();
      stopCatalogSnapshot();
      await assignments.stop(3000);
      await exposureProducer?.stop();
      await sticky.log.stop(3000);
      // Together: each waits for its fetch in flight (up to its idle wait), so one after the
      // other would add those waits up.
      await Promise.all([stickyFollower.stop(), resolversFollower.stop(), personal.stop(), (exposureFollower as ReturnType<typeof followInBackground> | null)?.stop()]);
      if (resolversFollower.connected) {
        // Tombstone: a cleanly stopped resolver leaves the compacted topic.
        const tomb = ctx.producer.sendRaw(cfg.topics.resolvers, [{ key: ctx.resolverId, value: null as unknown as Buffer }]);
        await Promise.race([tomb.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
    },
  };
}

/** Resolver parts of running instances, by FeatureContext (the rollout routes read sticky counts). */
export const resolverHandles = new WeakMap<FeatureContext, ResolverParts>();

/** The Feature registered in features.ts. */
export function resolverFeature(opts: ResolverFeatureOptions = {}): Feature {
  return async (ctx) => {
    const h = startResolver(ctx, opts);
    resolverHandles.set(ctx, h.parts);
    // Kafka is reachable here (createPenumbra checked): serve once the sticky assignments are
    // read, so a returning bandit user keeps their arm from the first request (bounded wait).
    await Promise.race([h.parts.stickyReady, new Promise((r) => setTimeout(r, 15_000).unref())]);
    return h;
  };
}

/**
 * createPenumbra(config) — the one composition function. It wires Kafka, the registry, the
 * stores rebuilt from compacted topics, the processors and the HTTP API by hand, and returns a
 * handle whose stop() undoes it all in reverse order. Tests start it (even twice in one
 * process, with different topic prefixes and ports); `penumbra start` adds the local stack and
 * signal handling around it.
 */
import path from 'node:path';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Router } from 'express';
import { ensureDataDir, type PenumbraConfig } from '../config/config.ts';
import { createKafka, createProbeKafka, AvroProducer } from '../kafka/client.ts';
import { kafkajsHealth } from '../kafka/kafkajs-health.ts';
import { provisionAll } from '../kafka/setup.ts';
import { assertKafkaReachable, describeBrokers, rootMessage, singleFlight, withDeadline } from '../kafka/probe.ts';
import { HEALTH_CHECK_MS, overallStatus, runHealthChecks } from './health.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import { ProfileStore, followProfiles } from '../profiles/profile-store.ts';
import { ProfileService } from '../profiles/profile-service.ts';
import { startCommandProcessor } from '../profiles/command-processor.ts';
import { CatalogStore } from '../ingest/catalog-store.ts';
import { startIngestProcessor } from '../ingest/ingest-processor.ts';
import type { IngestDeps } from '../ingest/ingest-service.ts';
import { FsBlobStore } from '../../connectors/blob-store/blob-store.ts';
import { blobStoreFor } from '../../connectors/blob-store/s3.ts';
import { createApi, type HealthReport } from '../../connectors/http/create-api.ts';
import { OpenApiRegistry } from '../../connectors/http/openapi.ts';
import { loadTokenStore } from '../../connectors/http/auth.ts';
import { loadAssignmentKeys } from '../assignment-token/key-file.ts';
import { createItemsRouter } from '../../connectors/http/items-router.ts';
import { buildLibrary } from '../../connectors/instrumentation/build.ts';
import { buildRnLibrary } from '../../connectors/instrumentation-rn/build.ts';
import { createLogger } from './log.ts';
import { features, resolverFeatures, type FeatureContext, type FeatureHandle } from './features.ts';
import { followPersonalState } from '../preferences/follow.ts';
import { formatRoles } from '../roles/roles.ts';
import { collectorFeature, liveFeature, auditFeature } from './core-features.ts';
import { streamHandles } from '../telemetry/feature.ts';
import { LiveHub } from '../live/hub.ts';
import { SegmentIndex } from '../segments/segment-index.ts';
import { PinStore } from '../preferences/pin-store.ts';
import { MetricsRegistry } from './metrics.ts';
import { listenApi, listenContent } from '../../connectors/http/content-origin.ts';
import { createDeviceLimits } from '../../connectors/http/rate-limit.ts';
import { registerPenumbraCollectors, timedFastPaths } from '../../connectors/http/metrics-endpoint.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VERSION = '0.1.0';

export interface PenumbraOptions {
  /**
   * Serve the API role (pipeline/roles): console, collector, resolver and item pages. Without it
   * the process listens on PORT for health, Prometheus and the read routes of the features it
   * runs (a management port). Default: cfg.roles.api.
   */
  api?: boolean;
  /** Run the in-process processors (profile writer, ingest, telemetry, sink…). Off for extra resolver-only processes. Default: cfg.roles.processors. */
  processors?: boolean;
  /** Run the DuckDB warehouse sink (one writer per data folder). Default: off when `processors` is set false, else cfg.roles.sink. */
  sink?: boolean;
  /** Create an admin token when none is configured (npm start), printing it once. */
  createToken?: boolean;
  consoleDir?: string;
  resolverId?: string;
}

export interface Penumbra {
  url: string;
  /** Origin of the item pages (/d/…), never the console's. */
  contentUrl: string;
  server: import('node:http').Server;
  cfg: PenumbraConfig;
  createdToken?: { name: string; token: string; file: string };
  ctx: FeatureContext;
  /** Prometheus registry behind GET /metrics. */
  metrics: MetricsRegistry;
  /** Handles of the started features, in start order (tests and benchmarks inspect them). */
  handles: FeatureHandle[];
  stop(): Promise<void>;
}

export async function createPenumbra(cfg: PenumbraConfig, opts: PenumbraOptions = {}): Promise<Penumbra> {
  const log = createLogger('penumbra', cfg.logLevel);
  // Roles (pipeline/roles): explicit options win (tests, benches), else the configuration's.
  const roles = {
    api: opts.api ?? cfg.roles.api,
    processors: opts.processors ?? cfg.roles.processors,
    sink: opts.sink ?? (opts.processors === false ? false : cfg.roles.sink),
  };
  const resolverId = opts.resolverId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn('stop step failed', { err: String(err) });
      }
    }
  };
  try {
    ensureDataDir(cfg.dataDir);
    const kafka = createKafka(cfg.kafkaBrokers, `penumbra-${resolverId}`);
    const probeKafka = createProbeKafka(cfg.kafkaBrokers, `penumbra-${resolverId}`);
    // One actionable sentence when the broker is not there, instead of kafkajs's error chain.
    await assertKafkaReachable(probeKafka, cfg.kafkaBrokers);
    const { codec } = await provisionAll(kafka, cfg);
    const producer = new AvroProducer(kafka, codec);
    await producer.connect();
    stops.push(() => producer.disconnect());
    // The control path (commands, outcomes, profiles, audit of config changes) gets its own
    // producer: kafkajs's idempotent producer has one request in flight, and a rollback must
    // not queue behind telemetry batches under load.
    const controlProducer = new AvroProducer(kafka, codec);
    await controlProducer.connect();
    stops.push(() => controlProducer.disconnect());
    const controlHealth: (() => Record<string, { status: 'ok' | 'degraded'; [k: string]: unknown }>)[] = [];
    const groupPrefix = cfg.topicPrefix;

    const profileStore = new ProfileStore(path.join(cfg.dataDir, 'resolver', `profiles-${cfg.topicPrefix || 'default'}.json`));
    profileStore.loadSnapshot();
    if (roles.processors) {
      const writer = await startCommandProcessor({ kafka, codec, producer: controlProducer, topics: cfg.topics, groupPrefix, log: log.warn });
      controlHealth.push(() => ({ profileWriter: writer.processor.running ? { status: 'ok', restarts: writer.processor.stats.restarts } : { status: 'degraded', detail: `profile writer restarting after a crash: ${writer.processor.stats.lastCrash}`, restarts: writer.processor.stats.restarts } }));
      stops.push(() => writer.stop());
    }
    const profileFollower = await followProfiles({ kafka, codec, topic: cfg.topics.shadowProfiles, store: profileStore, groupPrefix, onError: (e) => log.warn('profile decode failed', { err: String(e) }) });
    stops.push(() => profileFollower.stop());
    const profiles = new ProfileService({ kafka, codec, producer: controlProducer, topics: cfg.topics, store: profileStore, groupPrefix });
    await profiles.start();
    stops.push(() => profiles.stop());

    const catalog = new CatalogStore();
    const catalogFollower: Follower = await followTopic({ kafka, codec, topic: cfg.topics.itemsCatalog, schema: 'catalog-entry', groupPrefix, onRecord: (e) => catalog.apply(e) });
    stops.push(() => catalogFollower.stop());
    await Promise.all([profileFollower.ready, catalogFollower.ready]);

    const blobs = await blobStoreFor(cfg, () => new FsBlobStore(path.join(cfg.dataDir, 'blobs')));
    const ingest: IngestDeps = {
      blobs,
      catalog,
      profiles,
      library: buildLibrary,
      rnLibrary: buildRnLibrary,
      publicUrl: cfg.publicUrl,
      publishCatalog: (entry) => producer.send([{ topic: cfg.topics.itemsCatalog, key: entry.itemId, value: entry }]),
      planLimits: { minAnalysisSeconds: cfg.rolloutMinAnalysisSeconds },
      banditLimits: { minReweightSeconds: cfg.banditMinReweightSeconds },
    };
    if (roles.processors) {
      const ing = await startIngestProcessor({ kafka, codec, producer, topics: cfg.topics, groupPrefix, ingest, cfg, log: log.warn });
      controlHealth.push(() => ({ ingestProcessor: ing.running ? { status: 'ok', restarts: ing.stats.restarts } : { status: 'degraded', detail: `ingest processor restarting after a crash: ${ing.stats.lastCrash}` } }));
      stops.push(() => ing.stop());
    }

    const { store: tokens, created } = loadTokenStore({ tokens: cfg.tokens, tokensFile: cfg.tokensFile, dataDir: cfg.dataDir, createIfMissing: opts.createToken ?? false });
    // Resolve signs assignment tokens and the collector verifies them: every process of a
    // deployment must share this ring (PENUMBRA_ASSIGNMENT_KEYS, or the data folder's key file).
    const keys = loadAssignmentKeys({ configured: cfg.assignmentKeys, dataDir: cfg.dataDir });
    if (keys.created) log.info('created an assignment-token key (share it with every process of this deployment)', { file: keys.source });
    const openapi = new OpenApiRegistry();
    let contentUrl = '';
    const ctx: FeatureContext = {
      cfg, kafka, probeKafka, codec, producer, log, groupPrefix, resolverId, profileStore, profiles, catalog, blobs, ingest, tokens, openapi,
      assignmentKeys: keys.ring,
      processors: roles.processors, sink: roles.sink, api: roles.api,
      hub: new LiveHub(),
      segmentIndex: new SegmentIndex(),
      pins: new PinStore(),
      limits: createDeviceLimits(cfg, tokens),
      healthChecks: [],
      contentUrl: () => contentUrl,
    };
    const routers: Router[] = !roles.api ? [] : [createItemsRouter({ catalog, profiles, blobs, tokens, openapi, ingest, maxUploadBytes: cfg.maxUploadBytes, publishCatalog: ingest.publishCatalog, limits: ctx.limits, fileCacheBytes: cfg.fileCacheBytes })];
    const handles: FeatureHandle[] = [];
    const fastPaths: NonNullable<FeatureHandle['fastPath']>[] = [];
    // Without the api role: no collector, live stream or audit view, and the resolver's routes
    // are not mounted. A processors process still runs the resolver feature for its state (the
    // sticky index gives the per-segment analyzer each user's cell; segment status and pins feed
    // the segment evaluator), so it heartbeats like a resolver but answers no device. A sink-only
    // process follows the segment and pin state alone.
    const started = roles.api ? [collectorFeature, liveFeature, auditFeature, ...features] : roles.processors ? features : features.filter((f) => f !== resolverFeatures);
    if (!roles.api && !roles.processors) {
      const personal = followPersonalState(ctx, undefined, (kind) => (err) => log.warn(`${kind} failed`, { err: String(err) }));
      stops.push(() => personal.stop());
    }
    for (const f of started) {
      const h = await f(ctx);
      handles.push(h);
      const deviceFacing = f === resolverFeatures && !roles.api;
      if (h.router && !deviceFacing) routers.unshift(h.router);
      if (h.fastPath && !deviceFacing) fastPaths.push(h.fastPath);
      if (h.stop) stops.push(h.stop);
    }

    // Health answers within HEALTH_CHECK_MS whatever is down (health.ts); the Kafka question is
    // shared by concurrent requests so an outage does not open a connection per health call.
    const askBrokers = singleFlight(() => describeBrokers(probeKafka));
    const kafkaCheck = async (): Promise<HealthReport['checks']> => {
      try {
        return { kafka: { status: 'ok', brokers: await withDeadline(askBrokers(), HEALTH_CHECK_MS - 200, 'Kafka metadata request') } };
      } catch (err) {
        return { kafka: { status: 'down', detail: `${cfg.kafkaBrokers.join(', ')}: ${rootMessage(err)}` } };
      }
    };
    const registryCheck = async (): Promise<HealthReport['checks']> => {
      try {
        const r = await fetch(`${cfg.schemaRegistryUrl}/subjects`, { signal: AbortSignal.timeout(HEALTH_CHECK_MS - 200) });
        await r.arrayBuffer();
        return { registry: r.ok ? { status: 'ok' } : { status: 'down', detail: `HTTP ${r.status}` } };
      } catch (err) {
        return { registry: { status: 'down', detail: rootMessage(err) } };
      }
    };
    const health = async (): Promise<HealthReport> => {
      const checks: HealthReport['checks'] = {
        profiles: { status: profileStore.source === 'kafka' ? 'ok' : 'degraded', source: profileStore.source, items: profileStore.all().length },
        kafkajs: kafkajsHealth(),
      };
      for (const c of controlHealth) Object.assign(checks, c());
      Object.assign(checks, await runHealthChecks([kafkaCheck, registryCheck, ...ctx.healthChecks]));
      return { status: overallStatus(checks), checks, resolverId, roles: formatRoles(roles), profileVersions: profileStore.versions(), version: VERSION };
    };

    const metrics = new MetricsRegistry();
    registerPenumbraCollectors(metrics, {
      kafka: probeKafka, groupPrefix, dlqTopic: cfg.topics.dlq, healthChecks: ctx.healthChecks, profileVersions: () => profileStore.versions(),
      unverified: () => streamHandles.get(ctx)?.unverified?.series() ?? [],
    });
    const app = createApi({ openapi, tokens, routers, health, version: VERSION, log: log.error, consoleDir: roles.api ? opts.consoleDir : undefined, metrics, requestLog: log.debug, trust: ctx.limits.identity.trust });
    // Fast paths answer before Express; timedFastPaths gives them the same latency histogram.
    const fast = timedFastPaths(fastPaths, { registry: metrics, openapi, log: cfg.logLevel === 'debug' ? log.debug : undefined });
    // Item pages get their own origin, bound first so /launch and the redirect know its URL.
    if (roles.api) {
      const content = await listenContent(app, { host: cfg.host, port: cfg.contentPort, publicUrl: cfg.contentUrl, limits: cfg.listeners });
      contentUrl = content.url;
      stops.push(() => content.stop());
    }
    const api = await listenApi(app, { host: cfg.host, port: cfg.port, contentUrl: () => contentUrl, fast, limits: cfg.listeners });
    stops.push(() => api.stop());
    const { server, url } = api;
    log.info(roles.api ? 'api listening' : 'management port listening (no api role)', { url, resolverId, roles: formatRoles(roles) });
    return { url, contentUrl, server, cfg, createdToken: created, ctx, metrics, handles, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

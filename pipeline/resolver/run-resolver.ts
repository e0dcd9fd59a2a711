/**
 * A resolver-only process: the device routes (resolve, launch, artifacts, /d/ origin) and the
 * resolver views, without processors or the DuckDB sink. Run several beside one main
 * `penumbra start` to scale resolves out:
 *
 *   PORT=7081 PENUMBRA_DATA_DIR=/var/penumbra/r1 node --import tsx pipeline/resolver/run-resolver.ts
 *
 * Why not createPenumbra({ processors: false, sink: false })? createPenumbra connects to Kafka
 * and the registry before it listens, so a resolver restarted while Kafka is down would not
 * answer at all. This composition does the reverse: load the last-known profiles and catalog
 * from the data folder's snapshots, start the HTTP server, then connect to Kafka in the
 * background with retry (health says `degraded` until connected and caught up). The contract
 * "device-facing paths never wait on Kafka" then holds across restarts too.
 *
 * Prints one JSON line `{"event":"listening","url":…,"resolverId":…}` on stdout once serving.
 */
import os from 'node:os';
import v8 from 'node:v8';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Router } from 'express';
import { ensureDataDir, loadConfig, type PenumbraConfig } from '../config/config.ts';
import { createKafka, createProbeKafka, AvroProducer } from '../kafka/client.ts';
import { kafkajsHealth } from '../kafka/kafkajs-health.ts';
import { AvroCodec } from '../kafka/registry.ts';
import { provisionAll } from '../kafka/setup.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import { ProfileStore, followProfiles } from '../profiles/profile-store.ts';
import { ProfileService } from '../profiles/profile-service.ts';
import { CatalogStore } from '../ingest/catalog-store.ts';
import type { IngestDeps } from '../ingest/ingest-service.ts';
import { FsBlobStore } from '../../connectors/blob-store/blob-store.ts';
import { blobStoreFor } from '../../connectors/blob-store/s3.ts';
import { createApi, type HealthReport } from '../../connectors/http/create-api.ts';
import { OpenApiRegistry } from '../../connectors/http/openapi.ts';
import { loadTokenStore } from '../../connectors/http/auth.ts';
import { createItemsRouter } from '../../connectors/http/items-router.ts';
import { buildLibrary } from '../../connectors/instrumentation/build.ts';
import { createLogger } from '../app/log.ts';
import type { FeatureContext } from '../app/features.ts';
import { startResolver, type ResolverFeatureOptions, type ResolverParts } from './feature.ts';
import { SegmentIndex } from '../segments/segment-index.ts';
import { PinStore } from '../preferences/pin-store.ts';
import { snapshotPaths } from './catalog-snapshot.ts';
import { listenApi, listenContent } from '../../connectors/http/content-origin.ts';
import { createDeviceLimits } from '../../connectors/http/rate-limit.ts';
import { overallStatus, runHealthChecks } from '../app/health.ts';
import { MetricsRegistry } from '../app/metrics.ts';
import { registerPenumbraCollectors, timedFastPaths } from '../../connectors/http/metrics-endpoint.ts';
import { loadAssignmentKeys } from '../assignment-token/key-file.ts';
import { parallelScavengeOff } from './gc.ts';

const VERSION = '0.1.0';

/**
 * Idle fetch wait of this process's followers, and the poll period of its resolver list
 * (pipeline/resolver/feature.ts). Records still arrive at once; the longer wait only makes idle
 * polls rarer. Measured (issue 15): an idle resolver-only process took 3.3 % of a core with the
 * 250 ms default, ~1 % with 2 s; ten of them beside the main process are the CPU a rollback's
 * fan-out competes with. 1 s keeps stop() short (followers stop together, each waiting for its
 * fetch in flight).
 */
const FOLLOW_WAIT_MS = 1000;

export interface ResolverProcess {
  url: string;
  /** Origin of the item pages (/d/…). */
  contentUrl: string;
  server: import('node:http').Server;
  resolverId: string;
  ctx: FeatureContext;
  parts: ResolverParts;
  /** True once Kafka is connected and the profile view has caught up. */
  readonly connected: boolean;
  stop(): Promise<void>;
}

export async function startResolverProcess(cfg: PenumbraConfig, opts: ResolverFeatureOptions & { resolverId?: string } = {}): Promise<ResolverProcess> {
  const log = createLogger('resolver', cfg.logLevel);
  const resolverId = opts.resolverId ?? `${os.hostname()}-${process.pid}-r${randomUUID().slice(0, 6)}`;
  // Nothing below connects: kafkajs clients, the codec and the producer are inert until used.
  const kafka = createKafka(cfg.kafkaBrokers, `penumbra-${resolverId}`);
  const codec = new AvroCodec(cfg.schemaRegistryUrl);
  const producer = new AvroProducer(kafka, codec);
  const groupPrefix = cfg.topicPrefix;
  ensureDataDir(cfg.dataDir);

  const profileStore = new ProfileStore(snapshotPaths(cfg.dataDir, cfg.topicPrefix).profiles);
  const fromSnapshot = profileStore.loadSnapshot();
  const catalog = new CatalogStore();
  const profiles = new ProfileService({ kafka, codec, producer, topics: cfg.topics, store: profileStore, groupPrefix, followWaitMs: FOLLOW_WAIT_MS });
  const blobs = await blobStoreFor(cfg, () => new FsBlobStore(path.join(cfg.dataDir, 'blobs')));
  const ingest: IngestDeps = {
    blobs, catalog, profiles, library: buildLibrary, publicUrl: cfg.publicUrl,
    publishCatalog: (entry) => producer.send([{ topic: cfg.topics.itemsCatalog, key: entry.itemId, value: entry }]),
    planLimits: { minAnalysisSeconds: cfg.rolloutMinAnalysisSeconds },
    banditLimits: { minReweightSeconds: cfg.banditMinReweightSeconds },
  };
  const { store: tokens } = loadTokenStore({ tokens: cfg.tokens, tokensFile: cfg.tokensFile, dataDir: cfg.dataDir, createIfMissing: false });
  // The same ring as the other processes of the deployment (config, or the shared key file).
  const assignmentKeys = loadAssignmentKeys({ configured: cfg.assignmentKeys, dataDir: cfg.dataDir }).ring;
  const openapi = new OpenApiRegistry();
  // No feature using the live hub runs here, so the context carries none.
  let contentUrl = '';
  const base = {
    cfg, kafka, probeKafka: createProbeKafka(cfg.kafkaBrokers, `resolver-${resolverId}`), codec, producer, log, groupPrefix, resolverId, profileStore, profiles, catalog, blobs, ingest, tokens, openapi, assignmentKeys,
    processors: false, sink: false, healthChecks: [] as FeatureContext['healthChecks'], contentUrl: () => contentUrl,
    limits: createDeviceLimits(cfg, tokens),
    segmentIndex: new SegmentIndex(),
    pins: new PinStore(),
  } satisfies Omit<FeatureContext, 'hub'>;
  const ctx = base as unknown as FeatureContext;

  let resolveKafkaReady!: () => void;
  const kafkaReady = new Promise<void>((r) => (resolveKafkaReady = r));
  const feature = startResolver(ctx, { followWaitMs: FOLLOW_WAIT_MS, registryPollMs: FOLLOW_WAIT_MS, ...opts, kafkaReady });

  let connected = false;
  let stopped = false;
  let wake: (() => void) | null = null;
  let lastError: string | null = null;
  const followers: Follower[] = [];
  let profilesStarted = false;
  const steps = { provisioned: false, producer: false, profiles: false, catalog: false };
  const connectLoop = (async () => {
    let delay = 200;
    while (!stopped && !connected) {
      try {
        // Each step is done once; a failure retries from the first step not yet done.
        if (!steps.provisioned) {
          await provisionAll(kafka, cfg, codec);
          steps.provisioned = true;
        }
        if (!steps.producer) {
          await producer.connect();
          steps.producer = true;
          resolveKafkaReady();
        }
        if (!steps.profiles) {
          followers.push(await followProfiles({ kafka, codec, topic: cfg.topics.shadowProfiles, store: profileStore, groupPrefix, maxWaitTimeInMs: FOLLOW_WAIT_MS, onError: (e) => log.warn('profile decode failed', { err: String(e) }) }));
          steps.profiles = true;
        }
        if (!steps.catalog) {
          followers.push(await followTopic({ kafka, codec, topic: cfg.topics.itemsCatalog, schema: 'catalog-entry', groupPrefix, maxWaitTimeInMs: FOLLOW_WAIT_MS, onRecord: (e) => catalog.apply(e) }));
          steps.catalog = true;
        }
        await Promise.all(followers.map((f) => f.ready));
        if (!profilesStarted) {
          await profiles.start();
          profilesStarted = true;
        }
        connected = true;
        lastError = null;
        log.info('resolver connected to Kafka', { resolverId, profiles: profileStore.all().length });
      } catch (err) {
        lastError = (err as Error).message;
        log.warn('resolver: Kafka not reachable yet, retrying', { err: lastError, retryInMs: delay });
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, delay).unref();
        });
        delay = Math.min(delay * 2, 5000);
      }
    }
  })();

  const health = async (): Promise<HealthReport> => {
    const checks: HealthReport['checks'] = {
      kafka: connected ? { status: 'ok' } : { status: 'degraded', detail: lastError ?? 'connecting' },
      kafkajs: kafkajsHealth(),
    };
    Object.assign(checks, await runHealthChecks(ctx.healthChecks));
    return { status: overallStatus(checks), checks, resolverId, mode: 'resolver', profileVersions: profileStore.versions(), version: VERSION };
  };

  const routers: Router[] = [
    feature.router!,
    createItemsRouter({ catalog, profiles, blobs, tokens, openapi, ingest, maxUploadBytes: cfg.maxUploadBytes, publishCatalog: ingest.publishCatalog, limits: base.limits, fileCacheBytes: cfg.fileCacheBytes }),
  ];
  // Same /metrics as the main process (every process is scraped alike): latency per route,
  // resolver profile versions, health numbers, lag of this process's groups.
  const metrics = new MetricsRegistry();
  registerPenumbraCollectors(metrics, { kafka: ctx.probeKafka, groupPrefix, dlqTopic: cfg.topics.dlq, healthChecks: ctx.healthChecks, profileVersions: () => profileStore.versions() });
  const app = createApi({ openapi, tokens, routers, health, version: VERSION, log: log.error, metrics, trust: base.limits.identity.trust });
  const fast = timedFastPaths(feature.fastPath ? [feature.fastPath] : [], { registry: metrics, openapi });
  // Item pages on their own origin, as in createPenumbra (connectors/http/content-origin.ts).
  const content = await listenContent(app, { host: cfg.host, port: cfg.contentPort, publicUrl: cfg.contentUrl, limits: cfg.listeners });
  contentUrl = content.url;
  const api = await listenApi(app, { host: cfg.host, port: cfg.port, contentUrl: () => contentUrl, fast, limits: cfg.listeners });
  const { server, url } = api;
  log.info('resolver listening', { url, resolverId, fromSnapshot, profileSource: profileStore.source });

  return {
    url, contentUrl, server, resolverId, ctx, parts: feature.parts,
    get connected() {
      return connected;
    },
    async stop() {
      stopped = true;
      (wake as (() => void) | null)?.();
      // An attempt in flight may sit in kafkajs retries for many seconds: don't wait for it.
      await Promise.race([connectLoop, new Promise((r) => setTimeout(r, 500).unref())]);
      await api.stop();
      await content.stop();
      // Together: each follower waits for its fetch in flight (up to FOLLOW_WAIT_MS).
      await Promise.all([
        feature.stop!().catch(() => {}),
        profilesStarted ? profiles.stop().catch(() => {}) : undefined,
        ...followers.map((f) => f.stop().catch(() => {})),
      ]);
      await producer.disconnect().catch(() => {});
    },
  };
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  // Process-wide, so here and not in startResolverProcess (tests run that inside their own
  // process). V8 reads the flag at each scavenge, so setting it at start-up is enough (gc.ts).
  if (parallelScavengeOff(cfg.resolverParallelScavenge, os.availableParallelism())) v8.setFlagsFromString('--no-parallel-scavenge');
  const p = await startResolverProcess(cfg, { resolverId: process.env.RESOLVER_ID });
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: p.url, resolverId: p.resolverId, pid: process.pid })}\n`);
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    void p.stop().finally(() => process.exit(0));
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`resolver failed to start: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}

/**
 * Feature modules plugged into createPenumbra in a fixed order: each gets the shared context
 * and may return a router (mounted before the items router), a stop function and health checks.
 * Keeping the list here (rather than each feature importing the composition root) keeps wiring
 * in one place and lets features be developed side by side.
 */
import type { Kafka } from 'kafkajs';
import { Router } from 'express';
import type { PenumbraConfig } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer } from '../kafka/client.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { CatalogStore } from '../ingest/catalog-store.ts';
import type { IngestDeps } from '../ingest/ingest-service.ts';
import type { BlobStore } from '../../connectors/blob-store/blob-store.ts';
import type { TokenStore } from '../../connectors/http/auth.ts';
import type { OpenApiRegistry } from '../../connectors/http/openapi.ts';
import type { DeviceLimits } from '../../connectors/http/rate-limit.ts';
import type { HealthCheck } from './health.ts';
import type { KeyRing } from '../assignment-token/token.ts';
import type { Logger } from './log.ts';
import { resolverFeature, type ResolverFeatureHandle } from '../resolver/feature.ts';
import { startExpoUpdates } from '../../connectors/expo-updates/feature.ts';
import type { LiveHub } from '../live/hub.ts';
import type { SegmentIndex } from '../segments/segment-index.ts';
import type { PinStore } from '../preferences/pin-store.ts';
import { warehouseFeature } from '../warehouse/feature.ts';
import { telemetryFeature } from '../telemetry/feature.ts';
import { parquetSourceFeature } from '../../connectors/parquet-source/feature.ts';
import { riskFeature } from '../risk-model/feature.ts';
import { versionShadowsFeature } from '../version-shadows/feature.ts';
import { segmentsFeature } from '../segments/feature.ts';
import { preferencesFeature } from '../preferences/feature.ts';
import { rolloutFeature } from '../rollout/feature.ts';
import { forecastFeature } from './forecast-hold.ts';
import { segmentAllocationFeature } from '../segment-allocation/feature.ts';

export interface FeatureContext {
  cfg: PenumbraConfig;
  kafka: Kafka;
  /** Same brokers, no retries: for bounded questions (health, lag) — pipeline/kafka/probe.ts. */
  probeKafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  log: { debug: Logger; info: Logger; warn: Logger; error: Logger };
  groupPrefix: string;
  resolverId: string;
  profileStore: ProfileStore;
  profiles: ProfileService;
  catalog: CatalogStore;
  blobs: BlobStore;
  ingest: IngestDeps;
  tokens: TokenStore;
  /** Assignment-token key ring: resolve signs with its first key, the collector verifies with all. */
  assignmentKeys: KeyRing;
  openapi: OpenApiRegistry;
  /** This process runs the stream processors (not a resolver-only replica). */
  processors: boolean;
  /** This process serves the API, the console and its live stream (role `api`; undefined = yes). */
  api?: boolean;
  /** This process runs the DuckDB sink. */
  sink: boolean;
  /** In-process pub/sub feeding GET /api/v1/stream (SSE). */
  hub: LiveHub;
  healthChecks: HealthCheck[];
  /** Per-client limits of the device routes, shared by Express routes and fast paths (rate-limit.ts). */
  limits: DeviceLimits;
  /** Base URL of the item-pages origin, known once its listener is bound (connectors/http/content-origin.ts). */
  contentUrl: () => string;
  /** Segment memberships every resolver holds (pipeline/segments), fed by the resolver feature's followers. */
  segmentIndex: SegmentIndex;
  /** Pins and pin policies (pipeline/preferences), fed by the resolver feature's followers. */
  pins: PinStore;
}

export interface FeatureHandle {
  router?: Router;
  /**
   * Raw node:http handler tried before Express; returns true when it took the request (it may
   * answer later, or hand the request to `express`, the app behind it: the collector's errors).
   */
  fastPath?: import('../../connectors/http/metrics-endpoint.ts').FastPath;
  stop?: () => Promise<void>;
}

export type Feature = (ctx: FeatureContext) => Promise<FeatureHandle>;

/**
 * The resolver, then the Expo Updates server on that same resolver (mobile decisions and
 * exposures are /resolve's): one feature so the second gets the first's Resolver.
 */
function resolverAndExpoFeature(): Feature {
  const resolver = resolverFeature();
  return async (ctx) => {
    const h = (await resolver(ctx)) as ResolverFeatureHandle;
    const expo = startExpoUpdates(ctx, h.parts.resolver);
    // One router holding both, so the composition stays "one handle per feature".
    const combined = Router();
    for (const r of [h.router, expo.router]) if (r) combined.use(r);
    // Both device routes answer in front of Express (their fast paths), resolve first.
    const fastPaths = [h.fastPath, expo.fastPath].filter((f) => f !== undefined);
    return { ...h, router: combined, fastPath: (req, res, express) => fastPaths.some((f) => f(req, res, express)) };
  };
}

/** Registered features, in start order (core ones are prepended by penumbra.ts). */
/** Rollout after telemetry: it taps the metrics processor and reads its assignment index. */
/** Forecast holds after rollout: they read the rollout analyzer's arm totals. */
/** Per-segment allocation after rollout: it reads its decision log. */
/** The device-facing resolver (+ Expo Updates): started only by processes with the `api` role. */
export const resolverFeatures: Feature = resolverAndExpoFeature();
export const features: Feature[] = [resolverFeatures, warehouseFeature(), parquetSourceFeature(), telemetryFeature(), riskFeature(), versionShadowsFeature(), segmentsFeature(), preferencesFeature(), rolloutFeature(), forecastFeature(), segmentAllocationFeature()];

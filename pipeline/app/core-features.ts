/**
 * Core features wired into createPenumbra: the collector, the live stream and the audit view.
 * (Other features — resolver, telemetry processing, alerts, warehouse — register in features.ts.)
 */
import { Router } from 'express';
import { z } from 'zod';
import { createTelemetryRouter } from '../../connectors/http/telemetry-router.ts';
import { createStreamRouter } from '../../connectors/http/stream-router.ts';
import { requireRole } from '../../connectors/http/auth.ts';
import { parseOr422 } from '../../connectors/http/validate.ts';
import { followTopic } from '../kafka/follow.ts';
import { publicConfigView } from '../profiles/codec.ts';
import { AuditLog, toView } from '../audit/audit-log.ts';
import type { Feature } from './features.ts';
import { CollectorHealth } from '../collector-health/health.ts';
import { partitionCount } from '../telemetry/repartition.ts';

export const collectorFeature: Feature = async (ctx) => {
  const health = new CollectorHealth();
  // telemetry.raw is partitioned by item (key: session) so the metrics processor needs no hop for
  // the collector's events; the count is read once (a topic's partitions only grow by an operator's
  // hand, and then the repartition hop covers the records that moved — pipeline/telemetry/README.md).
  const rawPartitions = await rawPartitionCount(ctx);
  const { router, stats, sender, fastPath } = createTelemetryRouter({
    producer: ctx.producer, topics: ctx.cfg.topics, openapi: ctx.openapi, limits: ctx.limits, health, rawPartitions,
    keys: ctx.assignmentKeys, profile: (itemId) => ctx.profileStore.get(itemId),
    pinned: (itemId, userId) => ctx.pins.variantFor(itemId, userId) !== undefined,
  });
  // From what the collector did (pipeline/collector-health): degraded while it refuses work.
  ctx.healthChecks.push(async () => ({ collector: { ...stats, ...health.check(Date.now(), sender.pending()) } }));
  // The raw fast path answers the common POST before Express (connectors/http/telemetry-router.ts).
  return { router, fastPath };
};

async function rawPartitionCount(ctx: Parameters<Feature>[0]): Promise<number | undefined> {
  const admin = ctx.kafka.admin();
  try {
    await admin.connect();
    return await partitionCount(admin, ctx.cfg.topics.telemetryRaw);
  } catch (err) {
    ctx.log.warn('collector: telemetry.raw partition count unknown; events partitioned by session (all through the repartition hop)', { err: String(err) });
    return undefined;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export const liveFeature: Feature = async (ctx) => {
  const unsub = ctx.profileStore.onChange((p) => ctx.hub.publish({ event: 'profile', itemId: p.itemId, data: publicConfigView(p) }));
  const router = createStreamRouter({
    hub: ctx.hub,
    tokens: ctx.tokens,
    openapi: ctx.openapi,
    streamsPerToken: ctx.cfg.listeners.streamsPerToken,
    // A new connection first gets the current profiles, so the console needs no extra round trip.
    snapshot: (itemId) => ctx.profileStore.all().filter((p) => !itemId || p.itemId === itemId).map((p) => ({ event: 'profile' as const, itemId: p.itemId, data: publicConfigView(p) })),
  });
  return { router, stop: async () => void unsub() };
};

export const auditFeature: Feature = async (ctx) => {
  const log = new AuditLog();
  const follower = await followTopic({
    kafka: ctx.kafka, codec: ctx.codec, topic: ctx.cfg.topics.audit, schema: 'audit-entry', groupPrefix: ctx.groupPrefix,
    onRecord: (e) => {
      log.add(e);
      ctx.hub.publish({ event: 'audit', itemId: e.itemId, data: toView(e) });
    },
  });
  const q = z.object({ itemId: z.string().max(128).optional(), actor: z.string().max(64).optional(), action: z.string().max(64).optional(), limit: z.coerce.number().int().min(1).max(2000).optional() });
  ctx.openapi.add({ method: 'get', path: '/api/v1/audit', summary: 'Audit log: who changed what, with before/after', auth: 'viewer', tags: ['audit'], query: q, responses: { 200: 'Entries, newest first', 401: 'No token', 422: 'Bad query' } });
  const router = Router();
  router.get('/api/v1/audit', requireRole(ctx.tokens, 'viewer'), (req, res) => {
    const query = parseOr422(q, req.query, 'query', 'audit query');
    res.json({ entries: log.query(query) });
  });
  await follower.ready;
  return { router, stop: () => follower.stop() };
};

/**
 * POST /api/v1/telemetry — the collector: the one device-facing path that waits on Kafka,
 * because its 202 promises durability. Answers 202 only after the broker acknowledged every
 * accepted event (idempotent producer, acks=all); 503 when it could not (the client retries;
 * event ids make the retry harmless). Malformed bodies, refused envelopes and refused events go
 * to penumbra.dlq with their bytes and reason before the answer, so nothing is silently lost.
 *
 * Attribution: the batch's assignment token is verified against the batch's item, user, variant
 * and controlOf, and the item's current profile (pipeline/telemetry/attribution.ts); the verdict
 * (verified, unverifiedReason, controlOf) is stamped on every event. Unverified events are stored
 * like the others — the 202 counts them and names the reason — and kept out of comparisons.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import type { TopicNames } from '../../pipeline/config/config.ts';
import { CoalescingSender, type AvroProducer, type OutRecord } from '../../pipeline/kafka/client.ts';
import { deadLetter } from '../../pipeline/kafka/dlq.ts';
import { validateBatch, LIMITS, batchSchema } from '../../pipeline/telemetry/batch.ts';
import { attributeBatch } from '../../pipeline/telemetry/attribution.ts';
import type { KeyRing } from '../../pipeline/assignment-token/token.ts';
import type { ShadowProfile } from '../../pipeline/domain/types.ts';
import { PenumbraError, ValidationError } from '../../pipeline/errors.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { rateLimit, defaultDeviceLimits, type DeviceLimits } from './rate-limit.ts';
import type { CollectorHealth } from '../../pipeline/collector-health/health.ts';

export interface CollectorStats {
  batches: number;
  accepted: number;
  rejectedEvents: number;
  refusedBatches: number;
  deadLettered: number;
  /** Accepted events whose batch had no valid assignment token (or an item/variant the profile does not know), by reason. */
  unverified: Record<string, number>;
}

export interface TelemetryRouterDeps {
  producer: AvroProducer;
  topics: TopicNames;
  openapi: OpenApiRegistry;
  /** Assignment-token key ring (every key verifies). */
  keys: KeyRing;
  /** The item's current profile (known items and variants). */
  profile: (itemId: string) => ShadowProfile | undefined;
  /** Whether the user is pinned to a variant of the item (pipeline/preferences): kept out of comparisons. */
  pinned?: (itemId: string, userId: string) => boolean;
  limits?: DeviceLimits;
  health?: CollectorHealth;
  now?: () => number;
}

export function createTelemetryRouter(deps: TelemetryRouterDeps): { router: Router; stats: CollectorStats; sender: CoalescingSender } {
  const r = Router();
  const limits = deps.limits ?? defaultDeviceLimits();
  // Concurrent batches share produce requests; each 202 still waits for its own records' ack.
  const health = deps.health;
  const sender = new CoalescingSender(deps.producer, {
    lingerMs: 2,
    maxRecords: 5000,
    observer: health && { acknowledged: (now) => health.acknowledged(now), failed: (now, reason) => health.produceFailed(now, reason) },
  });
  const stats: CollectorStats = { batches: 0, accepted: 0, rejectedEvents: 0, refusedBatches: 0, deadLettered: 0, unverified: {} };
  const cors: express.RequestHandler = (_req, res, next) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'content-type');
    res.setHeader('Access-Control-Max-Age', '600');
    next();
  };
  r.options('/api/v1/telemetry', cors, (_req, res) => void res.status(204).end());

  deps.openapi.add({
    method: 'post', path: '/api/v1/telemetry', summary: 'Telemetry batch from the injected library or any client (partial acceptance)', auth: 'none', tags: ['device'],
    body: batchSchema as unknown as z.ZodType,
    responses: { 202: 'Accepted events are durable in Kafka (unverified ones too: `verified`, `unverifiedReason`); rejected events listed by index', 400: 'Malformed JSON (dead-lettered)', 413: 'Body too large', 422: 'Envelope invalid or no valid event (dead-lettered)', 429: 'Rate limited', 503: 'Kafka did not acknowledge; retry' },
  });

  const dlq = (reason: string, value: Buffer, code: string): OutRecord => ({
    topic: deps.topics.dlq, key: null, value: deadLetter({ reason, errorCode: code, processor: 'collector', value }),
  });

  r.post(
    '/api/v1/telemetry',
    cors,
    rateLimit(limits.telemetry, limits.identity),
    express.raw({ type: () => true, limit: LIMITS.maxBodyBytes }),
    async (req, res) => {
      stats.batches++;
      const receivedAt = Date.now();
      const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        stats.refusedBatches++;
        stats.deadLettered++;
        await deps.producer.send([dlq(`malformed telemetry JSON: ${(err as Error).message}`, raw, 'malformed-json')]);
        throw new PenumbraError('malformed-json', `Body is not valid JSON: ${(err as Error).message}`, { status: 400, issues: [{ path: '', message: 'malformed JSON' }] });
      }
      const v = validateBatch(body, receivedAt, (b) => attributeBatch(b, deps.keys, deps.now?.() ?? receivedAt, deps.profile(b.itemId), deps.pinned?.(b.itemId, b.userId) ?? false));
      if (!v.ok) {
        stats.refusedBatches++;
        stats.deadLettered++;
        await deps.producer.send([dlq(`telemetry batch refused: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, raw, 'validation')]);
        throw new ValidationError('telemetry batch envelope is invalid', v.issues);
      }
      const { events, rejected } = v.result;
      const out: OutRecord[] = events.map((e) => ({ topic: deps.topics.telemetryRaw, key: e.sessionId, value: e }));
      const evs = (body as { events: unknown[] }).events;
      for (const x of rejected) {
        out.push(dlq(`telemetry event ${x.index} refused: ${x.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, Buffer.from(JSON.stringify({ batch: { ...(body as object), events: undefined }, event: evs[x.index] })), 'validation'));
      }
      await sender.send(out); // throws UnavailableError → 503, nothing acknowledged
      stats.accepted += events.length;
      const att = v.result.attribution;
      if (!att.verified && events.length > 0) stats.unverified[att.unverifiedReason!] = (stats.unverified[att.unverifiedReason!] ?? 0) + events.length;
      stats.rejectedEvents += rejected.length;
      stats.deadLettered += rejected.length;
      if (events.length === 0) {
        throw new ValidationError('no valid event in the batch', rejected.flatMap((x) => x.issues));
      }
      res.status(202).json({
        accepted: events.length, rejected: rejected.map((x) => ({ index: x.index, id: x.id, errors: x.issues })), skewCorrectedMs: v.result.skewMs,
        verified: att.verified, ...(att.verified ? {} : { unverifiedReason: att.unverifiedReason }),
      });
    },
  );
  // Every 503 this route answers (nothing of the batch is durable) counts against its health;
  // the error goes on to the one problem+json handler.
  r.use('/api/v1/telemetry', ((err, _req, _res, next) => {
    if (health && err instanceof PenumbraError && err.status === 503) health.answered503(Date.now(), err.message);
    next(err);
  }) as express.ErrorRequestHandler);
  return { router: r, stats, sender };
}

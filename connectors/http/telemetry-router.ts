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
 *
 * Two entrances, one behaviour (issue 15 item 2): the Express route below, and a raw node:http
 * fast path (`fastPath`) that the API listener tries first. Express's router walk and middleware
 * were a visible share of the collector's CPU; the fast path answers the common request — POST
 * of exactly /api/v1/telemetry, identity encoding, no Authorization header, a declared length
 * within the limit, a token left in the client's bucket — with the same handler (`collect`), the
 * same headers in the same order and the same 202 body. Everything else falls through to Express
 * before the body is touched. Every error the fast path meets after it took the request (413 of
 * an undeclared body, malformed JSON, refused batch, 503, aborted upload) is handed to the
 * Express app with the error attached (`FAST_ERROR`), whose route skips straight to its error
 * handlers: the problem+json, security headers, request id and 503 health count are Express's
 * own. fast-path.test.ts compares the two entrances byte for byte.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { Router } from 'express';
import { z } from 'zod';
import type { TopicNames } from '../../pipeline/config/config.ts';
import { itemPartition } from '../../pipeline/telemetry/item-partition.ts';
import { CoalescingSender, type AvroProducer, type OutRecord } from '../../pipeline/kafka/client.ts';
import { deadLetter } from '../../pipeline/kafka/dlq.ts';
import { validateBatch, LIMITS, batchSchema } from '../../pipeline/telemetry/batch.ts';
import { attributeBatch } from '../../pipeline/telemetry/attribution.ts';
import type { KeyRing } from '../../pipeline/assignment-token/token.ts';
import type { ShadowProfile } from '../../pipeline/domain/types.ts';
import { PenumbraError, ValidationError } from '../../pipeline/errors.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { rateLimit, defaultDeviceLimits, keyOf, type DeviceLimits } from './rate-limit.ts';
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
  /**
   * Partitions of telemetry.raw: each event goes to partition itemPartition(itemId, n) — the one
   * its item has on telemetry.by-item — while its key stays the session id, so the metrics
   * processor windows it straight from telemetry.raw without the repartition hop
   * (pipeline/telemetry/README.md "Scaling"). Unset: partitioned by key (session), every event
   * takes the hop.
   */
  rawPartitions?: number;
  now?: () => number;
}

/** body-parser's error shapes, which the problem handler maps (413 payload-too-large, 400). */
const bodyError = (status: number, type: string, message: string): Error => Object.assign(new Error(message), { status, statusCode: status, type, expose: true });

/**
 * The request body as one Buffer (`req.body`), at most `limit` bytes (else 413, the rest of the
 * body drained). Why not express.raw: body-parser's per-request machinery (type checks, charset,
 * raw-body's bookkeeping) was a visible share of the collector's profile (issue 15) for what is
 * a plain read here. A compressed body (Content-Encoding other than identity) still goes through
 * express.raw, which inflates it under the same limit.
 */
function readBody(limit: number): express.RequestHandler {
  const inflating = express.raw({ type: () => true, limit });
  return (req, res, next) => {
    const enc = req.headers['content-encoding'];
    if (enc !== undefined && enc.toLowerCase() !== 'identity') return inflating(req, res, next);
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      req.removeAllListeners('data');
      req.resume(); // drain, so a keep-alive connection stays usable
      next(err);
    };
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return fail(bodyError(413, 'entity.too.large', 'request entity too large'));
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (c: Buffer) => {
      length += c.length;
      if (length > limit) return fail(bodyError(413, 'entity.too.large', 'request entity too large'));
      chunks.push(c);
    });
    req.once('end', () => {
      if (failed) return;
      req.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
      next();
    });
    req.once('aborted', () => fail(bodyError(400, 'request.aborted', 'request aborted')));
    req.once('error', (err) => fail(err));
  };
}

/** Set on a request the fast path took and then failed: the Express route answers this error. */
const FAST_ERROR = Symbol('penumbra.telemetry.fastError');
type Deferred = IncomingMessage & { [FAST_ERROR]?: unknown };

const PATH = '/api/v1/telemetry';
/** The request-id rule of createApi: a client's id is echoed when it looks like one. */
const REQUEST_ID = /^[A-Za-z0-9._-]{8,80}$/;

/** The collector's raw fast path: true when it took the request (see the file comment). */
export type TelemetryFastPath = (req: IncomingMessage, res: ServerResponse, express: (req: IncomingMessage, res: ServerResponse) => void) => boolean;

export function createTelemetryRouter(deps: TelemetryRouterDeps): { router: Router; stats: CollectorStats; sender: CoalescingSender; fastPath: TelemetryFastPath } {
  const r = Router();
  const limits = deps.limits ?? defaultDeviceLimits();
  const rawPartitions = deps.rawPartitions && deps.rawPartitions > 0 ? deps.rawPartitions : undefined;
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

  /**
   * The batch, from its bytes to the 202 body: parse, validate and attribute, dead-letter what is
   * refused, produce and wait for the ack. Throws the PenumbraError the problem handler answers.
   * Shared by the Express route and the fast path, so both do exactly the same.
   */
  const collect = async (raw: Buffer): Promise<string> => {
    stats.batches++;
    const receivedAt = Date.now();
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
    // Key: the session (data engineers read telemetry.raw by session); partition: the item's.
    const out: OutRecord[] = rawPartitions ? events.map((e) => ({ topic: deps.topics.telemetryRaw, key: e.sessionId, value: e, partition: itemPartition(e.itemId, rawPartitions) })) : events.map((e) => ({ topic: deps.topics.telemetryRaw, key: e.sessionId, value: e }));
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
    return JSON.stringify({
      accepted: events.length, rejected: rejected.map((x) => ({ index: x.index, id: x.id, errors: x.issues })), skewCorrectedMs: v.result.skewMs,
      verified: att.verified, ...(att.verified ? {} : { unverifiedReason: att.unverifiedReason }),
    });
  };

  r.post(
    '/api/v1/telemetry',
    cors,
    // A request the fast path took and failed: its error, answered by the handlers below.
    (req, _res, next) => next((req as Deferred)[FAST_ERROR]),
    rateLimit(limits.telemetry, limits.identity),
    readBody(LIMITS.maxBodyBytes),
    async (req, res) => {
      const answer = await collect(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
      // Written directly: res.json would hash every answer for an ETag nobody revalidates.
      res.statusCode = 202;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(answer));
      res.end(answer);
    },
  );
  // Every 503 this route answers (nothing of the batch is durable) counts against its health;
  // the error goes on to the one problem+json handler.
  r.use('/api/v1/telemetry', ((err, _req, _res, next) => {
    if (health && err instanceof PenumbraError && err.status === 503) health.answered503(Date.now(), err.message);
    next(err);
  }) as express.ErrorRequestHandler);

  const maxBody = LIMITS.maxBodyBytes;
  const buckets = limits.telemetry;
  const fastPath: TelemetryFastPath = (req, res, expressApp) => {
    if (req.method !== 'POST' || req.url !== PATH) return false;
    const h = req.headers;
    const enc = h['content-encoding'];
    // Inflation, service callers (isService) and over-long declared bodies: Express's business.
    if ((enc !== undefined && enc.toLowerCase() !== 'identity') || h.authorization !== undefined) return false;
    if (Number(h['content-length']) > maxBody) return false;
    // The Express route's own bucket: an empty one falls through, and Express answers the 429
    // from it (taking from an empty bucket changes nothing).
    if (buckets.spec.perSecond > 0 && buckets.take(keyOf(req, limits.identity)) > 0) return false;

    const incoming = h['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    let settled = false; // answered, or handed to Express: later events change nothing
    const defer = (err: unknown) => {
      if (settled) return;
      settled = true;
      (req as Deferred)[FAST_ERROR] = err;
      expressApp(req, res);
    };
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (c: Buffer) => {
      length += c.length;
      if (length > maxBody) {
        req.removeListener('data', onData);
        req.resume(); // drain, so a keep-alive connection stays usable
        defer(bodyError(413, 'entity.too.large', 'request entity too large'));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (settled) return;
      const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
      collect(raw).then((answer) => {
        if (settled) return;
        settled = true;
        // createApi's security headers and request id, then the route's CORS, then the body's
        // (the order Express writes them in).
        res.writeHead(202, {
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
          'X-Frame-Options': 'SAMEORIGIN',
          'X-Request-Id': requestId,
          'Access-Control-Allow-Origin': '*',
          'Access-Control-Allow-Methods': 'POST, OPTIONS',
          'Access-Control-Allow-Headers': 'content-type',
          'Access-Control-Max-Age': '600',
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(answer),
        });
        res.end(answer);
      }, defer);
    });
    req.once('aborted', () => defer(bodyError(400, 'request.aborted', 'request aborted')));
    req.once('error', defer);
    return true;
  };
  return { router: r, stats, sender, fastPath };
}

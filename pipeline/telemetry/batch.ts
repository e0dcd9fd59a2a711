/**
 * Telemetry batch validation (pure): the JSON the injected library (or any client) POSTs, turned
 * into TelemetryEvent records.
 *
 * Policy — partial acceptance: a batch whose envelope (identity fields) is invalid is refused
 * whole (422); otherwise every valid event is accepted and each invalid event is reported back
 * by index with its field paths (and dead-lettered by the collector). Rationale: one bad event
 * from a buggy page must not cost the other 49 events of its batch, and the client learns which.
 *
 * Clock skew: device clocks drift. skew = receivedAt − sentAt; when |skew| > 2 s we shift every
 * event ts by it (the device's own clock is consistent within a batch). After correction an
 * event more than 5 min in the future or 24 h in the past is refused.
 *
 * Attribution: the envelope's `token` (the signed assignment token from resolve/launch) and
 * `controlOf` are checked by `attribute` (attribution.ts) once per batch; its verdict is stamped
 * on every event. A bad or missing token never refuses anything: the events are stored unverified.
 */
import { z } from 'zod';
import type { FieldIssue } from '../errors.ts';
import type { TelemetryEvent } from '../../schemas/types.generated.ts';
import type { Attribution, BatchIdentity } from './attribution.ts';

export const LIMITS = {
  maxEvents: 500,
  maxBodyBytes: 512 * 1024,
  maxName: 200,
  maxAttrs: 32,
  maxAttrValue: 2000,
  futureMs: 5 * 60 * 1000,
  pastMs: 24 * 60 * 60 * 1000,
  skewCorrectMs: 2000,
} as const;

const idStr = z.string().min(1).max(128);
export const envelopeSchema = z.object({
  itemId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
  version: z.string().min(1).max(64),
  variant: z.string().min(1).max(64),
  profileVersion: z.number().int().min(0),
  sessionId: idStr,
  userId: idStr,
  sentAt: z.number().int().positive(),
  // For variant control: the shadow whose control cohort the session is in (the token says it too).
  controlOf: z.string().min(1).max(64).nullable().optional(),
  // The assignment token from resolve / launch. Any value is accepted here — a missing, odd or
  // forged token makes the events unverified, never refused (attribution.ts).
  token: z.unknown().optional().describe('Signed assignment token from GET /api/v1/resolve (or penumbra_token of /launch); without a valid one the events are stored unverified'),
  events: z.array(z.unknown()).min(1).max(LIMITS.maxEvents),
});

export const eventSchema = z.object({
  id: idStr,
  type: z.enum(['perf', 'request', 'error', 'usage', 'session']),
  name: z.string().min(1).max(LIMITS.maxName),
  ts: z.number().int().positive(),
  value: z.number().finite().nullable().optional(),
  attrs: z
    .record(z.string().max(64), z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v)))
    .refine((a) => Object.keys(a).length <= LIMITS.maxAttrs, `at most ${LIMITS.maxAttrs} attributes`)
    .optional(),
});

export const batchSchema = envelopeSchema.extend({ events: z.array(eventSchema).min(1).max(LIMITS.maxEvents) });

export interface BatchResult {
  events: TelemetryEvent[];
  rejected: { index: number; id: string | null; issues: FieldIssue[] }[];
  skewMs: number;
}

function issuesOf(err: z.ZodError, root: string): FieldIssue[] {
  return err.issues.map((i) => ({ path: [root, ...i.path.map(String)].filter(Boolean).join('/'), message: i.message }));
}

const EVENT_TYPES: ReadonlySet<string> = new Set(['perf', 'request', 'error', 'usage', 'session']);
type ParsedEvent = z.output<typeof eventSchema>;

/**
 * The parse of an event that is plainly valid, without zod — or undefined, and then zod decides
 * (and words the issues). Why: zod's per-event parse was the collector's largest cost of its own
 * in the issue-15 profile (a batch is up to 500 events; the envelope is still parsed by zod once).
 * Conservative by construction: it accepts only what `eventSchema` accepts and returns what zod
 * would return (unknown keys dropped, attribute values through String()); anything unusual
 * (an attribute named __proto__, non-safe integers, …) falls through to zod. Golden cases in
 * batch.test.ts compare the two on valid and invalid events.
 */
export function fastEvent(raw: unknown): ParsedEvent | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const e = raw as Record<string, unknown>;
  const { id, type, name, ts, value, attrs } = e;
  if (typeof id !== 'string' || id.length < 1 || id.length > 128) return undefined;
  if (typeof type !== 'string' || !EVENT_TYPES.has(type)) return undefined;
  if (typeof name !== 'string' || name.length < 1 || name.length > LIMITS.maxName) return undefined;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts <= 0) return undefined;
  if (value !== undefined && value !== null && !(typeof value === 'number' && Number.isFinite(value))) return undefined;
  const out: ParsedEvent = { id, type: type as ParsedEvent['type'], name, ts };
  if ('value' in e) out.value = value as number | null | undefined;
  if (attrs !== undefined) {
    if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs) || Object.getPrototypeOf(attrs) !== Object.prototype) return undefined;
    const a: Record<string, string> = {};
    let n = 0;
    for (const k in attrs) {
      if (!Object.hasOwn(attrs, k)) continue;
      const v = (attrs as Record<string, unknown>)[k];
      if (k.length > 64 || k === '__proto__' || ++n > LIMITS.maxAttrs) return undefined;
      if (typeof v === 'string') a[k] = v;
      else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') a[k] = String(v); // z.number() refuses ±Infinity, NaN
      else return undefined;
    }
    out.attrs = a;
  }
  return out;
}

/** Before attribution ran (unit tests, tools): unverified, token missing. */
const UNATTRIBUTED: Attribution = { verified: false, unverifiedReason: 'missing', controlOf: null };

/**
 * Envelope issues (whole batch refused) or the accepted/rejected split. `attribute` decides the
 * batch's verified / unverifiedReason / controlOf (the collector passes attributeBatch).
 */
export function validateBatch(
  body: unknown,
  receivedAt: number,
  attribute: (b: BatchIdentity) => Attribution = () => UNATTRIBUTED,
): { ok: false; issues: FieldIssue[] } | { ok: true; result: BatchResult & { attribution: Attribution } } {
  const env = envelopeSchema.safeParse(body);
  if (!env.success) return { ok: false, issues: issuesOf(env.error, '') };
  const b = env.data;
  const attribution = attribute(b);
  const rawSkew = receivedAt - b.sentAt;
  const skewMs = Math.abs(rawSkew) > LIMITS.skewCorrectMs ? rawSkew : 0;
  const events: TelemetryEvent[] = [];
  const rejected: BatchResult['rejected'] = [];
  const seen = new Set<string>();
  b.events.forEach((raw, index) => {
    let e = fastEvent(raw);
    if (e === undefined) {
      const p = eventSchema.safeParse(raw);
      if (!p.success) {
        const rawId = typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : null;
        rejected.push({ index, id: rawId, issues: issuesOf(p.error, `events/${index}`) });
        return;
      }
      e = p.data;
    }
    const ts = e.ts + skewMs;
    const issues: FieldIssue[] = [];
    if (ts > receivedAt + LIMITS.futureMs) issues.push({ path: `events/${index}/ts`, message: 'more than 5 minutes in the future (after clock-skew correction)' });
    if (ts < receivedAt - LIMITS.pastMs) issues.push({ path: `events/${index}/ts`, message: 'more than 24 hours old' });
    if ((e.type === 'perf' || e.type === 'request') && (e.value === undefined || e.value === null || e.value < 0)) {
      issues.push({ path: `events/${index}/value`, message: `${e.type} events need a non-negative value in ms` });
    }
    for (const [k, v] of Object.entries(e.attrs ?? {})) {
      if (v.length > LIMITS.maxAttrValue) issues.push({ path: `events/${index}/attrs/${k}`, message: `longer than ${LIMITS.maxAttrValue} characters` });
    }
    if (seen.has(e.id)) issues.push({ path: `events/${index}/id`, message: 'duplicate id within the batch' });
    if (issues.length) {
      rejected.push({ index, id: e.id, issues });
      return;
    }
    seen.add(e.id);
    events.push({
      id: e.id, itemId: b.itemId, version: b.version, variant: b.variant, profileVersion: b.profileVersion,
      sessionId: b.sessionId, userId: b.userId, type: e.type, name: e.name, ts, value: e.value ?? null,
      attrs: (e.attrs as Record<string, string> | undefined) ?? {}, sentAt: b.sentAt, receivedAt,
      controlOf: attribution.controlOf, verified: attribution.verified, unverifiedReason: attribution.unverifiedReason,
    });
  });
  return { ok: true, result: { events, rejected, skewMs, attribution } };
}

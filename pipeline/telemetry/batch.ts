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
 */
import { z } from 'zod';
import type { FieldIssue } from '../errors.ts';
import type { TelemetryEvent } from '../../schemas/types.generated.ts';

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

/** Envelope issues (whole batch refused) or the accepted/rejected split. */
export function validateBatch(body: unknown, receivedAt: number): { ok: false; issues: FieldIssue[] } | { ok: true; result: BatchResult } {
  const env = envelopeSchema.safeParse(body);
  if (!env.success) return { ok: false, issues: issuesOf(env.error, '') };
  const b = env.data;
  const rawSkew = receivedAt - b.sentAt;
  const skewMs = Math.abs(rawSkew) > LIMITS.skewCorrectMs ? rawSkew : 0;
  const events: TelemetryEvent[] = [];
  const rejected: BatchResult['rejected'] = [];
  const seen = new Set<string>();
  b.events.forEach((raw, index) => {
    const p = eventSchema.safeParse(raw);
    const rawId = typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : null;
    if (!p.success) {
      rejected.push({ index, id: rawId, issues: issuesOf(p.error, `events/${index}`) });
      return;
    }
    const e = p.data;
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
      // Attribution is decided by the collector (assignment token, profile checks); until then unverified.
      controlOf: null, verified: false, unverifiedReason: 'missing',
    });
  });
  return { ok: true, result: { events, rejected, skewMs } };
}

/**
 * The collector's health, from what it actually did: acknowledged produce requests, failed
 * ones, 503s it answered, and the batches waiting for the broker right now. No I/O: the
 * collector (connectors/http/telemetry-router.ts) and its CoalescingSender report events with
 * their time, the health check asks `check(now, pending)`.
 *
 * Degraded when the collector is refusing work (README.md, "When it is degraded"):
 *  - refusing: it answered 503 in the last RECENT_MS and no produce was acknowledged since;
 *  - stalled: a batch has waited more than STALL_MS for the broker's acknowledgement (during a
 *    broker outage kafkajs retries for ~20 s before the first 503; devices wait meanwhile).
 * A 503 followed by acknowledged produces is recovery: ok again, the count stays visible.
 */

/** Counts and the last failure are reported over this window. */
export const RECENT_MS = 60_000;
/** A batch waiting longer than this for the broker's acknowledgement degrades the collector. */
export const STALL_MS = 5_000;

const KINDS = ['acknowledged', 'produceFailures', 'answered503'] as const;
export type Kind = (typeof KINDS)[number];

/**
 * Event counts over the last `windowMs` in one-second buckets: memory bounded by the window,
 * not by the request rate (the collector takes thousands of batches a second).
 */
export class RecentCounts {
  private readonly buckets = new Map<number, Record<Kind, number>>();
  constructor(private readonly windowMs = RECENT_MS) {}

  add(kind: Kind, now: number, n = 1): void {
    const sec = Math.floor(now / 1000);
    let b = this.buckets.get(sec);
    if (!b) {
      this.prune(now);
      this.buckets.set(sec, (b = { acknowledged: 0, produceFailures: 0, answered503: 0 }));
    }
    b[kind] += n;
  }

  totals(now: number): Record<Kind, number> {
    this.prune(now);
    const out = { acknowledged: 0, produceFailures: 0, answered503: 0 };
    for (const b of this.buckets.values()) for (const k of KINDS) out[k] += b[k];
    return out;
  }

  /** Drops the seconds wholly before the window (a bucket the window's start cuts still counts). */
  private prune(now: number): void {
    for (const sec of this.buckets.keys()) if ((sec + 1) * 1000 <= now - this.windowMs) this.buckets.delete(sec);
  }
}

/** Produce requests not yet answered by the broker (CoalescingSender.pending()). */
export interface Pending {
  /** HTTP batches waiting (queued for the linger timer or in a request in flight). */
  batches: number;
  records: number;
  /** When the oldest waiting batch was handed over; null when none waits. */
  oldestAt: number | null;
}

export interface CollectorCheck {
  status: 'ok' | 'degraded';
  detail?: string;
  recent: { seconds: number } & Record<Kind, number>;
  pending: { batches: number; records: number; oldestMs: number };
  lastAcknowledgedAt: string | null;
  lastFailure: { at: string; reason: string } | null;
}

export class CollectorHealth {
  private readonly counts: RecentCounts;
  private lastAck: number | null = null;
  private last503: number | null = null;
  private lastFailure: { at: number; reason: string } | null = null;

  constructor(private readonly opts: { recentMs?: number; stallMs?: number } = {}) {
    this.counts = new RecentCounts(opts.recentMs ?? RECENT_MS);
  }

  /** A produce request was acknowledged (every batch in it answered 202, or its DLQ record is durable). */
  acknowledged(now: number): void {
    this.counts.add('acknowledged', now);
    this.lastAck = Math.max(this.lastAck ?? now, now);
  }

  /** A produce request failed: every batch in it answers 503. */
  produceFailed(now: number, reason: string): void {
    this.counts.add('produceFailures', now);
    this.lastFailure = { at: now, reason };
  }

  /** The collector answered 503 to a device (its batch is not durable; the device retries). */
  answered503(now: number, reason: string): void {
    this.counts.add('answered503', now);
    this.last503 = Math.max(this.last503 ?? now, now);
    if (!this.lastFailure || this.lastFailure.at < now) this.lastFailure = { at: now, reason };
  }

  check(now: number, pending: Pending): CollectorCheck {
    const recentMs = this.opts.recentMs ?? RECENT_MS;
    const stallMs = this.opts.stallMs ?? STALL_MS;
    const recent = this.counts.totals(now);
    const oldestMs = pending.oldestAt === null ? 0 : Math.max(0, now - pending.oldestAt);
    const out: CollectorCheck = {
      status: 'ok',
      recent: { seconds: Math.round(recentMs / 1000), ...recent },
      pending: { batches: pending.batches, records: pending.records, oldestMs },
      lastAcknowledgedAt: this.lastAck === null ? null : new Date(this.lastAck).toISOString(),
      lastFailure: this.lastFailure && now - this.lastFailure.at <= recentMs ? { at: new Date(this.lastFailure.at).toISOString(), reason: this.lastFailure.reason } : null,
    };
    const problems: string[] = [];
    if (this.last503 !== null && now - this.last503 <= recentMs && (this.lastAck === null || this.lastAck < this.last503)) {
      problems.push(`refusing telemetry: ${recent.answered503} batch(es) answered 503 in the last ${out.recent.seconds} s and none acknowledged since` + (out.lastFailure ? ` (${out.lastFailure.reason})` : ''));
    }
    if (oldestMs > stallMs) {
      problems.push(`${pending.batches} batch(es), ${pending.records} record(s) waiting for Kafka's acknowledgement, the oldest for ${(oldestMs / 1000).toFixed(1)} s`);
    }
    if (problems.length > 0) {
      out.status = 'degraded';
      out.detail = problems.join('; ');
    }
    return out;
  }
}

/**
 * Recent metric windows in memory, per item (what GET /api/v1/items/{itemId}/metrics answers for
 * the live range). Fed by a follower of penumbra.telemetry.metrics in every API process; a window
 * re-emitted by the processor (restart replay) replaces the earlier copy, like the warehouse
 * upsert. Windows that ended more than `retentionMs` (2 h) ago are dropped; older ranges come
 * from the warehouse Parquet snapshots.
 */
import { windowKey, type MetricWindowRecord } from './metric-record.ts';

export const DEFAULT_METRICS_RETENTION_MS = 2 * 60 * 60 * 1000;

export class MetricsStore {
  private readonly byItem = new Map<string, Map<string, MetricWindowRecord>>();
  private lastPrune = 0;
  applied = 0;

  constructor(
    readonly retentionMs = DEFAULT_METRICS_RETENTION_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Oldest window end the store keeps (older ones are in the warehouse only). */
  horizon(): number {
    return this.now() - this.retentionMs;
  }

  apply(r: MetricWindowRecord): void {
    const now = this.now();
    if (r.windowEnd < now - this.retentionMs) return;
    this.applied++;
    let m = this.byItem.get(r.itemId);
    if (!m) this.byItem.set(r.itemId, (m = new Map()));
    const k = windowKey(r);
    const prev = m.get(k);
    // A provisional or older copy never replaces a later emission.
    if (!prev || prev.emittedAt <= r.emittedAt) m.set(k, r);
    if (now - this.lastPrune > 60_000) this.prune(now);
  }

  /**
   * Windows of one item and size with windowStart in [from, to), ordered by start then variant.
   * Only windows inside the retention (ending at or after `horizon()`) — older ones are the
   * warehouse's, even if not pruned yet.
   */
  query(itemId: string, windowSize: number, from: number, to: number): MetricWindowRecord[] {
    const m = this.byItem.get(itemId);
    if (!m) return [];
    const limit = this.horizon();
    const out: MetricWindowRecord[] = [];
    for (const r of m.values()) if (r.windowSize === windowSize && r.windowStart >= from && r.windowStart < to && r.windowEnd >= limit) out.push(r);
    return out.sort((a, b) => a.windowStart - b.windowStart || (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0));
  }

  prune(now = this.now()): void {
    this.lastPrune = now;
    const limit = now - this.retentionMs;
    for (const [item, m] of this.byItem) {
      for (const [k, r] of m) if (r.windowEnd < limit) m.delete(k);
      if (m.size === 0) this.byItem.delete(item);
    }
  }

  get items(): number {
    return this.byItem.size;
  }
}

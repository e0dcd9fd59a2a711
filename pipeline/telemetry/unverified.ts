/**
 * Counts of UNVERIFIED telemetry per item × variant × reason (pure state). Such events — no
 * assignment token, an expired or forged one, one that disagrees with the batch — are stored
 * (telemetry.raw, the warehouse) but never enter windows, comparisons, alerts or guardrails
 * (`countsInComparisons`); these counts are how an operator sees them: in the item metrics API
 * (`unverified`), in Prometheus (`penumbra_telemetry_unverified_events_total`) and on the
 * dashboard.
 *
 * Bounded on purpose: item and variant of an unverified event are whatever the sender claimed,
 * so a forger could invent endless names. At most `maxKeys` (item, variant, reason) keys are
 * kept; further new keys are added up under item `_other` (and still counted in the totals).
 * A re-delivered event (same id) counts once while its id is among the last `dedupIds` seen.
 *
 * Counts are since this process started (like the other stream counters); the exact history is a
 * query away: `SELECT variant, unverified_reason, count(*) FROM telemetry_events WHERE NOT
 * verified GROUP BY ALL` (docs/warehouse.md).
 */
import type { TelemetryEvent } from '../windows/types.ts';

export const OTHER_ITEM = '_other';
export const DEFAULT_UNVERIFIED_MAX_KEYS = 1000;

export interface UnverifiedItemView {
  total: number;
  /** variant → reason → events. */
  byVariant: Record<string, Record<string, number>>;
}

export interface UnverifiedSeries {
  item: string;
  variant: string;
  reason: string;
  n: number;
}

const SEP = '\u0000';

export class UnverifiedCounts {
  private readonly counts = new Map<string, number>();
  private readonly recent = new Set<string>();
  total = 0;
  byReason: Record<string, number> = {};

  constructor(
    private readonly maxKeys = DEFAULT_UNVERIFIED_MAX_KEYS,
    private readonly dedupIds = 100_000,
  ) {}

  /** Counts one unverified event; false when it was a re-delivery (already counted). */
  add(e: Pick<TelemetryEvent, 'id' | 'itemId' | 'variant' | 'unverifiedReason'>): boolean {
    if (this.recent.has(e.id)) return false;
    this.recent.add(e.id);
    if (this.recent.size > this.dedupIds) this.recent.delete(this.recent.values().next().value as string);
    const reason = e.unverifiedReason ?? 'missing';
    let k = [e.itemId, e.variant, reason].join(SEP);
    if (!this.counts.has(k) && this.counts.size >= this.maxKeys) k = [OTHER_ITEM, OTHER_ITEM, reason].join(SEP);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.total++;
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    return true;
  }

  forItem(itemId: string): UnverifiedItemView {
    const byVariant: Record<string, Record<string, number>> = {};
    let total = 0;
    for (const [k, n] of this.counts) {
      const [item, variant, reason] = k.split(SEP);
      if (item !== itemId) continue;
      // Own properties only: a claimed variant named "__proto__" stays data.
      if (!Object.hasOwn(byVariant, variant)) Object.defineProperty(byVariant, variant, { value: {}, enumerable: true, writable: true, configurable: true });
      const r = byVariant[variant];
      Object.defineProperty(r, reason, { value: (Object.hasOwn(r, reason) ? r[reason] : 0) + n, enumerable: true, writable: true, configurable: true });
      total += n;
    }
    return { total, byVariant };
  }

  /** One series per kept key (Prometheus). */
  series(): UnverifiedSeries[] {
    return [...this.counts].map(([k, n]) => {
      const [item, variant, reason] = k.split(SEP);
      return { item, variant, reason, n };
    });
  }
}

/**
 * Pure core of the comparisons topic (README.md): the metrics member that owns an item turns its
 * latest ComparisonViews into one `item-comparisons` record (schemas/avro/item-comparisons.v2.avsc)
 * — typed evidence per metric (n, successes, values, difference, always-valid interval, p,
 * decision) for readers outside Penumbra, and the complete view as JSON so that an API process
 * answers exactly what the owner answers — and every other process turns the record back into
 * the views (`viewsFromRecord`) and keeps the newest per item (`FollowedComparisons`), with how
 * fresh it is. v2 also carries the owner's unverified counts and join counters, and `publishedAt`:
 * `PublishSchedule` decides when the owner publishes besides a recomputation (counts changed, at
 * most once per `minIntervalMs` per item; a keep-alive every `refreshMs`), so that followers can
 * tell a stale record (`staleAfterMs`, default 3 × refreshMs) from a quiet item. No I/O here.
 */
import type { ComparisonView } from '../telemetry/comparisons.ts';
import type { MeanComparison, RateComparison } from '../stats/compare.ts';
import type { ItemComparisons, ItemJoinCounters, ItemUnverifiedCounts, MetricEvidence, ShadowComparison } from '../../schemas/types.generated.ts';
import type { UnverifiedItemView } from '../telemetry/unverified.ts';
import type { JoinCounters } from '../telemetry/assignment-index.ts';

/** The owner's keep-alive period (PENUMBRA_COMPARISONS_REFRESH_MS): one 10 s window. */
export const DEFAULT_REFRESH_MS = 10_000;

const mean = (metric: string, c: MeanComparison): MetricEvidence => ({
  metric, kind: 'mean', valid: c.valid, shadowN: c.shadow.n, controlN: c.control.n, shadowX: null, controlX: null,
  shadowValue: c.shadow.mean, controlValue: c.control.mean, diff: c.diff, relative: c.relativeDiff,
  ciLow: c.ci[0], ciHigh: c.ci[1], p: c.p, significant: c.significant, verdict: c.verdict,
});

const rate = (metric: string, c: RateComparison): MetricEvidence => ({
  metric, kind: 'rate', valid: c.valid, shadowN: c.shadow.n, controlN: c.control.n, shadowX: c.shadow.x, controlX: c.control.x,
  shadowValue: c.shadow.rate, controlValue: c.control.rate, diff: c.diff, relative: c.relativeLift,
  ciLow: c.ci[0], ciHigh: c.ci[1], p: c.p, significant: c.significant, verdict: c.verdict,
});

const byName = <T>(o: Record<string, T>): [string, T][] => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** The typed evidence of one view: latency, errorRate, then conversion:<point> and perf:<name> by name. */
export function evidenceOf(v: ComparisonView): MetricEvidence[] {
  if (!v.hasBaseline) return [];
  const out: MetricEvidence[] = [];
  if (v.latency) out.push(mean('latency', v.latency));
  if (v.errorRate) out.push(rate('errorRate', v.errorRate));
  for (const [pt, c] of byName(v.conversions)) out.push(rate(`conversion:${pt}`, c));
  for (const [name, c] of byName(v.perf)) out.push(mean(`perf:${name}`, c));
  return out;
}

export function shadowRecord(v: ComparisonView): ShadowComparison {
  return {
    shadow: v.shadow, baseline: v.baseline, hasBaseline: v.hasBaseline, noBaselineReason: v.noBaseline?.reason ?? null,
    sessionsShadow: v.sessions.shadow, sessionsControl: v.sessions.control,
    profileVersionShadow: v.profileVersion.shadow, profileVersionControl: v.profileVersion.control,
    method: v.method.kind, alpha: v.method.alpha, tuning: v.method.tuning,
    metrics: evidenceOf(v), srmP: v.srm ? v.srm.p : null, srmFlagged: v.srm?.flagged ?? false, sentence: v.sentence,
    // What the route answers: JSON (NaN/∞ → null, as res.json would write them).
    viewJson: JSON.stringify(v),
  };
}

export interface RecordMeta {
  computedAt: number;
  member: string;
  profileVersion: number | null;
  /** When published (default computedAt: a recomputation published at once). */
  publishedAt?: number;
  unverified?: UnverifiedItemView | null;
  join?: JoinCounters | null;
}

/** The record the owner publishes for an item (key: itemId). */
export function comparisonsRecord(itemId: string, views: ComparisonView[], meta: RecordMeta): ItemComparisons {
  const shadows = [...views].sort((a, b) => (a.shadow < b.shadow ? -1 : a.shadow > b.shadow ? 1 : 0)).map(shadowRecord);
  const unverified: ItemUnverifiedCounts | null = meta.unverified ? { total: meta.unverified.total, byVariant: meta.unverified.byVariant } : null;
  const join: ItemJoinCounters | null = meta.join ? { matched: meta.join.matched, mismatched: meta.join.mismatched, unassigned: meta.join.unassigned } : null;
  return { itemId, computedAt: meta.computedAt, member: meta.member, profileVersion: meta.profileVersion, publishedAt: meta.publishedAt ?? meta.computedAt, unverified, join, shadows };
}

/** The views of a record, by shadow — what GET …/metrics answers as `comparisons`. */
export function viewsFromRecord(r: ItemComparisons): Record<string, ComparisonView> {
  const out: Record<string, ComparisonView> = {};
  for (const s of r.shadows) out[s.shadow] = JSON.parse(s.viewJson) as ComparisonView;
  return out;
}

/** How fresh an item's followed comparisons are (the route's `comparisonsFreshness`). */
export interface ComparisonsFreshness {
  /** When the owner computed them (its clock), epoch ms. */
  computedAt: number;
  /** When the owner published the newest record (its clock): a recomputation, a counts update or a keep-alive. */
  publishedAt: number;
  /** When this process received the record (its clock), epoch ms. */
  receivedAt: number;
  /** now − computedAt: how old the newest comparison is (grows while the item gets no telemetry: nothing to recompute). */
  ageMs: number;
  /** receivedAt − publishedAt: the topic's transit (owner → Kafka → this process), clocks permitting. */
  transitMs: number;
  /** Host and pid of the member that computed them. */
  member: string;
  /**
   * now − publishedAt > staleAfterMs: no record (not even the owner's keep-alive) reached this
   * process within the bound — the owner is down, behind or cut off, or (a v1 owner) the item is
   * quiet. The numbers are the last known, not current.
   */
  stale: boolean;
  /** The bound (PENUMBRA_COMPARISONS_STALE_MS, default 3 × the owner's refresh period). */
  staleAfterMs: number;
}

/** What a followed record changed (to publish live on processes that do not own the item). */
export interface Applied {
  /** The views held now. */
  views: Record<string, ComparisonView>;
  /** The comparisons were recomputed (a newer computedAt): publish `comparison` events. */
  recomputed: boolean;
  /** The unverified counts differ from those held: publish an `unverified` event. */
  unverifiedChanged: boolean;
}

interface Followed {
  views: Record<string, ComparisonView>;
  computedAt: number;
  publishedAt: number;
  receivedAt: number;
  member: string;
  unverified: UnverifiedItemView | null;
  join: JoinCounters | null;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The newest record per item as followed from the topic. A record older than the one held (by
 * publishedAt, computedAt for v1: a former owner's late write after a rebalance) does not replace
 * it; a record with neither shadows nor counts clears the item (v1's "nothing to compare"), a
 * tombstone (`remove`) forgets it. Bounded by `maxItems` (least recently written dropped).
 */
export class FollowedComparisons {
  private readonly items = new Map<string, Followed>();
  constructor(
    readonly maxItems = 100_000,
    readonly staleAfterMs = 3 * DEFAULT_REFRESH_MS,
  ) {}

  /** Applies a record; returns what changed when it replaced what was held, else null. */
  apply(r: ItemComparisons, receivedAt: number): Applied | null {
    const held = this.items.get(r.itemId);
    const publishedAt = r.publishedAt ?? r.computedAt;
    if (held && held.publishedAt > publishedAt) return null;
    this.items.delete(r.itemId);
    if (r.shadows.length === 0 && !r.unverified && !r.join) return { views: {}, recomputed: true, unverifiedChanged: held?.unverified != null };
    const views = held && held.computedAt === r.computedAt && held.member === r.member ? held.views : viewsFromRecord(r);
    const unverified = r.unverified ? { total: r.unverified.total, byVariant: r.unverified.byVariant } : null;
    this.items.set(r.itemId, { views, computedAt: r.computedAt, publishedAt, receivedAt, member: r.member, unverified, join: r.join ? { ...r.join } : null });
    if (this.items.size > this.maxItems) this.items.delete(this.items.keys().next().value!);
    return { views, recomputed: !held || held.computedAt !== r.computedAt || held.member !== r.member, unverifiedChanged: unverified !== null && !sameJson(unverified, held?.unverified ?? null) };
  }

  /** A tombstone (null value) for the item: the owner deleted it. True when something was held. */
  remove(itemId: string): boolean {
    return this.items.delete(itemId);
  }

  has(itemId: string): boolean {
    return this.items.has(itemId);
  }

  views(itemId: string): Record<string, ComparisonView> {
    return { ...(this.items.get(itemId)?.views ?? {}) };
  }

  /** The owner's unverified counts (null: no record, or a v1 record). */
  unverified(itemId: string): UnverifiedItemView | null {
    return this.items.get(itemId)?.unverified ?? null;
  }

  /** The owner's join counters (null: no record, or a v1 record). */
  join(itemId: string): JoinCounters | null {
    const j = this.items.get(itemId)?.join;
    return j ? { ...j } : null;
  }

  freshness(itemId: string, now: number): ComparisonsFreshness | null {
    const f = this.items.get(itemId);
    if (!f) return null;
    return {
      computedAt: f.computedAt, publishedAt: f.publishedAt, receivedAt: f.receivedAt, ageMs: Math.max(0, now - f.computedAt), transitMs: f.receivedAt - f.publishedAt,
      member: f.member, stale: now - f.publishedAt > this.staleAfterMs, staleAfterMs: this.staleAfterMs,
    };
  }

  get size(): number {
    return this.items.size;
  }
}

/** What the owner knows of an item it published (to republish it without a recomputation). */
export interface Scheduled {
  itemId: string;
  computedAt: number;
  profileVersion: number | null;
  /** Why: its counts changed, or the keep-alive is due. */
  reason: 'counts' | 'refresh';
}

/**
 * When the owning member publishes an item's record besides a recomputation (pure; the feature
 * calls `due` once a second):
 * - its unverified counts or join counters changed: at most once per `minIntervalMs` per item
 *   (a flood of unverified events is one record a second, not one per event); items are
 *   marked only when they have a profile (the caller's guard: item ids in telemetry are
 *   anonymous input and must not fill the compacted topic);
 * - a keep-alive every `refreshMs` for every item it published and still owns (the same
 *   comparisons and counts, a new publishedAt), so a follower can tell a dead or cut-off owner
 *   (`stale`) from a quiet item. Cost: one record per owned item per refreshMs.
 * An item the member no longer owns (`owns` false: a rebalance moved it) is forgotten. At most
 * `maxItems` items (least recently published dropped: they stop getting keep-alives).
 */
export class PublishSchedule {
  private readonly last = new Map<string, { publishedAt: number; computedAt: number; profileVersion: number | null }>();
  private readonly dirty = new Set<string>();
  constructor(readonly opts: { minIntervalMs: number; refreshMs: number; maxItems?: number } = { minIntervalMs: 1000, refreshMs: DEFAULT_REFRESH_MS }) {}

  /** A recomputation was published now. */
  recomputed(itemId: string, computedAt: number, profileVersion: number | null): void {
    this.published(itemId, computedAt, computedAt, profileVersion);
    this.dirty.delete(itemId);
  }

  countsChanged(itemId: string): void {
    this.dirty.add(itemId);
  }

  /** Items to publish now; the caller publishes them and calls `published`. */
  due(now: number, owns: (itemId: string) => boolean): Scheduled[] {
    const out: Scheduled[] = [];
    for (const itemId of [...this.dirty]) {
      if (!owns(itemId)) {
        this.dirty.delete(itemId);
        continue;
      }
      const l = this.last.get(itemId);
      if (l && now - l.publishedAt < this.opts.minIntervalMs) continue;
      this.dirty.delete(itemId);
      // Counts before any comparison: the record's computedAt is its publication (no shadows).
      out.push({ itemId, computedAt: l?.computedAt ?? now, profileVersion: l?.profileVersion ?? null, reason: 'counts' });
    }
    const counted = new Set(out.map((s) => s.itemId));
    for (const [itemId, l] of [...this.last]) {
      if (!owns(itemId)) {
        this.last.delete(itemId);
        continue;
      }
      if (!counted.has(itemId) && now - l.publishedAt >= this.opts.refreshMs) out.push({ itemId, computedAt: l.computedAt, profileVersion: l.profileVersion, reason: 'refresh' });
    }
    return out;
  }

  published(itemId: string, publishedAt: number, computedAt: number, profileVersion: number | null): void {
    this.last.delete(itemId);
    this.last.set(itemId, { publishedAt, computedAt, profileVersion });
    const max = this.opts.maxItems ?? 100_000;
    if (this.last.size > max) this.last.delete(this.last.keys().next().value!);
  }

  /** The item was deleted: no more records for it (the caller writes the tombstone). */
  forget(itemId: string): void {
    this.last.delete(itemId);
    this.dirty.delete(itemId);
  }

  get size(): number {
    return this.last.size;
  }
}

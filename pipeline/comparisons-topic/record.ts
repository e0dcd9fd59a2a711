/**
 * Pure core of the comparisons topic (README.md): the metrics member that owns an item turns its
 * latest ComparisonViews into one `item-comparisons` record (schemas/avro/item-comparisons.v1.avsc)
 * — typed evidence per metric (n, successes, values, difference, always-valid interval, p,
 * decision) for readers outside Penumbra, and the complete view as JSON so that an API process
 * answers exactly what the owner answers — and every other process turns the record back into
 * the views (`viewsFromRecord`) and keeps the newest per item (`FollowedComparisons`), with how
 * fresh it is. No I/O here.
 */
import type { ComparisonView } from '../telemetry/comparisons.ts';
import type { MeanComparison, RateComparison } from '../stats/compare.ts';
import type { ItemComparisons, MetricEvidence, ShadowComparison } from '../../schemas/types.generated.ts';

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

/** The record the owner publishes for an item (key: itemId). */
export function comparisonsRecord(itemId: string, views: ComparisonView[], meta: { computedAt: number; member: string; profileVersion: number | null }): ItemComparisons {
  const shadows = [...views].sort((a, b) => (a.shadow < b.shadow ? -1 : a.shadow > b.shadow ? 1 : 0)).map(shadowRecord);
  return { itemId, computedAt: meta.computedAt, member: meta.member, profileVersion: meta.profileVersion, shadows };
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
  /** When this process received the record (its clock), epoch ms. */
  receivedAt: number;
  /** now − computedAt: how old the newest comparison is (grows while the item gets no telemetry: nothing to recompute). */
  ageMs: number;
  /** receivedAt − computedAt: the topic's transit (owner → Kafka → this process), clocks permitting. */
  transitMs: number;
  /** Host and pid of the member that computed them. */
  member: string;
}

interface Followed {
  views: Record<string, ComparisonView>;
  computedAt: number;
  receivedAt: number;
  member: string;
}

/**
 * The newest comparisons per item as followed from the topic. A record older than the one held
 * (by computedAt: a former owner's late write after a rebalance) does not replace it; a record
 * with no shadows clears the item. Bounded by `maxItems` (least recently written dropped).
 */
export class FollowedComparisons {
  private readonly items = new Map<string, Followed>();
  constructor(readonly maxItems = 100_000) {}

  /** Applies a record; returns the views when they replaced what was held (to publish live), else null. */
  apply(r: ItemComparisons, receivedAt: number): Record<string, ComparisonView> | null {
    const held = this.items.get(r.itemId);
    if (held && held.computedAt > r.computedAt) return null;
    this.items.delete(r.itemId);
    if (r.shadows.length === 0) return {};
    const views = viewsFromRecord(r);
    this.items.set(r.itemId, { views, computedAt: r.computedAt, receivedAt, member: r.member });
    if (this.items.size > this.maxItems) this.items.delete(this.items.keys().next().value!);
    return views;
  }

  has(itemId: string): boolean {
    return this.items.has(itemId);
  }

  views(itemId: string): Record<string, ComparisonView> {
    return { ...(this.items.get(itemId)?.views ?? {}) };
  }

  freshness(itemId: string, now: number): ComparisonsFreshness | null {
    const f = this.items.get(itemId);
    if (!f) return null;
    return { computedAt: f.computedAt, receivedAt: f.receivedAt, ageMs: Math.max(0, now - f.computedAt), transitMs: f.receivedAt - f.computedAt, member: f.member };
  }

  get size(): number {
    return this.items.size;
  }
}

/**
 * Statistics on the live stream: cumulative aggregates per ARM — item × variant, with the
 * reserved variant `control` kept apart per shadow (item × `control` × controlOf) — since the
 * newest profile version the arm's events carry (`addToCumulative` restarts an aggregate when a
 * newer profile version shows up and ignores older stragglers), and each shadow compared with
 * ITS control cohort after every emitted window (`compareVariants`: always-valid sequential
 * intervals for mean latency, perf metrics, error and conversion rates; fixed-horizon numbers
 * beside them), plus a sample-ratio-mismatch check of exposures against the configured split.
 * Only verified events enter an aggregate (`countsInComparisons`); the others are counted apart
 * (unverified.ts).
 *
 * Pure parts (`srmExpectedShares`, `srmCheck`, `comparisonView`, `noBaselineView`) take plain
 * values; the `ComparisonStore` holds the aggregates and the latest comparison per item × shadow.
 *
 * Baseline: for shadow S, the events with variant `control` and controlOf = S (the control cohort
 * the resolver drew for S: same rules, same bucketing, disjoint buckets). No baseline — said in
 * words, no numbers — when S has its control switched off, or no control event arrived yet.
 *
 * SRM definition (docs in pipeline/stats/README.md for the test itself):
 * - observed = distinct bucketed users per variant for the CURRENT profile version, from
 *   penumbra.assignments (AssignmentIndex.exposures); `control` is one count per item (the
 *   assignment record does not say which shadow a control user belongs to);
 * - expected share of shadow s = its `traffic.percentage`; `control` = the sum of the
 *   percentages of the shadows whose control is on (each control cohort is as large as its
 *   shadow); original = the rest. The percentages are shares of the users matching the shadow's
 *   rules (traffic-split README), so the check only runs when every shadow has the same targeting
 *   (match + rules) — otherwise the populations differ and no single split applies
 *   (`srmExpectedShares` → null). Rolled-back profiles are not checked (everyone gets the
 *   original by design).
 * - flagged when p < 0.001 (SRM_P_THRESHOLD) AND at least `minExposures` users were counted:
 *   a continuous check on a handful of users would flag noise and pause rollouts.
 *
 * Restart caveat: the aggregates live in memory and are rebuilt from the telemetry the processor
 * reads after a start (its uncommitted tail), not from the whole profile version; the warehouse
 * has every event for a full recomputation.
 */
import { cumulativeTotals, emptyCumulative, foldIntoCumulative, type CumulativeAggregate, type VariantTotals } from '../windows/cumulative.ts';
import { countsInComparisons } from '../windows/classify.ts';
import { LruMap } from '../bounded/lru.ts';
import type { TelemetryEvent } from '../windows/types.ts';
import { compareVariants, type Comparison, type MeanComparison, type RateComparison } from '../stats/compare.ts';
import { srmChiSquare } from '../stats/hypothesis.ts';
import { DEFAULT_SEQUENTIAL_TUNING, SEQUENTIAL_ALPHA, type SequentialOptions } from '../stats/sequential.ts';
import { CONTROL, ORIGINAL, type ShadowProfile, type ShadowSpec } from '../domain/types.ts';

export const DEFAULT_SRM_MIN_EXPOSURES = 100;

export interface SrmView {
  chi2: number;
  p: number;
  df: number;
  flagged: boolean;
  total: number;
  profileVersion: number;
  observed: Record<string, number>;
  expected: Record<string, number>;
  /** Percent shares the check used. */
  shares: Record<string, number>;
}

export type NoBaselineReason = 'control_off' | 'no_control_data';

/**
 * What the API and SSE carry for one shadow (console `Comparison`); NaN/∞ become null in JSON.
 * With a baseline every metric field is present; without one only the identity, the session
 * counts, `noBaseline` and the sentence.
 */
export interface ComparisonView {
  itemId: string;
  shadow: string;
  /** The baseline arm: always the reserved variant `control` (the control cohort drawn for `shadow`). */
  baseline: typeof CONTROL;
  hasBaseline: boolean;
  /** Why nothing is compared, in words ("no baseline: …"); null when compared. */
  noBaseline: { reason: NoBaselineReason; message: string } | null;
  /** Distinct sessions (verified events) of both arms. */
  sessions: { shadow: number; control: number };
  profileVersion: { shadow: number | null; control: number | null };
  method: Comparison['method'];
  latency?: MeanComparison;
  errorRate?: RateComparison;
  conversions: Record<string, RateComparison>;
  perf: Record<string, MeanComparison>;
  /** Flat verdicts: latency, errorRate, `conversion:<point>` and `perf:<name>`. */
  verdicts: Record<string, string>;
  sentence: string;
  srm: SrmView | null;
  at: number;
}

/**
 * Whether a shadow has its control cohort: on unless its config says `control: false` (absent =
 * on) — the control arm is what makes a real item's comparison possible at all.
 */
export function controlEnabled(shadow: Pick<ShadowSpec, 'name'> & { control?: unknown }): boolean {
  return shadow.control !== false;
}

/** Percent share per variant the profile's traffic config implies, or null when SRM does not apply. */
export function srmExpectedShares(profile: Pick<ShadowProfile, 'state' | 'shadows'> & Partial<Pick<ShadowProfile, 'bandit' | 'banditState'>> | undefined): Record<string, number> | null {
  if (!profile || profile.state !== 'active' || profile.shadows.length === 0) return null;
  // A running bandit re-allocates its population among the arms on purpose: per-arm shares are
  // not the configured ones (pipeline/bandit/README.md).
  if (profile.bandit && profile.banditState && profile.banditState.status !== 'stopped') return null;
  const targeting = (s: ShadowProfile['shadows'][number]) => JSON.stringify({ match: s.traffic.match, rules: s.traffic.rules });
  const first = targeting(profile.shadows[0]);
  if (profile.shadows.some((s) => targeting(s) !== first)) return null;
  const shares: Record<string, number> = {};
  let sum = 0;
  let control = 0;
  for (const s of profile.shadows) {
    // A shadow rolled back on its own owns no buckets (pipeline/rollout); its control cohort neither.
    const pct = s.state === 'rolled_back' ? 0 : s.traffic.percentage;
    shares[s.name] = pct;
    sum += pct;
    if (controlEnabled(s)) control += pct;
  }
  if (control > 0) shares[CONTROL] = control;
  shares[ORIGINAL] = Math.max(0, 100 - sum - control);
  return shares;
}

/** SRM of observed exposures against the profile's split; null when it does not apply. */
export function srmCheck(
  profile: Pick<ShadowProfile, 'state' | 'shadows' | 'profileVersion'> | undefined,
  observed: Record<string, number>,
  minExposures = DEFAULT_SRM_MIN_EXPOSURES,
): SrmView | null {
  const shares = srmExpectedShares(profile);
  if (!shares || !profile) return null;
  const r = srmChiSquare(observed, shares);
  return {
    chi2: r.chiSquare, p: r.p, df: r.df, flagged: r.mismatch && r.total >= minExposures, total: r.total,
    profileVersion: profile.profileVersion, observed: { ...observed }, expected: r.expected, shares,
  };
}

const srmSentence = (srm: SrmView | null): string =>
  srm?.flagged ? ` Sample ratio mismatch: exposures do not match the configured split (p=${srm.p < 0.001 ? '<0.001' : srm.p.toFixed(3)}); treat results with care.` : '';

const methodOf = (opts: SequentialOptions): Comparison['method'] => ({
  kind: 'asymptotic-confidence-sequence', alpha: opts.alpha ?? SEQUENTIAL_ALPHA, tuning: opts.tuning ?? DEFAULT_SEQUENTIAL_TUNING,
});

export function comparisonView(c: Comparison, srm: SrmView | null, control: VariantTotals, shadow: VariantTotals, at: number): ComparisonView {
  const verdicts: Record<string, string> = { latency: c.verdict.latency, errorRate: c.verdict.errorRate };
  for (const [pt, v] of Object.entries(c.verdict.conversions)) verdicts[`conversion:${pt}`] = v;
  for (const [name, v] of Object.entries(c.verdict.perf)) verdicts[`perf:${name}`] = v;
  return {
    itemId: c.itemId,
    shadow: c.shadow,
    baseline: CONTROL,
    hasBaseline: true,
    noBaseline: null,
    sessions: { shadow: shadow.sessions, control: control.sessions },
    profileVersion: { shadow: shadow.profileVersion, control: control.profileVersion },
    method: c.method,
    latency: c.latency,
    errorRate: c.errorRate,
    conversions: c.conversions,
    perf: c.perf,
    verdicts,
    sentence: c.sentence + srmSentence(srm),
    srm,
    at,
  };
}

/** The comparison of a shadow that has no baseline, said in words. */
export function noBaselineView(itemId: string, shadow: string, reason: NoBaselineReason, shadowTotals: VariantTotals | undefined, srm: SrmView | null, at: number, opts: SequentialOptions = {}): ComparisonView {
  const message =
    reason === 'control_off'
      ? `No baseline for ${shadow}: its control arm is switched off, so nothing is compared.`
      : `No baseline for ${shadow} yet: no verified telemetry from its control arm.`;
  return {
    itemId, shadow, baseline: CONTROL, hasBaseline: false, noBaseline: { reason, message },
    sessions: { shadow: shadowTotals?.sessions ?? 0, control: 0 },
    profileVersion: { shadow: shadowTotals?.profileVersion ?? null, control: null },
    method: methodOf(opts), conversions: {}, perf: {}, verdicts: {}, sentence: message + srmSentence(srm), srm, at,
  };
}

const SEP = '\u0000';
const keyOf = (itemId: string, variant: string, controlOf: string | null = null) => `${itemId}${SEP}${variant}${SEP}${controlOf ?? ''}`;

/**
 * Bounded (issue 17 item 4): at most `maxArms` aggregates, the least recently updated evicted
 * first (a shadow arm leaves `shadowsByItem` and its latest comparison goes with it), and at most
 * `maxSessionsPerArm` sessions per aggregate (events of further sessions are left out). Both are
 * counted in `bounds` (processor health → Prometheus).
 */
/** An arm's aggregate with its LRU key and the batch that last refreshed its recency. */
interface ArmSlot {
  key: string;
  agg: CumulativeAggregate;
  epoch: number;
}

/** An item's arms: by variant, and the control arms by the shadow they are the control of ('' = none). */
interface ItemArms {
  arms: Map<string, ArmSlot>;
  controls: Map<string, ArmSlot>;
}

export class ComparisonStore {
  private readonly aggs: LruMap<string, CumulativeAggregate>;
  /**
   * The same arms found by item → variant (→ controlOf) without building a key string per event
   * (issue 15 item 1's profile: the key, the LRU touch and the repeated checks were ≈ 9 % of a
   * metrics member's CPU). Kept in step with `aggs`: created with it, dropped on eviction and in
   * `dropItems`.
   */
  private readonly byItem = new Map<string, ItemArms>();
  /** 0: every `add` refreshes its arm's recency; from the first `newBatch()` on, once per batch. */
  private epoch = 0;
  /** item → shadows seen (variants other than original and control). */
  private readonly shadowsByItem = new Map<string, Set<string>>();
  private readonly latest = new Map<string, Map<string, ComparisonView>>();
  private sessionsRefused = 0;
  readonly maxArms: number;
  readonly maxSessionsPerArm: number;

  /**
   * `sequential`: α and tuning N* of the live verdicts (pipeline/stats/sequential.ts); `limits`:
   * the caps (defaults 10 000 arms, 200 000 sessions per arm).
   */
  constructor(
    readonly sequential: SequentialOptions = {},
    limits: { maxArms?: number; maxSessionsPerArm?: number } = {},
  ) {
    this.maxArms = limits.maxArms ?? 10_000;
    this.maxSessionsPerArm = limits.maxSessionsPerArm ?? 200_000;
    this.aggs = new LruMap(this.maxArms, {
      onEvict: (_k, a) => {
        this.unslot(a);
        this.forget(a.itemId, a.variant);
      },
    });
  }

  /** Evictions and refusals so far, plus the current number of aggregates and items with shadows. */
  get bounds(): { arms: number; items: number; armsEvicted: number; sessionsRefused: number } {
    return { arms: this.aggs.size, items: this.shadowsByItem.size, armsEvicted: this.aggs.evictions, sessionsRefused: this.sessionsRefused };
  }

  /**
   * The metrics processor calls this once per fetched batch: from then on an arm's recency in the
   * LRU (eviction order under the `maxArms` cap) is refreshed at its first event of each batch
   * instead of at every event — "least recently updated" at the granularity of a batch (≤ a few
   * thousand events, well under a second), one Map delete + set per arm and batch rather than
   * per event. Aggregates are unchanged (golden cases in comparisons-batch.test.ts).
   */
  newBatch(): void {
    this.epoch++;
  }

  private unslot(a: CumulativeAggregate): void {
    const item = this.byItem.get(a.itemId);
    if (!item) return;
    if (a.variant === CONTROL) item.controls.delete(a.controlOf ?? '');
    else item.arms.delete(a.variant);
    if (item.arms.size === 0 && item.controls.size === 0) this.byItem.delete(a.itemId);
  }

  /** An evicted shadow arm leaves the item's shadow list and its latest comparison goes with it. */
  private forget(itemId: string, variant: string): void {
    if (variant === ORIGINAL || variant === CONTROL) return;
    const vs = this.shadowsByItem.get(itemId);
    vs?.delete(variant);
    if (vs && vs.size === 0) this.shadowsByItem.delete(itemId);
    const m = this.latest.get(itemId);
    m?.delete(variant);
    if (m && m.size === 0) this.latest.delete(itemId);
  }

  /**
   * Folds one de-duplicated event into its arm's aggregate; unverified events are ignored, and so
   * are events of an older profile version than the arm's (a newer one restarts it) —
   * `addToCumulative`'s rules, checked here once.
   */
  add(e: TelemetryEvent): void {
    if (!countsInComparisons(e)) return;
    const variant = e.variant;
    const control = variant === CONTROL;
    const controlOf = control ? (e.controlOf ?? null) : null;
    let item = this.byItem.get(e.itemId);
    let slot = item === undefined ? undefined : control ? item.controls.get(controlOf ?? '') : item.arms.get(variant);
    if (slot === undefined) {
      const key = keyOf(e.itemId, variant, controlOf);
      const agg = emptyCumulative(e.itemId, variant, e.profileVersion, controlOf);
      // set() may evict the least recent arm (unslot): the item's entry is looked up after it.
      this.aggs.set(key, agg);
      item = this.byItem.get(e.itemId);
      if (!item) this.byItem.set(e.itemId, (item = { arms: new Map(), controls: new Map() }));
      slot = { key, agg, epoch: this.epoch };
      if (control) item.controls.set(controlOf ?? '', slot);
      else item.arms.set(variant, slot);
      if (variant !== ORIGINAL && !control) {
        let vs = this.shadowsByItem.get(e.itemId);
        if (!vs) this.shadowsByItem.set(e.itemId, (vs = new Set()));
        vs.add(variant);
      }
    } else if (this.epoch === 0 || slot.epoch !== this.epoch) {
      this.aggs.get(slot.key); // recency: per event, or once per batch after newBatch()
      slot.epoch = this.epoch;
    }
    const agg = slot.agg;
    if (e.profileVersion < agg.profileVersion) return; // an older version's straggler
    if (e.profileVersion > agg.profileVersion) Object.assign(agg, emptyCumulative(agg.itemId, agg.variant, e.profileVersion, agg.controlOf));
    // overSessionCap, inlined: a new session beyond the cap is left out (sessions held keep counting).
    if (agg.sessions.size >= this.maxSessionsPerArm && !agg.sessions.has(e.sessionId)) {
      this.sessionsRefused++;
      return;
    }
    foldIntoCumulative(agg, e);
  }

  aggregate(itemId: string, variant: string, controlOf: string | null = null): CumulativeAggregate | undefined {
    return this.aggs.peek(keyOf(itemId, variant, variant === CONTROL ? controlOf : null));
  }

  /**
   * Compares every shadow of the item with its control cohort; stores and returns the views.
   * Shadows are the profile's plus any that sent verified data. A shadow whose control is off
   * gets a "no baseline" view; one without control data too, once either arm has data.
   */
  compareItem(itemId: string, profile: Pick<ShadowProfile, 'shadows'> | undefined, srm: SrmView | null, now: number): { variant: string; comparison: ComparisonView }[] {
    const configured = new Map((profile?.shadows ?? []).map((s) => [s.name, s]));
    const names = [...new Set([...configured.keys(), ...(this.shadowsByItem.get(itemId) ?? [])])].filter((v) => v !== ORIGINAL && v !== CONTROL).sort();
    const out: { variant: string; comparison: ComparisonView }[] = [];
    for (const v of names) {
      // peek: reading does not count as activity for the LRU (updates do).
      const shadowAgg = this.aggs.peek(keyOf(itemId, v));
      const controlAgg = this.aggs.peek(keyOf(itemId, CONTROL, v));
      const spec = configured.get(v);
      const shadowTotals = shadowAgg && cumulativeTotals(shadowAgg);
      let view: ComparisonView;
      if (spec && !controlEnabled(spec)) view = noBaselineView(itemId, v, 'control_off', shadowTotals, srm, now, this.sequential);
      else if (!controlAgg || controlAgg.sessions.size === 0) {
        if (!shadowAgg) continue; // neither arm has data: nothing to say yet
        view = noBaselineView(itemId, v, 'no_control_data', shadowTotals, srm, now, this.sequential);
      } else {
        const controlTotals = cumulativeTotals(controlAgg);
        const st = shadowTotals ?? cumulativeTotals(emptyCumulative(itemId, v, controlAgg.profileVersion));
        view = comparisonView(compareVariants(controlTotals, st, this.sequential), srm, controlTotals, st, now);
      }
      let m = this.latest.get(itemId);
      if (!m) this.latest.set(itemId, (m = new Map()));
      m.set(v, view);
      out.push({ variant: v, comparison: view });
    }
    return out;
  }

  /**
   * Forgets every aggregate and comparison of the items matching `pred` (a metrics member that lost
   * their by-item partition: the new owner holds them now). Returns the arms dropped.
   */
  dropItems(pred: (itemId: string) => boolean): number {
    let n = 0;
    for (const [k, a] of [...this.aggs]) {
      if (!pred(a.itemId)) continue;
      this.aggs.delete(k);
      this.unslot(a);
      n++;
    }
    for (const itemId of [...this.shadowsByItem.keys()]) if (pred(itemId)) this.shadowsByItem.delete(itemId);
    for (const itemId of [...this.latest.keys()]) if (pred(itemId)) this.latest.delete(itemId);
    return n;
  }

  /** Latest comparison per shadow of the item. */
  latestFor(itemId: string): Record<string, ComparisonView> {
    return Object.fromEntries(this.latest.get(itemId) ?? []);
  }

  /** Totals of an arm (for tests and the warehouse cross-check). */
  totals(itemId: string, variant: string, controlOf: string | null = null) {
    const a = this.aggregate(itemId, variant, controlOf);
    return a ? cumulativeTotals(a) : undefined;
  }

  get size(): number {
    return this.aggs.size;
  }
}

/**
 * Statistics on the live stream: cumulative aggregates per item × variant since the newest
 * profile version the variant's events carry (`addToCumulative` restarts an aggregate when a
 * newer profile version shows up and ignores older stragglers), compared shadow vs original after
 * every emitted window (`compareVariants`: Welch on mean latency, z-tests on error and conversion
 * rates), plus a sample-ratio-mismatch check of exposures against the configured split.
 *
 * Pure parts (`srmExpectedShares`, `srmCheck`, `comparisonView`) take plain values; the
 * `ComparisonStore` holds the aggregates and the latest comparison per item × shadow.
 *
 * SRM definition (docs in pipeline/stats/README.md for the test itself):
 * - observed = distinct bucketed users per variant for the CURRENT profile version, from
 *   penumbra.assignments (AssignmentIndex.exposures);
 * - expected share of shadow s = its `traffic.percentage`; original = 100 − Σ percentages. The
 *   percentages are shares of the users matching the shadow's rules (traffic-split README), so
 *   the check only runs when every shadow has the same targeting (match + rules) — otherwise
 *   the populations differ and no single split applies (`srmExpectedShares` → null). Rolled-back
 *   profiles are not checked (everyone gets the original by design).
 * - flagged when p < 0.001 (SRM_P_THRESHOLD) AND at least `minExposures` users were counted:
 *   a continuous check on a handful of users would flag noise and pause rollouts.
 *
 * Restart caveat: the aggregates live in memory and are rebuilt from the telemetry the processor
 * reads after a start (its uncommitted tail), not from the whole profile version; the warehouse
 * has every event for a full recomputation.
 */
import { addToCumulative, cumulativeTotals, emptyCumulative, type CumulativeAggregate } from '../windows/cumulative.ts';
import type { TelemetryEvent } from '../windows/types.ts';
import { compareVariants, type Comparison } from '../stats/compare.ts';
import { srmChiSquare } from '../stats/hypothesis.ts';
import { ORIGINAL, type ShadowProfile } from '../domain/types.ts';

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

/** What the API and SSE carry for one shadow (console `Comparison`); NaN/∞ become null in JSON. */
export interface ComparisonView {
  itemId: string;
  original: string;
  shadow: string;
  latency: Comparison['latency'];
  errorRate: Comparison['errorRate'] & { lift: number };
  conversions: Record<string, Comparison['errorRate'] & { lift: number }>;
  /** Flat verdicts: latency, errorRate and `conversion:<point>`. */
  verdicts: Record<string, string>;
  verdict: Comparison['verdict'];
  sentence: string;
  srm: SrmView | null;
  sessions: { original: number; shadow: number };
  profileVersion: { original: number; shadow: number };
  at: number;
}

/** Percent share per variant the profile's traffic config implies, or null when SRM does not apply. */
export function srmExpectedShares(profile: Pick<ShadowProfile, 'state' | 'shadows'> | undefined): Record<string, number> | null {
  if (!profile || profile.state !== 'active' || profile.shadows.length === 0) return null;
  const targeting = (s: ShadowProfile['shadows'][number]) => JSON.stringify({ match: s.traffic.match, rules: s.traffic.rules });
  const first = targeting(profile.shadows[0]);
  if (profile.shadows.some((s) => targeting(s) !== first)) return null;
  const shares: Record<string, number> = {};
  let sum = 0;
  for (const s of profile.shadows) {
    shares[s.name] = s.traffic.percentage;
    sum += s.traffic.percentage;
  }
  shares[ORIGINAL] = Math.max(0, 100 - sum);
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

export function comparisonView(c: Comparison, srm: SrmView | null, original: CumulativeAggregate, shadow: CumulativeAggregate, at: number): ComparisonView {
  const withLift = <T extends { relativeLift: number }>(z: T) => ({ ...z, lift: z.relativeLift });
  const verdicts: Record<string, string> = { latency: c.verdict.latency, errorRate: c.verdict.errorRate };
  for (const [pt, v] of Object.entries(c.verdict.conversions)) verdicts[`conversion:${pt}`] = v;
  return {
    itemId: c.itemId,
    original: c.original,
    shadow: c.shadow,
    latency: c.latency,
    errorRate: withLift(c.errorRate),
    conversions: Object.fromEntries(Object.entries(c.conversions).map(([k, z]) => [k, withLift(z)])),
    verdicts,
    verdict: c.verdict,
    sentence: srm?.flagged ? `${c.sentence} Sample ratio mismatch: exposures do not match the configured split (p=${srm.p < 0.001 ? '<0.001' : srm.p.toFixed(3)}); treat results with care.` : c.sentence,
    srm,
    sessions: { original: original.sessions.size, shadow: shadow.sessions.size },
    profileVersion: { original: original.profileVersion, shadow: shadow.profileVersion },
    at,
  };
}

const keyOf = (itemId: string, variant: string) => `${itemId}\u0000${variant}`;

export class ComparisonStore {
  private readonly aggs = new Map<string, CumulativeAggregate>();
  private readonly variantsByItem = new Map<string, Set<string>>();
  private readonly latest = new Map<string, Map<string, ComparisonView>>();

  /** Folds one de-duplicated event into its item × variant aggregate. */
  add(e: TelemetryEvent): void {
    const k = keyOf(e.itemId, e.variant);
    let agg = this.aggs.get(k);
    if (!agg) {
      this.aggs.set(k, (agg = emptyCumulative(e.itemId, e.variant, e.profileVersion)));
      let vs = this.variantsByItem.get(e.itemId);
      if (!vs) this.variantsByItem.set(e.itemId, (vs = new Set()));
      vs.add(e.variant);
    }
    addToCumulative(agg, e);
  }

  aggregate(itemId: string, variant: string): CumulativeAggregate | undefined {
    return this.aggs.get(keyOf(itemId, variant));
  }

  /**
   * Compares every shadow of the item that has data with the original; stores and returns the
   * views. `shadows` adds the profile's shadows (a shadow without data yet is skipped).
   */
  compareItem(itemId: string, srm: SrmView | null, now: number): { variant: string; comparison: ComparisonView }[] {
    const original = this.aggs.get(keyOf(itemId, ORIGINAL));
    if (!original) return [];
    const out: { variant: string; comparison: ComparisonView }[] = [];
    for (const v of this.variantsByItem.get(itemId) ?? []) {
      if (v === ORIGINAL) continue;
      const shadow = this.aggs.get(keyOf(itemId, v))!;
      const view = comparisonView(compareVariants(original, shadow), srm, original, shadow, now);
      let m = this.latest.get(itemId);
      if (!m) this.latest.set(itemId, (m = new Map()));
      m.set(v, view);
      out.push({ variant: v, comparison: view });
    }
    return out;
  }

  /** Latest comparison per shadow of the item. */
  latestFor(itemId: string): Record<string, ComparisonView> {
    return Object.fromEntries(this.latest.get(itemId) ?? []);
  }

  /** Totals of an aggregate (for tests and the warehouse cross-check). */
  totals(itemId: string, variant: string) {
    const a = this.aggs.get(keyOf(itemId, variant));
    return a ? cumulativeTotals(a) : undefined;
  }

  get size(): number {
    return this.aggs.size;
  }
}

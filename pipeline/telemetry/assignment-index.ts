/**
 * Latest assignment per item × user, built from penumbra.assignments (pure state; the feature
 * feeds it from a follower). Two uses:
 *
 * - **Join** (`join`): each telemetry event is checked against the variant the resolver last gave
 *   its user. An event whose variant differs is counted as a *variant mismatch* (and still
 *   counted in its own variant's windows — it ran that variant, whatever the resolver said);
 *   an event of a user never resolved here is *unassigned* (telemetry from a native client, or
 *   assignments older than the topic's retention). The latest assignment is used whatever its
 *   profile version, because shadow artifacts keep the profile version they were built with
 *   while traffic changes bump it.
 * - **Exposures for SRM** (`exposures`): distinct users per variant among the assignments of the
 *   item's newest profile version that went through bucketing (reason assigned, control,
 *   not_in_share or holdout — the population the configured shares are defined on; `no_match` users never had a
 *   chance of a shadow). A user resolved many times counts once, with the latest variant.
 *
 * Memory is bounded: past `maxUsers` entries the least recently assigned users are forgotten
 * (their next event counts as unassigned; the SRM counts keep them). Per-item state (exposure
 * counts, join counters) is kept for at most `maxItems` items, least recently touched evicted,
 * and is never created for an item `isKnownItem` does not know: telemetry and resolves are
 * anonymous, so an item id is attacker-chosen, and one per request would otherwise grow these
 * maps without bound (issue 17, item 4). Such events still count in `totals`.
 */
import type { Assignment } from '../../schemas/types.generated.ts';

/** Assignment reasons whose users were bucketed (the SRM population): `control` is a control cohort's user. */
export const BUCKETED_REASONS: ReadonlySet<string> = new Set(['assigned', 'control', 'not_in_share', 'holdout']);

export type JoinResult = 'match' | 'mismatch' | 'unassigned';

interface UserEntry {
  variant: string;
  profileVersion: number;
  bucketed: boolean;
}

interface ItemExposures {
  profileVersion: number;
  counts: Map<string, number>;
}

export interface JoinCounters {
  matched: number;
  mismatched: number;
  unassigned: number;
}

export interface AssignmentIndexOptions {
  /** Items with a profile; state is kept for these only (default: every item). */
  isKnownItem?: (itemId: string) => boolean;
  /** Items with per-item state at most (default 10,000). */
  maxItems?: number;
}

/** Get-or-create in a Map kept in recency order, evicting the least recent past `max`. */
function touch<V>(m: Map<string, V>, key: string, make: () => V, max: number): V {
  let v = m.get(key);
  if (v !== undefined) m.delete(key);
  else {
    v = make();
    if (m.size >= max) m.delete(m.keys().next().value as string);
  }
  m.set(key, v);
  return v;
}

export class AssignmentIndex {
  private readonly users = new Map<string, UserEntry>();
  private readonly exposureByItem = new Map<string, ItemExposures>();
  private readonly joinsByItem = new Map<string, JoinCounters>();
  readonly totals: JoinCounters = { matched: 0, mismatched: 0, unassigned: 0 };
  applied = 0;
  /** Assignments and joins of items isKnownItem refused (counted, not stored). */
  unknownItems = 0;
  private readonly isKnownItem: (itemId: string) => boolean;
  private readonly maxItems: number;

  constructor(private readonly maxUsers = 1_000_000, opts: AssignmentIndexOptions = {}) {
    this.isKnownItem = opts.isKnownItem ?? (() => true);
    this.maxItems = opts.maxItems ?? 10_000;
  }

  get items(): number {
    return Math.max(this.exposureByItem.size, this.joinsByItem.size);
  }

  apply(a: Pick<Assignment, 'itemId' | 'userId' | 'variant' | 'profileVersion' | 'reason'>): void {
    this.applied++;
    if (!this.isKnownItem(a.itemId)) {
      this.unknownItems++;
      return;
    }
    const key = `${a.itemId}\u0000${a.userId}`;
    const prev = this.users.get(key);
    const next: UserEntry = { variant: a.variant, profileVersion: a.profileVersion, bucketed: BUCKETED_REASONS.has(a.reason) };
    // Delete first so Map insertion order is recency order (eviction takes the oldest).
    if (prev) this.users.delete(key);
    this.users.set(key, next);
    if (this.users.size > this.maxUsers) {
      const oldest = this.users.keys().next().value;
      if (oldest !== undefined) this.users.delete(oldest);
    }

    let ex = touch(this.exposureByItem, a.itemId, () => ({ profileVersion: a.profileVersion, counts: new Map<string, number>() }), this.maxItems);
    if (a.profileVersion > ex.profileVersion) {
      ex = { profileVersion: a.profileVersion, counts: new Map() };
      this.exposureByItem.set(a.itemId, ex);
    }
    if (a.profileVersion !== ex.profileVersion) return; // an older version's straggler
    if (prev && prev.profileVersion === ex.profileVersion && prev.bucketed) {
      const n = (ex.counts.get(prev.variant) ?? 1) - 1;
      if (n > 0) ex.counts.set(prev.variant, n);
      else ex.counts.delete(prev.variant);
    }
    if (next.bucketed) ex.counts.set(next.variant, (ex.counts.get(next.variant) ?? 0) + 1);
  }

  /** Latest variant the resolver gave this user for the item, if known. */
  variantOf(itemId: string, userId: string): string | undefined {
    return this.users.get(`${itemId}\u0000${userId}`)?.variant;
  }

  /** Joins one telemetry event with its user's assignment and counts the outcome. */
  join(e: { itemId: string; userId: string; variant: string }): JoinResult {
    const v = this.variantOf(e.itemId, e.userId);
    const r: JoinResult = v === undefined ? 'unassigned' : v === e.variant ? 'match' : 'mismatch';
    const field = r === 'match' ? 'matched' : r === 'mismatch' ? 'mismatched' : 'unassigned';
    this.totals[field]++;
    if (v === undefined && !this.isKnownItem(e.itemId)) {
      this.unknownItems++;
      return r;
    }
    touch(this.joinsByItem, e.itemId, () => ({ matched: 0, mismatched: 0, unassigned: 0 }), this.maxItems)[field]++;
    return r;
  }

  joins(itemId: string): JoinCounters {
    return { ...(this.joinsByItem.get(itemId) ?? { matched: 0, mismatched: 0, unassigned: 0 }) };
  }

  /**
   * Distinct bucketed users per variant for `profileVersion` (default: the newest seen). Empty
   * when the index holds a different version (the resolvers have not logged the new one yet).
   */
  exposures(itemId: string, profileVersion?: number): { profileVersion: number | null; counts: Record<string, number> } {
    const ex = this.exposureByItem.get(itemId);
    if (!ex || (profileVersion !== undefined && ex.profileVersion !== profileVersion)) return { profileVersion: profileVersion ?? null, counts: {} };
    return { profileVersion: ex.profileVersion, counts: Object.fromEntries([...ex.counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
  }

  get size(): number {
    return this.users.size;
  }
}

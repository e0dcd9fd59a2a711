/**
 * Per-cell arm totals for per-segment allocation (pure state, no I/O; fed by the metrics
 * processor's de-duplicated event tap in the processors process, like rollout/arm-aggregates.ts).
 *
 * Each watched item keeps, since its bandit run started, one small record per session of a bandit
 * arm (`<shadow>` or `control:<shadow>`): the user, whether it had an error, the usage points it
 * hit, its requests and latency sums, its perf sums. `totals(itemId, cellOf)` then sums the
 * sessions per (cell, arm) with the cell each USER was allocated in (`cellOf`: the sticky record
 * of the user, which carries the cell whose weights picked their arm — pipeline/bandit/sticky.ts),
 * so a user's outcomes feed exactly the posterior that allocated them. Sessions of users with no
 * cell (not sticky yet, or allocated by the global weights) are counted as `unattributed`.
 *
 * Only verified events count (issue 11), events before the run's start are ignored. Memory:
 * O(sessions of the bandit's arms since the run started), the same order as ArmAggregates.
 */
import type { TelemetryEvent } from '../windows/types.ts';
import type { ArmTotals } from '../rollout/arm-aggregates.ts';
import { addEvent, armOfEvent, type Sums } from '../rollout/arm-aggregates.ts';

interface Session {
  userId: string;
  arm: string;
  error: boolean;
  points: string[];
  requests: number;
  requestErrors: number;
  latency: Sums;
  perf: Map<string, Sums> | null;
}

interface Item {
  since: number;
  arms: ReadonlySet<string>;
  sessions: Map<string, Session>;
}

const emptyTotals = (): ArmTotals => ({ sessions: 0, errorSessions: 0, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} });

export class CellAggregates {
  private readonly items = new Map<string, Item>();
  readonly counters = { added: 0, unverified: 0, early: 0 };

  /** Watch an item's arms from `since` (the run's start); another `since` or arm set restarts it empty. */
  watch(itemId: string, arms: readonly string[], since: number): void {
    const cur = this.items.get(itemId);
    if (cur && cur.since === since && cur.arms.size === arms.length && arms.every((a) => cur.arms.has(a))) return;
    this.items.set(itemId, { since, arms: new Set(arms), sessions: new Map() });
  }

  unwatch(itemId: string): void {
    this.items.delete(itemId);
  }

  watchedItems(): string[] {
    return [...this.items.keys()];
  }

  add(e: TelemetryEvent): void {
    const it = this.items.get(e.itemId);
    if (!it) return;
    const arm = armOfEvent(e);
    if (arm === null || !it.arms.has(arm)) return;
    if (e.verified !== true) {
      this.counters.unverified++;
      return;
    }
    if (e.ts < it.since) {
      this.counters.early++;
      return;
    }
    this.counters.added++;
    let s = it.sessions.get(e.sessionId);
    if (!s) it.sessions.set(e.sessionId, (s = { userId: e.userId, arm, error: false, points: [], requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, perf: null }));
    addEvent(s, s, e);
  }

  /**
   * Totals per cell and arm (`cell → arm → totals`), the cell of each session being its user's
   * `cellOf` (null or undefined: unattributed).
   */
  totals(itemId: string, cellOf: (userId: string) => string | null | undefined): { cells: Map<string, Map<string, ArmTotals>>; unattributed: number } {
    const out = new Map<string, Map<string, ArmTotals>>();
    let unattributed = 0;
    const it = this.items.get(itemId);
    if (!it) return { cells: out, unattributed };
    for (const s of it.sessions.values()) {
      const cell = cellOf(s.userId);
      if (cell === null || cell === undefined) {
        unattributed++;
        continue;
      }
      let byArm = out.get(cell);
      if (!byArm) out.set(cell, (byArm = new Map()));
      let t = byArm.get(s.arm);
      if (!t) byArm.set(s.arm, (t = emptyTotals()));
      t.sessions++;
      if (s.error) t.errorSessions++;
      for (const p of s.points) t.conversions[p] = (t.conversions[p] ?? 0) + 1;
      t.requests += s.requests;
      t.requestErrors += s.requestErrors;
      t.latency.count += s.latency.count;
      t.latency.sum += s.latency.sum;
      t.latency.sumSq += s.latency.sumSq;
      if (s.perf) {
        for (const [k, v] of s.perf) {
          const q = (t.perf[k] ??= { count: 0, sum: 0, sumSq: 0 });
          q.count += v.count;
          q.sum += v.sum;
          q.sumSq += v.sumSq;
        }
      }
    }
    return { cells: out, unattributed };
  }

  get sessionCount(): number {
    let n = 0;
    for (const it of this.items.values()) n += it.sessions.size;
    return n;
  }
}

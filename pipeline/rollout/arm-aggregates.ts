/**
 * Per-arm aggregates for the rollout analyses and the bandit, since a start time the caller
 * sets (the current step's start, or the bandit's start) — not since a profile version: every
 * decision is a command that bumps the profile version, and an analysis must keep the step's
 * data across its own holds.
 *
 * Arms are `<shadow>` and `control:<shadow>` (events of variant `control` carry the shadow whose
 * control cohort sent them in `controlOf`). Only verified events count (issue 11: unverified
 * telemetry never enters comparisons, alerts or guardrails); events before the arm's start are
 * ignored. Sessions are exact (one small record per session, as pipeline/windows/cumulative.ts),
 * so memory is O(sessions since the start) per watched arm; arms nobody watches are not kept.
 *
 * Pure state (no I/O); fed by the metrics processor's event tap in the processors process.
 */
import { isRequestError, latencyOf, perfValueOf } from '../windows/classify.ts';
import type { TelemetryEvent } from '../windows/types.ts';

export interface ArmTotals {
  sessions: number;
  errorSessions: number;
  requests: number;
  requestErrors: number;
  /** Request latency (ms): count, sum, sum of squares. */
  latency: { count: number; sum: number; sumSq: number };
  /** Sessions that hit each usage point. */
  conversions: Record<string, number>;
  /** Perf metric name → count, sum, sum of squares (ms; CLS unitless). */
  perf: Record<string, { count: number; sum: number; sumSq: number }>;
}

interface Arm {
  since: number;
  sessions: Map<string, { error: boolean; points: string[] }>;
  requests: number;
  requestErrors: number;
  latency: { count: number; sum: number; sumSq: number };
  perf: Map<string, { count: number; sum: number; sumSq: number }>;
}

/** The arm an event belongs to: the shadow, or `control:<shadow>`; null for the original. */
export function armOfEvent(e: Pick<TelemetryEvent, 'variant' | 'controlOf'>): string | null {
  if (e.variant === 'control') return e.controlOf ? `control:${e.controlOf}` : null;
  if (e.variant === 'original') return null;
  return e.variant;
}

const key = (itemId: string, arm: string) => `${itemId}\u0000${arm}`;

/** Count, sum and sum of squares of one metric. */
export interface Sums {
  count: number;
  sum: number;
  sumSq: number;
}

/** Where an event's request and perf figures are added (an arm here; a session in pipeline/segment-allocation). */
export interface EventTotals {
  requests: number;
  requestErrors: number;
  latency: Sums;
  /** Created on the first perf event when null. */
  perf: Map<string, Sums> | null;
}

/**
 * Folds one verified event into `t` and its session `s` — the one definition of what the
 * rollout analyzer's arms and the per-segment allocation's cells count (errors, requests and
 * their latency, usage points, perf metrics), so the two cannot drift apart.
 */
export function addEvent(t: EventTotals, s: { error: boolean; points: string[] }, e: TelemetryEvent): void {
  switch (e.type) {
    case 'error':
      s.error = true;
      break;
    case 'request': {
      t.requests++;
      if (isRequestError(e)) t.requestErrors++;
      const v = latencyOf(e);
      if (v !== null) {
        t.latency.count++;
        t.latency.sum += v;
        t.latency.sumSq += v * v;
      }
      break;
    }
    case 'usage':
      if (!s.points.includes(e.name)) s.points.push(e.name);
      break;
    case 'perf': {
      const v = perfValueOf(e);
      if (v !== null) {
        t.perf ??= new Map();
        let p = t.perf.get(e.name);
        if (!p) t.perf.set(e.name, (p = { count: 0, sum: 0, sumSq: 0 }));
        p.count++;
        p.sum += v;
        p.sumSq += v * v;
      }
      break;
    }
    default:
      break;
  }
}

export class ArmAggregates {
  private readonly arms = new Map<string, Arm>();
  /** Items with at least one watched arm: the tap's fast reject. */
  private readonly items = new Map<string, number>();
  /** Verified events folded in, and unverified ones skipped (counted for /metrics). */
  readonly counters = { added: 0, unverified: 0, early: 0 };

  /**
   * Watch an arm from `since` (epoch ms, event time). Watching again with another `since`
   * restarts it empty (a new step); with the same one it is a no-op.
   */
  watch(itemId: string, arm: string, since: number): void {
    const k = key(itemId, arm);
    const cur = this.arms.get(k);
    if (cur && cur.since === since) return;
    if (!cur) this.items.set(itemId, (this.items.get(itemId) ?? 0) + 1);
    this.arms.set(k, { since, sessions: new Map(), requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, perf: new Map() });
  }

  unwatch(itemId: string, arm: string): void {
    if (!this.arms.delete(key(itemId, arm))) return;
    const n = (this.items.get(itemId) ?? 1) - 1;
    if (n > 0) this.items.set(itemId, n);
    else this.items.delete(itemId);
  }

  /** Arms currently watched for an item. */
  watched(itemId: string): { arm: string; since: number }[] {
    const out: { arm: string; since: number }[] = [];
    const prefix = `${itemId}\u0000`;
    for (const [k, a] of this.arms) if (k.startsWith(prefix)) out.push({ arm: k.slice(prefix.length), since: a.since });
    return out;
  }

  /** Folds one de-duplicated event in (a no-op for unwatched items and arms). */
  add(e: TelemetryEvent): void {
    if (!this.items.has(e.itemId)) return;
    const arm = armOfEvent(e);
    if (arm === null) return;
    const a = this.arms.get(key(e.itemId, arm));
    if (!a) return;
    if (e.verified !== true) {
      this.counters.unverified++;
      return;
    }
    if (e.ts < a.since) {
      this.counters.early++;
      return;
    }
    this.counters.added++;
    let s = a.sessions.get(e.sessionId);
    if (!s) a.sessions.set(e.sessionId, (s = { error: false, points: [] }));
    addEvent(a, s, e);
  }

  totals(itemId: string, arm: string): ArmTotals | undefined {
    const a = this.arms.get(key(itemId, arm));
    if (!a) return undefined;
    let errorSessions = 0;
    const conversions: Record<string, number> = {};
    for (const s of a.sessions.values()) {
      if (s.error) errorSessions++;
      for (const p of s.points) conversions[p] = (conversions[p] ?? 0) + 1;
    }
    return {
      sessions: a.sessions.size, errorSessions, requests: a.requests, requestErrors: a.requestErrors, latency: { ...a.latency }, conversions,
      perf: Object.fromEntries([...a.perf].map(([k, v]) => [k, { ...v }])),
    };
  }

  /** Sessions held in memory over all arms (for /metrics). */
  get sessionCount(): number {
    let n = 0;
    for (const a of this.arms.values()) n += a.sessions.size;
    return n;
  }
}

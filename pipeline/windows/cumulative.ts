/**
 * Cumulative aggregate of one item × variant since the start of its profile version: what the
 * shadow-vs-original comparison runs on. Mergeable: `mergeAggregates` is commutative and
 * associative and idempotent on sessions, so partial aggregates (per partition, per checkpoint)
 * combine into the same totals.
 *
 * Distinct sessions must be exact for the error-rate and conversion tests, so the aggregate keeps
 * one small record per session (error seen? which points converted?). Memory is O(sessions of the
 * profile version); the DuckDB equivalent is COUNT(DISTINCT sessionId) over the same events.
 * Latency keeps count/sum/sumSq only (enough for Welch's t-test).
 */
import { ValidationError } from '../errors.ts';
import { isRequestError, latencyOf } from './classify.ts';
import type { TelemetryEvent } from './types.ts';

export interface SessionFlags {
  /** Session had ≥ 1 error event. */
  error: boolean;
  /** Usage point ids the session hit, sorted. */
  points: string[];
}

export interface LatencySums {
  count: number;
  sum: number;
  sumSq: number;
}

export interface CumulativeAggregate {
  itemId: string;
  variant: string;
  /** Events of older profile versions are ignored; a newer one restarts the aggregate. */
  profileVersion: number;
  events: number;
  errors: number;
  requests: number;
  requestErrors: number;
  /** Over request events with a finite value. */
  latency: LatencySums;
  sessions: Map<string, SessionFlags>;
}

/** Counts derived from an aggregate: the input of `compareVariants` (also buildable from SQL). */
export interface VariantTotals {
  itemId: string;
  variant: string;
  profileVersion: number;
  sessions: number;
  /** Sessions with ≥ 1 error event; error rate = errorSessions / sessions. */
  errorSessions: number;
  requests: number;
  requestErrors: number;
  latency: LatencySums;
  /** Point id → sessions that hit it; conversion rate = value / sessions. */
  conversions: Record<string, number>;
}

export interface CumulativeJson {
  itemId: string;
  variant: string;
  profileVersion: number;
  events: number;
  errors: number;
  requests: number;
  requestErrors: number;
  latency: LatencySums;
  sessions: [string, SessionFlags][];
}

export function emptyCumulative(itemId: string, variant: string, profileVersion: number): CumulativeAggregate {
  return {
    itemId,
    variant,
    profileVersion,
    events: 0,
    errors: 0,
    requests: 0,
    requestErrors: 0,
    latency: { count: 0, sum: 0, sumSq: 0 },
    sessions: new Map(),
  };
}

/**
 * Folds one (already de-duplicated) event into `agg` in place. Returns false, without changes,
 * when the event belongs to another key or an older profile version. A newer profile version
 * resets the aggregate first.
 */
export function addToCumulative(agg: CumulativeAggregate, e: TelemetryEvent): boolean {
  if (e.itemId !== agg.itemId || e.variant !== agg.variant || e.profileVersion < agg.profileVersion) return false;
  if (e.profileVersion > agg.profileVersion) Object.assign(agg, emptyCumulative(agg.itemId, agg.variant, e.profileVersion));
  agg.events++;
  let flags = agg.sessions.get(e.sessionId);
  if (!flags) {
    flags = { error: false, points: [] };
    agg.sessions.set(e.sessionId, flags);
  }
  if (e.type === 'error') {
    agg.errors++;
    flags.error = true;
  } else if (e.type === 'request') {
    agg.requests++;
    if (isRequestError(e)) agg.requestErrors++;
    const v = latencyOf(e);
    if (v !== null) {
      agg.latency.count++;
      agg.latency.sum += v;
      agg.latency.sumSq += v * v;
    }
  } else if (e.type === 'usage' && !flags.points.includes(e.name)) {
    flags.points = [...flags.points, e.name].sort();
  }
  return true;
}

function mergeFlags(a: SessionFlags, b: SessionFlags): SessionFlags {
  return { error: a.error || b.error, points: [...new Set([...a.points, ...b.points])].sort() };
}

/**
 * Merges two aggregates of the same item × variant into a new one (inputs untouched). Different
 * profile versions: the newer wins whole (the cumulative restarts at each profile version).
 * Event and latency counts add, so merge partials of DISJOINT event sets; sessions are unioned,
 * so a session seen by both partials is still counted once.
 */
export function mergeAggregates(a: CumulativeAggregate, b: CumulativeAggregate): CumulativeAggregate {
  if (a.itemId !== b.itemId || a.variant !== b.variant) {
    throw new ValidationError(`cannot merge aggregates of ${a.itemId}/${a.variant} and ${b.itemId}/${b.variant}`);
  }
  if (a.profileVersion !== b.profileVersion) return cloneCumulative(a.profileVersion > b.profileVersion ? a : b);
  const sessions = new Map<string, SessionFlags>();
  for (const [id, f] of a.sessions) sessions.set(id, { error: f.error, points: [...f.points] });
  for (const [id, f] of b.sessions) {
    const prev = sessions.get(id);
    sessions.set(id, prev ? mergeFlags(prev, f) : { error: f.error, points: [...f.points] });
  }
  return {
    itemId: a.itemId,
    variant: a.variant,
    profileVersion: a.profileVersion,
    events: a.events + b.events,
    errors: a.errors + b.errors,
    requests: a.requests + b.requests,
    requestErrors: a.requestErrors + b.requestErrors,
    latency: {
      count: a.latency.count + b.latency.count,
      sum: a.latency.sum + b.latency.sum,
      sumSq: a.latency.sumSq + b.latency.sumSq,
    },
    sessions,
  };
}

export function cloneCumulative(a: CumulativeAggregate): CumulativeAggregate {
  return cumulativeFromJSON(cumulativeToJSON(a));
}

export function cumulativeTotals(a: CumulativeAggregate): VariantTotals {
  let errorSessions = 0;
  const conversions = new Map<string, number>();
  for (const f of a.sessions.values()) {
    if (f.error) errorSessions++;
    for (const p of f.points) conversions.set(p, (conversions.get(p) ?? 0) + 1);
  }
  return {
    itemId: a.itemId,
    variant: a.variant,
    profileVersion: a.profileVersion,
    sessions: a.sessions.size,
    errorSessions,
    requests: a.requests,
    requestErrors: a.requestErrors,
    latency: { ...a.latency },
    conversions: Object.fromEntries([...conversions.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))),
  };
}

export function cumulativeToJSON(a: CumulativeAggregate): CumulativeJson {
  return {
    itemId: a.itemId,
    variant: a.variant,
    profileVersion: a.profileVersion,
    events: a.events,
    errors: a.errors,
    requests: a.requests,
    requestErrors: a.requestErrors,
    latency: { ...a.latency },
    sessions: [...a.sessions.entries()].map(([id, f]) => [id, { error: f.error, points: [...f.points] }]),
  };
}

export function cumulativeFromJSON(j: CumulativeJson): CumulativeAggregate {
  return {
    itemId: j.itemId,
    variant: j.variant,
    profileVersion: j.profileVersion,
    events: j.events,
    errors: j.errors,
    requests: j.requests,
    requestErrors: j.requestErrors,
    latency: { ...j.latency },
    sessions: new Map(j.sessions.map(([id, f]) => [id, { error: f.error, points: [...f.points] }])),
  };
}

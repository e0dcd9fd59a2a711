/**
 * Cumulative aggregate of one ARM — item × variant, and for the reserved variant `control` also
 * the shadow whose control cohort it is (`controlOf`) — since the start of its profile version:
 * what the shadow-vs-control comparison runs on. Mergeable: `mergeAggregates` is commutative and
 * associative and idempotent on sessions, so partial aggregates (per partition, per checkpoint)
 * combine into the same totals.
 *
 * Distinct sessions must be exact for the error-rate and conversion tests, so the aggregate keeps
 * one small record per session (error seen? which points converted?). Memory is O(sessions of the
 * profile version); the DuckDB equivalent is COUNT(DISTINCT sessionId) over the same events.
 * Latency and each perf metric (page timings, web vitals) keep count/sum/sumSq only (enough
 * for the tests of a difference in means). Only verified events count (`countsInComparisons`).
 */
import { ValidationError } from '../errors.ts';
import { CONTROL } from '../domain/types.ts';
import { countsInComparisons, isRequestError, latencyOf, perfValueOf } from './classify.ts';
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
  /** For variant `control`: the shadow whose control cohort this is; null otherwise. */
  controlOf: string | null;
  /** Events of older profile versions are ignored; a newer one restarts the aggregate. */
  profileVersion: number;
  events: number;
  errors: number;
  requests: number;
  requestErrors: number;
  /** Over request events with a finite value. */
  latency: LatencySums;
  /** Perf metric name → sums over its perf events with a finite value. */
  perf: Map<string, LatencySums>;
  sessions: Map<string, SessionFlags>;
}

/** Counts derived from an aggregate: the input of `compareVariants` (also buildable from SQL). */
export interface VariantTotals {
  itemId: string;
  variant: string;
  controlOf?: string | null;
  profileVersion: number;
  sessions: number;
  /** Sessions with ≥ 1 error event; error rate = errorSessions / sessions. */
  errorSessions: number;
  requests: number;
  requestErrors: number;
  latency: LatencySums;
  /** Perf metric name → count/sum/sumSq of its values (absent in totals built before perf was kept). */
  perf?: Record<string, LatencySums>;
  /** Point id → sessions that hit it; conversion rate = value / sessions. */
  conversions: Record<string, number>;
}

export interface CumulativeJson {
  itemId: string;
  variant: string;
  /** Absent in snapshots taken before control arms existed (= null). */
  controlOf?: string | null;
  profileVersion: number;
  events: number;
  errors: number;
  requests: number;
  requestErrors: number;
  latency: LatencySums;
  /** Absent in snapshots taken before perf was kept. */
  perf?: [string, LatencySums][];
  sessions: [string, SessionFlags][];
}

/** The arm an event belongs to: its variant, plus `controlOf` for the reserved variant `control`. */
export function armOf(e: Pick<TelemetryEvent, 'variant' | 'controlOf'>): { variant: string; controlOf: string | null } {
  return { variant: e.variant, controlOf: e.variant === CONTROL ? (e.controlOf ?? null) : null };
}

export function emptyCumulative(itemId: string, variant: string, profileVersion: number, controlOf: string | null = null): CumulativeAggregate {
  return {
    itemId,
    variant,
    controlOf: variant === CONTROL ? controlOf : null,
    profileVersion,
    events: 0,
    errors: 0,
    requests: 0,
    requestErrors: 0,
    latency: { count: 0, sum: 0, sumSq: 0 },
    perf: new Map(),
    sessions: new Map(),
  };
}

/**
 * Folds one (already de-duplicated) event into `agg` in place. Returns false, without changes,
 * when the event is unverified, belongs to another arm or an older profile version. A newer
 * profile version resets the aggregate first.
 */
export function addToCumulative(agg: CumulativeAggregate, e: TelemetryEvent): boolean {
  if (!countsInComparisons(e)) return false;
  const arm = armOf(e);
  if (e.itemId !== agg.itemId || arm.variant !== agg.variant || arm.controlOf !== agg.controlOf || e.profileVersion < agg.profileVersion) return false;
  if (e.profileVersion > agg.profileVersion) Object.assign(agg, emptyCumulative(agg.itemId, agg.variant, e.profileVersion, agg.controlOf));
  foldIntoCumulative(agg, e);
  return true;
}

/**
 * The fold of `addToCumulative` without its checks, for a caller that made them already (the
 * ComparisonStore found `agg` by the event's arm and restarted it for a newer profile version,
 * issue 15 item 1: the checks were a visible share of the per-event path). `e` must be
 * verified, of `agg`'s arm and of `agg.profileVersion`; golden cases in cumulative-fold.test.ts.
 */
export function foldIntoCumulative(agg: CumulativeAggregate, e: TelemetryEvent): void {
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
  } else if (e.type === 'perf') {
    const v = perfValueOf(e);
    if (v !== null) {
      let sums = agg.perf.get(e.name);
      if (!sums) agg.perf.set(e.name, (sums = { count: 0, sum: 0, sumSq: 0 }));
      sums.count++;
      sums.sum += v;
      sums.sumSq += v * v;
    }
  } else if (e.type === 'usage' && !flags.points.includes(e.name)) {
    flags.points = [...flags.points, e.name].sort();
  }
}

const addSums = (a: LatencySums | undefined, b: LatencySums | undefined): LatencySums => ({
  count: (a?.count ?? 0) + (b?.count ?? 0),
  sum: (a?.sum ?? 0) + (b?.sum ?? 0),
  sumSq: (a?.sumSq ?? 0) + (b?.sumSq ?? 0),
});
const byName = <T>(entries: Iterable<[string, T]>): [string, T][] => [...entries].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));

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
  if (a.itemId !== b.itemId || a.variant !== b.variant || a.controlOf !== b.controlOf) {
    throw new ValidationError(`cannot merge aggregates of ${a.itemId}/${a.variant}${a.controlOf ? `(${a.controlOf})` : ''} and ${b.itemId}/${b.variant}${b.controlOf ? `(${b.controlOf})` : ''}`);
  }
  if (a.profileVersion !== b.profileVersion) return cloneCumulative(a.profileVersion > b.profileVersion ? a : b);
  const sessions = new Map<string, SessionFlags>();
  for (const [id, f] of a.sessions) sessions.set(id, { error: f.error, points: [...f.points] });
  for (const [id, f] of b.sessions) {
    const prev = sessions.get(id);
    sessions.set(id, prev ? mergeFlags(prev, f) : { error: f.error, points: [...f.points] });
  }
  const perf = new Map<string, LatencySums>();
  for (const name of new Set([...a.perf.keys(), ...b.perf.keys()])) perf.set(name, addSums(a.perf.get(name), b.perf.get(name)));
  return {
    itemId: a.itemId,
    variant: a.variant,
    controlOf: a.controlOf,
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
    perf,
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
    controlOf: a.controlOf,
    profileVersion: a.profileVersion,
    sessions: a.sessions.size,
    errorSessions,
    requests: a.requests,
    requestErrors: a.requestErrors,
    latency: { ...a.latency },
    perf: Object.fromEntries(byName(a.perf.entries()).map(([k, v]) => [k, { ...v }])),
    conversions: Object.fromEntries([...conversions.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))),
  };
}

export function cumulativeToJSON(a: CumulativeAggregate): CumulativeJson {
  return {
    itemId: a.itemId,
    variant: a.variant,
    controlOf: a.controlOf,
    profileVersion: a.profileVersion,
    events: a.events,
    errors: a.errors,
    requests: a.requests,
    requestErrors: a.requestErrors,
    latency: { ...a.latency },
    perf: byName(a.perf.entries()).map(([k, v]) => [k, { ...v }]),
    sessions: [...a.sessions.entries()].map(([id, f]) => [id, { error: f.error, points: [...f.points] }]),
  };
}

export function cumulativeFromJSON(j: CumulativeJson): CumulativeAggregate {
  return {
    itemId: j.itemId,
    variant: j.variant,
    controlOf: j.variant === CONTROL ? (j.controlOf ?? null) : null,
    profileVersion: j.profileVersion,
    events: j.events,
    errors: j.errors,
    requests: j.requests,
    requestErrors: j.requestErrors,
    latency: { ...j.latency },
    perf: new Map((j.perf ?? []).map(([k, v]) => [k, { ...v }])),
    sessions: new Map(j.sessions.map(([id, f]) => [id, { error: f.error, points: [...f.points] }])),
  };
}

/**
 * True when folding `e` into `agg` would add one more session to an aggregate that already holds
 * `maxSessions` of its profile version (issue 17 item 4: memory is O(sessions), so a flood of
 * fresh session ids must hit a cap). The caller then leaves the event out and counts it; sessions
 * already held keep counting, so the aggregate stays exact over the sessions it holds.
 */
export function overSessionCap(agg: CumulativeAggregate, e: Pick<TelemetryEvent, 'sessionId' | 'profileVersion'>, maxSessions: number): boolean {
  return e.profileVersion === agg.profileVersion && agg.sessions.size >= maxSessions && !agg.sessions.has(e.sessionId);
}

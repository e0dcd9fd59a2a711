/**
 * Rows of the three warehouse queries (totals-sql.ts) → arm totals per cell (pure). A dimension
 * with more than MAX_VALUES_PER_DIMENSION values keeps the largest by sessions and folds the rest
 * into `(other)`, so a long tail of countries neither floods the page nor spends the
 * multiple-comparisons budget on cells too small to say anything.
 */
import { MAX_VALUES_PER_DIMENSION } from './totals-sql.ts';

export interface Sums {
  count: number;
  sum: number;
  sumSq: number;
}

/** The shape of pipeline/stats VariantTotals (what compareVariants takes). */
export interface ArmTotals {
  itemId: string;
  variant: string;
  controlOf: string | null;
  profileVersion: number;
  sessions: number;
  errorSessions: number;
  requests: number;
  requestErrors: number;
  latency: Sums;
  perf: Record<string, Sums>;
  conversions: Record<string, number>;
}

export interface CellTotals {
  dimension: string;
  value: string;
  /** Arm key `variant` or `control:<shadow>` → totals. */
  arms: Map<string, ArmTotals>;
}

export const armKey = (variant: string, controlOf: string | null): string => (variant === 'control' ? `control:${controlOf ?? ''}` : variant);

type Row = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : v == null ? 0 : Number(v));

export function cellsFromRows(itemId: string, arms: Row[], conversions: Row[], perf: Row[]): CellTotals[] {
  const cells = new Map<string, CellTotals>();
  const get = (r: Row): ArmTotals => {
    const dim = String(r.dimension);
    const value = String(r.value);
    const key = `${dim}\u0000${value}`;
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { dimension: dim, value, arms: new Map() }));
    const variant = String(r.variant);
    const controlOf = r.control_of == null ? null : String(r.control_of);
    const k = armKey(variant, controlOf);
    let a = c.arms.get(k);
    if (!a) {
      a = { itemId, variant, controlOf: variant === 'control' ? controlOf : null, profileVersion: 0, sessions: 0, errorSessions: 0, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, perf: {}, conversions: {} };
      c.arms.set(k, a);
    }
    return a;
  };
  for (const r of arms) {
    const a = get(r);
    a.sessions += num(r.sessions);
    a.errorSessions += num(r.error_sessions);
    a.requests += num(r.requests);
    a.requestErrors += num(r.request_errors);
    a.latency.count += num(r.lat_n);
    a.latency.sum += num(r.lat_sum);
    a.latency.sumSq += num(r.lat_sq);
  }
  for (const r of conversions) {
    const a = get(r);
    const pt = String(r.point);
    a.conversions[pt] = (a.conversions[pt] ?? 0) + num(r.sessions);
  }
  for (const r of perf) {
    const a = get(r);
    const n = String(r.name);
    const s = (a.perf[n] ??= { count: 0, sum: 0, sumSq: 0 });
    s.count += num(r.n);
    s.sum += num(r.s);
    s.sumSq += num(r.sq);
  }
  return foldTail([...cells.values()]);
}

function merge(into: ArmTotals, a: ArmTotals): void {
  into.sessions += a.sessions;
  into.errorSessions += a.errorSessions;
  into.requests += a.requests;
  into.requestErrors += a.requestErrors;
  into.latency.count += a.latency.count;
  into.latency.sum += a.latency.sum;
  into.latency.sumSq += a.latency.sumSq;
  for (const [k, v] of Object.entries(a.conversions)) into.conversions[k] = (into.conversions[k] ?? 0) + v;
  for (const [k, v] of Object.entries(a.perf)) {
    const s = (into.perf[k] ??= { count: 0, sum: 0, sumSq: 0 });
    s.count += v.count;
    s.sum += v.sum;
    s.sumSq += v.sumSq;
  }
}

const sessionsOf = (c: CellTotals): number => [...c.arms.values()].reduce((a, b) => a + b.sessions, 0);

function foldTail(cells: CellTotals[], max = MAX_VALUES_PER_DIMENSION): CellTotals[] {
  const byDim = new Map<string, CellTotals[]>();
  for (const c of cells) byDim.set(c.dimension, [...(byDim.get(c.dimension) ?? []), c]);
  const out: CellTotals[] = [];
  for (const [dim, list] of byDim) {
    list.sort((a, b) => sessionsOf(b) - sessionsOf(a) || (a.value < b.value ? -1 : 1));
    out.push(...list.slice(0, max));
    if (list.length > max) {
      const other: CellTotals = { dimension: dim, value: '(other)', arms: new Map() };
      for (const c of list.slice(max)) {
        for (const [k, a] of c.arms) {
          const into = other.arms.get(k) ?? { ...a, latency: { count: 0, sum: 0, sumSq: 0 }, perf: {}, conversions: {}, sessions: 0, errorSessions: 0, requests: 0, requestErrors: 0 };
          merge(into, a);
          other.arms.set(k, into);
        }
      }
      out.push(other);
    }
  }
  return out;
}

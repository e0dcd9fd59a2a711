/**
 * State of one open window (item × variant × size × start) and its conversion to metrics. Raw
 * latency and perf values are kept so percentiles are exact; a 10 s / 60 s window of one variant
 * is small enough, and the state is dropped once the window is emitted.
 */
import { quantileSorted } from 'simple-statistics';
import { isRequestError, latencyOf, perfValueOf } from './classify.ts';
import type { LatencyStats, MetricWindow, PerfStats, TelemetryEvent, WindowMetrics, WindowSize } from './types.ts';

/** JSON form of a window's state (inside `AggregatorSnapshot`). */
export interface WindowStateJson {
  itemId: string;
  variant: string;
  windowSize: WindowSize;
  windowStart: number;
  events: number;
  sessions: string[];
  users: string[];
  errors: number;
  errorSessions: string[];
  requests: number;
  requestErrors: number;
  latencies: number[];
  perf: [string, number[]][];
  conversions: [string, string[]][];
}

export class WindowState {
  events = 0;
  readonly sessions = new Set<string>();
  readonly users = new Set<string>();
  errors = 0;
  readonly errorSessions = new Set<string>();
  requests = 0;
  requestErrors = 0;
  readonly latencies: number[] = [];
  readonly perf = new Map<string, number[]>();
  readonly conversions = new Map<string, Set<string>>();

  constructor(
    readonly itemId: string,
    readonly variant: string,
    readonly windowSize: WindowSize,
    readonly windowStart: number,
  ) {}

  get windowEnd(): number {
    return this.windowStart + this.windowSize;
  }

  add(e: TelemetryEvent): void {
    this.events++;
    this.sessions.add(e.sessionId);
    this.users.add(e.userId);
    switch (e.type) {
      case 'error':
        this.errors++;
        this.errorSessions.add(e.sessionId);
        break;
      case 'request': {
        this.requests++;
        if (isRequestError(e)) this.requestErrors++;
        const v = latencyOf(e);
        if (v !== null) this.latencies.push(v);
        break;
      }
      case 'perf': {
        const v = perfValueOf(e);
        if (v !== null) {
          const list = this.perf.get(e.name);
          if (list) list.push(v);
          else this.perf.set(e.name, [v]);
        }
        break;
      }
      case 'usage': {
        const set = this.conversions.get(e.name);
        if (set) set.add(e.sessionId);
        else this.conversions.set(e.name, new Set([e.sessionId]));
        break;
      }
      default:
        break;
    }
  }

  toMetricWindow(late: number): MetricWindow {
    const sessions = this.sessions.size;
    const perfEntries = [...this.perf.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const convEntries = [...this.conversions.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const metrics: WindowMetrics = {
      events: this.events,
      sessions,
      users: this.users.size,
      errors: this.errors,
      errorSessions: this.errorSessions.size,
      errorRate: sessions === 0 ? 0 : this.errorSessions.size / sessions,
      requests: this.requests,
      requestErrors: this.requestErrors,
      latency: latencyStats(this.latencies),
      // Object.fromEntries defines own properties, so a client-chosen name like "__proto__" is data.
      perf: Object.fromEntries(perfEntries.map(([name, values]) => [name, perfStats(values)])),
      conversions: Object.fromEntries(
        convEntries.map(([point, set]) => [point, { sessions: set.size, rate: sessions === 0 ? 0 : set.size / sessions }]),
      ),
      rate: this.events / (this.windowSize / 1000),
    };
    return {
      itemId: this.itemId,
      variant: this.variant,
      windowSize: this.windowSize,
      windowStart: this.windowStart,
      windowEnd: this.windowEnd,
      metrics,
      late,
    };
  }

  toJSON(): WindowStateJson {
    return {
      itemId: this.itemId,
      variant: this.variant,
      windowSize: this.windowSize,
      windowStart: this.windowStart,
      events: this.events,
      sessions: [...this.sessions],
      users: [...this.users],
      errors: this.errors,
      errorSessions: [...this.errorSessions],
      requests: this.requests,
      requestErrors: this.requestErrors,
      latencies: [...this.latencies],
      perf: [...this.perf.entries()].map(([k, v]) => [k, [...v]]),
      conversions: [...this.conversions.entries()].map(([k, v]) => [k, [...v]]),
    };
  }

  static fromJSON(j: WindowStateJson): WindowState {
    const w = new WindowState(j.itemId, j.variant, j.windowSize, j.windowStart);
    w.events = j.events;
    j.sessions.forEach((s) => w.sessions.add(s));
    j.users.forEach((u) => w.users.add(u));
    w.errors = j.errors;
    j.errorSessions.forEach((s) => w.errorSessions.add(s));
    w.requests = j.requests;
    w.requestErrors = j.requestErrors;
    w.latencies.push(...j.latencies);
    for (const [k, v] of j.perf) w.perf.set(k, [...v]);
    for (const [k, v] of j.conversions) w.conversions.set(k, new Set(v));
    return w;
  }
}

/**
 * Exact quantile by linear interpolation between order statistics (Hyndman & Fan type 7):
 * h = (n − 1)·p, q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]). This is DuckDB `quantile_cont`, numpy
 * `quantile(method='linear')` and simple-statistics `quantileSorted` (7.x), which is used here.
 */
export function quantileCont(sorted: readonly number[], p: number): number {
  return quantileSorted(sorted as number[], p);
}

/**
 * Sums run over the SORTED values so a window's numbers do not depend on arrival order (float
 * addition is not associative; the property test checks bit-identical windows across orders).
 */
export function latencyStats(values: readonly number[]): LatencyStats {
  const count = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  let sum = 0;
  let sumSq = 0;
  for (const v of sorted) {
    sum += v;
    sumSq += v * v;
  }
  if (count === 0) return { count, sum, sumSq, mean: null, min: null, max: null, p50: null, p95: null, p99: null };
  return {
    count,
    sum,
    sumSq,
    mean: sum / count,
    min: sorted[0],
    max: sorted[count - 1],
    p50: quantileCont(sorted, 0.5),
    p95: quantileCont(sorted, 0.95),
    p99: quantileCont(sorted, 0.99),
  };
}

function perfStats(values: readonly number[]): PerfStats {
  const sorted = [...values].sort((a, b) => a - b);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: sorted.length, mean: sum / sorted.length, p95: quantileCont(sorted, 0.95) };
}

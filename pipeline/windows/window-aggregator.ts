/**
 * Event-time tumbling windows (10 s and 60 s by default) per item × variant, plus the cumulative
 * aggregate per item × variant × latest profile version. Pure: no I/O, no timers, no Date.now();
 * time enters only through event `ts` and `advanceWatermark(now)`.
 *
 * Guarantees (details and formulas in pipeline/windows/README.md):
 * - Windows are [start, start + size) with start a multiple of size (epoch-aligned).
 * - watermark = max(max over events of min(ts, receivedAt), last advanceWatermark(now)) −
 *   allowedLatenessMs, monotone. A window closes — is returned once and its state dropped — when
 *   watermark ≥ windowEnd. An event never moves the watermark past its receive time, so one
 *   future-dated event cannot turn everyone else's events late (issue 17 item 1).
 * - Bounded state (issue 17 item 4): cumulative aggregates and pending late counts are LRU maps
 *   (caps `maxArms`), sessions per aggregate are capped (`maxSessionsPerArm`), open windows
 *   (`maxOpenWindows`) and remembered ids (`maxDedupIds`) too; every drop is counted in `bounds`.
 * - An event whose window (per size) is already closed is LATE for that size: it is counted in
 *   `late` of the next emitted window of the same item × variant × size and handed to `onLate`
 *   once (so the sink can still store it). It still counts in the cumulative aggregate.
 * - Delivery is idempotent: an event id seen within `dedupRetentionMs` of event time behind the
 *   watermark is ignored (counted in `duplicates`). Older duplicates are treated as new late
 *   events; the sink de-duplicates stored rows by id.
 * - Any arrival order in which no event is late yields identical windows (property-tested).
 * - `snapshot()` is plain JSON; `restore()` on a fresh aggregator continues identically.
 * - Only verified events count (`countsInComparisons`): an unverified one changes nothing — no
 *   window, no cumulative, not even the watermark (a forged future timestamp must not turn
 *   everyone else's events late) — and is only counted in `unverified`.
 *
 * Windows are per item × variant: the reserved variant `control` is ONE arm per item here (the
 * control cohorts of all its shadows pooled; pipeline/windows/README.md says why), while the
 * cumulative aggregates keep each shadow's control cohort apart (item × `control` × controlOf).
 */
import { ConfigError, ValidationError } from '../errors.ts';
import { countsInComparisons } from './classify.ts';
import { LruMap } from '../bounded/lru.ts';
import { addToCumulative, armOf, overSessionCap, cloneCumulative, cumulativeFromJSON, cumulativeToJSON, emptyCumulative, type CumulativeAggregate, type CumulativeJson } from './cumulative.ts';
import { WINDOW_SIZES, type MetricWindow, type TelemetryEvent, type WindowSize } from './types.ts';
import { WindowState, type WindowStateJson } from './window-state.ts';

export interface WindowAggregatorOptions {
  /** Default [10000, 60000]. */
  windowSizes?: readonly WindowSize[];
  /** How far behind the newest event time the watermark trails. Default 5000 ms. */
  allowedLatenessMs?: number;
  /** How long (event time behind the watermark) an id is remembered for de-duplication. Default 2 × largest window. */
  dedupRetentionMs?: number;
  /** Called once per late event with the window sizes it was late for. */
  onLate?: (event: TelemetryEvent, lateForSizes: WindowSize[]) => void;
  /** Cap on cumulative aggregates (item × variant arms), LRU-evicted. Default 10 000. */
  maxArms?: number;
  /** Cap on sessions held by one cumulative aggregate; events of further sessions are left out. Default 200 000. */
  maxSessionsPerArm?: number;
  /** Cap on open windows; an event whose window cannot open is left out of it. Default 200 000. */
  maxOpenWindows?: number;
  /** Cap on ids remembered for de-duplication; the oldest time bucket is forgotten first. Default 1 000 000. */
  maxDedupIds?: number;
  /**
   * Keep the cumulative aggregates (`cumulativeOf`, `cumulatives`, snapshots). Default true. The
   * metrics processor passes false: its ComparisonStore keeps the same aggregates per arm, and a
   * second copy nobody reads cost an LRU touch and a fold per event (issue 15 item 1).
   */
  cumulatives?: boolean;
}

/** What the caps dropped so far (processor health → Prometheus `penumbra_health_stat`). */
export interface AggregatorBounds {
  /** Cumulative aggregates evicted (least recently updated arm first). */
  armsEvicted: number;
  /** Pending late counts evicted with their arm (those late events are not reported). */
  lateCountsEvicted: number;
  /** Events left out of a cumulative aggregate because it held maxSessionsPerArm sessions. */
  sessionsRefused: number;
  /** Event × window size contributions left out because maxOpenWindows windows were open. */
  windowsRefused: number;
  /** Ids forgotten early to stay within maxDedupIds (a re-delivery of one would count twice). */
  dedupIdsEvicted: number;
}

export interface AggregatorSnapshot {
  version: 1;
  windowSizes: WindowSize[];
  allowedLatenessMs: number;
  /** null = no watermark yet (−∞). */
  watermark: number | null;
  duplicates: number;
  windows: WindowStateJson[];
  /** [itemId, variant, windowSize, pending late count]. */
  late: [string, string, WindowSize, number][];
  /** [event id, event ts] still remembered for de-duplication. */
  seen: [string, number][];
  cumulative: CumulativeJson[];
}

// Keys join parts with U+0000, which cannot collide with ordinary ids.
const SEP = '\u0000';
const keyOf = (...parts: (string | number)[]): string => parts.join(SEP);

function compareWindows(a: MetricWindow, b: MetricWindow): number {
  return (
    a.windowEnd - b.windowEnd ||
    a.windowSize - b.windowSize ||
    (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0) ||
    (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0)
  );
}

/**
 * What `add` and the watermark advances return when nothing closed — nearly every event: one
 * shared, frozen empty array instead of a new one per event (garbage in a metrics member's
 * hottest path). Frozen: a caller that tried to push into it would throw rather than corrupt it.
 */
const NO_WINDOWS: MetricWindow[] = Object.freeze([]) as unknown as MetricWindow[];

export class WindowAggregator {
  readonly windowSizes: readonly WindowSize[];
  readonly allowedLatenessMs: number;
  readonly dedupRetentionMs: number;
  private readonly onLate?: WindowAggregatorOptions['onLate'];

  readonly maxArms: number;
  readonly maxSessionsPerArm: number;
  readonly maxOpenWindows: number;
  readonly maxDedupIds: number;
  private readonly bound: AggregatorBounds = { armsEvicted: 0, lateCountsEvicted: 0, sessionsRefused: 0, windowsRefused: 0, dedupIdsEvicted: 0 };

  private wm = -Infinity;
  private dupCount = 0;
  private unverifiedCount = 0;
  /** Open windows by key (item, variant, size, start). */
  private readonly open = new Map<string, WindowState>();
  /**
   * item → variant → the open window per size (index in windowSizes) the arm's last event went
   * to: the next event of the arm in the same windows — nearly every one — finds them with two
   * lookups on the strings it carries, without building (and hashing) a key per size. Cleared
   * whenever a window closes (and on restore), so it never holds a closed window.
   */
  private hot = new Map<string, Map<string, (WindowState | undefined)[]>>();
  /** windowEnd → keys of open windows ending there: closing touches only due windows. */
  private readonly byEnd = new Map<number, Set<string>>();
  /** (item, variant, size) → late events not yet reported. */
  private readonly lateCounts: LruMap<string, { itemId: string; variant: string; size: WindowSize; n: number }>;
  /** id → ts, plus a bucket index (by smallest window) so expiry never scans every id. */
  private readonly seen = new Map<string, number>();
  private readonly seenBuckets = new Map<number, string[]>();
  /**
   * The lowest watermark at which `advanceTo` has anything to do: a window end or a dedup bucket's
   * expiry (never above the true minimum; lowered whenever one is added). The watermark moves with
   * almost every event, and scanning both maps each time was ≈ 4 % of a metrics member's CPU
   * (issue 15 item 1); below this it only moves the watermark.
   */
  private due = -Infinity;
  /** (item, variant, controlOf) → cumulative aggregate of its newest profile version (LRU, maxArms). */
  private readonly cumulative: LruMap<string, CumulativeAggregate>;
  private readonly keepCumulatives: boolean;

  constructor(options: WindowAggregatorOptions = {}) {
    this.keepCumulatives = options.cumulatives ?? true;
    this.maxArms = options.maxArms ?? 10_000;
    this.maxSessionsPerArm = options.maxSessionsPerArm ?? 200_000;
    this.maxOpenWindows = options.maxOpenWindows ?? 200_000;
    this.maxDedupIds = options.maxDedupIds ?? 1_000_000;
    this.cumulative = new LruMap(this.maxArms, { onEvict: () => this.bound.armsEvicted++ });
    this.lateCounts = new LruMap(this.maxArms * Math.max(1, options.windowSizes?.length ?? WINDOW_SIZES.length), { onEvict: () => this.bound.lateCountsEvicted++ });
    this.windowSizes = [...(options.windowSizes ?? WINDOW_SIZES)].sort((a, b) => a - b);
    this.allowedLatenessMs = options.allowedLatenessMs ?? 5000;
    this.dedupRetentionMs = options.dedupRetentionMs ?? 2 * Math.max(...this.windowSizes);
    this.onLate = options.onLate;
    if (this.windowSizes.length === 0 || this.windowSizes.some((s) => !(Number.isInteger(s) && s > 0))) {
      throw new ConfigError(`windowSizes must be positive integers, got ${JSON.stringify(options.windowSizes)}`);
    }
    if (!(this.allowedLatenessMs >= 0) || !(this.dedupRetentionMs >= 0)) {
      throw new ConfigError('allowedLatenessMs and dedupRetentionMs must be ≥ 0');
    }
  }

  /** Current watermark (−Infinity before the first event or advance). */
  get watermark(): number {
    return this.wm;
  }

  /** Duplicate deliveries ignored so far. */
  get duplicates(): number {
    return this.dupCount;
  }

  /** Unverified events ignored so far (they are counted per reason by the processor). */
  get unverified(): number {
    return this.unverifiedCount;
  }

  /** What the caps dropped so far (counters), plus current sizes. */
  get bounds(): AggregatorBounds & { arms: number; dedupIds: number } {
    return { ...this.bound, arms: this.cumulative.size, dedupIds: this.seen.size };
  }

  /** Number of open windows (for memory monitoring). */
  get openWindows(): number {
    return this.open.size;
  }

  /** Adds one event; returns the windows this closed (ordered by end, size, item, variant). */
  add(e: TelemetryEvent): MetricWindow[] {
    if (typeof e.id !== 'string' || e.id === '' || !Number.isFinite(e.ts)) {
      throw new ValidationError(`telemetry event needs a non-empty id and a finite ts (id=${String(e.id)})`);
    }
    if (!countsInComparisons(e)) {
      this.unverifiedCount++;
      return [];
    }
    if (this.seen.has(e.id)) {
      this.dupCount++;
      return [];
    }
    this.remember(e.id, e.ts);
    if (this.keepCumulatives) this.addCumulative(e);
    let lateFor: WindowSize[] | null = null;
    // item SEP variant SEP, built only when a key is needed (a late count, or a window the hot
    // map does not hold): keyOf's rest array and join for every size were a visible share of the
    // processor's allocations.
    let arm: string | null = null;
    let byVariant = this.hot.get(e.itemId);
    let slots = byVariant?.get(e.variant);
    const sizes = this.windowSizes;
    for (let i = 0; i < sizes.length; i++) {
      const size = sizes[i];
      const start = Math.floor(e.ts / size) * size;
      const end = start + size;
      if (end <= this.wm) {
        (lateFor ??= []).push(size);
        const lk = `${(arm ??= `${e.itemId}${SEP}${e.variant}${SEP}`)}${size}`;
        const entry = this.lateCounts.get(lk);
        if (entry) entry.n++;
        else this.lateCounts.set(lk, { itemId: e.itemId, variant: e.variant, size, n: 1 });
        continue;
      }
      let w = slots?.[i];
      if (w === undefined || w.windowStart !== start) {
        const k = `${(arm ??= `${e.itemId}${SEP}${e.variant}${SEP}`)}${size}${SEP}${start}`;
        w = this.open.get(k);
        if (!w) {
          if (this.open.size >= this.maxOpenWindows) {
            this.bound.windowsRefused++;
            continue;
          }
          w = new WindowState(e.itemId, e.variant, size, start);
          this.open.set(k, w);
          let keys = this.byEnd.get(end);
          if (!keys) {
            this.byEnd.set(end, (keys = new Set()));
            if (end < this.due) this.due = end;
          }
          keys.add(k);
        }
        if (!slots) {
          if (!byVariant) this.hot.set(e.itemId, (byVariant = new Map()));
          byVariant.set(e.variant, (slots = new Array<WindowState | undefined>(sizes.length)));
        }
        slots[i] = w;
      }
      w.add(e);
    }
    if (lateFor !== null) this.onLate?.(e, lateFor);
    // Never past the receive time: min(ts, receivedAt) (the processor also caps receivedAt at its clock).
    const clock = typeof e.receivedAt === 'number' && Number.isFinite(e.receivedAt) ? Math.min(e.ts, e.receivedAt) : e.ts;
    return this.advanceTo(clock - this.allowedLatenessMs);
  }

  /** Adds events in order; returns every window closed meanwhile, in emission order. */
  addAll(events: Iterable<TelemetryEvent>): MetricWindow[] {
    const out: MetricWindow[] = [];
    for (const e of events) out.push(...this.add(e));
    return out;
  }

  /**
   * Wall-clock progress for quiet streams: watermark ← max(watermark, now − allowedLatenessMs).
   * Returns the windows this closed.
   */
  advanceWatermark(now: number): MetricWindow[] {
    if (!Number.isFinite(now)) throw new ValidationError(`advanceWatermark needs a finite time, got ${now}`);
    return this.advanceTo(now - this.allowedLatenessMs);
  }

  /** Closes every open window (shutdown, tests): the watermark moves to the last open window end. */
  flush(): MetricWindow[] {
    if (this.byEnd.size === 0) return [];
    return this.advanceTo(Math.max(...this.byEnd.keys()));
  }

  /** Cumulative aggregate (copy) of an arm for its newest profile version, if any (`controlOf` for variant control). */
  cumulativeOf(itemId: string, variant: string, controlOf: string | null = null): CumulativeAggregate | undefined {
    const agg = this.cumulative.get(keyOf(itemId, variant, controlOf ?? ''));
    return agg && cloneCumulative(agg);
  }

  /** Copies of all cumulative aggregates. */
  cumulatives(): CumulativeAggregate[] {
    return [...this.cumulative.values()].map(cloneCumulative);
  }

  snapshot(): AggregatorSnapshot {
    return {
      version: 1,
      windowSizes: [...this.windowSizes],
      allowedLatenessMs: this.allowedLatenessMs,
      watermark: Number.isFinite(this.wm) ? this.wm : null,
      duplicates: this.dupCount,
      windows: [...this.open.values()].map((w) => w.toJSON()),
      late: [...this.lateCounts.values()].map((l) => [l.itemId, l.variant, l.size, l.n]),
      seen: [...this.seen.entries()],
      cumulative: [...this.cumulative.values()].map(cumulativeToJSON),
    };
  }

  /** Replaces all state with a snapshot taken by an aggregator with the same window sizes and lateness. */
  restore(s: AggregatorSnapshot): void {
    if (s.version !== 1) throw new ValidationError(`unsupported aggregator snapshot version ${String(s.version)}`);
    const sizes = [...s.windowSizes].sort((a, b) => a - b);
    if (sizes.join() !== this.windowSizes.join() || s.allowedLatenessMs !== this.allowedLatenessMs) {
      throw new ConfigError(
        `snapshot was taken with windowSizes=${sizes.join()} lateness=${s.allowedLatenessMs}, ` +
          `aggregator has ${this.windowSizes.join()} lateness=${this.allowedLatenessMs}`,
      );
    }
    this.wm = s.watermark ?? -Infinity;
    this.due = -Infinity; // rescanned at the next advance
    this.dupCount = s.duplicates;
    this.open.clear();
    this.hot = new Map();
    this.byEnd.clear();
    for (const j of s.windows) {
      const w = WindowState.fromJSON(j);
      const k = keyOf(w.itemId, w.variant, w.windowSize, w.windowStart);
      this.open.set(k, w);
      let keys = this.byEnd.get(w.windowEnd);
      if (!keys) this.byEnd.set(w.windowEnd, (keys = new Set()));
      keys.add(k);
    }
    this.lateCounts.clear();
    for (const [itemId, variant, size, n] of s.late) this.lateCounts.set(keyOf(itemId, variant, size), { itemId, variant, size, n });
    this.seen.clear();
    this.seenBuckets.clear();
    for (const [id, ts] of s.seen) this.remember(id, ts);
    this.cumulative.clear();
    for (const j of s.cumulative) {
      const c = cumulativeFromJSON(j);
      this.cumulative.set(keyOf(c.itemId, c.variant, c.controlOf ?? ''), c);
    }
  }

  private addCumulative(e: TelemetryEvent): void {
    const arm = armOf(e);
    const k = keyOf(e.itemId, arm.variant, arm.controlOf ?? '');
    let agg = this.cumulative.get(k);
    if (!agg) this.cumulative.set(k, (agg = emptyCumulative(e.itemId, arm.variant, e.profileVersion, arm.controlOf)));
    if (overSessionCap(agg, e, this.maxSessionsPerArm)) {
      this.bound.sessionsRefused++;
      return;
    }
    addToCumulative(agg, e);
  }

  private remember(id: string, ts: number): void {
    if (ts + this.dedupRetentionMs <= this.wm) return; // would expire at once
    this.seen.set(id, ts);
    const bucket = Math.floor(ts / this.windowSizes[0]) * this.windowSizes[0];
    const ids = this.seenBuckets.get(bucket);
    if (ids) ids.push(id);
    else {
      this.seenBuckets.set(bucket, [id]);
      const expiry = bucket + this.windowSizes[0] + this.dedupRetentionMs;
      if (expiry < this.due) this.due = expiry;
    }
    if (this.seen.size > this.maxDedupIds) this.forgetOldestIds();
  }

  /** Over maxDedupIds: forget whole buckets, oldest event time first (never the one just added). */
  private forgetOldestIds(): void {
    while (this.seen.size > this.maxDedupIds && this.seenBuckets.size > 1) {
      const oldest = Math.min(...this.seenBuckets.keys());
      for (const id of this.seenBuckets.get(oldest)!) if (this.seen.delete(id)) this.bound.dedupIdsEvicted++;
      this.seenBuckets.delete(oldest);
    }
  }

  private advanceTo(w: number): MetricWindow[] {
    if (!(w > this.wm)) return NO_WINDOWS;
    this.wm = w;
    if (w < this.due) return NO_WINDOWS; // no window ends and no dedup bucket expires at or below w
    let due = Infinity;
    // Forget ids whose every event time satisfies ts + retention ≤ watermark.
    const width = this.windowSizes[0];
    for (const [bucket, ids] of this.seenBuckets) {
      const expiry = bucket + width + this.dedupRetentionMs;
      if (expiry <= w) {
        for (const id of ids) this.seen.delete(id);
        this.seenBuckets.delete(bucket);
      } else if (expiry < due) due = expiry;
    }
    const out: MetricWindow[] = [];
    for (const [end, keys] of this.byEnd) {
      if (end > w) {
        if (end < due) due = end;
        continue;
      }
      // Windows close here: the hot map must not hand one out again.
      if (this.hot.size > 0) this.hot = new Map();
      for (const k of keys) {
        const state = this.open.get(k);
        this.open.delete(k);
        if (!state) continue;
        const lk = keyOf(state.itemId, state.variant, state.windowSize);
        const late = this.lateCounts.get(lk)?.n ?? 0;
        this.lateCounts.delete(lk);
        out.push(state.toMetricWindow(late));
      }
      this.byEnd.delete(end);
    }
    this.due = due;
    return out.sort(compareWindows);
  }
}

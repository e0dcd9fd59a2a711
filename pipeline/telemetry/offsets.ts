/**
 * Offset bookkeeping of the metrics processor (pure, no Kafka): which offset of a telemetry.raw
 * partition may be committed without ever losing an event's contribution to a window.
 *
 * Rule: commit, per partition, the lowest offset whose event still contributes to an OPEN window
 * (or, when none does, one past the last processed offset). Everything below it only fed windows
 * that were already emitted AND acknowledged by Kafka. So after a crash the group resumes at that
 * offset and the replay rebuilds every open window from scratch.
 *
 * The replay also re-reads events whose windows were already emitted (they sit between the
 * committed offset and the crash point). Re-aggregating them would emit a PARTIAL copy of a
 * complete window, and the warehouse upserts by (item, variant, size, start) — the partial copy
 * would win. So every commit carries metadata `{wm, hi}`: the aggregator watermark at commit time
 * (every window ending at or before it was emitted and acked) and the next offset processed. On
 * assignment the processor reads it back: an event below `hi` whose windows all end at or before
 * `wm` is skipped (it was counted already), and the aggregator's watermark is raised to `wm`
 * first, so a window that was emitted is never re-opened (an event that is half done — its 10 s
 * window emitted, its 60 s window not — counts as late for the emitted size).
 *
 * Memory: a few segments per partition (first offset, window end) with strictly increasing ends
 * — see `track`.
 */

export interface ReplayMark {
  /** Aggregator watermark when the offset was committed: windows ending ≤ wm were emitted. */
  wm: number;
  /** Next offset the committing process had processed (exclusive). */
  hi: bigint;
}

const META_VERSION = 1;

export function encodeCommitMeta(m: ReplayMark): string {
  return JSON.stringify({ v: META_VERSION, wm: Number.isFinite(m.wm) ? m.wm : null, hi: m.hi.toString() });
}

/** Parses commit metadata written by encodeCommitMeta; anything else (or none) → null. */
export function decodeCommitMeta(s: string | null | undefined): ReplayMark | null {
  if (!s) return null;
  try {
    const j = JSON.parse(s) as { v?: unknown; wm?: unknown; hi?: unknown };
    if (j.v !== META_VERSION || typeof j.hi !== 'string' || !/^\d+$/.test(j.hi)) return null;
    const wm = typeof j.wm === 'number' && Number.isFinite(j.wm) ? j.wm : -Infinity;
    return { wm, hi: BigInt(j.hi) };
  } catch {
    return null;
  }
}

interface Segment {
  first: bigint;
  end: number;
}

export class PartitionProgress {
  private segs: Segment[] = [];
  private head = 0;
  /** One past the highest offset tracked; null before the first. */
  private nextOffset: bigint | null = null;
  /** Last committed offset (what we told Kafka), null before the first commit. */
  committed: bigint | null = null;
  /** Metadata sent with it. */
  committedMeta: string | null = null;

  constructor(
    readonly partition: number,
    /** What the previous owner committed (null: no metadata, nothing is skipped). */
    readonly replay: ReplayMark | null = null,
  ) {}

  get next(): bigint | null {
    return this.nextOffset;
  }

  get segments(): number {
    return this.segs.length - this.head;
  }

  /** The event at `offset` was counted by a previous owner in windows that are all emitted. */
  alreadyEmitted(offset: bigint, lastWindowEnd: number): boolean {
    return this.replay !== null && offset < this.replay.hi && lastWindowEnd <= this.replay.wm;
  }

  /**
   * Record that the event at `offset` contributes to open windows ending at most at `end`
   * (−Infinity: to no open window). Offsets below `next` were tracked already (a re-delivery
   * after a rebalance) and are ignored.
   */
  track(offset: bigint, end: number): void {
    if (this.nextOffset !== null && offset < this.nextOffset) return;
    this.nextOffset = offset + 1n;
    // An event ending no later than the newest segment is covered by it: while that segment is
    // open the safe offset is at or below its first offset (< this one); once it closed, so did
    // every window of this event. So segment ends strictly increase and there are at most as
    // many segments as distinct open window ends (a handful).
    const last = this.segs.length > this.head ? this.segs[this.segs.length - 1] : undefined;
    if (!(end > -Infinity) || (last && end <= last.end)) return;
    this.segs.push({ first: offset, end });
  }

  /**
   * Offset that is safe to commit once every window ending ≤ `watermark` has been emitted and
   * acknowledged: the first offset still feeding an open window, else `next`. Null when nothing
   * was tracked yet.
   */
  safeOffset(watermark: number): bigint | null {
    while (this.head < this.segs.length && this.segs[this.head].end <= watermark) this.head++;
    if (this.head > 64 && this.head * 2 > this.segs.length) {
      this.segs = this.segs.slice(this.head);
      this.head = 0;
    }
    if (this.head < this.segs.length) return this.segs[this.head].first;
    return this.nextOffset;
  }
}

/**
 * End of the latest open window an event at `ts` feeds, given the watermark before it was added
 * (a window is open while its end is above the watermark), or −Infinity when it is late for every
 * size. Sizes in ms; windows are epoch-aligned [start, start + size).
 */
export function contributionEnd(ts: number, sizes: readonly number[], watermarkBefore: number): number {
  let end = -Infinity;
  for (const s of sizes) {
    const e = Math.floor(ts / s) * s + s;
    if (e > watermarkBefore && e > end) end = e;
  }
  return end;
}

/** End of the latest window (any size) an event at `ts` belongs to. */
export function lastWindowEnd(ts: number, sizes: readonly number[]): number {
  let end = -Infinity;
  for (const s of sizes) end = Math.max(end, Math.floor(ts / s) * s + s);
  return end;
}

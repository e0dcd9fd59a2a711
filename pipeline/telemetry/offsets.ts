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
  first: number;
  end: number;
}

/**
 * Offsets are kept as numbers inside (exact below 2^53 — 9·10^15 records per partition, centuries
 * at a million a second): the window stage tracks every record, and a BigInt per record was a
 * heap object and a string parse each (docs/scaling.md "where the CPU goes"). The API still speaks
 * bigint where offsets leave it (commits, marks); the per-record methods take a number too.
 */
export class PartitionProgress {
  private segs: Segment[] = [];
  private head = 0;
  /** One past the highest offset tracked; −1 before the first. */
  private nextOffset = -1;
  /** The replay mark's `hi` as a number (−1: no mark). */
  private readonly replayHi: number;
  /** Last committed offset (what we told Kafka), null before the first commit. */
  committed: bigint | null = null;
  /** Metadata sent with it. */
  committedMeta: string | null = null;

  constructor(
    readonly partition: number,
    /** What the previous owner committed (null: no metadata, nothing is skipped). */
    readonly replay: ReplayMark | null = null,
  ) {
    this.replayHi = replay === null ? -1 : Number(replay.hi);
  }

  get next(): bigint | null {
    return this.nextOffset < 0 ? null : BigInt(this.nextOffset);
  }

  get segments(): number {
    return this.segs.length - this.head;
  }

  /**
   * A raw record at `offset` was already handled by the window stage's forwarding: by this member
   * (below `next`: a re-delivery after a rebalance; a forward still un-acked is retried, not sent
   * again) or by a previous owner (below the marks' `hi`, which never passes an un-acked forward:
   * `rawCommitPoint`). Such a record is not forwarded again.
   */
  forwardedBefore(offset: bigint | number): boolean {
    const o = Number(offset);
    return o < this.nextOffset || o < this.replayHi;
  }

  /** The event at `offset` was counted by a previous owner in windows that are all emitted. */
  alreadyEmitted(offset: bigint | number, lastWindowEnd: number): boolean {
    return this.replay !== null && Number(offset) < this.replayHi && lastWindowEnd <= this.replay.wm;
  }

  /**
   * Record that the event at `offset` contributes to open windows ending at most at `end`
   * (−Infinity: to no open window). Offsets below `next` were tracked already (a re-delivery
   * after a rebalance) and are ignored.
   */
  track(offset: bigint | number, end: number): void {
    const o = Number(offset);
    if (o < this.nextOffset) return;
    this.nextOffset = o + 1;
    // An event ending no later than the newest segment is covered by it: while that segment is
    // open the safe offset is at or below its first offset (< this one); once it closed, so did
    // every window of this event. So segment ends strictly increase and there are at most as
    // many segments as distinct open window ends (a handful).
    if (!(end > -Infinity)) return;
    const last = this.segs.length > this.head ? this.segs[this.segs.length - 1] : undefined;
    if (last && end <= last.end) return;
    this.segs.push({ first: o, end });
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
    if (this.head < this.segs.length) return BigInt(this.segs[this.head].first);
    return this.next;
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

/**
 * Forwards of one telemetry.raw input not yet acknowledged by Kafka (issue 15 item 1: the window
 * stage forwards the raw records that are not in their item's partition to telemetry.by-item
 * itself). A batch's forwards are one entry, keyed by the first raw offset they copy; raw's
 * committed offset — and the `hi` of its commit marks — never pass the first un-acknowledged
 * entry (`rawCommitPoint`), so a crash re-forwards at most what was not acknowledged, and a
 * replay below a committed `hi` forwards nothing again (`PartitionProgress.forwardedBefore`).
 * Entries are added in offset order (one batch after another); acks may come in any order.
 */
export class PendingForwards {
  private entries: { id: number; first: bigint; records: number }[] = [];
  private nextId = 0;
  /** Records forwarded and not yet acknowledged. */
  records = 0;

  /** A batch's forwards, the first of which copies raw offset `first`; returns its id for `ack`. */
  add(first: bigint, records: number): number {
    const id = this.nextId++;
    this.entries.push({ id, first, records });
    this.records += records;
    return id;
  }

  /** Kafka acknowledged entry `id` (unknown ids: no-op). */
  ack(id: number): void {
    const i = this.entries.findIndex((e) => e.id === id);
    if (i < 0) return;
    this.records -= this.entries[i].records;
    this.entries.splice(i, 1);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Lowest raw offset of an un-acknowledged forward; null when every forward was acknowledged. */
  get floor(): bigint | null {
    let f: bigint | null = null;
    for (const e of this.entries) if (f === null || e.first < f) f = e.first;
    return f;
  }
}

/**
 * The commit of a raw input with forwards in flight (pure): the offset is the window rule's
 * `safe` offset, lowered to the first un-acknowledged forward; `hi` (the next offset processed,
 * in the marks) likewise — below `hi` every record was windowed or forwarded AND acknowledged,
 * which the next owner relies on to forward nothing twice and the wall clock to know raw was
 * read to the end. `safe`/`next` null: nothing known yet (no commit).
 */
export function rawCommitPoint(safe: bigint | null, next: bigint | null, floor: bigint | null): { offset: bigint; hi: bigint } | null {
  if (safe === null || next === null) return null;
  const low = (a: bigint) => (floor !== null && floor < a ? floor : a);
  return { offset: low(safe), hi: low(next) };
}

/**
 * Records of telemetry.raw not yet windowed-or-forwarded-and-acknowledged (pure), summed over its
 * partitions: end offset − how far the partition is done. A partition this member owns counts
 * from its live position (`local`, already lowered to its un-acked forwards); any other from the
 * group's committed marks (`hi`), else the committed offset, else its low end. The wall clock
 * closes windows only at 0 (README "The hop-free path"): a raw partition orphaned by a crashed
 * member, or with forwards in flight, may still feed any by-item partition.
 */
export function rawForwardLag(
  ends: readonly { partition: number; high: bigint; low: bigint }[],
  committed: ReadonlyMap<number, { offset: bigint; hi: bigint | null }>,
  local: ReadonlyMap<number, bigint>,
): number {
  let lag = 0;
  for (const o of ends) {
    const c = committed.get(o.partition);
    const done = local.get(o.partition) ?? c?.hi ?? (c && c.offset >= 0n ? c.offset : o.low);
    if (o.high > done) lag += Number(o.high - done);
  }
  return lag;
}

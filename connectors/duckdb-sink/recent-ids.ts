/**
 * The de-duplication index of `telemetry_events`: the ids the sink stored recently, as 53-bit
 * hashes in open-addressing tables (16 bytes per id), one table per time slice of `received_at`,
 * so old slices are dropped whole. Pure: no DuckDB, no Kafka.
 *
 * Why not the table's primary key: the key's index (an ART in DuckDB) made every insert 3-4×
 * as expensive as the insert itself and grew with the table (docs/warehouse.md "Throughput").
 * Duplicates of an event come from retries — the injected library retries a batch for at most a
 * page's lifetime with a backoff of ≤ 60 s, the collector's producer within seconds — so they
 * arrive within minutes of the first copy. The index covers `horizonMs` of arrivals (and at most
 * `maxIds` ids: under a load that would exceed it, the oldest slice goes first and the covered
 * span shrinks; `coveredMs()` says how far it reaches). A hash hit is only a candidate: the sink
 * confirms it against the stored rows before dropping anything, so a hash collision can never
 * lose an event.
 */

/** 53-bit hash of a string (two FNV-1a 32-bit passes with different offsets), never 0. */
export function hashId(s: string): number {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  const h = (a >>> 0) * 2 ** 21 + ((b >>> 0) & 0x1fffff);
  return h === 0 ? 1 : h;
}

/**
 * `hashId` of the UTF-8 string in `buf[start, end)`, read from the bytes (no JavaScript string),
 * or 0 when a byte is not ASCII (then the caller hashes the decoded string: `hashId` works on
 * UTF-16 code units, which equal the bytes for ASCII only). Event ids are ASCII in practice.
 */
export function hashIdBytes(buf: Uint8Array, start: number, end: number): number {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c >= 0x80) return 0;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  const h = (a >>> 0) * 2 ** 21 + ((b >>> 0) & 0x1fffff);
  return h === 0 ? 1 : h;
}

/** Open-addressing set of non-zero doubles (exact integers), linear probing, grown at half full. */
export class HashSet53 {
  private slots: Float64Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    let cap = 1024;
    while (cap < capacity * 2) cap *= 2;
    this.slots = new Float64Array(cap);
    this.mask = cap - 1;
  }

  get bytes(): number {
    return this.slots.byteLength;
  }

  has(h: number): boolean {
    // Low bits of the hash pick the slot (the hash is uniform, so no mixing is needed): `&`
    // takes them exactly (ToInt32 is the value modulo 2^32) and, unlike `%` on a double, cheaply.
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const v = this.slots[i];
      if (v === 0) return false;
      if (v === h) return true;
    }
  }

  add(h: number): void {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const v = this.slots[i];
      if (v === h) return;
      if (v === 0) {
        this.slots[i] = h;
        this.size++;
        return;
      }
    }
  }

  /** Empty it, keeping its capacity. */
  clear(): void {
    this.slots.fill(0);
    this.size = 0;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    const mask = (this.mask = this.slots.length - 1);
    const slots = this.slots;
    for (let k = 0; k < old.length; k++) {
      const v = old[k];
      if (v === 0) continue;
      let i = v & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = v;
    }
  }
}

export interface RecentIdsOptions {
  /** Arrival span the index covers (ms of received_at). */
  horizonMs: number;
  /** Most ids kept; beyond, the oldest slice is dropped early. */
  maxIds: number;
  /** Slices per horizon (default 6). */
  slices?: number;
}

export class RecentIds {
  private readonly spanMs: number;
  private readonly slicesPerHorizon: number;
  /** slice number (floor(receivedAt / spanMs)) → its ids */
  private readonly slices = new Map<number, HashSet53>();
  /** The same sets as an array (has() runs per event: no Map iterator each time). */
  private list: HashSet53[] = [];
  /** The slice of the last add (arrivals of one batch share it). */
  private lastK = NaN;
  private lastSet: HashSet53 | null = null;
  private newest = -Infinity;
  /** First slice still complete after the cap dropped older ones early. */
  private capFloor = -Infinity;

  constructor(private readonly o: RecentIdsOptions) {
    this.slicesPerHorizon = o.slices ?? 6;
    this.spanMs = Math.max(1, Math.ceil(o.horizonMs / this.slicesPerHorizon));
  }

  get size(): number {
    let n = 0;
    for (const s of this.slices.values()) n += s.size;
    return n;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.slices.values()) n += s.bytes;
    return n;
  }

  /** Some stored id may hash to `h` (a candidate to confirm), or certainly none does. */
  has(h: number): boolean {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (list[i].has(h)) return true;
    return false;
  }

  /** Record a stored id's hash under its arrival time. Ids older than the horizon are not kept. */
  add(h: number, receivedAt: number): void {
    const k = Math.floor(receivedAt / this.spanMs);
    let s: HashSet53 | null | undefined = k === this.lastK ? this.lastSet : null;
    if (!s) {
      if (k > this.newest) {
        this.newest = k;
        for (const old of [...this.slices.keys()]) if (old <= k - this.slicesPerHorizon) this.slices.delete(old);
        this.sync();
      }
      if (k <= this.newest - this.slicesPerHorizon) return;
      s = this.slices.get(k);
      if (!s) {
        this.slices.set(k, (s = new HashSet53()));
        this.sync();
      }
      this.lastK = k;
      this.lastSet = s;
    }
    s.add(h);
    if (s.size % 4096 === 0) this.enforceCap();
  }

  /** After the slices changed: the array for has(), and no cached slice that may be gone. */
  private sync(): void {
    this.list = [...this.slices.values()];
    this.lastK = NaN;
    this.lastSet = null;
  }

  private enforceCap(): void {
    while (this.slices.size > 1 && this.size > this.o.maxIds) {
      const oldest = Math.min(...this.slices.keys());
      this.slices.delete(oldest);
      this.capFloor = oldest + 1;
      this.sync();
    }
  }

  /** Epoch ms from which arrivals are covered (rows older may be duplicated by a late retry). */
  coveredFrom(): number | null {
    if (this.newest === -Infinity) return null;
    return Math.max(this.newest - this.slicesPerHorizon + 1, this.capFloor) * this.spanMs;
  }
}

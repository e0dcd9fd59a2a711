/**
 * A Map with a size cap that evicts the least recently used entry (pure, no timers).
 *
 * Why: per-key state fed by untrusted traffic (one entry per item × variant, per session, per
 * rule × item × variant) must not grow without bound under hostile input (issue 17 item 4). The
 * API mirrors the parts of `Map` the pipeline uses, so a `new Map()` field can become a
 * `new LruMap(cap)` without touching its call sites.
 *
 * Recency: `set` and `get` make an entry the most recent; `peek`, `has` and iteration do not.
 * Iteration runs from least to most recently used. When a `set` of a NEW key would exceed `max`,
 * the least recently used entry is removed first, `evictions` grows by one and `onEvict(k, v)` is
 * called (after removal, so the callback may clean up related state). `canEvict(k, v)` can keep
 * an entry that must not be forgotten (an open incident): the oldest evictable entry goes instead;
 * when none is evictable the map exceeds its cap and says so in `overCap` (counted, never silent).
 */
export class LruMap<K, V> implements Iterable<[K, V]> {
  private readonly m = new Map<K, V>();
  /** Entries dropped to stay within `max` since construction. */
  evictions = 0;
  /** Inserts that could not evict (every entry protected by canEvict) and grew past `max`. */
  overCap = 0;

  constructor(
    readonly max: number,
    private readonly hooks: { onEvict?: (key: K, value: V) => void; canEvict?: (key: K, value: V) => boolean } = {},
  ) {
    if (!(Number.isInteger(max) && max > 0)) throw new RangeError(`LruMap needs a positive integer cap, got ${max}`);
  }

  get size(): number {
    return this.m.size;
  }

  has(key: K): boolean {
    return this.m.has(key);
  }

  /** Value without refreshing its recency. */
  peek(key: K): V | undefined {
    return this.m.get(key);
  }

  get(key: K): V | undefined {
    if (!this.m.has(key)) return undefined;
    const v = this.m.get(key) as V;
    this.m.delete(key);
    this.m.set(key, v);
    return v;
  }

  set(key: K, value: V): this {
    if (this.m.has(key)) {
      this.m.delete(key);
      this.m.set(key, value);
      return this;
    }
    if (this.m.size >= this.max) this.evictOne();
    this.m.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    return this.m.delete(key);
  }

  clear(): void {
    this.m.clear();
  }

  keys(): IterableIterator<K> {
    return this.m.keys();
  }

  values(): IterableIterator<V> {
    return this.m.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.m.entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.m.entries();
  }

  private evictOne(): void {
    for (const [k, v] of this.m) {
      if (this.hooks.canEvict && !this.hooks.canEvict(k, v)) continue;
      this.m.delete(k);
      this.evictions++;
      this.hooks.onEvict?.(k, v);
      return;
    }
    this.overCap++;
  }
}

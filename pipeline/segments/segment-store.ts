/**
 * Segment definitions in memory, rebuilt from the compacted penumbra.segments topic (key:
 * segment id; the latest record per id wins, `deleted: true` removes it). Every process with the
 * segments feature follows it: the API answers from here and the evaluator reads what to run.
 */
import type { Segment } from '../../schemas/types.generated.ts';

export class SegmentStore {
  private readonly defs = new Map<string, Segment>();
  /** Ids deleted since start, with the delete time (the evaluator cleans their members up). */
  private readonly deletedAt = new Map<string, number>();
  private readonly waiters = new Set<{ check: () => boolean; resolve: () => void }>();

  apply(s: Segment): void {
    const prev = this.defs.get(s.id);
    // Compaction keeps the last record per key; across a replay keep the newest by time as well.
    if (prev && prev.updatedAt > s.updatedAt) return;
    if (s.deleted) {
      this.defs.delete(s.id);
      this.deletedAt.set(s.id, s.updatedAt);
    } else {
      this.defs.set(s.id, s);
      this.deletedAt.delete(s.id);
    }
    for (const w of [...this.waiters]) {
      if (w.check()) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  get(id: string): Segment | undefined {
    return this.defs.get(id);
  }

  all(): Segment[] {
    return [...this.defs.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  isDeleted(id: string): boolean {
    return this.deletedAt.has(id);
  }

  deletedIds(): string[] {
    return [...this.deletedAt.keys()];
  }

  /** Resolves once `check` holds (read-your-writes after producing), or rejects after `timeoutMs`. */
  waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { check, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error('segment change not visible yet'));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }
}

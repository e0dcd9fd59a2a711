/**
 * Segment definitions in memory, rebuilt from the compacted penumbra.segments topic (key:
 * segment id; the latest record per id wins, `deleted: true` removes it). Every process with the
 * segments feature follows it: the API answers from here and the evaluator reads what to run.
 */
import type { Segment } from '../../schemas/types.generated.ts';
import { ChangeWaiters } from '../kafka/change-waiters.ts';

export class SegmentStore {
  private readonly defs = new Map<string, Segment>();
  /** Ids deleted since start, with the delete time (the evaluator cleans their members up). */
  private readonly deletedAt = new Map<string, number>();
  private readonly waiters = new ChangeWaiters('segment change');

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
    this.waiters.wake();
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
    return this.waiters.until(check, timeoutMs);
  }
}

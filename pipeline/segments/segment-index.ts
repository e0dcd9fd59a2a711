/**
 * Every resolver's view of segment memberships (pure, in memory): rebuilt from the compacted
 * penumbra.segments.memberships topic (one record per user: the segments they are in) and
 * penumbra.segments.status (which segments have a membership in force). The traffic split asks
 * it through the SegmentLookup interface.
 *
 * Memory: one CompactSet per segment, 8 bytes per member (53-bit keys, member-hash.ts), so the
 * deployment's budget PENUMBRA_SEGMENT_TOTAL_MEMBERS (default 4,000,000) is ~32 MB per resolver;
 * bench/segments.bench.ts measures it for 1,000,000 members. A key collision makes a non-member
 * look like a member with probability members / 2^53 (≈ 1.1 · 10⁻¹⁰ at 1,000,000).
 *
 * Unknown is not "not a member": until this process has replayed the memberships topic
 * (`markReady`), and for a segment without a good evaluation, `membership` answers -1, which the
 * traffic split treats as a missing attribute (neither `in` nor `not_in` holds). So a resolver
 * that just started never puts a user into a shadow through `segment not_in [...]`.
 */
import type { SegmentLookup } from '../domain/types.ts';
import type { SegmentMembership, SegmentStatus } from '../../schemas/types.generated.ts';
import { CompactSet } from './compact-set.ts';
import { memberKey } from './member-hash.ts';
import { ChangeWaiters } from '../kafka/change-waiters.ts';

export class SegmentIndex implements SegmentLookup {
  private readonly sets = new Map<string, CompactSet>();
  private readonly status = new Map<string, SegmentStatus>();
  private ready = false;
  /** The last user looked up and its key: rules of one resolve ask about the same user. */
  private lastUser = '';
  private lastKey = -1;
  records = 0;
  private readonly waiters = new ChangeWaiters('segment status');

  membership(segmentId: string, userId: string): 1 | 0 | -1 {
    if (!this.ready) return -1;
    const st = this.status.get(segmentId);
    if (st === undefined || st.lastGoodEvaluationId === null) return -1;
    const set = this.sets.get(segmentId);
    if (set === undefined) return 0;
    if (userId !== this.lastUser || this.lastKey < 0) {
      this.lastUser = userId;
      this.lastKey = memberKey(userId);
    }
    return set.has(this.lastKey) ? 1 : 0;
  }

  applyMembership(m: SegmentMembership): void {
    this.records++;
    const key = memberKey(m.userId);
    // The record lists every segment the user is in now: add to those, remove from the rest.
    for (const id of m.segments) {
      let set = this.sets.get(id);
      if (!set) this.sets.set(id, (set = new CompactSet()));
      set.add(key);
    }
    for (const [id, set] of this.sets) if (!m.segments.includes(id)) set.delete(key);
  }

  applyStatus(s: SegmentStatus): void {
    if (s.state === 'deleted') {
      this.status.delete(s.segmentId);
      this.sets.delete(s.segmentId);
      return;
    }
    this.status.set(s.segmentId, s);
    this.waiters.wake();
  }

  /** Resolves once `check` holds (read-your-writes after producing), or rejects after `timeoutMs`. */
  waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(check, timeoutMs);
  }

  private resolveLoaded!: () => void;
  /** Resolves once the memberships and status topics have been replayed (markReady). */
  readonly loaded = new Promise<void>((r) => (this.resolveLoaded = r));

  /** The memberships topic has been replayed: answer from here on, and pack the sets. */
  markReady(): void {
    for (const set of this.sets.values()) set.compact();
    this.ready = true;
    this.resolveLoaded();
  }

  get isReady(): boolean {
    return this.ready;
  }

  getStatus(id: string): SegmentStatus | undefined {
    return this.status.get(id);
  }

  statuses(): SegmentStatus[] {
    return [...this.status.values()];
  }

  /** Members held per segment and the bytes they take. */
  stats(): { ready: boolean; segments: number; members: number; bytes: number; records: number } {
    let members = 0;
    let bytes = 0;
    for (const set of this.sets.values()) {
      members += set.size;
      bytes += set.bytes;
    }
    return { ready: this.ready, segments: this.sets.size, members, bytes, records: this.records };
  }

  size(id: string): number {
    return this.sets.get(id)?.size ?? 0;
  }
}

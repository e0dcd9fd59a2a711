/**
 * The resolver's side of sticky bandit assignments (pipeline/bandit/README.md).
 *
 * Reads: penumbra.bandit.sticky from the beginning (a compacted topic; a per-process group)
 * into the StickyIndex. Writes: a record per first exposure (and per re-assignment after a drop)
 * through a bounded batch queue (the assignment log's), never on the request path; a record that
 * arrives and loses to the one held is answered by re-publishing the winner, so the last record
 * per key — what compaction keeps — is the winner too.
 *
 * Until the follower has caught up after a start, new picks are answered from the weights but
 * not published (`ready` false): the durable record, when it arrives, wins over a guess. The
 * composition waits for `ready` before serving when Kafka is reachable (pipeline/resolver/feature.ts).
 */
import type { BanditSticky } from '../../schemas/types.generated.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import { AssignmentLog } from '../resolver/assignment-log.ts';
import { armLive } from './assign.ts';
import { armLiveInCell } from '../segment-allocation/cells.ts';
import { StickyIndex, stickyKey, type StickyRecord } from './sticky.ts';

export class StickyFeed {
  readonly index = new StickyIndex();
  readonly log: AssignmentLog<BanditSticky>;
  ready = false;
  readonly counters = { applied: 0, published: 0, republished: 0, stale: 0 };

  constructor(private readonly deps: { profiles: ProfileStore; resolverId: string; send: (batch: { key: string; value: BanditSticky }[]) => Promise<void>; onError?: (err: unknown) => void }) {
    this.log = new AssignmentLog<BanditSticky>({ send: (batch) => deps.send(batch.map((r) => ({ key: stickyKey(r.itemId, r.userId), value: r }))), onError: deps.onError });
  }

  /** Whether `arm` of the item's current bandit run takes users (in `cell`, for per-segment allocation). */
  readonly isLive = (itemId: string, arm: string, cell: string | null): boolean => {
    const p = this.deps.profiles.get(itemId);
    const st = p?.banditState;
    if (!st || !armLive(st, arm)) return false;
    return cell === null || !p.bandit ? true : armLiveInCell(p.bandit, st, cell, arm);
  };

  /** A record from the topic (ours included). */
  applyRemote(r: BanditSticky): void {
    this.counters.applied++;
    const out = this.index.apply(r, this.isLive);
    if (out === 'stale') this.counters.stale++;
    if (out === 'kept' && this.ready) {
      const held = this.index.get(r.itemId, r.userId, r.run)!;
      this.counters.republished++;
      this.log.enqueue({ itemId: r.itemId, userId: r.userId, run: r.run, arm: held.arm, epoch: held.epoch, cell: this.index.cellOf(r.itemId, r.userId, r.run) ?? null, resolverId: this.deps.resolverId, at: Date.now() });
    }
  }

  /** A pick this resolver just made: held locally at once, published once caught up. */
  publish(rec: StickyRecord): void {
    if (!this.ready) return;
    this.index.apply(rec, this.isLive);
    this.counters.published++;
    this.log.enqueue({ ...rec, cell: rec.cell ?? null, resolverId: this.deps.resolverId });
  }
}

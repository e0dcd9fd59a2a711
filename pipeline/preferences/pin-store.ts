/**
 * Pins and pin policies in memory, rebuilt from the compacted penumbra.pins (key
 * '<itemId>/<userId>') and penumbra.pins.policies (key itemId) topics. Every resolver holds
 * them: a resolve asks `variantFor(itemId, userId)` — one Map lookup for items without pins.
 *
 * Memory: ~200 bytes per pin (two strings and a small record); the writers refuse new pins past
 * PENUMBRA_PINS_MAX (default 100,000: ~20 MB per resolver).
 */
import type { Pin, PinPolicy } from '../../schemas/types.generated.ts';
import { ChangeWaiters } from '../kafka/change-waiters.ts';

export const pinKey = (itemId: string, userId: string): string => `${itemId}/${userId}`;

export class PinStore {
  private readonly byItem = new Map<string, Map<string, Pin>>();
  private readonly policies = new Map<string, PinPolicy>();
  private readonly waiters = new ChangeWaiters('pin change');
  private count = 0;
  private readyFlag = false;
  private resolveLoaded!: () => void;
  /** Resolves once the pins and policies topics have been replayed (markReady). */
  readonly loaded = new Promise<void>((r) => (this.resolveLoaded = r));

  markReady(): void {
    this.readyFlag = true;
    this.resolveLoaded();
  }

  get ready(): boolean {
    return this.readyFlag;
  }

  apply(p: Pin): void {
    let users = this.byItem.get(p.itemId);
    const prev = users?.get(p.userId);
    // Across a replay keep the newest by time (compaction keeps the last record per key).
    if (prev && prev.at > p.at) return;
    if (p.variant === null) {
      if (prev) {
        users!.delete(p.userId);
        this.count--;
        if (users!.size === 0) this.byItem.delete(p.itemId);
      }
    } else {
      if (!users) this.byItem.set(p.itemId, (users = new Map()));
      if (!prev) this.count++;
      users.set(p.userId, p);
    }
    this.wake();
  }

  applyPolicy(p: PinPolicy): void {
    const prev = this.policies.get(p.itemId);
    if (prev && prev.updatedAt > p.updatedAt) return;
    this.policies.set(p.itemId, p);
    this.wake();
  }

  /** The pinned variant, if any (the hot path: no allocation). */
  variantFor(itemId: string, userId: string): string | undefined {
    const users = this.byItem.get(itemId);
    if (users === undefined) return undefined;
    return users.get(userId)?.variant ?? undefined;
  }

  get(itemId: string, userId: string): Pin | undefined {
    return this.byItem.get(itemId)?.get(userId);
  }

  list(itemId: string, limit = 1000): Pin[] {
    return [...(this.byItem.get(itemId)?.values() ?? [])].sort((a, b) => b.at - a.at).slice(0, limit);
  }

  countFor(itemId: string): number {
    return this.byItem.get(itemId)?.size ?? 0;
  }

  get size(): number {
    return this.count;
  }

  policy(itemId: string): PinPolicy | undefined {
    return this.policies.get(itemId);
  }

  /** Resolves once `check` holds (read-your-writes after producing), or rejects after `timeoutMs`. */
  waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(check, timeoutMs);
  }

  private wake(): void {
    this.waiters.wake();
  }
}

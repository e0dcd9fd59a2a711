/**
 * In-process pub/sub for the live stream (SSE). Sources (profile changes, metric windows,
 * alerts, resolver heartbeats, exposures) publish; each SSE connection subscribes with an
 * optional item filter. Slow subscribers are protected by a bounded per-connection queue in the
 * router, so one stuck browser cannot grow memory.
 */
export interface LiveEvent {
  event: 'profile' | 'metrics' | 'alert' | 'resolvers' | 'exposures' | 'comparison' | 'unverified' | 'audit' | 'rollout';
  itemId: string | null;
  data: unknown;
}

export type LiveListener = (e: LiveEvent) => void;

export class LiveHub {
  private readonly listeners = new Set<{ itemId: string | null; fn: LiveListener }>();
  published = 0;

  subscribe(itemId: string | null, fn: LiveListener): () => void {
    const sub = { itemId, fn };
    this.listeners.add(sub);
    return () => this.listeners.delete(sub);
  }

  publish(e: LiveEvent): void {
    this.published++;
    for (const s of this.listeners) {
      if (s.itemId !== null && e.itemId !== null && s.itemId !== e.itemId) continue;
      try {
        s.fn(e);
      } catch {
        /* a broken subscriber must not affect the others */
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}

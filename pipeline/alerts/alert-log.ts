/**
 * Recent alert records in memory (a bounded ring, newest last), rebuilt from penumbra.alerts:
 * what GET /api/v1/alerts answers. It also knows the open incidents (fired, not yet resolved)
 * per rule × item × variant and the last decided window per item, which the evaluator uses to
 * continue after a restart instead of firing the same incident twice.
 */
import type { Alert } from '../../schemas/types.generated.ts';

export type { Alert };

export const incidentKey = (ruleId: string, itemId: string, variant: string): string => `${ruleId}\u0000${itemId}\u0000${variant}`;

export class AlertLog {
  private readonly ring: Alert[] = [];
  private readonly ids = new Set<string>();
  private readonly open = new Map<string, Alert>();
  private readonly lastWindowEnd = new Map<string, number>();

  constructor(private readonly capacity = 5000) {}

  add(a: Alert): void {
    if (this.ids.has(a.id)) return; // at-least-once delivery of the same record
    this.ids.add(a.id);
    this.ring.push(a);
    if (this.ring.length > this.capacity) {
      const old = this.ring.shift()!;
      this.ids.delete(old.id);
    }
    const k = incidentKey(a.ruleId, a.itemId, a.variant);
    if (a.state === 'fired') this.open.set(k, a);
    else if (this.open.get(k)?.incidentId === a.incidentId) this.open.delete(k);
    this.lastWindowEnd.set(a.itemId, Math.max(this.lastWindowEnd.get(a.itemId) ?? -Infinity, a.windowEnd));
  }

  /** Newest first, optionally for one item. */
  query(q: { itemId?: string; state?: 'fired' | 'resolved'; limit?: number } = {}): Alert[] {
    const out: Alert[] = [];
    const limit = q.limit ?? 200;
    for (let i = this.ring.length - 1; i >= 0 && out.length < limit; i--) {
      const a = this.ring[i];
      if ((q.itemId && a.itemId !== q.itemId) || (q.state && a.state !== q.state)) continue;
      out.push(a);
    }
    return out;
  }

  /** Fired alerts without a resolved record yet. */
  openIncidents(): Alert[] {
    return [...this.open.values()];
  }

  /** Latest windowEnd an alert of the item was decided on. */
  lastDecided(itemId: string): number {
    return this.lastWindowEnd.get(itemId) ?? -Infinity;
  }

  get size(): number {
    return this.ring.length;
  }
}

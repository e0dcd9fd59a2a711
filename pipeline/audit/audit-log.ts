/**
 * Read side of penumbra.audit for the API: the newest entries in memory (bounded ring), rebuilt
 * from the topic on start. The topic itself is the durable log (and the warehouse keeps it all);
 * this is the console's quick view.
 */
import type { AuditEntry } from '../../schemas/types.generated.ts';

export interface AuditView {
  id: string;
  itemId: string | null;
  actor: string;
  role: string;
  action: string;
  outcome: string;
  reason: string | null;
  before: unknown;
  after: unknown;
  /** What an automated decision was decided on (audit-entry v2); null otherwise. */
  evidence: unknown;
  requestId: string | null;
  at: number;
}

export class AuditLog {
  private readonly entries: AuditEntry[] = [];
  constructor(private readonly max = 10000) {}

  add(e: AuditEntry): void {
    this.entries.push(e);
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
  }

  query(q: { itemId?: string; actor?: string; action?: string; limit?: number }): AuditView[] {
    const limit = Math.min(Math.max(q.limit ?? 200, 1), 2000);
    const out: AuditView[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < limit; i--) {
      const e = this.entries[i];
      if (q.itemId && e.itemId !== q.itemId) continue;
      if (q.actor && e.actor !== q.actor) continue;
      if (q.action && !e.action.startsWith(q.action)) continue;
      out.push(toView(e));
    }
    return out;
  }
}

export function toView(e: AuditEntry): AuditView {
  const parse = (s: string | null) => {
    if (s === null) return null;
    try {
      return JSON.parse(s) as unknown;
    } catch {
      return s;
    }
  };
  return { id: e.id, itemId: e.itemId, actor: e.actor, role: e.role, action: e.action, outcome: e.outcome, reason: e.reason, before: parse(e.beforeJson), after: parse(e.afterJson), evidence: parse(e.evidenceJson ?? null), requestId: e.requestId, at: e.at };
}

/**
 * Profile history for reverts: the shadows of each profile version, from the accepted entries
 * of penumbra.audit (each carries the public view of the profile after the change). The audit
 * topic is the history's durable store (retention as configured for it); the newest `perItem`
 * versions per item are kept in memory.
 */
import type { AuditEntry } from '../../schemas/types.generated.ts';

export interface HistoryShadow {
  name: string;
  instrumentation: unknown;
  endpoints: Record<string, string>;
  traffic: { percentage: number; match: string; rules: unknown[] };
  control?: boolean;
  rollout?: unknown;
  state?: string;
}

export interface HistoryEntry {
  profileVersion: number;
  action: string;
  actor: string;
  reason: string | null;
  at: number;
  shadows: HistoryShadow[];
}

export class ProfileHistory {
  private readonly byItem = new Map<string, Map<number, HistoryEntry>>();

  constructor(private readonly perItem = 200) {}

  add(e: AuditEntry): void {
    if (e.outcome !== 'accepted' || !e.itemId || !e.afterJson) return;
    let after: { profileVersion?: unknown; shadows?: unknown };
    try {
      after = JSON.parse(e.afterJson) as typeof after;
    } catch {
      return;
    }
    if (typeof after.profileVersion !== 'number' || !Array.isArray(after.shadows)) return;
    let m = this.byItem.get(e.itemId);
    if (!m) this.byItem.set(e.itemId, (m = new Map()));
    m.set(after.profileVersion, { profileVersion: after.profileVersion, action: e.action, actor: e.actor, reason: e.reason, at: e.at, shadows: after.shadows as HistoryShadow[] });
    if (m.size > this.perItem) {
      const oldest = [...m.keys()].sort((a, b) => a - b).slice(0, m.size - this.perItem);
      for (const v of oldest) m.delete(v);
    }
  }

  /** Newest first. */
  list(itemId: string, limit = 50): HistoryEntry[] {
    return [...(this.byItem.get(itemId)?.values() ?? [])].sort((a, b) => b.profileVersion - a.profileVersion).slice(0, limit);
  }

  shadowAt(itemId: string, profileVersion: number, shadow: string): HistoryShadow | undefined {
    return this.byItem.get(itemId)?.get(profileVersion)?.shadows.find((s) => s.name === shadow);
  }
}

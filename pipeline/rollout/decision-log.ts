/**
 * The timeline: decisions about rollout plans, bandits, shadow states and promotions, as the
 * profile writer published them on penumbra.rollout.decisions (rebuilt from the topic on start;
 * the newest `perItem` per item in memory — the warehouse keeps them all).
 */
import type { RolloutDecision } from '../../schemas/types.generated.ts';

export interface DecisionView {
  id: string;
  itemId: string;
  shadow: string | null;
  kind: RolloutDecision['kind'];
  rule: string | null;
  automated: boolean;
  actor: string;
  profileVersion: number;
  step: number | null;
  percentage: number | null;
  reason: string;
  evidence: unknown;
  at: number;
}

export function decisionView(d: RolloutDecision): DecisionView {
  let evidence: unknown = null;
  try {
    evidence = JSON.parse(d.evidenceJson) as unknown;
  } catch {
    evidence = d.evidenceJson;
  }
  return { id: d.id, itemId: d.itemId, shadow: d.shadow, kind: d.kind, rule: d.rule, automated: d.automated, actor: d.actor, profileVersion: d.profileVersion, step: d.step, percentage: d.percentage, reason: d.reason, evidence, at: d.at };
}

export class DecisionLog {
  private readonly byItem = new Map<string, RolloutDecision[]>();
  private readonly seen = new Set<string>();
  applied = 0;

  constructor(private readonly perItem = 500) {}

  /** Adds a record; false for a replayed id (at-least-once delivery). */
  add(d: RolloutDecision): boolean {
    if (this.seen.has(d.id)) return false;
    this.seen.add(d.id);
    this.applied++;
    let list = this.byItem.get(d.itemId);
    if (!list) this.byItem.set(d.itemId, (list = []));
    list.push(d);
    if (list.length > this.perItem) for (const old of list.splice(0, list.length - this.perItem)) this.seen.delete(old.id);
    return true;
  }

  /** Newest first, optionally one shadow's (bandit decisions have no shadow) or some kinds. */
  query(itemId: string, q: { shadow?: string; kinds?: readonly string[]; limit?: number } = {}): DecisionView[] {
    const list = this.byItem.get(itemId) ?? [];
    const limit = Math.min(Math.max(q.limit ?? 100, 1), this.perItem);
    const out: DecisionView[] = [];
    for (let i = list.length - 1; i >= 0 && out.length < limit; i--) {
      const d = list[i];
      if (q.shadow !== undefined && d.shadow !== q.shadow) continue;
      if (q.kinds && !q.kinds.includes(d.kind)) continue;
      out.push(decisionView(d));
    }
    return out;
  }
}

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
  /** Newest profile version whose decisions arrived, per item (answers wait for it, `reached`). */
  private readonly newest = new Map<string, number>();
  private readonly waiters = new Set<{ itemId: string; version: number; done: () => void }>();
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
    if (d.profileVersion > (this.newest.get(d.itemId) ?? -1)) {
      this.newest.set(d.itemId, d.profileVersion);
      for (const w of this.waiters) if (w.itemId === d.itemId && d.profileVersion >= w.version) w.done();
    }
    return true;
  }

  /**
   * Resolves once the decisions of `profileVersion` (or a later one) of the item arrived, or after
   * `timeoutMs` (a change that decided nothing has none): an answer to an override then shows
   * its own decision on the timeline although the timeline follows its topic behind the profile.
   */
  reached(itemId: string, profileVersion: number, timeoutMs = 3000): Promise<void> {
    if ((this.newest.get(itemId) ?? -1) >= profileVersion) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { itemId, version: profileVersion, done: () => { clearTimeout(timer); this.waiters.delete(w); resolve(); } };
      const timer = setTimeout(w.done, timeoutMs);
      timer.unref?.();
      this.waiters.add(w);
    });
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

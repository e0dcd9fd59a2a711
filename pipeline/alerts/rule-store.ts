/**
 * Alert rules in memory, rebuilt from the compacted penumbra.alert.rules topic (key: rule id;
 * the latest record per id wins, `deleted: true` removes it). Every process follows the topic:
 * the API serves GET from here and the evaluator reads the rules it applies from here.
 */
import type { AlertDirection, AlertRule, AlertRuleKind, EwmaParams } from '../../schemas/types.generated.ts';
import { comparisonOf, directionOf, kindOf, DEFAULT_EWMA } from './rules.ts';
import { ChangeWaiters } from '../kafka/change-waiters.ts';

export type { AlertRule };

/**
 * What the API returns for a rule: normalised, so a v1 record reads like a v2 one —
 * `vs_original` shows as `vs_control`, a missing direction as the one it meant (above /
 * increase), EWMA parameters with their defaults filled in for kind ewma.
 */
export interface AlertRuleView {
  id: string;
  itemId: string | null;
  name: string;
  metric: string;
  comparison: 'absolute' | 'vs_control';
  direction: AlertDirection;
  kind: AlertRuleKind;
  threshold: number;
  ewma: EwmaParams | null;
  minSample: number;
  forWindows: number;
  guardrail: boolean;
  updatedBy: string;
  updatedAt: number;
}

export function ruleView(r: AlertRule): AlertRuleView {
  const kind = kindOf(r);
  return {
    id: r.id, itemId: r.itemId, name: r.name, metric: r.metric, comparison: comparisonOf(r), direction: directionOf(r), kind, threshold: r.threshold,
    ewma: kind === 'ewma' ? { ...DEFAULT_EWMA, ...(r.ewma ?? {}) } : null,
    minSample: r.minSample, forWindows: r.forWindows, guardrail: r.guardrail, updatedBy: r.updatedBy, updatedAt: r.updatedAt,
  };
}

export class RuleStore {
  private readonly rules = new Map<string, AlertRule>();
  private readonly waiters = new ChangeWaiters('alert rule change');
  applied = 0;

  apply(r: AlertRule): void {
    this.applied++;
    const prev = this.rules.get(r.id);
    // Compaction keeps the last record per key; across a replay keep the newest by time as well.
    if (prev && prev.updatedAt > r.updatedAt) return;
    if (r.deleted) this.rules.delete(r.id);
    else this.rules.set(r.id, r);
    this.waiters.wake();
  }

  get(id: string): AlertRule | undefined {
    return this.rules.get(id);
  }

  all(): AlertRule[] {
    return [...this.rules.values()].sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1));
  }

  /** Rules that apply to an item: its own and the global ones (itemId null). */
  forItem(itemId: string): AlertRule[] {
    return this.all().filter((r) => r.itemId === null || r.itemId === itemId);
  }

  /** Resolves once `check` holds (read-your-writes after producing), or rejects after `timeoutMs`. */
  waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(check, timeoutMs);
  }
}

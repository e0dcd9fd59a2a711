/**
 * The item history the change features need, kept in memory from two topics:
 *  - penumbra.risk.outcomes: each item's earlier rollouts and how they ended (and the global
 *    counts of the window, which the prior uses);
 *  - penumbra.telemetry.metrics: the current version's recent error-session rate, summed over
 *    the 60 s windows of its baseline arms (`original`, and `control` once shadows have one) in
 *    the last `errorWindowMs`.
 * Pure state: the feature feeds it records; `inputsFor` reads it at a given time.
 */
import type { MetricWindow, RolloutOutcome } from '../../schemas/types.generated.ts';
import type { HistoryInputs } from '../change-features/features.ts';

export interface HistoryOptions {
  /** Outcomes older than this are out of the window (default 90 days, the trainer's default). */
  windowMs?: number;
  /** Recent-error window (default 15 min). */
  errorWindowMs?: number;
}

const BASELINE_VARIANTS = new Set(['original', 'control']);
/** The baseline arm of a rollout's evidence (pipeline/domain CONTROL). */
const CONTROL_ARM = 'control';

export class RiskHistory {
  private readonly outcomes = new Map<string, RolloutOutcome>();
  /** itemId → windowStart → { sessions, errorSessions } (60 s windows of baseline arms, summed). */
  private readonly windows = new Map<string, Map<string, { at: number; sessions: number; errorSessions: number }>>();
  /** itemId → `${variant}@${windowStart}` → 10 s window of any arm (rollout evidence; pruned after 2 h). */
  private readonly arms = new Map<string, Map<string, { variant: string; start: number; sessions: number; errorSessions: number }>>();
  readonly windowMs: number;
  readonly errorWindowMs: number;

  constructor(opts: HistoryOptions = {}) {
    this.windowMs = opts.windowMs ?? 90 * 86_400_000;
    this.errorWindowMs = opts.errorWindowMs ?? 15 * 60_000;
  }

  addOutcome(o: RolloutOutcome): void {
    this.outcomes.set(o.id, o);
  }

  addWindow(w: MetricWindow): void {
    if (w.windowSize === 10_000) {
      let a = this.arms.get(w.itemId);
      if (!a) this.arms.set(w.itemId, (a = new Map()));
      a.set(`${w.variant}@${w.windowStart}`, { variant: w.variant, start: w.windowStart, sessions: w.sessions, errorSessions: w.errorSessions });
      for (const [k, x] of a) if (x.start < w.windowStart - 2 * 3_600_000) a.delete(k);
      return;
    }
    if (w.windowSize !== 60_000 || !BASELINE_VARIANTS.has(w.variant)) return;
    let m = this.windows.get(w.itemId);
    if (!m) this.windows.set(w.itemId, (m = new Map()));
    // A re-emitted window (late data) replaces the earlier emission of the same window and arm.
    m.set(`${w.variant}@${w.windowStart}`, { at: w.windowEnd, sessions: w.sessions, errorSessions: w.errorSessions });
  }

  /**
   * One outcome per (item, version) in the window, as the trainer's TRAINING_QUERY labels it: a
   * regression if any outcome of the version is one (a guardrail may roll a version back after
   * its plan completed), else a success; dated by its first outcome.
   */
  private ended(now: number, itemId?: string): RolloutOutcome[] {
    const byVersion = new Map<string, RolloutOutcome>();
    for (const o of this.outcomes.values()) {
      if (itemId !== undefined && o.itemId !== itemId) continue;
      const k = `${o.itemId}@${o.version}`;
      const cur = byVersion.get(k);
      if (!cur) byVersion.set(k, o);
      else byVersion.set(k, { ...cur, outcome: cur.outcome === 'regression' || o.outcome === 'regression' ? 'regression' : 'success', decidedAt: Math.min(cur.decidedAt, o.decidedAt) });
    }
    return [...byVersion.values()].filter((o) => o.decidedAt >= now - this.windowMs && o.decidedAt <= now).sort((a, b) => a.decidedAt - b.decidedAt);
  }

  /**
   * A shadow's rollout telemetry since `since` (10 s windows starting then or later), next to its
   * baseline: the `control` arm — the served version with the same instrumentation (issue 11),
   * the only arm that is a fair comparison (the original is served uninstrumented and sends
   * nothing). Metric windows are per variant, so this is the item's control cohorts pooled: they
   * all run the one control artifact of the served version. Sessions of consecutive windows add
   * up (a session spanning two windows counts twice on both sides alike). Only windows up to the
   * newest one the control has are counted on both sides, so an arm whose window arrived first
   * is not a window ahead of the other.
   */
  evidenceSince(itemId: string, shadow: string, since: number): { shadowSessions: number; shadowErrorSessions: number; baselineSessions: number; baselineErrorSessions: number; baseline: string } {
    const rows = [...(this.arms.get(itemId)?.values() ?? [])].filter((x) => x.start >= since);
    const horizon = Math.max(-Infinity, ...rows.filter((x) => x.variant === CONTROL_ARM).map((x) => x.start));
    const sum = (v: string) => rows.filter((x) => x.variant === v && x.start <= horizon).reduce((s, x) => ({ n: s.n + x.sessions, k: s.k + x.errorSessions }), { n: 0, k: 0 });
    const s = sum(shadow);
    const b = sum(CONTROL_ARM);
    return { shadowSessions: s.n, shadowErrorSessions: s.k, baselineSessions: b.n, baselineErrorSessions: b.k, baseline: CONTROL_ARM };
  }

  /** Labelled rollouts in the window across all items (the prior's evidence). */
  counts(now: number): { rollouts: number; regressions: number } {
    const all = this.ended(now);
    return { rollouts: all.length, regressions: all.filter((o) => o.outcome === 'regression').length };
  }

  inputsFor(itemId: string, now: number, currentIngestedAt: number | null, excludeVersion?: string): HistoryInputs {
    const mine = this.ended(now, itemId).filter((o) => o.version !== excludeVersion);
    let sessions = 0;
    let errors = 0;
    for (const w of this.windows.get(itemId)?.values() ?? []) {
      if (w.at < now - this.errorWindowMs || w.at > now + 60_000) continue;
      sessions += w.sessions;
      errors += w.errorSessions;
    }
    const last = mine[mine.length - 1];
    return {
      priorRollouts: mine.length,
      priorRegressions: mine.filter((o) => o.outcome === 'regression').length,
      lastOutcome: last ? (last.outcome === 'regression' ? 'regression' : 'success') : null,
      currentErrorRate: sessions > 0 ? errors / sessions : null,
      currentSessions: sessions,
      currentIngestedAt,
    };
  }
}

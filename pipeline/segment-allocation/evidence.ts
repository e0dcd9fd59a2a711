/**
 * Per-cell totals → the evidence `decideSegmentReweight` takes (pure): per cell, the bandit's
 * primary-metric statistics of every arm, and per shadow arm its always-valid comparison with
 * the control on each guardrail metric — the same functions the global bandit uses
 * (rollout/build-evidence.ts), on the cell's sessions only.
 */
import type { ArmTotals } from '../rollout/arm-aggregates.ts';
import { armStatsOf, compareMetric, tuningFor, type SequentialTests } from '../rollout/build-evidence.ts';
import { armsOf, CONTROL_ARM, type BanditPlan } from '../bandit/plan.ts';
import type { CellEvidence } from './decide.ts';
import { REST_CELL } from './plan.ts';

/** The aggregate key of an arm: shadows by name, the bandit's control as the control cohort of its first arm. */
export function armKey(plan: Pick<BanditPlan, 'arms'>, arm: string): string {
  return arm === CONTROL_ARM ? `control:${plan.arms[0]}` : arm;
}

/** Aggregate keys to watch for a bandit: its arms, and its control cohort. */
export function watchedKeys(plan: Pick<BanditPlan, 'arms' | 'control'>): string[] {
  return plan.control ? [...plan.arms, `control:${plan.arms[0]}`] : [...plan.arms];
}

export function cellEvidence(plan: BanditPlan, cells: ReadonlyMap<string, ReadonlyMap<string, ArmTotals>>, tests: SequentialTests): Record<string, CellEvidence> {
  const out: Record<string, CellEvidence> = {};
  const burnIn = plan.segments?.burnInSessions ?? plan.burnInSessions;
  for (const cell of plan.segments ? [...plan.segments.cells, REST_CELL] : []) {
    const byArm = cells.get(cell);
    const stats = armsOf(plan).map((arm) => armStatsOf(arm, plan.metric, byArm?.get(armKey(plan, arm))));
    const comparisons: CellEvidence['comparisons'] = {};
    const control = plan.control ? byArm?.get(armKey(plan, CONTROL_ARM)) : undefined;
    if (control) {
      for (const arm of plan.arms) {
        const at = byArm?.get(arm);
        if (at) comparisons[arm] = Object.fromEntries(plan.guardrails.map((g) => [g.metric, compareMetric(g.metric, at, control, tests, tuningFor(burnIn))]));
      }
    }
    out[cell] = { stats, comparisons };
  }
  return out;
}

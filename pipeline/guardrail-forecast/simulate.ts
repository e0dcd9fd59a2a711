/**
 * Monte-Carlo runs of one held-or-not step on generated data (no services): two arms with error
 * rates pShadow / pControl and `perSecond` sessions per arm on average, looked at every second —
 * the guardrail's always-valid check (a regression rolls the shadow back) and the forecast (a
 * forecast ≥ holdAt holds the step, once) — until the step's analysis. The operating
 * characteristics of the forecast hold: how often a healthy step is held (a false hold), how
 * often a bad one is held before its guardrail's rollback, and by how much. Every figure it
 * produces is generated data and labelled so.
 */
import { Prng } from '../simulator/prng.ts';
import { forecastStep } from './step.ts';
import { tuningFor } from '../rollout/build-evidence.ts';
import type { RolloutPlan } from '../rollout/plan.ts';

export interface StepSimOptions {
  plan: RolloutPlan;
  pShadow: number;
  pControl: number;
  /** Mean sessions per arm per second (default 2.5, as test/forecast.int.test.ts). */
  perSecond?: number;
  holdAt: number;
}

export interface StepRun {
  /** Seconds into the step of the forecast hold, the guardrail's rollback (null: none). */
  heldAt: number | null;
  rolledBackAt: number | null;
}

/** Sessions arriving in one second: Poisson(λ) by inversion (λ is small here). */
function poisson(rng: Prng, lambda: number): number {
  const l = Math.exp(-lambda);
  let k = 0;
  let p = rng.float();
  while (p > l) {
    k++;
    p *= rng.float();
  }
  return k;
}

export function runStep(seed: string, o: StepSimOptions): StepRun {
  const rng = new Prng(seed);
  const rate = o.perSecond ?? 2.5;
  const seconds = o.plan.steps[0]?.analysisSeconds ?? o.plan.analysisSeconds;
  const tuning = tuningFor(o.plan.minSessionsPerArm);
  const t = (n: number, k: number) => ({ sessions: n, errorSessions: k, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} });
  let ns = 0, ks = 0, nc = 0, kc = 0;
  let heldAt: number | null = null;
  for (let s = 1; s < seconds; s++) {
    for (let i = poisson(rng, rate); i > 0; i--) { ns++; if (rng.float() < o.pShadow) ks++; }
    for (let i = poisson(rng, rate); i > 0; i--) { nc++; if (rng.float() < o.pControl) kc++; }
    const f = forecastStep({ shadow: 's', plan: o.plan, state: { status: heldAt === null ? 'running' : 'paused', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null }, shadowTotals: t(ns, ks), controlTotals: t(nc, kc), tuning, now: s * 1000, holdAt: o.holdAt });
    // The guardrail's own check (forecast.ts mirrors judgeGuardrail): a regression rolls back.
    if (f.guardrails.some((g) => g.status === 'regressed')) return { heldAt, rolledBackAt: s };
    if (heldAt === null && f.hold) heldAt = s;
  }
  return { heldAt, rolledBackAt: null };
}

export interface StepSummary {
  runs: number;
  /** Share of runs held by the forecast (at any time before the step's end or its rollback). */
  held: number;
  rolledBack: number;
  /** Share of runs held strictly before their rollback. */
  heldBeforeRollback: number;
  /** Median and quartiles of the lead (rollback − hold, s) over the runs held before a rollback. */
  leadMedian: number | null;
  leadQ1: number | null;
  leadQ3: number | null;
}

export function summarize(runs: StepRun[]): StepSummary {
  const leads = runs.filter((r) => r.heldAt !== null && r.rolledBackAt !== null && r.heldAt < r.rolledBackAt).map((r) => r.rolledBackAt! - r.heldAt!).sort((a, b) => a - b);
  const q = (x: number) => (leads.length ? leads[Math.min(leads.length - 1, Math.floor(x * leads.length))] : null);
  return {
    runs: runs.length,
    held: runs.filter((r) => r.heldAt !== null).length / runs.length,
    rolledBack: runs.filter((r) => r.rolledBackAt !== null).length / runs.length,
    heldBeforeRollback: leads.length / runs.length,
    leadMedian: q(0.5), leadQ1: q(0.25), leadQ3: q(0.75),
  };
}

export function simulateSteps(runs: number, seed: string, o: StepSimOptions): StepSummary {
  return summarize(Array.from({ length: runs }, (_, i) => runStep(`${seed}/${i}`, o)));
}

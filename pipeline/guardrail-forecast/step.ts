/**
 * A shadow's step, forecast (pure): from its rollout plan and state (pipeline/rollout) and its
 * arms' totals since the step began (pipeline/rollout ArmAggregates), the forecast of every
 * guardrail at the step's next analysis, the worst one, and whether to hold early.
 *
 * The clock is the plan's: the next analysis is `analysisSeconds` of the step after the step
 * began or after its last analysis (decide.ts rule 4); the arrival rate is over the whole step
 * (the arms count from the step's start). Only a RUNNING plan is held: a paused one does not
 * advance anyway, and its guardrails keep protecting it (decide.ts rule 2).
 */
import type { ArmTotals } from '../rollout/arm-aggregates.ts';
import type { RolloutPlan, RolloutState } from '../rollout/plan.ts';
import { stepSeconds } from '../rollout/plan.ts';
import { forecastGuardrail, shouldHoldOnForecast, worstForecast, type ArmSummary, type GuardrailForecast } from './forecast.ts';

const EMPTY: ArmTotals = { sessions: 0, errorSessions: 0, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: {}, perf: {} };

const prop = (k: number, n: number): ArmSummary => {
  const p = n > 0 ? k / n : NaN;
  const q = (k + 0.5) / (n + 1); // Jeffreys-smoothed rate: the projection's variance (forecast.ts)
  return { n, mean: p, variance: p * (1 - p), projectionVariance: q * (1 - q) };
};
const sums = (s: { count: number; sum: number; sumSq: number } | undefined): ArmSummary => {
  const n = s?.count ?? 0;
  const mean = n > 0 ? s!.sum / n : NaN;
  return { n, mean, variance: n > 1 ? Math.max(0, (s!.sumSq - n * mean * mean) / (n - 1)) : NaN };
};

/**
 * One arm of a guardrail metric, as pipeline/rollout/build-evidence.ts compares it: proportions
 * (errorRate per session, requestErrorRate per request, conversion:<point> per session) with the
 * Bernoulli variance, means (latencyMean, perf:<name>) with the sample variance.
 */
export function armSummary(metric: string, t: ArmTotals | undefined): ArmSummary {
  const x = t ?? EMPTY;
  if (metric === 'errorRate') return prop(x.errorSessions, x.sessions);
  if (metric === 'requestErrorRate') return prop(x.requestErrors, x.requests);
  if (metric.startsWith('conversion:')) return prop(x.conversions[metric.slice('conversion:'.length)] ?? 0, x.sessions);
  if (metric === 'latencyMean') return sums(x.latency);
  return sums(x.perf[metric.slice('perf:'.length)]);
}

export interface StepForecastInput {
  shadow: string;
  plan: RolloutPlan;
  state: RolloutState;
  shadowTotals: ArmTotals | undefined;
  controlTotals: ArmTotals | undefined;
  /** N* of the plan's sequential tests (pipeline/rollout `tuningFor(minSessionsPerArm)`). */
  tuning: number;
  now: number;
  holdAt: number;
}

export interface StepForecast {
  shadow: string;
  step: number;
  stepStartedAt: number;
  /** When the step's next analysis is due (epoch ms). */
  analysisDueAt: number;
  at: number;
  status: RolloutState['status'];
  guardrails: GuardrailForecast[];
  /** The guardrail most likely to fail (null: none could be forecast). */
  worst: GuardrailForecast | null;
  /** The guardrail whose forecast holds the step now (running plans only), else null. */
  hold: GuardrailForecast | null;
  holdAt: number;
}

export function forecastStep(i: StepForecastInput): StepForecast {
  const { plan, state, now } = i;
  const dueAt = (state.lastAnalysisAt ?? state.stepStartedAt) + stepSeconds(plan, state.step) * 1000;
  const guardrails = plan.guardrails.map((g) => forecastGuardrail({
    guardrail: g, shadow: armSummary(g.metric, i.shadowTotals), control: armSummary(g.metric, i.controlTotals),
    elapsedSeconds: (now - state.stepStartedAt) / 1000, remainingSeconds: (dueAt - now) / 1000, tuning: i.tuning,
  }));
  const hold = state.status === 'running' ? shouldHoldOnForecast(guardrails, i.holdAt) : null;
  return { shadow: i.shadow, step: state.step, stepStartedAt: state.stepStartedAt, analysisDueAt: dueAt, at: now, status: state.status, guardrails, worst: worstForecast(guardrails), hold, holdAt: i.holdAt };
}

export type HoldOutcome = 'rolled_back' | 'advanced' | 'completed' | 'removed';

/**
 * How a held step ended, from the item's profile after a transition (null: still undecided). The
 * lead time is counted only for a rollback — of the shadow by its guardrail (or an operator), or
 * of the whole item — from the hold to the profile version that recorded it.
 */
export function holdOutcome(
  h: { shadow: string; stepStartedAt: number; heldAt: number },
  p: { state: string; updatedAt: number; shadows: { name: string; rolloutState?: RolloutState | null }[] },
): { outcome: HoldOutcome; decidedAt: number; leadMs: number | null; reason: string | null } | null {
  const s = p.shadows.find((x) => x.name === h.shadow);
  const st = s?.rolloutState ?? null;
  let outcome: HoldOutcome | null = null;
  if (!s || !st) outcome = 'removed';
  else if (p.state === 'rolled_back' || st.status === 'rolled_back') outcome = 'rolled_back';
  else if (st.status === 'completed') outcome = 'completed';
  else if (st.stepStartedAt !== h.stepStartedAt) outcome = 'advanced';
  if (!outcome) return null;
  return { outcome, decidedAt: p.updatedAt, leadMs: outcome === 'rolled_back' ? p.updatedAt - h.heldAt : null, reason: st?.reason ?? null };
}

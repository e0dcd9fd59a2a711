/**
 * Forecast of a guardrail at the end of the current step (issue #13, item 4): will the step's
 * analysis find this shadow regressed? Pure and seeded.
 *
 * From the step's counts so far (sessions and error sessions of the shadow and its control), the
 * posterior of each arm's error-session rate is Beta(k + ½, n − k + ½) (Jeffreys). Each of
 * `draws` simulations draws both rates, extends each arm to the step's end at its observed
 * arrival rate (sessions so far ÷ elapsed × the step's length) with binomial error sessions, and
 * asks the rollout's own judge — the same function the analysis will apply — whether the final
 * counts show a regression. The forecast is the share of draws that do. A shadow whose forecast
 * reaches `holdAt` (default 0.8) is held early: it stops advancing before its analysis is due
 * (guardrails keep protecting), and the lead time is how much earlier than the analysis's own
 * rollback that was.
 */
import { Prng } from '../simulator/prng.ts';

export interface ArmCounts {
  sessions: number;
  errorSessions: number;
}

export type Judge = (shadow: ArmCounts, control: ArmCounts) => 'regressed' | 'pass' | 'unmeasured';

export interface ForecastInput {
  shadow: ArmCounts;
  control: ArmCounts;
  /** Seconds since the step began, and the step's analysis period. */
  elapsedSeconds: number;
  stepSeconds: number;
  judge: Judge;
  draws?: number;
  seed?: string;
}

export interface Forecast {
  /** Share of simulated step ends at which the analysis finds a regression. */
  failProbability: number;
  /** The judge on the counts as they are now. */
  now: 'regressed' | 'pass' | 'unmeasured';
  /** Sessions each arm is expected to have at the step's end. */
  expectedShadowSessions: number;
  expectedControlSessions: number;
  draws: number;
}

/** Gamma(shape, 1) by Marsaglia–Tsang (shape < 1 boosted), from the seeded PRNG. */
function gamma(rng: Prng, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(rng.float() || Number.MIN_VALUE, 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.float();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function betaDraw(rng: Prng, a: number, b: number): number {
  const x = gamma(rng, a);
  return x / (x + gamma(rng, b));
}

/** Binomial(n, p): exact for small n, normal approximation (rounded, clamped) above 200. */
function binomial(rng: Prng, n: number, p: number): number {
  if (n <= 0) return 0;
  if (n <= 200) {
    let k = 0;
    for (let i = 0; i < n; i++) if (rng.float() < p) k++;
    return k;
  }
  const k = Math.round(n * p + Math.sqrt(n * p * (1 - p)) * rng.normal());
  return Math.min(n, Math.max(0, k));
}

export function forecastStep(f: ForecastInput): Forecast {
  const draws = f.draws ?? 400;
  const rng = new Prng(f.seed ?? `forecast/${f.shadow.sessions}/${f.shadow.errorSessions}/${f.control.sessions}/${f.control.errorSessions}/${f.elapsedSeconds}`);
  const scale = f.elapsedSeconds > 0 ? Math.max(1, f.stepSeconds / f.elapsedSeconds) : 1;
  const addS = Math.max(0, Math.round(f.shadow.sessions * scale) - f.shadow.sessions);
  const addC = Math.max(0, Math.round(f.control.sessions * scale) - f.control.sessions);
  let fail = 0;
  for (let i = 0; i < draws; i++) {
    const ps = betaDraw(rng, f.shadow.errorSessions + 0.5, f.shadow.sessions - f.shadow.errorSessions + 0.5);
    const pc = betaDraw(rng, f.control.errorSessions + 0.5, f.control.sessions - f.control.errorSessions + 0.5);
    const s = { sessions: f.shadow.sessions + addS, errorSessions: f.shadow.errorSessions + binomial(rng, addS, ps) };
    const c = { sessions: f.control.sessions + addC, errorSessions: f.control.errorSessions + binomial(rng, addC, pc) };
    if (f.judge(s, c) === 'regressed') fail++;
  }
  return { failProbability: fail / draws, now: f.judge(f.shadow, f.control), expectedShadowSessions: f.shadow.sessions + addS, expectedControlSessions: f.control.sessions + addC, draws };
}

/** Hold early when the forecast says the analysis will fail and it has not failed yet. */
export function shouldHoldEarly(fc: Forecast, holdAt = 0.8): boolean {
  return fc.now !== 'regressed' && fc.failProbability >= holdAt;
}

/**
 * Thompson sampling for the bandit (pure, seeded): posteriors per arm on the primary metric,
 * the probability that each arm is best, and the weights that allocate new users.
 *
 * - Proportions (conversion:<point>, errorRate, requestErrorRate): Beta(1 + x, 1 + n − x) — a
 *   uniform prior updated by x successes in n trials (sessions).
 * - Means (latencyMean, perf:<name>): Normal(mean, variance / n) — the large-sample posterior of
 *   a mean under a flat prior; an arm with fewer than 2 observations has none yet.
 * P(best) is estimated from DRAWS joint draws (argmax, or argmin when lower is better); with
 * 10,000 draws its standard error is ≤ 0.005. Draws come from @stdlib's Beta and Normal samplers
 * (MT19937 streams seeded from the caller's seed; the seed is recorded with the weights, so
 * every reweighting can be reproduced).
 *
 * Weights: while any live arm has fewer than `burnInSessions` sessions (or no posterior), live
 * arms share equally; afterwards w = floor + (1 − k·floor)·P(best) over the k live arms, so every
 * live arm keeps at least `floorShare` and the weights sum to 1. Dropped arms get 0.
 */
import betaFactory from '@stdlib/random-base-beta';
import normalFactory from '@stdlib/random-base-normal';

export const DRAWS = 10_000;

export type ArmStats =
  | { arm: string; sessions: number; kind: 'proportion'; successes: number; trials: number }
  | { arm: string; sessions: number; kind: 'mean'; n: number; mean: number; variance: number };

export type Posterior = { kind: 'beta'; alpha: number; beta: number } | { kind: 'normal'; mean: number; sd: number } | { kind: 'none' };

export function posteriorOf(s: ArmStats): Posterior {
  if (s.kind === 'proportion') {
    const x = Math.max(0, Math.min(s.successes, s.trials));
    return { kind: 'beta', alpha: 1 + x, beta: 1 + Math.max(0, s.trials - x) };
  }
  if (!(s.n >= 2) || !Number.isFinite(s.mean) || !Number.isFinite(s.variance)) return { kind: 'none' };
  return { kind: 'normal', mean: s.mean, sd: Math.sqrt(Math.max(s.variance, 0) / s.n) };
}

/**
 * P(arm is best) for each posterior, from `draws` joint draws seeded by `seed` (uint32). Ties
 * (equal draws — only for point posteriors with sd 0) go to the earlier arm.
 */
export function probabilityBest(posteriors: Posterior[], better: 'higher' | 'lower', seed: number, draws = DRAWS): number[] {
  const k = posteriors.length;
  if (k === 0) return [];
  if (posteriors.some((p) => p.kind === 'none')) return posteriors.map(() => 1 / k);
  const beta = betaFactory.factory({ seed: seed >>> 0 || 1 });
  // Its own MT19937 stream, seeded from the same seed (stdlib's normal sampler draws both uniform
  // and integer variates, so it does not share the Beta sampler's stream).
  const normal = normalFactory.factory({ seed: (seed ^ 0x9e3779b9) >>> 0 || 1 });
  const wins = new Array<number>(k).fill(0);
  const sign = better === 'higher' ? 1 : -1;
  for (let d = 0; d < draws; d++) {
    let best = -1;
    let bestV = -Infinity;
    for (let i = 0; i < k; i++) {
      const p = posteriors[i];
      const v = sign * (p.kind === 'beta' ? beta(p.alpha, p.beta) : p.kind === 'normal' ? (p.sd > 0 ? normal(p.mean, p.sd) : p.mean) : 0);
      if (v > bestV) {
        bestV = v;
        best = i;
      }
    }
    wins[best]++;
  }
  return wins.map((w) => w / draws);
}

export interface ArmWeight {
  arm: string;
  sessions: number;
  posterior: Posterior;
  /** P(best) among the live arms (0 for dropped arms; equal shares during burn-in). */
  pBest: number;
  weight: number;
  dropped: boolean;
}

export interface WeightsResult {
  phase: 'burn_in' | 'thompson' | 'stopped';
  arms: ArmWeight[];
  seed: number;
  draws: number;
  /** Why the weights are what they are, in words. */
  note: string;
}

/** Weights for `arms` (allocation order) given their stats; arms in `dropped` get 0. */
export function computeWeights(
  arms: readonly string[],
  stats: readonly ArmStats[],
  opts: { better: 'higher' | 'lower'; floorShare: number; burnInSessions: number; dropped: ReadonlySet<string>; seed: number; draws?: number },
): WeightsResult {
  const draws = opts.draws ?? DRAWS;
  const byArm = new Map(stats.map((s) => [s.arm, s]));
  const rows = arms.map((arm) => {
    const s = byArm.get(arm);
    return { arm, sessions: s?.sessions ?? 0, posterior: s ? posteriorOf(s) : ({ kind: 'none' } as Posterior), dropped: opts.dropped.has(arm) };
  });
  const live = rows.filter((r) => !r.dropped);
  if (live.length === 0) {
    return { phase: 'stopped', arms: rows.map((r) => ({ ...r, pBest: 0, weight: 0 })), seed: opts.seed, draws: 0, note: 'every arm is dropped' };
  }
  const short = live.filter((r) => r.sessions < opts.burnInSessions || r.posterior.kind === 'none');
  if (short.length > 0) {
    const w = 1 / live.length;
    return {
      phase: 'burn_in',
      arms: rows.map((r) => ({ ...r, pBest: r.dropped ? 0 : w, weight: r.dropped ? 0 : w })),
      seed: opts.seed,
      draws: 0,
      note: `burn-in: ${short.map((r) => `${r.arm} ${r.sessions}`).join(', ')} of ${opts.burnInSessions} sessions${short.some((r) => r.posterior.kind === 'none') ? ' (or no measurement of the metric yet)' : ''}; equal shares`,
    };
  }
  const p = probabilityBest(live.map((r) => r.posterior), opts.better, opts.seed, draws);
  const k = live.length;
  const floor = Math.min(opts.floorShare, 1 / k);
  const pByArm = new Map(live.map((r, i) => [r.arm, p[i]]));
  return {
    phase: 'thompson',
    arms: rows.map((r) => {
      if (r.dropped) return { ...r, pBest: 0, weight: 0 };
      const pb = pByArm.get(r.arm)!;
      return { ...r, pBest: pb, weight: floor + (1 - k * floor) * pb };
    }),
    seed: opts.seed,
    draws,
    note: `Thompson sampling over ${k} live arm${k === 1 ? '' : 's'} (${draws} draws, floor ${floor})`,
  };
}

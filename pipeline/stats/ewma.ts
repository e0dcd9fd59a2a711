/**
 * Exponentially weighted rolling baseline for anomaly alerts (e.g. a variant's per-window p95 or
 * error rate). Pure state; `snapshot()`/`restore()` let a processor checkpoint it.
 *
 * Recurrences (Finch 2009, "Incremental calculation of weighted mean and variance", §9):
 *   δ = x − mean,  mean ← mean + α·δ,  variance ← (1 − α)·(variance + α·δ²)
 * with the first observation setting mean = x, variance = 0.
 *
 * `update(x)` scores x against the baseline BEFORE x is folded in: z = (x − mean)/max(std, minStd).
 * A point is an anomaly when |z| > threshold and at least `warmup` observations preceded it. With
 * std = minStd = 0, z is 0 for x = mean and ±∞ otherwise (a constant series that moves is news).
 */
import { ValidationError } from '../errors.ts';

export interface EwmaOptions {
  /** Smoothing factor 0 < α ≤ 1 (weight of the newest point). Default 0.1. */
  alpha?: number;
  /** |z| above this is an anomaly. Default 3. */
  threshold?: number;
  /** Observations needed before anything is flagged. Default 10. */
  warmup?: number;
  /** Floor for the standard deviation used in z, to stop a near-constant baseline over-alerting. Default 0. */
  minStd?: number;
}

export interface EwmaStep {
  /** z-score of x against the baseline before the update (0 for the first observation). */
  z: number;
  anomaly: boolean;
  /** Baseline used for the score. */
  baselineMean: number;
  baselineStd: number;
}

export interface EwmaState {
  count: number;
  mean: number;
  variance: number;
}

export class Ewma {
  readonly alpha: number;
  readonly threshold: number;
  readonly warmup: number;
  readonly minStd: number;
  private state: EwmaState = { count: 0, mean: 0, variance: 0 };

  constructor(options: EwmaOptions = {}) {
    this.alpha = options.alpha ?? 0.1;
    this.threshold = options.threshold ?? 3;
    this.warmup = options.warmup ?? 10;
    this.minStd = options.minStd ?? 0;
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new ValidationError(`Ewma alpha must be in (0, 1], got ${this.alpha}`);
    if (!(this.threshold > 0)) throw new ValidationError(`Ewma threshold must be > 0, got ${this.threshold}`);
    if (!(this.warmup >= 0) || !(this.minStd >= 0)) throw new ValidationError('Ewma warmup and minStd must be ≥ 0');
  }

  get count(): number {
    return this.state.count;
  }
  get mean(): number {
    return this.state.count === 0 ? NaN : this.state.mean;
  }
  get variance(): number {
    return this.state.count === 0 ? NaN : this.state.variance;
  }
  get std(): number {
    return Math.sqrt(this.variance);
  }

  update(x: number): EwmaStep {
    if (!Number.isFinite(x)) throw new ValidationError(`Ewma.update needs a finite number, got ${x}`);
    const s = this.state;
    if (s.count === 0) {
      this.state = { count: 1, mean: x, variance: 0 };
      return { z: 0, anomaly: false, baselineMean: NaN, baselineStd: NaN };
    }
    const std = Math.sqrt(s.variance);
    const scale = Math.max(std, this.minStd);
    const delta = x - s.mean;
    const z = delta === 0 ? 0 : scale === 0 ? (delta > 0 ? Infinity : -Infinity) : delta / scale;
    const anomaly = s.count >= this.warmup && Math.abs(z) > this.threshold;
    this.state = {
      count: s.count + 1,
      mean: s.mean + this.alpha * delta,
      variance: (1 - this.alpha) * (s.variance + this.alpha * delta * delta),
    };
    return { z, anomaly, baselineMean: s.mean, baselineStd: std };
  }

  snapshot(): EwmaState {
    return { ...this.state };
  }

  restore(state: EwmaState): void {
    this.state = { count: state.count, mean: state.mean, variance: state.variance };
  }
}

/**
 * Alert rule evaluation (pure): one 10 s window of a shadow (and its control arm's window of the
 * same start) → the judged value, whether the rule may judge it, whether it is a breach, and the
 * rule's next state.
 *
 * Metrics (from the MetricWindow record, pipeline/windows/README.md for definitions):
 *
 * | metric | value | sample (vs minSample) |
 * |---|---|---|
 * | errorRate | errorSessions / sessions | sessions |
 * | requestErrorRate | requestErrors / requests | requests |
 * | latencyMean / latencyP95 / latencyP99 | latency.mean / p95 / p99 (ms) | latency.count |
 * | conversion:<point> | sessions that hit the point / sessions | sessions |
 * | perfMean:<name> / perfP95:<name> | perf[name].mean / .p95 (page timings in ms; web vitals lcp, inp in ms, cls unitless) | perf[name].count |
 *
 * Comparison: `absolute` judges the shadow's value; `vs_control` judges shadow − control (the
 * control arm's window: variant `control`, the control cohorts of the item pooled —
 * pipeline/windows/README.md) — RELATIVE for latency and perf ((shadow − control) / control, so
 * 0.2 = 20 % slower) and in POINTS for rates (0.1 = 10 percentage points). `vs_original` (v1
 * records, the old API) is a deprecated alias of `vs_control`. Both windows need the minimum
 * sample.
 *
 * Kind and direction decide what a breach is:
 * - `threshold`: above → value > threshold; below → value < threshold; increase → change >
 *   threshold; decrease → change < −threshold (the threshold of increase/decrease is the SIZE of
 *   the change, so a conversion drop of more than 5 pp is `decrease` with 0.05);
 * - `ewma`: the judged value is scored against its own exponentially weighted baseline
 *   (pipeline/stats/ewma.ts, state per rule × item × shadow); above/increase → z > threshold,
 *   below/decrease → z < −threshold, once `warmup` judged windows built the baseline.
 *
 * State machine per (rule, item, shadow):
 * - a judged window in breach increments `over`; `forWindows` in a row → FIRE (a window with too
 *   little sample, or not in breach, resets the streak);
 * - while firing, the first judged window not in breach → RESOLVE; `staleWindows` evaluations in
 *   a row without a judgeable window (the shadow stopped sending — e.g. it was rolled back — or
 *   has no control arm) → RESOLVE with reason "no data".
 */
import type { AlertDirection, AlertRule, AlertRuleKind, EwmaParams } from '../../schemas/types.generated.ts';
import type { MetricWindowRecord } from '../telemetry/metric-record.ts';
import { Ewma, type EwmaState } from '../stats/ewma.ts';

export const BASE_METRICS = ['errorRate', 'requestErrorRate', 'latencyMean', 'latencyP95', 'latencyP99'] as const;
export type BaseMetric = (typeof BASE_METRICS)[number];
const NAME = '[A-Za-z0-9._:-]{1,64}';
export const METRIC_PATTERN = new RegExp(`^(errorRate|requestErrorRate|latencyMean|latencyP95|latencyP99|conversion:${NAME}|perfMean:${NAME}|perfP95:${NAME})$`);
/** Core Web Vitals the library reports as perf events (lcp, inp in ms; cls unitless). */
export const WEB_VITALS = ['lcp', 'inp', 'cls'] as const;

export type ParsedMetric = { kind: BaseMetric } | { kind: 'conversion'; point: string } | { kind: 'perfMean' | 'perfP95'; name: string };

export function parseMetric(metric: string): ParsedMetric | null {
  if (!METRIC_PATTERN.test(metric)) return null;
  if (metric.startsWith('conversion:')) return { kind: 'conversion', point: metric.slice('conversion:'.length) };
  if (metric.startsWith('perfMean:')) return { kind: 'perfMean', name: metric.slice('perfMean:'.length) };
  if (metric.startsWith('perfP95:')) return { kind: 'perfP95', name: metric.slice('perfP95:'.length) };
  return { kind: metric as BaseMetric };
}

export const isLatency = (m: ParsedMetric): boolean => m.kind === 'latencyMean' || m.kind === 'latencyP95' || m.kind === 'latencyP99';
/** Timings (latency, perf) are compared relatively; rates in points. */
export const isRelative = (m: ParsedMetric): boolean => isLatency(m) || m.kind === 'perfMean' || m.kind === 'perfP95';
/** Unit of a metric's own value: ms for latency and perf timings, none for CLS, a share for rates. */
export function unitOf(m: ParsedMetric): 'ms' | 'rate' | 'unitless' {
  if (isLatency(m)) return 'ms';
  if (m.kind === 'perfMean' || m.kind === 'perfP95') return m.name === 'cls' ? 'unitless' : 'ms';
  return 'rate';
}

/** Value of a metric in a window and the sample it rests on; value null when undefined (no data). */
export function metricOf(metric: ParsedMetric, w: MetricWindowRecord | undefined): { value: number | null; sample: number } {
  if (!w) return { value: null, sample: 0 };
  switch (metric.kind) {
    case 'errorRate':
      return { value: w.sessions > 0 ? w.errorSessions / w.sessions : null, sample: w.sessions };
    case 'requestErrorRate':
      return { value: w.requests > 0 ? w.requestErrors / w.requests : null, sample: w.requests };
    case 'latencyMean':
      return { value: w.latency.mean, sample: w.latency.count };
    case 'latencyP95':
      return { value: w.latency.p95, sample: w.latency.count };
    case 'latencyP99':
      return { value: w.latency.p99, sample: w.latency.count };
    case 'conversion': {
      const c = Object.hasOwn(w.conversions, metric.point) ? w.conversions[metric.point] : undefined;
      return { value: w.sessions > 0 ? (c?.sessions ?? 0) / w.sessions : null, sample: w.sessions };
    }
    case 'perfMean':
    case 'perfP95': {
      const p = Object.hasOwn(w.perf, metric.name) ? w.perf[metric.name] : undefined;
      if (!p || p.count === 0) return { value: null, sample: 0 };
      return { value: metric.kind === 'perfMean' ? p.mean : p.p95, sample: p.count };
    }
  }
}

export type RuleLike = Pick<AlertRule, 'metric' | 'comparison' | 'threshold' | 'minSample' | 'forWindows'> &
  Partial<Pick<AlertRule, 'direction' | 'kind' | 'ewma'>>;

/** `vs_original` (deprecated) means `vs_control`. */
export function comparisonOf(rule: Pick<AlertRule, 'comparison'>): 'absolute' | 'vs_control' {
  return rule.comparison === 'absolute' ? 'absolute' : 'vs_control';
}

/** The rule's direction; v1 records (null) meant above / increase. */
export function directionOf(rule: Pick<RuleLike, 'comparison' | 'direction'>): AlertDirection {
  return rule.direction ?? (comparisonOf(rule) === 'absolute' ? 'above' : 'increase');
}

export const kindOf = (rule: Pick<RuleLike, 'kind'>): AlertRuleKind => rule.kind ?? 'threshold';

export const DEFAULT_EWMA: EwmaParams = { alpha: 0.1, warmup: 10, minStd: 0 };

export interface Observation {
  /** Judged value (absolute value, or the change vs the control); null when not judgeable. */
  value: number | null;
  /** Shadow's own metric value. */
  shadowValue: number | null;
  /** Control arm's value for vs_control rules. */
  baseline: number | null;
  /** Enough sample on every side to judge. */
  judged: boolean;
  sample: number;
  baselineSample: number | null;
}

export function observe(rule: RuleLike, shadow: MetricWindowRecord | undefined, control: MetricWindowRecord | undefined): Observation {
  const m = parseMetric(rule.metric);
  if (!m) return { value: null, shadowValue: null, baseline: null, judged: false, sample: 0, baselineSample: null };
  const s = metricOf(m, shadow);
  if (comparisonOf(rule) === 'absolute') {
    const judged = s.value !== null && s.sample >= rule.minSample && s.sample > 0;
    return { value: judged ? s.value : null, shadowValue: s.value, baseline: null, judged, sample: s.sample, baselineSample: null };
  }
  const c = metricOf(m, control);
  let value: number | null = null;
  if (s.value !== null && c.value !== null) {
    if (isRelative(m)) value = c.value > 0 ? (s.value - c.value) / c.value : null;
    else value = s.value - c.value;
  }
  const judged = value !== null && s.sample >= rule.minSample && c.sample >= rule.minSample && s.sample > 0 && c.sample > 0;
  return { value: judged ? value : null, shadowValue: s.value, baseline: c.value, judged, sample: s.sample, baselineSample: c.sample };
}

export interface RuleTrack {
  /** Judged windows in breach in a row. */
  over: number;
  /** Evaluations in a row without a judgeable window (while firing). */
  idle: number;
  /** Open incident, if firing. */
  incidentId: string | null;
  /** windowStart of the last window this track evaluated (replays are skipped). */
  lastWindowStart: number;
  /** kind ewma: the baseline of the judged values (plain state, so the track can be copied). */
  ewma: EwmaState | null;
  /** kind ewma: z of the last judged window (for messages). */
  z: number | null;
}

export const emptyTrack = (): RuleTrack => ({ over: 0, idle: 0, incidentId: null, lastWindowStart: -Infinity, ewma: null, z: null });

export type Transition = { kind: 'fire' } | { kind: 'resolve'; reason: 'recovered' | 'no data' } | null;

export const DEFAULT_STALE_WINDOWS = 6;

/**
 * Whether a judged value is a breach. For kind ewma the value is also folded into the baseline
 * (the returned state); z is scored against the baseline BEFORE the value (Ewma.update).
 */
export function breachOf(rule: RuleLike, value: number, ewma: EwmaState | null): { breach: boolean; ewma: EwmaState | null; z: number | null } {
  const dir = directionOf(rule);
  const up = dir === 'above' || dir === 'increase';
  if (kindOf(rule) === 'ewma') {
    const p = { ...DEFAULT_EWMA, ...(rule.ewma ?? {}) };
    const e = new Ewma({ alpha: p.alpha, warmup: p.warmup, minStd: p.minStd, threshold: Math.max(rule.threshold, Number.MIN_VALUE) });
    if (ewma) e.restore(ewma);
    const step = e.update(value);
    const breach = step.anomaly && (up ? step.z > rule.threshold : step.z < -rule.threshold);
    return { breach, ewma: e.snapshot(), z: step.z };
  }
  let breach: boolean;
  if (dir === 'above' || dir === 'increase') breach = value > rule.threshold;
  else if (dir === 'below') breach = value < rule.threshold;
  else breach = value < -rule.threshold;
  return { breach, ewma, z: null };
}

/**
 * Next state after one window (`newIncidentId` names the incident when this fires). Pure: the
 * same inputs give the same outputs.
 */
export function stepRule(
  rule: RuleLike,
  track: RuleTrack,
  obs: Observation,
  windowStart: number,
  newIncidentId: string,
  staleWindows = DEFAULT_STALE_WINDOWS,
): { track: RuleTrack; transition: Transition } {
  if (windowStart <= track.lastWindowStart) return { track, transition: null };
  const next: RuleTrack = { ...track, lastWindowStart: windowStart };
  let breach = false;
  if (obs.judged && obs.value !== null) {
    const b = breachOf(rule, obs.value, track.ewma);
    breach = b.breach;
    next.ewma = b.ewma;
    next.z = b.z;
  }
  if (track.incidentId === null) {
    next.over = breach ? track.over + 1 : 0;
    next.idle = 0;
    if (next.over >= Math.max(1, rule.forWindows)) {
      next.incidentId = newIncidentId;
      return { track: next, transition: { kind: 'fire' } };
    }
    return { track: next, transition: null };
  }
  if (obs.judged && !breach) {
    return { track: { ...next, over: 0, idle: 0, incidentId: null }, transition: { kind: 'resolve', reason: 'recovered' } };
  }
  if (!obs.judged) {
    next.idle = track.idle + 1;
    if (next.idle >= staleWindows) return { track: { ...next, over: 0, idle: 0, incidentId: null }, transition: { kind: 'resolve', reason: 'no data' } };
    return { track: next, transition: null };
  }
  next.idle = 0;
  next.over = track.over + 1;
  return { track: next, transition: null };
}

/** A metric's own value for messages: ms, a percentage, or a plain number (CLS). */
function fmtValue(m: ParsedMetric | null, v: number | null): string {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const unit = m ? unitOf(m) : 'rate';
  if (unit === 'ms') return `${Math.round(v * 10) / 10} ms`;
  if (unit === 'unitless') return `${Math.round(v * 1000) / 1000}`;
  return `${Math.round(v * 1000) / 10}%`;
}

/** A change vs the control: relative (%) for timings, points for rates. */
function fmtChange(m: ParsedMetric | null, v: number | null): string {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const sign = v >= 0 ? '+' : '';
  if (m && isRelative(m)) return `${sign}${Math.round(v * 1000) / 10}%`;
  return `${sign}${Math.round(v * 1000) / 10} pp`;
}

/** The breach condition in words, e.g. "threshold +10 pp", "limit below 2%", "|z| > 3, increase". */
function conditionText(rule: RuleLike, m: ParsedMetric | null): string {
  const dir = directionOf(rule);
  if (kindOf(rule) === 'ewma') return `${dir === 'above' || dir === 'increase' ? 'z' : '−z'} > ${rule.threshold} against its EWMA baseline`;
  if (comparisonOf(rule) === 'absolute') return `threshold ${dir} ${fmtValue(m, rule.threshold)}`;
  return dir === 'decrease' ? `threshold ${fmtChange(m, -rule.threshold)}` : `threshold ${fmtChange(m, rule.threshold)}`;
}

/** Plain-language message of a transition. */
export function alertMessage(
  rule: RuleLike & { name: string },
  variant: string,
  obs: Observation,
  transition: NonNullable<Transition>,
  z: number | null = null,
): string {
  const m = parseMetric(rule.metric);
  const rel = comparisonOf(rule) === 'vs_control';
  const zText = kindOf(rule) === 'ewma' && z !== null && Number.isFinite(z) ? `, z=${Math.round(z * 10) / 10}` : '';
  if (transition.kind === 'fire') {
    const base = rel ? ` vs control ${fmtValue(m, obs.baseline)} (${fmtChange(m, obs.value)}${zText}, ${conditionText(rule, m)})` : ` (${zText ? `${zText.slice(2)}, ` : ''}${conditionText(rule, m)})`;
    return `${rule.name}: ${variant} ${rule.metric} ${fmtValue(m, obs.shadowValue)}${base} for ${Math.max(1, rule.forWindows)} window${rule.forWindows > 1 ? 's' : ''}.`;
  }
  if (transition.reason === 'no data') return `${rule.name}: resolved for ${variant} — no judgeable data for several windows${rel ? ' (shadow or control arm silent)' : ''}.`;
  const base = rel ? ` vs control ${fmtValue(m, obs.baseline)} (${fmtChange(m, obs.value)})` : '';
  return `${rule.name}: resolved for ${variant} — ${rule.metric} back to ${fmtValue(m, obs.shadowValue)}${base}.`;
}

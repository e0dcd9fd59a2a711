/**
 * Alert rule evaluation (pure): one 10 s window of a shadow (and the original's window of the same
 * start) → the compared value, whether the rule may judge it, and the rule's next state.
 *
 * Metrics (from the MetricWindow record, pipeline/windows/README.md for definitions):
 *
 * | metric | value | sample (vs minSample) |
 * |---|---|---|
 * | errorRate | errorSessions / sessions | sessions |
 * | requestErrorRate | requestErrors / requests | requests |
 * | latencyMean / latencyP95 / latencyP99 | latency.mean / p95 / p99 (ms) | latency.count |
 * | conversion:<point> | sessions that hit the point / sessions | sessions |
 *
 * Comparison: `absolute` judges the shadow's value; `vs_original` judges shadow − original —
 * RELATIVE for latency ((shadow − original) / original, so 0.2 = 20 % slower) and in POINTS for
 * rates (0.1 = 10 percentage points more). Both windows need the minimum sample. The rule fires
 * when the compared value is ABOVE the threshold (so a conversion rule catches increases; a drop
 * needs a negative-direction rule the schema does not have yet).
 *
 * State machine per (rule, item, shadow):
 * - a judged window above the threshold increments `over`; `forWindows` in a row → FIRE
 *   (a window with too little sample, or at/below the threshold, resets the streak);
 * - while firing, the first judged window at/below the threshold → RESOLVE; `staleWindows`
 *   evaluations in a row without a judgeable window (the shadow stopped sending — e.g. it was
 *   rolled back) → RESOLVE with reason "no data".
 */
import type { AlertRule } from '../../schemas/types.generated.ts';
import type { MetricWindowRecord } from '../telemetry/metric-record.ts';

export const BASE_METRICS = ['errorRate', 'requestErrorRate', 'latencyMean', 'latencyP95', 'latencyP99'] as const;
export type BaseMetric = (typeof BASE_METRICS)[number];
export const METRIC_PATTERN = /^(errorRate|requestErrorRate|latencyMean|latencyP95|latencyP99|conversion:[A-Za-z0-9._:-]{1,64})$/;

export type ParsedMetric = { kind: BaseMetric } | { kind: 'conversion'; point: string };

export function parseMetric(metric: string): ParsedMetric | null {
  if (!METRIC_PATTERN.test(metric)) return null;
  if (metric.startsWith('conversion:')) return { kind: 'conversion', point: metric.slice('conversion:'.length) };
  return { kind: metric as BaseMetric };
}

export const isLatency = (m: ParsedMetric): boolean => m.kind === 'latencyMean' || m.kind === 'latencyP95' || m.kind === 'latencyP99';

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
  }
}

export interface Observation {
  /** Compared value (absolute value, or the difference vs the original); null when not judgeable. */
  value: number | null;
  /** Shadow's own metric value. */
  shadowValue: number | null;
  /** Original's value for vs_original rules. */
  baseline: number | null;
  /** Enough sample on every side to judge. */
  judged: boolean;
  sample: number;
  baselineSample: number | null;
}

export type RuleLike = Pick<AlertRule, 'metric' | 'comparison' | 'threshold' | 'minSample' | 'forWindows'>;

export function observe(rule: RuleLike, shadow: MetricWindowRecord | undefined, original: MetricWindowRecord | undefined): Observation {
  const m = parseMetric(rule.metric);
  if (!m) return { value: null, shadowValue: null, baseline: null, judged: false, sample: 0, baselineSample: null };
  const s = metricOf(m, shadow);
  if (rule.comparison === 'absolute') {
    const judged = s.value !== null && s.sample >= rule.minSample && s.sample > 0;
    return { value: judged ? s.value : null, shadowValue: s.value, baseline: null, judged, sample: s.sample, baselineSample: null };
  }
  const o = metricOf(m, original);
  let value: number | null = null;
  if (s.value !== null && o.value !== null) {
    if (isLatency(m)) value = o.value > 0 ? (s.value - o.value) / o.value : null;
    else value = s.value - o.value;
  }
  const judged = value !== null && s.sample >= rule.minSample && o.sample >= rule.minSample && s.sample > 0 && o.sample > 0;
  return { value: judged ? value : null, shadowValue: s.value, baseline: o.value, judged, sample: s.sample, baselineSample: o.sample };
}

export interface RuleTrack {
  /** Judged windows above the threshold in a row. */
  over: number;
  /** Evaluations in a row without a judgeable window (while firing). */
  idle: number;
  /** Open incident, if firing. */
  incidentId: string | null;
  /** windowStart of the last window this track evaluated (replays are skipped). */
  lastWindowStart: number;
}

export const emptyTrack = (): RuleTrack => ({ over: 0, idle: 0, incidentId: null, lastWindowStart: -Infinity });

export type Transition = { kind: 'fire' } | { kind: 'resolve'; reason: 'recovered' | 'no data' } | null;

export const DEFAULT_STALE_WINDOWS = 6;

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
  const above = obs.judged && obs.value !== null && obs.value > rule.threshold;
  if (track.incidentId === null) {
    next.over = above ? track.over + 1 : 0;
    next.idle = 0;
    if (next.over >= Math.max(1, rule.forWindows)) {
      next.incidentId = newIncidentId;
      return { track: next, transition: { kind: 'fire' } };
    }
    return { track: next, transition: null };
  }
  if (obs.judged && !above) {
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

const pctOrMs = (m: ParsedMetric | null, v: number | null, relative: boolean): string => {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  if (m && isLatency(m) && !relative) return `${Math.round(v * 10) / 10} ms`;
  if (relative) return `${v >= 0 ? '+' : ''}${Math.round(v * 1000) / 10}%`;
  return `${Math.round(v * 1000) / 10}%`;
};

/** Plain-language message of a transition. */
export function alertMessage(
  rule: RuleLike & { name: string },
  variant: string,
  obs: Observation,
  transition: NonNullable<Transition>,
): string {
  const m = parseMetric(rule.metric);
  const rel = rule.comparison === 'vs_original';
  const latencyRel = rel && m !== null && isLatency(m);
  const fmtCmp = (v: number | null) => (rel ? (latencyRel ? pctOrMs(m, v, true) : `${v !== null && v >= 0 ? '+' : ''}${pctOrMs(m, v, false).replace('%', ' pp')}`) : pctOrMs(m, v, false));
  if (transition.kind === 'fire') {
    const base = rel ? ` vs original ${pctOrMs(m, obs.baseline, false)} (${fmtCmp(obs.value)}, threshold ${fmtCmp(rule.threshold)})` : ` (threshold ${fmtCmp(rule.threshold)})`;
    return `${rule.name}: ${variant} ${rule.metric} ${pctOrMs(m, obs.shadowValue, false)}${base} for ${Math.max(1, rule.forWindows)} window${rule.forWindows > 1 ? 's' : ''}.`;
  }
  if (transition.reason === 'no data') return `${rule.name}: resolved for ${variant} — no judgeable data for several windows.`;
  const base = rel ? ` vs original ${pctOrMs(m, obs.baseline, false)} (${fmtCmp(obs.value)})` : '';
  return `${rule.name}: resolved for ${variant} — ${rule.metric} back to ${pctOrMs(m, obs.shadowValue, false)}${base}.`;
}

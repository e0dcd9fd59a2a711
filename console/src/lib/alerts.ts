/**
 * Alert-rule editor model: blank rule, metric choices (rates, latency, conversions, page timings
 * and Core Web Vitals), comparison against the control arm or absolute, direction, the kind
 * (fixed threshold or EWMA anomaly), validation with field paths, a sentence for a rule.
 */
import type { FieldError } from './api.ts';
import type { Alert, AlertDirection, AlertRule, AlertRuleInput } from './types.ts';
import { fmtMs, fmtNumber, fmtRate } from './format.ts';

/** Choices of the metric select; `conversion` and `perf` ask for a name. */
export const ALERT_METRICS: { metric: string; label: string }[] = [
  { metric: 'errorRate', label: 'Error rate' },
  { metric: 'requestErrorRate', label: 'Request error rate' },
  { metric: 'latencyMean', label: 'Latency mean' },
  { metric: 'latencyP95', label: 'Latency p95' },
  { metric: 'latencyP99', label: 'Latency p99' },
  { metric: 'conversion', label: 'Conversion of a point…' },
  { metric: 'perfP95:lcp', label: 'LCP p95 (Core Web Vital)' },
  { metric: 'perfP95:inp', label: 'INP p95 (Core Web Vital)' },
  { metric: 'perfP95:cls', label: 'CLS p95 (Core Web Vital)' },
  { metric: 'perf', label: 'Page timing by name…' },
];

export const DIRECTIONS: Record<AlertRuleInput['comparison'], { value: AlertDirection; label: string }[]> = {
  vs_control: [{ value: 'increase', label: 'increases vs the control by more than' }, { value: 'decrease', label: 'drops vs the control by more than' }],
  absolute: [{ value: 'above', label: 'goes above' }, { value: 'below', label: 'goes below' }],
};
export const DEFAULT_EWMA = { alpha: 0.1, warmup: 10, minStd: 0 };

export function blankRule(itemId: string | null = null): AlertRuleInput {
  return { itemId, name: '', metric: 'errorRate', comparison: 'vs_control', direction: 'increase', kind: 'threshold', threshold: 0.02, ewma: null, minSample: 100, forWindows: 3, guardrail: false };
}
export function ruleToInput(r: AlertRule): AlertRuleInput {
  const { id: _id, ...rest } = r;
  void _id;
  // Rules from an older server: no direction/kind yet (vs_original meant vs_control, upwards).
  const comparison = (rest.comparison as string) === 'absolute' ? 'absolute' : 'vs_control';
  return { ...rest, comparison, direction: rest.direction ?? DIRECTIONS[comparison][0].value, kind: rest.kind ?? 'threshold', ewma: rest.ewma ?? null };
}

const WEB_VITAL_METRICS = new Set(['perfP95:lcp', 'perfP95:inp', 'perfP95:cls']);
/** The select value for a metric: its own name, or `conversion` / `perf` for named ones. */
export function metricBase(metric: string): string {
  if (metric.startsWith('conversion:')) return 'conversion';
  if (WEB_VITAL_METRICS.has(metric)) return metric;
  if (metric.startsWith('perfP95:') || metric.startsWith('perfMean:')) return 'perf';
  return metric;
}
export function conversionPoint(metric: string): string { return metric.startsWith('conversion:') ? metric.slice('conversion:'.length) : ''; }
/** Perf name of a perfP95:/perfMean: metric ('' otherwise). */
export function perfName(metric: string): string { const m = /^perf(?:P95|Mean):(.*)$/.exec(metric); return m ? m[1] : ''; }
export function perfStat(metric: string): 'P95' | 'Mean' { return metric.startsWith('perfMean:') ? 'Mean' : 'P95'; }

const isTiming = (metric: string) => metric.startsWith('latency') || ((metric.startsWith('perfP95:') || metric.startsWith('perfMean:')) && perfName(metric) !== 'cls');
const isScore = (metric: string) => perfName(metric) === 'cls';

export function validateRule(r: AlertRuleInput): FieldError[] {
  const e: FieldError[] = [];
  if (!r.name.trim()) e.push({ path: 'name', message: 'Name the rule' });
  if (r.metric === 'conversion:' || r.metric === ('conversion' as string)) e.push({ path: 'metric', message: 'Name the conversion point' });
  if (/^perf(P95|Mean):$/.test(r.metric) || r.metric === ('perf' as string)) e.push({ path: 'metric', message: 'Name the perf metric (e.g. ttfb, fcp, load)' });
  if (!DIRECTIONS[r.comparison].some((d) => d.value === r.direction)) e.push({ path: 'direction', message: `Pick ${DIRECTIONS[r.comparison].map((d) => d.value).join(' or ')}` });
  if (!Number.isFinite(r.threshold)) e.push({ path: 'threshold', message: 'A number' });
  else if (r.kind === 'ewma' && !(r.threshold > 0)) e.push({ path: 'threshold', message: 'A z-score limit above 0' });
  else if (r.kind === 'threshold' && r.comparison === 'vs_control' && r.threshold < 0) e.push({ path: 'threshold', message: 'The size of the change (≥ 0); pick “drops” for a decrease' });
  if (r.kind === 'ewma' && r.ewma && !(r.ewma.alpha > 0 && r.ewma.alpha <= 1)) e.push({ path: 'ewma/alpha', message: 'Between 0 and 1' });
  if (r.kind === 'ewma' && r.ewma && !(Number.isInteger(r.ewma.warmup) && r.ewma.warmup >= 0)) e.push({ path: 'ewma/warmup', message: 'A whole number ≥ 0' });
  if (!Number.isInteger(r.minSample) || r.minSample < 0) e.push({ path: 'minSample', message: 'A whole number ≥ 0' });
  if (!Number.isInteger(r.forWindows) || r.forWindows < 1) e.push({ path: 'forWindows', message: 'A whole number ≥ 1' });
  return e;
}

/** A metric's own value: ms for latency and timings, a plain number for CLS, a percentage for rates. */
export function metricValue(metric: string, v: number | null | undefined): string {
  if (isScore(metric)) return fmtNumber(v, 3);
  return isTiming(metric) ? fmtMs(v) : fmtRate(v);
}
/** A change vs the control: relative for timings (0.2 → 20%), points for rates. */
export function changeValue(metric: string, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return isTiming(metric) || isScore(metric) ? `${fmtNumber(v * 100, 1)}%` : `${fmtNumber(v * 100, 2)} pp`;
}

export function metricLabel(metric: string): string {
  const base = metricBase(metric);
  if (base === 'conversion') return `Conversion “${conversionPoint(metric)}”`;
  if (base === 'perf') return `Timing “${perfName(metric)}” ${perfStat(metric) === 'P95' ? 'p95' : 'mean'}`;
  return ALERT_METRICS.find((x) => x.metric === base)?.label.replace(/ \(Core Web Vital\)$/, '') ?? metric;
}

export function describeRule(r: AlertRule | AlertRuleInput): string {
  const what = metricLabel(r.metric);
  const comparison = (r.comparison as string) === 'absolute' ? 'absolute' : 'vs_control';
  const direction = r.direction ?? DIRECTIONS[comparison][0].value;
  let cond: string;
  if (r.kind === 'ewma') {
    const p = { ...DEFAULT_EWMA, ...(r.ewma ?? {}) };
    const against = comparison === 'vs_control' ? 'its difference from the control' : 'its value';
    cond = `is anomalous: ${against} moves ${direction === 'above' || direction === 'increase' ? 'up' : 'down'} more than ${r.threshold} standard deviations from its EWMA baseline (α ${p.alpha}, warm-up ${p.warmup} windows)`;
  } else if (comparison === 'vs_control') {
    cond = `${direction === 'decrease' ? 'drops below' : 'rises above'} its control by more than ${changeValue(r.metric, r.threshold)}`;
  } else {
    cond = `goes ${direction === 'below' ? 'below' : 'above'} ${metricValue(r.metric, r.threshold)}`;
  }
  return `${what} ${cond} for ${r.forWindows} window${r.forWindows === 1 ? '' : 's'} (min ${r.minSample} samples)${r.guardrail ? ' — rolls back automatically' : ''}`;
}

export function alertSentence(a: Alert): string {
  if (a.message) return a.message;
  const base = a.baseline !== null && a.baseline !== undefined ? ` (control ${metricValue(a.metric, a.baseline)})` : '';
  return `${a.variant}: ${a.metric} ${metricValue(a.metric, a.value)} vs threshold ${metricValue(a.metric, a.threshold)}${base}`;
}

/** Alert-rule editor model: blank rule, metric choices, validation with field paths. */
import type { FieldError } from './api.ts';
import type { Alert, AlertRule, AlertRuleInput } from './types.ts';
import { fmtMs, fmtRate } from './format.ts';

export const ALERT_METRICS: { metric: string; label: string }[] = [
  { metric: 'errorRate', label: 'Error rate' },
  { metric: 'requestErrorRate', label: 'Request error rate' },
  { metric: 'latencyMean', label: 'Latency mean' },
  { metric: 'latencyP95', label: 'Latency p95' },
  { metric: 'latencyP99', label: 'Latency p99' },
  { metric: 'conversion', label: 'Conversion of a point…' },
];

export function blankRule(itemId: string | null = null): AlertRuleInput {
  return { itemId, name: '', metric: 'errorRate', comparison: 'vs_original', threshold: 0.02, minSample: 100, forWindows: 3, guardrail: false };
}
export function ruleToInput(r: AlertRule): AlertRuleInput {
  const { id: _id, ...rest } = r;
  void _id;
  return { ...rest };
}
export function metricBase(metric: string): string { return metric.startsWith('conversion:') ? 'conversion' : metric; }
export function conversionPoint(metric: string): string { return metric.startsWith('conversion:') ? metric.slice('conversion:'.length) : ''; }

export function validateRule(r: AlertRuleInput): FieldError[] {
  const e: FieldError[] = [];
  if (!r.name.trim()) e.push({ path: 'name', message: 'Name the rule' });
  if (r.metric === 'conversion:' || r.metric === ('conversion' as string)) e.push({ path: 'metric', message: 'Name the conversion point' });
  if (!Number.isFinite(r.threshold)) e.push({ path: 'threshold', message: 'A number' });
  if (!Number.isInteger(r.minSample) || r.minSample < 0) e.push({ path: 'minSample', message: 'A whole number ≥ 0' });
  if (!Number.isInteger(r.forWindows) || r.forWindows < 1) e.push({ path: 'forWindows', message: 'A whole number ≥ 1' });
  return e;
}

export function metricValue(metric: string, v: number | null | undefined): string {
  return metric.startsWith('latency') ? fmtMs(v) : fmtRate(v);
}

export function describeRule(r: AlertRule | AlertRuleInput): string {
  const m = ALERT_METRICS.find((x) => x.metric === metricBase(r.metric))?.label ?? r.metric;
  const what = r.metric.startsWith('conversion:') ? `${m.replace('…', '')} “${conversionPoint(r.metric)}”` : m;
  const thr = metricValue(r.metric, r.threshold);
  const cmp = r.comparison === 'vs_original' ? `exceeds the original by ${thr}` : `exceeds ${thr}`;
  return `${what} ${cmp} for ${r.forWindows} window${r.forWindows === 1 ? '' : 's'} (min ${r.minSample} sessions)${r.guardrail ? ' — rolls back automatically' : ''}`;
}

export function alertSentence(a: Alert): string {
  if (a.message) return a.message;
  const base = a.baseline !== null && a.baseline !== undefined ? ` (original ${metricValue(a.metric, a.baseline)})` : '';
  return `${a.variant}: ${a.metric} ${metricValue(a.metric, a.value)} vs threshold ${metricValue(a.metric, a.threshold)}${base}`;
}

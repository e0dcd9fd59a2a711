/** Rule evaluation (pure): metric values, comparisons, directions, the EWMA kind, minimum sample, fire/resolve state machine, messages. */
import { alertMessage, breachOf, comparisonOf, directionOf, emptyTrack, metricOf, observe, parseMetric, stepRule, type RuleLike, type RuleTrack } from './rules.ts';
import { RuleStore, ruleView } from './rule-store.ts';
import { alertRuleInputSchema } from '../../connectors/http/alerts-router.ts';
import { AlertLog } from './alert-log.ts';
import type { MetricWindowRecord } from '../telemetry/metric-record.ts';
import type { Alert, AlertRule } from '../../schemas/types.generated.ts';

function win(over: Omit<Partial<MetricWindowRecord>, 'latency'> & { latency?: Partial<MetricWindowRecord['latency']> } = {}): MetricWindowRecord {
  const { latency, ...rest } = over;
  return {
    itemId: 'it', variant: 'original', windowSize: 10_000, windowStart: 0, windowEnd: 10_000, events: 100, sessions: 50, users: 50, errors: 5,
    errorSessions: 5, errorRate: 0.1, requests: 80, requestErrors: 8, rate: 10,
    latency: { count: 80, mean: 100, p50: 90, p95: 200, p99: 300, sum: 8000, sumSq: 0, ...latency },
    conversions: { buy: { sessions: 10, rate: 0.2 } }, perf: { lcp: { count: 40, mean: 1800, p95: 2500 }, cls: { count: 40, mean: 0.05, p95: 0.12 } }, late: 0, emittedAt: 0, ...rest,
  };
}

const rule = (over: Partial<RuleLike> = {}): RuleLike => ({ metric: 'errorRate', comparison: 'vs_control', threshold: 0.1, minSample: 20, forWindows: 1, ...over });

describe('metrics', () => {
  test('parse', () => {
    expect(parseMetric('errorRate')).toEqual({ kind: 'errorRate' });
    expect(parseMetric('conversion:buy')).toEqual({ kind: 'conversion', point: 'buy' });
    expect(parseMetric('perfP95:lcp')).toEqual({ kind: 'perfP95', name: 'lcp' });
    expect(parseMetric('perfMean:ttfb')).toEqual({ kind: 'perfMean', name: 'ttfb' });
    for (const bad of ['', 'errorrate', 'conversion:', 'latencyP50', 'conversion:a b', 'perfP95:', 'perf:lcp', 'perfP99:lcp']) expect(parseMetric(bad)).toBeNull();
  });

  test('values and samples per metric', () => {
    const w = win();
    expect(metricOf({ kind: 'errorRate' }, w)).toEqual({ value: 0.1, sample: 50 });
    expect(metricOf({ kind: 'requestErrorRate' }, w)).toEqual({ value: 0.1, sample: 80 });
    expect(metricOf({ kind: 'latencyMean' }, w)).toEqual({ value: 100, sample: 80 });
    expect(metricOf({ kind: 'latencyP95' }, w)).toEqual({ value: 200, sample: 80 });
    expect(metricOf({ kind: 'latencyP99' }, w)).toEqual({ value: 300, sample: 80 });
    expect(metricOf({ kind: 'conversion', point: 'buy' }, w)).toEqual({ value: 0.2, sample: 50 });
    expect(metricOf({ kind: 'conversion', point: 'other' }, w)).toEqual({ value: 0, sample: 50 });
    expect(metricOf({ kind: 'conversion', point: '__proto__' }, w)).toEqual({ value: 0, sample: 50 });
    expect(metricOf({ kind: 'errorRate' }, undefined)).toEqual({ value: null, sample: 0 });
    expect(metricOf({ kind: 'errorRate' }, win({ sessions: 0, errorSessions: 0 }))).toEqual({ value: null, sample: 0 });
    expect(metricOf({ kind: 'latencyMean' }, win({ latency: { count: 0, mean: null } }))).toEqual({ value: null, sample: 0 });
    // Page timings and web vitals: the perf metric by name, its count as the sample.
    expect(metricOf({ kind: 'perfP95', name: 'lcp' }, w)).toEqual({ value: 2500, sample: 40 });
    expect(metricOf({ kind: 'perfMean', name: 'cls' }, w)).toEqual({ value: 0.05, sample: 40 });
    expect(metricOf({ kind: 'perfP95', name: 'inp' }, w)).toEqual({ value: null, sample: 0 });
    expect(metricOf({ kind: 'perfP95', name: '__proto__' }, w)).toEqual({ value: null, sample: 0 });
  });
});

describe('observe', () => {
  test('vs_control: points for rates (vs_original is the same, deprecated)', () => {
    expect(comparisonOf({ comparison: 'vs_original' })).toBe('vs_control');
    expect(observe(rule({ comparison: 'vs_original' }), win({ variant: 's', errorSessions: 15 }), win())).toEqual(observe(rule(), win({ variant: 's', errorSessions: 15 }), win()));
    const o = observe(rule(), win({ variant: 's', errorSessions: 15 }), win());
    expect(o.judged).toBe(true);
    expect(o.value).toBeCloseTo(0.2, 12);
    expect(o.shadowValue).toBeCloseTo(0.3, 12);
    expect(o.baseline).toBeCloseTo(0.1, 12);
  });

  test('vs_control: relative for latency and perf', () => {
    const o = observe(rule({ metric: 'latencyP95', threshold: 0.2 }), win({ latency: { p95: 260 } }), win());
    expect(o.value).toBeCloseTo(0.3, 12);
    const lcp = observe(rule({ metric: 'perfP95:lcp', threshold: 0.2 }), win({ perf: { lcp: { count: 40, mean: 2000, p95: 3000 } } }), win());
    expect(lcp).toMatchObject({ judged: true, shadowValue: 3000, baseline: 2500, sample: 40, baselineSample: 40 });
    expect(lcp.value).toBeCloseTo(0.2, 12);
    // Control at 0 ms: no relative difference.
    expect(observe(rule({ metric: 'latencyP95' }), win(), win({ latency: { p95: 0 } })).judged).toBe(false);
  });

  test('absolute judges the shadow alone', () => {
    const o = observe(rule({ comparison: 'absolute', metric: 'latencyMean', threshold: 150 }), win({ latency: { mean: 180 } }), undefined);
    expect(o).toMatchObject({ judged: true, value: 180, baseline: null });
  });

  test('minimum sample on both sides', () => {
    expect(observe(rule({ minSample: 51 }), win(), win()).judged).toBe(false);
    expect(observe(rule({ minSample: 50 }), win(), win()).judged).toBe(true);
    expect(observe(rule({ minSample: 20 }), win(), win({ sessions: 19 })).judged).toBe(false);
    expect(observe(rule(), win(), undefined).judged).toBe(false);
    expect(observe(rule({ minSample: 0 }), win({ sessions: 0, errorSessions: 0 }), win()).judged).toBe(false);
    expect(observe(rule({ metric: 'bogus' }), win(), win()).judged).toBe(false);
  });
});

describe('directions', () => {
  const breach = (over: Partial<RuleLike>, v: number) => breachOf(rule(over), v, null).breach;

  test('defaults: above for absolute, increase for vs_control (v1 records)', () => {
    expect(directionOf({ comparison: 'absolute', direction: null })).toBe('above');
    expect(directionOf({ comparison: 'vs_original', direction: null })).toBe('increase');
    expect(directionOf({ comparison: 'vs_control', direction: 'decrease' })).toBe('decrease');
  });

  test('absolute above / below', () => {
    expect(breach({ comparison: 'absolute', direction: 'above', threshold: 0.1 }, 0.11)).toBe(true);
    expect(breach({ comparison: 'absolute', direction: 'above', threshold: 0.1 }, 0.1)).toBe(false);
    expect(breach({ comparison: 'absolute', direction: 'below', threshold: 0.1 }, 0.09)).toBe(true);
    expect(breach({ comparison: 'absolute', direction: 'below', threshold: 0.1 }, 0.1)).toBe(false);
  });

  test('vs_control increase / decrease: the threshold is the size of the change', () => {
    expect(breach({ direction: 'increase', threshold: 0.05 }, 0.06)).toBe(true);
    expect(breach({ direction: 'increase', threshold: 0.05 }, -0.5)).toBe(false);
    expect(breach({ direction: 'decrease', threshold: 0.05 }, -0.06)).toBe(true);
    expect(breach({ direction: 'decrease', threshold: 0.05 }, -0.05)).toBe(false);
    expect(breach({ direction: 'decrease', threshold: 0.05 }, 0.5)).toBe(false);
  });

  test('a conversion drop vs the control fires a decrease rule, not an increase rule', () => {
    const drop = observe(rule({ metric: 'conversion:buy', direction: 'decrease', threshold: 0.05 }), win({ conversions: { buy: { sessions: 3, rate: 0.06 } } }), win());
    expect(drop.value).toBeCloseTo(-0.14, 12); // 6 % vs 20 %
    expect(breachOf(rule({ metric: 'conversion:buy', direction: 'decrease', threshold: 0.05 }), drop.value!, null).breach).toBe(true);
    expect(breachOf(rule({ metric: 'conversion:buy', direction: 'increase', threshold: 0.05 }), drop.value!, null).breach).toBe(false);
  });
});

describe('EWMA kind', () => {
  const run = (r: RuleLike, values: number[]) => {
    let t: RuleTrack = emptyTrack();
    return values.map((v, i) => {
      const s = stepRule(r, t, { value: v, shadowValue: v, baseline: null, judged: true, sample: 100, baselineSample: null }, i * 10_000, `inc-${i}`);
      t = s.track;
      return s.transition ? (s.transition.kind === 'fire' ? `fire(z=${Math.round(t.z!)})` : `resolve:${s.transition.reason}`) : '-';
    });
  };
  const steady = [200, 204, 198, 202, 199, 201, 203, 197, 200, 202];

  test('fires on a spike against its own baseline after warm-up, in the rule direction only', () => {
    const up = rule({ comparison: 'absolute', metric: 'latencyP95', kind: 'ewma', direction: 'above', threshold: 3, ewma: { alpha: 0.2, warmup: 5, minStd: 0 } });
    const out = run(up, [...steady, 400, 201]);
    expect(out.slice(0, 10)).toEqual(Array(10).fill('-'));
    expect(out[10]).toMatch(/^fire\(z=\d+\)$/);
    expect(out[11]).toBe('resolve:recovered');
    // A drop is not a breach for an "above" rule, but is for a "below" one.
    expect(run(up, [...steady, 50])[10]).toBe('-');
    expect(run({ ...up, direction: 'below' }, [...steady, 50])[10]).toMatch(/^fire/);
  });

  test('nothing before warm-up; minStd floors the scale', () => {
    const r = rule({ comparison: 'absolute', kind: 'ewma', threshold: 3, ewma: { alpha: 0.2, warmup: 20, minStd: 0 } });
    expect(run(r, [...steady, 400])).toEqual(Array(11).fill('-'));
    const floored = rule({ comparison: 'absolute', kind: 'ewma', threshold: 3, ewma: { alpha: 0.2, warmup: 3, minStd: 100 } });
    expect(run(floored, [...steady, 400])[10]).toBe('-'); // 200 above a 100 floor: z ≈ 2
  });

  test('the baseline is plain state in the track (a copy restores it)', () => {
    const r = rule({ comparison: 'absolute', kind: 'ewma', threshold: 3 });
    const a = stepRule(r, emptyTrack(), { value: 5, shadowValue: 5, baseline: null, judged: true, sample: 1, baselineSample: null }, 0, 'x');
    expect(a.track.ewma).toEqual({ count: 1, mean: 5, variance: 0 });
    expect(JSON.parse(JSON.stringify(a.track.ewma))).toEqual(a.track.ewma);
  });
});

describe('state machine', () => {
  const run = (r: RuleLike, values: (number | null)[], stale = 3) => {
    let t: RuleTrack = emptyTrack();
    const out: string[] = [];
    values.forEach((v, i) => {
      const obs = { value: v, shadowValue: v, baseline: null, judged: v !== null, sample: 100, baselineSample: null };
      const s = stepRule(r, t, obs, i * 10_000, `inc-${i}`, stale);
      t = s.track;
      out.push(s.transition ? (s.transition.kind === 'fire' ? `fire:${t.incidentId}` : `resolve:${s.transition.reason}`) : '-');
    });
    return out;
  };

  test('fires after forWindows consecutive windows above, resolves on the first judged window at or below', () => {
    expect(run(rule({ threshold: 0.1, forWindows: 1 }), [0.05, 0.2, 0.3, 0.1, 0.2])).toEqual(['-', 'fire:inc-1', '-', 'resolve:recovered', 'fire:inc-4']);
    expect(run(rule({ threshold: 0.1, forWindows: 3 }), [0.2, 0.2, 0.05, 0.2, 0.2, 0.2, 0.2])).toEqual(['-', '-', '-', '-', '-', 'fire:inc-5', '-']);
  });

  test('a window without enough sample breaks the streak but does not resolve (until stale)', () => {
    expect(run(rule({ forWindows: 2 }), [0.2, null, 0.2, 0.2])).toEqual(['-', '-', '-', 'fire:inc-3']);
    expect(run(rule(), [0.2, null, null, 0.05])).toEqual(['fire:inc-0', '-', '-', 'resolve:recovered']);
    expect(run(rule(), [0.2, null, null, null, 0.2], 3)).toEqual(['fire:inc-0', '-', '-', 'resolve:no data', 'fire:inc-4']);
  });

  test('exactly at the threshold is not above', () => {
    expect(run(rule({ threshold: 0.1 }), [0.1])).toEqual(['-']);
  });

  test('a replayed window (start not after the last) changes nothing', () => {
    const r = rule();
    const obs = { value: 0.5, shadowValue: 0.5, baseline: null, judged: true, sample: 100, baselineSample: null };
    const a = stepRule(r, emptyTrack(), obs, 10_000, 'x');
    expect(a.transition).toEqual({ kind: 'fire' });
    const b = stepRule(r, a.track, { ...obs, value: 0 }, 10_000, 'y');
    expect(b).toEqual({ track: a.track, transition: null });
  });

  test('messages say what happened', () => {
    const r = { ...rule(), name: 'Errors' };
    const obs = observe(r, win({ variant: 's', errorSessions: 15 }), win());
    expect(alertMessage(r, 's', obs, { kind: 'fire' })).toBe('Errors: s errorRate 30% vs control 10% (+20 pp, threshold +10 pp) for 1 window.');
    expect(alertMessage(r, 's', obs, { kind: 'resolve', reason: 'recovered' })).toContain('resolved for s');
    const lat = { ...rule({ metric: 'latencyP95', threshold: 0.2 }), name: 'Slow' };
    expect(alertMessage(lat, 's', observe(lat, win({ latency: { p95: 260 } }), win()), { kind: 'fire' })).toBe('Slow: s latencyP95 260 ms vs control 200 ms (+30%, threshold +20%) for 1 window.');
    const drop = { ...rule({ metric: 'conversion:buy', direction: 'decrease', threshold: 0.05 }), name: 'Buy drop' };
    expect(alertMessage(drop, 's', observe(drop, win({ conversions: { buy: { sessions: 3, rate: 0.06 } } }), win()), { kind: 'fire' })).toBe('Buy drop: s conversion:buy 6% vs control 20% (-14 pp, threshold -5 pp) for 1 window.');
    const cls = { ...rule({ comparison: 'absolute', metric: 'perfP95:cls', direction: 'above', threshold: 0.1 }), name: 'CLS' };
    expect(alertMessage(cls, 's', observe(cls, win(), undefined), { kind: 'fire' })).toBe('CLS: s perfP95:cls 0.12 (threshold above 0.1) for 1 window.');
    const anomaly = { ...rule({ comparison: 'absolute', metric: 'latencyP95', kind: 'ewma', threshold: 3 }), name: 'Anomaly' };
    expect(alertMessage(anomaly, 's', observe(anomaly, win(), undefined), { kind: 'fire' }, 4.26)).toBe('Anomaly: s latencyP95 200 ms (z=4.3, z > 3 against its EWMA baseline) for 1 window.');
  });
});

describe('rule store and alert log', () => {
  const ar = (over: Partial<AlertRule> = {}): AlertRule => ({ id: 'r1', itemId: null, name: 'n', metric: 'errorRate', comparison: 'absolute', threshold: 0.1, minSample: 1, forWindows: 1, guardrail: false, deleted: false, updatedBy: 'op', updatedAt: 1, direction: null, kind: 'threshold', ewma: null, ...over });

  test('a v1 record (vs_original, no direction) reads as vs_control / increase', () => {
    expect(ruleView(ar({ comparison: 'vs_original' }))).toMatchObject({ comparison: 'vs_control', direction: 'increase', kind: 'threshold', ewma: null });
    expect(ruleView(ar({ kind: 'ewma', threshold: 3 }))).toMatchObject({ comparison: 'absolute', direction: 'above', ewma: { alpha: 0.1, warmup: 10, minStd: 0 } });
  });

  test('latest record per id wins, deleted removes, forItem includes global rules', async () => {
    const s = new RuleStore();
    s.apply(ar());
    s.apply(ar({ id: 'r2', itemId: 'a', updatedAt: 2 }));
    s.apply(ar({ id: 'r3', itemId: 'b', updatedAt: 3 }));
    expect(s.forItem('a').map((r) => r.id)).toEqual(['r1', 'r2']);
    const seen = s.waitUntil(() => s.get('r1')?.threshold === 0.5, 1000);
    s.apply(ar({ threshold: 0.5, updatedAt: 4 }));
    await seen;
    s.apply(ar({ threshold: 0.9, updatedAt: 0 })); // older: ignored
    expect(s.get('r1')?.threshold).toBe(0.5);
    s.apply(ar({ deleted: true, updatedAt: 5 }));
    expect(s.get('r1')).toBeUndefined();
    await expect(s.waitUntil(() => false, 10)).rejects.toThrow();
  });

  test('ring, open incidents and last decided window', () => {
    const log = new AlertLog(3);
    const a = (id: string, incidentId: string, state: Alert['state'], windowEnd: number, itemId = 'it'): Alert => ({
      id, incidentId, ruleId: 'r', itemId, variant: 's', metric: 'errorRate', state, value: 1, threshold: 0, baseline: null, message: '', windowEnd, action: null, at: 0,
    });
    log.add(a('1', 'i1', 'fired', 10));
    log.add(a('1', 'i1', 'fired', 10)); // same record twice
    expect(log.openIncidents().map((x) => x.incidentId)).toEqual(['i1']);
    log.add(a('2', 'i1', 'resolved', 20));
    log.add(a('3', 'i2', 'fired', 30, 'other'));
    log.add(a('4', 'i3', 'fired', 40));
    expect(log.size).toBe(3);
    expect(log.query().map((x) => x.id)).toEqual(['4', '3', '2']);
    expect(log.query({ itemId: 'it', state: 'fired' }).map((x) => x.id)).toEqual(['4']);
    expect(log.openIncidents().map((x) => x.incidentId).sort()).toEqual(['i2', 'i3']);
    expect(log.lastDecided('it')).toBe(40);
    expect(log.lastDecided('none')).toBe(-Infinity);
  });
});

describe('rule input (API schema)', () => {
  const base = { name: 'r', metric: 'errorRate', threshold: 0.1 };
  const issues = (body: unknown) => {
    const r = alertRuleInputSchema.safeParse(body);
    return r.success ? [] : r.error.issues.map((i) => i.path.join('/'));
  };

  test('vs_original is accepted and stored as vs_control; direction defaults by comparison', () => {
    expect(alertRuleInputSchema.parse({ ...base, comparison: 'vs_original' })).toMatchObject({ comparison: 'vs_control', direction: 'increase', kind: 'threshold', ewma: null });
    expect(alertRuleInputSchema.parse({ ...base, comparison: 'absolute' })).toMatchObject({ comparison: 'absolute', direction: 'above' });
    expect(alertRuleInputSchema.parse({ ...base, metric: 'conversion:buy', comparison: 'vs_control', direction: 'decrease', threshold: 0.05 })).toMatchObject({ direction: 'decrease' });
    expect(alertRuleInputSchema.parse({ ...base, metric: 'perfP95:inp', comparison: 'absolute', kind: 'ewma', threshold: 3, ewma: { alpha: 0.3 } })).toMatchObject({ kind: 'ewma', ewma: { alpha: 0.3, warmup: 10, minStd: 0 } });
  });

  test('refuses what does not fit, with the field at fault', () => {
    expect(issues({ ...base, comparison: 'absolute', direction: 'decrease' })).toEqual(['direction']);
    expect(issues({ ...base, comparison: 'vs_control', direction: 'below' })).toEqual(['direction']);
    expect(issues({ ...base, comparison: 'vs_control', threshold: -0.1 })).toEqual(['threshold']);
    expect(issues({ ...base, comparison: 'absolute', kind: 'ewma', threshold: 0 })).toEqual(['threshold']);
    expect(issues({ ...base, comparison: 'absolute', ewma: { alpha: 0.5 } })).toEqual(['ewma']);
    expect(issues({ ...base, comparison: 'absolute', kind: 'ewma', threshold: 3, ewma: { alpha: 2 } })).toEqual(['ewma/alpha']);
    expect(issues({ ...base, comparison: 'sideways' })).toEqual(['comparison']);
  });
});

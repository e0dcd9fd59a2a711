/** Rule evaluation (pure): metric values, comparisons, minimum sample, fire/resolve state machine, messages. */
import { alertMessage, emptyTrack, metricOf, observe, parseMetric, stepRule, type RuleLike, type RuleTrack } from './rules.ts';
import { RuleStore } from './rule-store.ts';
import { AlertLog } from './alert-log.ts';
import type { MetricWindowRecord } from '../telemetry/metric-record.ts';
import type { Alert, AlertRule } from '../../schemas/types.generated.ts';

function win(over: Omit<Partial<MetricWindowRecord>, 'latency'> & { latency?: Partial<MetricWindowRecord['latency']> } = {}): MetricWindowRecord {
  const { latency, ...rest } = over;
  return {
    itemId: 'it', variant: 'original', windowSize: 10_000, windowStart: 0, windowEnd: 10_000, events: 100, sessions: 50, users: 50, errors: 5,
    errorSessions: 5, errorRate: 0.1, requests: 80, requestErrors: 8, rate: 10,
    latency: { count: 80, mean: 100, p50: 90, p95: 200, p99: 300, sum: 8000, sumSq: 0, ...latency },
    conversions: { buy: { sessions: 10, rate: 0.2 } }, perf: {}, late: 0, emittedAt: 0, ...rest,
  };
}

const rule = (over: Partial<RuleLike> = {}): RuleLike => ({ metric: 'errorRate', comparison: 'vs_original', threshold: 0.1, minSample: 20, forWindows: 1, ...over });

describe('metrics', () => {
  test('parse', () => {
    expect(parseMetric('errorRate')).toEqual({ kind: 'errorRate' });
    expect(parseMetric('conversion:buy')).toEqual({ kind: 'conversion', point: 'buy' });
    for (const bad of ['', 'errorrate', 'conversion:', 'latencyP50', 'conversion:a b']) expect(parseMetric(bad)).toBeNull();
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
  });
});

describe('observe', () => {
  test('vs_original: points for rates', () => {
    const o = observe(rule(), win({ variant: 's', errorSessions: 15 }), win());
    expect(o.judged).toBe(true);
    expect(o.value).toBeCloseTo(0.2, 12);
    expect(o.shadowValue).toBeCloseTo(0.3, 12);
    expect(o.baseline).toBeCloseTo(0.1, 12);
  });

  test('vs_original: relative for latency', () => {
    const o = observe(rule({ metric: 'latencyP95', threshold: 0.2 }), win({ latency: { p95: 260 } }), win());
    expect(o.value).toBeCloseTo(0.3, 12);
    // Original at 0 ms: no relative difference.
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
    expect(alertMessage(r, 's', obs, { kind: 'fire' })).toBe('Errors: s errorRate 30% vs original 10% (+20 pp, threshold +10 pp) for 1 window.');
    expect(alertMessage(r, 's', obs, { kind: 'resolve', reason: 'recovered' })).toContain('resolved for s');
    const lat = { ...rule({ metric: 'latencyP95', threshold: 0.2 }), name: 'Slow' };
    expect(alertMessage(lat, 's', observe(lat, win({ latency: { p95: 260 } }), win()), { kind: 'fire' })).toBe('Slow: s latencyP95 260 ms vs original 200 ms (+30%, threshold +20%) for 1 window.');
  });
});

describe('rule store and alert log', () => {
  const ar = (over: Partial<AlertRule> = {}): AlertRule => ({ id: 'r1', itemId: null, name: 'n', metric: 'errorRate', comparison: 'absolute', threshold: 0.1, minSample: 1, forWindows: 1, guardrail: false, deleted: false, updatedBy: 'op', updatedAt: 1, ...over });

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

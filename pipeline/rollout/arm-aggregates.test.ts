import { ArmAggregates, armOfEvent } from './arm-aggregates.ts';
import { armStatsOf, buildEvidence, type SequentialTests } from './build-evidence.ts';
import type { TelemetryEvent } from '../windows/types.ts';

let n = 0;
function ev(p: Partial<TelemetryEvent>): TelemetryEvent {
  n++;
  return { id: `e${n}`, itemId: 'i', version: '1', variant: 's', profileVersion: 1, sessionId: 'x', userId: 'u', type: 'usage', name: 'buy', ts: 1000, attrs: {}, value: null, verified: true, ...p } as TelemetryEvent;
}

describe('ArmAggregates', () => {
  it('maps events to arms', () => {
    expect(armOfEvent({ variant: 's', controlOf: null })).toBe('s');
    expect(armOfEvent({ variant: 'control', controlOf: 's' })).toBe('control:s');
    expect(armOfEvent({ variant: 'control', controlOf: null })).toBeNull();
    expect(armOfEvent({ variant: 'original', controlOf: null })).toBeNull();
  });

  it('counts verified events of watched arms since the start, per session', () => {
    const a = new ArmAggregates();
    a.watch('i', 's', 1000);
    a.watch('i', 'control:s', 1000);
    a.add(ev({ sessionId: 'a', type: 'session', name: 'start' }));
    a.add(ev({ sessionId: 'a', type: 'usage', name: 'buy' }));
    a.add(ev({ sessionId: 'a', type: 'usage', name: 'buy' }));
    a.add(ev({ sessionId: 'a', type: 'error', name: 'TypeError' }));
    a.add(ev({ sessionId: 'b', type: 'request', name: 'api', value: 100, attrs: { status: '200' } }));
    a.add(ev({ sessionId: 'b', type: 'request', name: 'api', value: 300, attrs: { status: '503' } }));
    a.add(ev({ sessionId: 'b', type: 'perf', name: 'lcp', value: 1200 }));
    a.add(ev({ sessionId: 'c', verified: false, type: 'error', name: 'forged' }));
    a.add(ev({ sessionId: 'd', ts: 999, type: 'error', name: 'before the step' }));
    a.add(ev({ sessionId: 'e', variant: 'control', controlOf: 's', type: 'session', name: 'start' }));
    a.add(ev({ sessionId: 'f', variant: 'other', type: 'error', name: 'unwatched' }));
    a.add(ev({ itemId: 'j', sessionId: 'g', type: 'error', name: 'unwatched item' }));
    expect(a.totals('i', 's')).toEqual({
      sessions: 2, errorSessions: 1, requests: 2, requestErrors: 1, latency: { count: 2, sum: 400, sumSq: 100000 }, conversions: { buy: 1 }, perf: { lcp: { count: 1, sum: 1200, sumSq: 1440000 } },
    });
    expect(a.totals('i', 'control:s')!.sessions).toBe(1);
    expect(a.counters).toEqual({ added: 8, unverified: 1, early: 1 });
    // A new step restarts the arm; the same start is a no-op.
    a.watch('i', 's', 1000);
    expect(a.totals('i', 's')!.sessions).toBe(2);
    a.watch('i', 's', 2000);
    expect(a.totals('i', 's')!.sessions).toBe(0);
    a.unwatch('i', 's');
    a.unwatch('i', 'control:s');
    expect(a.watched('i')).toEqual([]);
    a.add(ev({ sessionId: 'z' }));
    expect(a.sessionCount).toBe(0);
  });
});

describe('buildEvidence', () => {
  it('passes each metric\'s numbers to the sequential test, shadow first', () => {
    const calls: unknown[] = [];
    const tests: SequentialTests = {
      proportionDiff: (x1, n1, x2, n2, tuning) => (calls.push(['p', x1, n1, x2, n2, tuning]), { valid: true, diff: x1 / n1 - x2 / n2, ci: [-1, 1], p: 1, significant: false, alpha: 0.05 }),
      meanDiff: (a, b, tuning) => (calls.push(['m', a, b, tuning]), { valid: true, diff: a.mean - b.mean, ci: [-1, 1], p: 1, significant: false, alpha: 0.05 }),
    };
    const shadow = { sessions: 100, errorSessions: 10, requests: 50, requestErrors: 5, latency: { count: 2, sum: 400, sumSq: 100000 }, conversions: { buy: 30 }, perf: {} };
    const control = { sessions: 80, errorSessions: 4, requests: 40, requestErrors: 1, latency: { count: 2, sum: 200, sumSq: 20000 }, conversions: {}, perf: {} };
    const e = buildEvidence(shadow, control, ['errorRate', 'requestErrorRate', 'conversion:buy', 'latencyMean', 'perf:lcp'], tests, null, 400);
    expect(calls).toEqual([
      ['p', 10, 100, 4, 80, 400],
      ['p', 5, 50, 1, 40, 400],
      ['p', 30, 100, 0, 80, 400],
      ['m', { n: 2, mean: 200, variance: 20000 }, { n: 2, mean: 100, variance: 0 }, 400],
      ['m', { n: 0, mean: NaN, variance: NaN }, { n: 0, mean: NaN, variance: NaN }, 400],
    ]);
    expect(e.sessions).toEqual({ shadow: 100, control: 80 });
    expect(e.metrics.errorRate).toMatchObject({ shadow: { n: 100, value: 0.1 }, control: { n: 80, value: 0.05 } });
    expect(armStatsOf('s', 'conversion:buy', shadow)).toEqual({ arm: 's', sessions: 100, kind: 'proportion', successes: 30, trials: 100 });
    expect(armStatsOf('s', 'latencyMean', shadow)).toEqual({ arm: 's', sessions: 100, kind: 'mean', n: 2, mean: 200, variance: 20000 });
  });
});

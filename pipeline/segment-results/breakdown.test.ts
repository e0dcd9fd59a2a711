import { breakdown, type CellInput, type MetricResult } from './breakdown.ts';

const m = (p: number, diff: number, verdict: MetricResult['verdict'], valid = true): MetricResult => ({ valid, diff, p, ci: [diff - 0.01, diff + 0.01], verdict });
const cell = (dimension: string, value: string, metrics: Record<string, MetricResult>): CellInput => ({ dimension, value, sessions: { shadow: 500, control: 500 }, metrics });

describe('per-segment breakdown', () => {
  it('points at the segment where a regression lives, even when the global comparison hides it', () => {
    const cells = [
      cell('deviceType', 'android', { errorRate: m(0.0001, 0.12, 'worse'), latency: m(0.6, 3, 'inconclusive') }),
      cell('deviceType', 'ios', { errorRate: m(0.7, -0.01, 'inconclusive'), latency: m(0.5, -2, 'inconclusive') }),
      cell('deviceType', 'windows', { errorRate: m(0.9, 0, 'inconclusive'), latency: m(0.3, 1, 'inconclusive') }),
      cell('segment:power', 'in', { errorRate: m(0.04, 0.03, 'worse'), latency: m(Number.NaN, 0, 'inconclusive', false) }),
    ];
    const b = breakdown('checkout-v2', cells, { global: { errorRate: m(0.2, 0.03, 'inconclusive') } });
    // 7 valid tests; the android error rate survives Holm (0.0001 × 7), the power-users one does not (0.04 × 6 > 0.05).
    expect(b.correction).toMatchObject({ method: 'holm', tests: 7 });
    expect(b.regressions).toHaveLength(1);
    expect(b.regressions[0]).toMatchObject({ dimension: 'deviceType', value: 'android', metric: 'errorRate' });
    expect(b.regressions[0].adjustedP).toBeCloseTo(0.0007, 10);
    expect(b.cells[3].metrics.errorRate).toMatchObject({ verdict: 'worse', correctedVerdict: 'inconclusive' });
    expect(b.cells[3].metrics.latency.adjustedP).toBeNaN();
    expect(b.sentence).toBe('Shadow checkout-v2 regresses for deviceType=android: errorRate +12 pp (adjusted p<0.001). The comparison over all users does not show it (errorRate +3 pp, inconclusive).');
  });

  it('says so when no cell survives the correction', () => {
    const b = breakdown('s', [cell('country', 'DE', { errorRate: m(0.03, 0.02, 'worse') }), cell('country', 'FR', { errorRate: m(0.5, 0, 'inconclusive') })]);
    expect(b.regressions).toEqual([]);
    expect(b.sentence).toBe("No segment shows a regression of shadow s after Holm's correction over 2 tests.");
  });

  it('keeps improvements apart and names segments in words', () => {
    const b = breakdown('s', [cell('segment:power', 'in', { 'conversion:buy': m(0.001, 0.08, 'better'), errorRate: m(0.002, 0.05, 'worse') })]);
    expect(b.improvements.map((f) => f.metric)).toEqual(['conversion:buy']);
    expect(b.sentence).toBe('Shadow s regresses for users in segment power: errorRate +5 pp (adjusted p=0.002).');
  });
});

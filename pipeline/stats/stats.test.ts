/** Behaviour of the statistics core beyond the scipy golden numbers (golden.test.ts). */
import { addToCumulative, emptyCumulative, type VariantTotals } from '../windows/cumulative.ts';
import type { TelemetryEvent } from '../windows/types.ts';
import { compareVariants } from './compare.ts';
import { Ewma } from './ewma.ts';
import { srmChiSquare, summaryFromSums, summarize, twoProportionZTest, welchTTest } from './hypothesis.ts';
import { rhoSquared, sequentialMeanDiff, sequentialMultiplier, sequentialP, sequentialProportionDiff } from './sequential.ts';

const totals = (p: Partial<VariantTotals> & Pick<VariantTotals, 'variant'>): VariantTotals => ({
  itemId: 'com.example.notes',
  profileVersion: 3,
  sessions: 1000,
  errorSessions: 20,
  requests: 0,
  requestErrors: 0,
  latency: { count: 0, sum: 0, sumSq: 0 },
  conversions: {},
  ...p,
});

/** count/sum/sumSq of n values with the given mean and sample variance. */
function sums(n: number, mean: number, variance: number) {
  return { count: n, sum: n * mean, sumSq: variance * (n - 1) + n * mean * mean };
}

describe('hypothesis tests', () => {
  test('summaryFromSums matches the sample summary', () => {
    const xs = [120, 180.5, 99, 143, 210, 160];
    const s = summarize(xs);
    const f = summaryFromSums(xs.length, xs.reduce((a, b) => a + b), xs.reduce((a, b) => a + b * b, 0));
    expect(f.n).toBe(6);
    expect(f.mean).toBeCloseTo(s.mean, 12);
    expect(f.variance).toBeCloseTo(s.variance, 9);
    expect(summaryFromSums(3, 15, 75).variance).toBe(0); // constant data, clamped at 0
  });

  test('Welch is antisymmetric in its arguments', () => {
    const a = { n: 40, mean: 10, variance: 4 };
    const b = { n: 25, mean: 11, variance: 9 };
    const ab = welchTTest(a, b);
    const ba = welchTTest(b, a);
    expect(ba.t).toBeCloseTo(-ab.t, 14);
    expect(ba.p).toBeCloseTo(ab.p, 14);
    expect(ba.ci[0]).toBeCloseTo(-ab.ci[1], 12);
    expect(ab.ci[0]).toBeLessThan(ab.diff);
    expect(ab.ci[1]).toBeGreaterThan(ab.diff);
  });

  test('z-test: 30/100 vs 20/100 by hand', () => {
    // pooled 0.25, se = sqrt(0.25·0.75·0.02) = 0.0612372…, z = 0.1/se = 1.6329931…
    const r = twoProportionZTest(30, 100, 20, 100);
    expect(r.z).toBeCloseTo(1.632993161855452, 12);
    expect(r.relativeLift).toBeCloseTo(0.5, 14);
    expect(r.p).toBeGreaterThan(0.05);
  });

  test('SRM flags only below p = 0.001', () => {
    expect(srmChiSquare({ original: 5012, s: 4988 }, { original: 50, s: 50 }).mismatch).toBe(false);
    const bad = srmChiSquare({ original: 5200, s: 4800 }, { original: 50, s: 50 });
    expect(bad.chiSquare).toBeCloseTo(16, 12); // (200² + 200²)/5000
    expect(bad.mismatch).toBe(true);
    // p ≈ 0.0016: suspicious, but above the threshold.
    const edge = srmChiSquare({ original: 1000, s: 1145 }, { original: 1, s: 1 });
    expect(edge.p).toBeGreaterThan(0.001);
    expect(edge.p).toBeLessThan(0.01);
    expect(edge.mismatch).toBe(false);
  });
});

describe('Ewma', () => {
  test('scores against the baseline before the update, flags after warm-up only', () => {
    const e = new Ewma({ alpha: 0.5, threshold: 3, warmup: 3 });
    expect(e.update(10)).toEqual({ z: 0, anomaly: false, baselineMean: NaN, baselineStd: NaN });
    // mean 10, var 0 → 12 is infinitely far, but warm-up (1 < 3) suppresses the flag.
    expect(e.update(12)).toMatchObject({ z: Infinity, anomaly: false, baselineMean: 10 });
    // δ=2: mean 11, var 0.5·(0 + 0.5·4) = 1.
    expect(e.mean).toBe(11);
    expect(e.variance).toBe(1);
    expect(e.update(11).z).toBe(0); // mean 11, var 0.5
    const spike = e.update(20); // count 3 ≥ warmup, z = 9/sqrt(0.5)
    expect(spike.z).toBeCloseTo(9 / Math.sqrt(0.5), 12);
    expect(spike.anomaly).toBe(true);
  });

  test('minStd floors the scale; snapshot/restore resumes', () => {
    const e = new Ewma({ alpha: 0.2, warmup: 1, minStd: 5 });
    e.update(100);
    expect(e.update(110)).toMatchObject({ z: 2, anomaly: false });
    const copy = new Ewma({ alpha: 0.2, warmup: 1, minStd: 5 });
    copy.restore(JSON.parse(JSON.stringify(e.snapshot())));
    expect(copy.update(300)).toEqual(e.update(300));
  });

  test('rejects bad options and values', () => {
    expect(() => new Ewma({ alpha: 0 })).toThrow(/alpha/);
    expect(() => new Ewma().update(NaN)).toThrow(/finite/);
  });
});

describe('compareVariants (shadow vs its control; verdicts from the always-valid sequence)', () => {
  test('slower and more error sessions in the shadow → worse, with a sentence; fixed-horizon numbers kept', () => {
    const control = totals({ variant: 'control', controlOf: 'checkout-v2', latency: sums(5000, 200, 2500), conversions: { buy: 100 } });
    const shadow = totals({ variant: 'checkout-v2', errorSessions: 60, latency: sums(5000, 236, 2500), conversions: { buy: 104 } });
    const c = compareVariants(control, shadow);
    expect(c.baseline).toBe('control');
    expect(c.verdict).toEqual({ latency: 'worse', errorRate: 'worse', conversions: { buy: 'inconclusive' }, perf: {} });
    expect(c.latency.diff).toBeCloseTo(36, 9);
    expect(c.latency.relativeDiff).toBeCloseTo(0.18, 12);
    expect(c.latency.shadow).toEqual({ n: 5000, mean: 236 });
    expect(c.errorRate.diff).toBeCloseTo(0.04, 12);
    expect(c.errorRate.control).toEqual({ n: 1000, x: 20, rate: 0.02 });
    // The interval is the sequence's: wider than the fixed-horizon Welch interval at this N.
    expect(c.latency.ci[1] - c.latency.ci[0]).toBeGreaterThan(c.latency.fixed.ci[1] - c.latency.fixed.ci[0]);
    expect(c.latency.fixed.p).toBeLessThan(0.001);
    expect(c.method).toEqual({ kind: 'asymptotic-confidence-sequence', alpha: 0.05, tuning: 5000 });
    expect(c.sentence).toBe('Shadow checkout-v2 vs control: slower: mean latency +18% (p<0.001); more error sessions: +4 pp (p<0.001).');
  });

  test('significant at a fixed horizon but not yet for the sequence → inconclusive (the peeking guard)', () => {
    const c = compareVariants(totals({ variant: 'control', errorSessions: 20 }), totals({ variant: 's', errorSessions: 40 }));
    expect(c.errorRate.fixed.p).toBeLessThan(0.05);
    expect(c.errorRate.p).toBeGreaterThan(0.05);
    expect(c.errorRate.ci[0]).toBeLessThan(0);
    expect(c.errorRate.significant).toBe(false);
    expect(c.verdict.errorRate).toBe('inconclusive');
    expect(c.sentence).toBe('No significant difference yet between shadow s and control (1000 vs 1000 sessions).');
  });

  test('faster with more conversions → better; perf metrics (web vitals) compared when both arms report them', () => {
    const c = compareVariants(
      totals({ variant: 'control', latency: sums(4000, 300, 900), conversions: { buy: 100 }, perf: { lcp: sums(900, 2400, 250_000), inp: sums(50, 180, 900) } }),
      totals({ variant: 's', latency: sums(4000, 290, 900), conversions: { buy: 180 }, perf: { lcp: sums(900, 2700, 250_000), cls: sums(900, 0.1, 0.01) } }),
    );
    expect(Object.keys(c.perf)).toEqual(['lcp']); // inp only in the control, cls only in the shadow
    expect(c.verdict).toEqual({ latency: 'better', errorRate: 'inconclusive', conversions: { buy: 'better' }, perf: { lcp: 'worse' } });
    expect(c.perf.lcp.relativeDiff).toBeCloseTo(0.125, 12);
    expect(c.sentence).toMatch(/^Shadow s vs control: faster: mean latency -3\.3% \(p<0\.001\); worse lcp: mean \+12\.5% \(p<0\.001\); more "buy" conversions: \+8 pp/);
  });

  test('too little data is inconclusive and says so', () => {
    const c = compareVariants(totals({ variant: 'control', sessions: 0, errorSessions: 0 }), totals({ variant: 's', sessions: 3, errorSessions: 1 }));
    expect(c.latency.valid).toBe(false);
    expect(c.errorRate.valid).toBe(false);
    expect(c.verdict.latency).toBe('inconclusive');
    expect(c.sentence).toBe('No significant difference yet between shadow s and control (3 vs 0 sessions).');
  });

  test('accepts cumulative aggregates directly; unverified events never count', () => {
    const mk = (variant: string, errorEvery: number, controlOf: string | null = null) => {
      const agg = emptyCumulative('i', variant, 1, controlOf);
      for (let i = 0; i < 400; i++) {
        const base = { id: `${variant}${i}`, itemId: 'i', version: '1', variant, controlOf, profileVersion: 1, sessionId: `${variant}-s${i}`, userId: `u${i}`, ts: i, attrs: {}, verified: true };
        addToCumulative(agg, { ...base, type: 'request', name: 'api', value: 100 + (i % 10) } as TelemetryEvent);
        if (i % errorEvery === 0) addToCumulative(agg, { ...base, id: `${base.id}e`, type: 'error', name: 'boom' } as TelemetryEvent);
        // A forged burst: errors without a valid token.
        expect(addToCumulative(agg, { ...base, id: `${base.id}f`, type: 'error', name: 'forged', verified: false, sessionId: `forged-${i}` } as TelemetryEvent)).toBe(false);
      }
      return agg;
    };
    const control = mk('control', 50, 's');
    // Another shadow's control cohort is another arm.
    expect(addToCumulative(control, { id: 'x', itemId: 'i', version: '1', variant: 'control', controlOf: 'other', profileVersion: 1, sessionId: 'x', userId: 'x', ts: 0, attrs: {}, verified: true, type: 'error', name: 'boom' } as TelemetryEvent)).toBe(false);
    const c = compareVariants(control, mk('s', 4));
    expect(c.errorRate.shadow.rate).toBeCloseTo(0.25, 12);
    expect(c.errorRate.control.rate).toBeCloseTo(8 / 400, 12);
    expect(c.verdict.errorRate).toBe('worse');
    expect(c.latency.fixed.t).toBe(0);
    expect(c.verdict.latency).toBe('inconclusive');
  });
});

describe('sequential (asymptotic confidence sequence)', () => {
  test('hand-computed multiplier and p-value at N = N*', () => {
    // ρ²·N* = −2 ln 0.05 + ln(−2 ln 0.05 + 1) = 5.99146… + ln 6.99146… = 7.93620…
    const k = -2 * Math.log(0.05) + Math.log(-2 * Math.log(0.05) + 1);
    expect(rhoSquared(5000, 0.05) * 5000).toBeCloseTo(k, 12);
    const c = Math.sqrt(((2 * (k + 1)) / k) * Math.log(Math.sqrt(k + 1) / 0.05));
    expect(sequentialMultiplier(5000, 5000, 0.05)).toBeCloseTo(c, 12);
    expect(c).toBeGreaterThan(3); // vs 1.96 at a fixed horizon: the price of peeking
    // The interval touches 0 exactly where p = α.
    expect(sequentialP(c, 5000, 5000, 0.05)).toBeCloseTo(0.05, 12);
  });

  test('significant ⟺ the interval excludes 0 ⟺ p < α; antisymmetric', () => {
    for (const d of [0.5, 1, 2, 3, 4]) {
      const a = { n: 500, mean: 100 + d, variance: 400 };
      const b = { n: 600, mean: 100, variance: 500 };
      const ab = sequentialMeanDiff(a, b);
      const ba = sequentialMeanDiff(b, a);
      expect(ab.significant).toBe(ab.ci[0] > 0 || ab.ci[1] < 0);
      expect(ab.significant).toBe(ab.p < 0.05);
      expect(ba.p).toBeCloseTo(ab.p, 14);
      expect(ba.ci[0]).toBeCloseTo(-ab.ci[1], 12);
    }
  });

  test('degenerate and insufficient input', () => {
    expect(sequentialMeanDiff({ n: 10, mean: 1, variance: 1 }, { n: 500, mean: 1, variance: 1 }).valid).toBe(false); // < 30 in one arm
    expect(sequentialMeanDiff({ n: 10, mean: 1, variance: 1 }, { n: 500, mean: 1, variance: 1 }, { minPerArm: 5 }).valid).toBe(true);
    expect(sequentialProportionDiff(0, 50, 0, 50)).toMatchObject({ valid: true, p: 1, significant: false, ci: [0, 0] });
    expect(sequentialProportionDiff(50, 50, 0, 50)).toMatchObject({ valid: true, p: 0, significant: true });
    expect(sequentialProportionDiff(60, 50, 0, 50).valid).toBe(false);
    expect(() => rhoSquared(0, 0.05)).toThrow(/tuning/);
    expect(() => rhoSquared(5000, 1)).toThrow(/alpha/);
  });

  test('a larger tuning N* is tighter late and looser early', () => {
    expect(sequentialMultiplier(100_000, 50_000, 0.05)).toBeLessThan(sequentialMultiplier(100_000, 5000, 0.05));
    expect(sequentialMultiplier(500, 50_000, 0.05)).toBeGreaterThan(sequentialMultiplier(500, 5000, 0.05));
  });
});

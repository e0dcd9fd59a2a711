/** Behaviour of the statistics core beyond the scipy golden numbers (golden.test.ts). */
import { addToCumulative, emptyCumulative, type VariantTotals } from '../windows/cumulative.ts';
import type { TelemetryEvent } from '../windows/types.ts';
import { compareVariants } from './compare.ts';
import { Ewma } from './ewma.ts';
import { srmChiSquare, summaryFromSums, summarize, twoProportionZTest, welchTTest } from './hypothesis.ts';

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

describe('compareVariants', () => {
  test('slower and more error sessions in the shadow → worse, with a sentence', () => {
    const original = totals({ variant: 'original', latency: sums(5000, 200, 2500), conversions: { buy: 100 } });
    const shadow = totals({ variant: 'checkout-v2', errorSessions: 45, latency: sums(5000, 236, 2500), conversions: { buy: 104 } });
    const c = compareVariants(original, shadow);
    expect(c.verdict).toEqual({ latency: 'worse', errorRate: 'worse', conversions: { buy: 'inconclusive' } });
    expect(c.latency.diff).toBeCloseTo(36, 9);
    expect(c.latency.relativeDiff).toBeCloseTo(0.18, 12);
    expect(c.errorRate.diff).toBeCloseTo(0.025, 12);
    expect(c.sentence).toBe('Shadow checkout-v2 vs original: slower: mean latency +18% (p<0.001); more error sessions: +2.5 pp (p=0.002).');
  });

  test('faster with more conversions → better', () => {
    const c = compareVariants(
      totals({ variant: 'original', latency: sums(400, 300, 900), conversions: { buy: 100 } }),
      totals({ variant: 's', latency: sums(400, 290, 900), conversions: { buy: 160 } }),
    );
    expect(c.verdict).toEqual({ latency: 'better', errorRate: 'inconclusive', conversions: { buy: 'better' } });
    expect(c.sentence).toMatch(/^Shadow s vs original: faster: mean latency -3\.3% \(p<0\.001\); more "buy" conversions: \+6 pp/);
  });

  test('too little data is inconclusive and says so', () => {
    const c = compareVariants(totals({ variant: 'original', sessions: 0, errorSessions: 0 }), totals({ variant: 's', sessions: 3, errorSessions: 1 }));
    expect(c.latency.valid).toBe(false);
    expect(c.errorRate.valid).toBe(false);
    expect(c.verdict.latency).toBe('inconclusive');
    expect(c.sentence).toBe('No significant difference yet between shadow s and original (3 vs 0 sessions).');
  });

  test('accepts cumulative aggregates directly', () => {
    const mk = (variant: string, errorEvery: number) => {
      const agg = emptyCumulative('i', variant, 1);
      for (let i = 0; i < 400; i++) {
        const base = { id: `${variant}${i}`, itemId: 'i', version: '1', variant, profileVersion: 1, sessionId: `${variant}-s${i}`, userId: `u${i}`, ts: i, attrs: {} };
        addToCumulative(agg, { ...base, type: 'request', name: 'api', value: 100 + (i % 10) } as TelemetryEvent);
        if (i % errorEvery === 0) addToCumulative(agg, { ...base, id: `${base.id}e`, type: 'error', name: 'boom' } as TelemetryEvent);
      }
      return agg;
    };
    const c = compareVariants(mk('original', 50), mk('s', 4));
    expect(c.errorRate.p1).toBeCloseTo(0.25, 12);
    expect(c.errorRate.p2).toBeCloseTo(8 / 400, 12);
    expect(c.verdict.errorRate).toBe('worse');
    expect(c.latency.t).toBe(0);
    expect(c.verdict.latency).toBe('inconclusive');
  });
});

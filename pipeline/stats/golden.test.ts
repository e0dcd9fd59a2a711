/**
 * Golden cases: numbers computed independently by scipy/numpy (golden/gen.py → golden/cases.json);
 * the sequential cases from the published interval formula in Python, their p-values by root
 * finding on that interval (not by the closed form sequential.ts uses).
 * Tolerance: |actual − expected| ≤ 1e-9 OR |actual − expected| ≤ 1e-9·|expected| (absolute for
 * values near 0, relative for large ones such as t-quantiles or χ² statistics and tiny tail
 * probabilities). NaN must match NaN, ±∞ must match exactly.
 */
import { readFileSync } from 'node:fs';
import { chiSquareSf, normalQuantile, normalSf, studentTQuantile, studentTTwoSidedP } from './distributions.ts';
import { Ewma } from './ewma.ts';
import { srmChiSquare, summarize, twoProportionZTest, welchTTest, type Summary } from './hypothesis.ts';
import { quantileCont } from '../windows/window-state.ts';
import { sequentialFromEstimate, sequentialMeanDiff, sequentialProportionDiff } from './sequential.ts';

type Num = number | null | 'Infinity' | '-Infinity';
const dec = (x: Num): number => (x === null ? NaN : x === 'Infinity' ? Infinity : x === '-Infinity' ? -Infinity : x);
const cases = JSON.parse(readFileSync(new URL('./golden/cases.json', import.meta.url), 'utf8'));

function close(actual: number, expectedRaw: Num, what: string): void {
  const expected = dec(expectedRaw);
  if (Number.isNaN(expected) || !Number.isFinite(expected)) {
    if (!Object.is(actual, expected)) throw new Error(`${what}: expected ${expected}, got ${actual}`);
    return;
  }
  const err = Math.abs(actual - expected);
  if (!(err <= 1e-9 || err <= 1e-9 * Math.abs(expected))) {
    throw new Error(`${what}: expected ${expected}, got ${actual} (abs err ${err})`);
  }
}

describe('golden: distributions vs scipy', () => {
  test.each(cases.distributions.normalSf as [number, number][])('normalSf(%p)', (z, p) => close(normalSf(z), p, 'sf'));
  test.each(cases.distributions.normalQuantile as [number, number][])('normalQuantile(%p)', (p, z) => close(normalQuantile(p), z, 'ppf'));
  test.each(cases.distributions.studentTTwoSidedP as [number, number, number][])('t two-sided p (t=%p, df=%p)', (t, df, p) =>
    close(studentTTwoSidedP(t, df), p, 'p'),
  );
  test.each(cases.distributions.studentTQuantile as [number, number, number][])('t quantile (p=%p, df=%p)', (p, df, t) =>
    close(studentTQuantile(p, df), t, 'ppf'),
  );
  test.each(cases.distributions.chiSquareSf as [number, number, number][])('chi2 sf (x=%p, df=%p)', (x, df, p) =>
    close(chiSquareSf(x, df), p, 'sf'),
  );
});

describe('golden: welchTTest vs scipy ttest_ind(equal_var=False)', () => {
  for (const c of cases.welch) {
    test(`${c.name} (${c.source})`, () => {
      const a: Summary = c.raw ? summarize(c.raw.a) : { n: c.a.n, mean: dec(c.a.mean), variance: dec(c.a.variance) };
      const b: Summary = c.raw ? summarize(c.raw.b) : { n: c.b.n, mean: dec(c.b.mean), variance: dec(c.b.variance) };
      const r = welchTTest(a, b);
      expect(r.valid).toBe(c.expected.valid);
      close(r.t, c.expected.t, 't');
      close(r.df, c.expected.df, 'df');
      close(r.p, c.expected.p, 'p');
      close(r.diff, c.expected.diff, 'diff');
      close(r.ci[0], c.expected.ci[0], 'ci low');
      close(r.ci[1], c.expected.ci[1], 'ci high');
    });
  }
});

describe('golden: twoProportionZTest', () => {
  for (const c of cases.twoProportion) {
    test(`${c.name} (${c.source})`, () => {
      const r = twoProportionZTest(c.x1, c.n1, c.x2, c.n2);
      expect(r.valid).toBe(c.expected.valid);
      for (const k of ['z', 'p', 'diff', 'p1', 'p2', 'relativeLift'] as const) close(r[k], c.expected[k], k);
      close(r.ci[0], c.expected.ci[0], 'ci low');
      close(r.ci[1], c.expected.ci[1], 'ci high');
    });
  }
});

describe('golden: srmChiSquare vs scipy chisquare', () => {
  for (const c of cases.srm) {
    test(`${c.name} (${c.source})`, () => {
      const r = srmChiSquare(c.observed, c.shares);
      close(r.chiSquare, c.expected.chiSquare, 'chi2');
      expect(r.df).toBe(c.expected.df);
      close(r.p, c.expected.p, 'p');
      expect(r.mismatch).toBe(c.expected.mismatch);
    });
  }
});

describe('golden: window percentiles = numpy linear = DuckDB quantile_cont', () => {
  for (const c of cases.quantile) {
    test(c.name, () => {
      const sorted = [...(c.values as number[])].sort((x, y) => x - y);
      for (const [p, q] of Object.entries(c.expected as Record<string, number>)) close(quantileCont(sorted, Number(p)), q, `q${p}`);
    });
  }
});

describe('golden: Ewma recurrences', () => {
  for (const c of cases.ewma) {
    test(c.name, () => {
      const e = new Ewma({ alpha: c.alpha, warmup: 0 });
      (c.xs as number[]).forEach((x, i) => close(e.update(x).z, c.z[i], `z[${i}]`));
      close(e.mean, c.mean, 'mean');
      close(e.variance, c.variance, 'variance');
    });
  }
});

describe('golden: always-valid sequence vs the published formula in Python (root-found p)', () => {
  for (const c of cases.sequential) {
    test(`${c.name} (${c.source})`, () => {
      const opts = { tuning: c.tuning, alpha: c.alpha };
      const r =
        c.kind === 'means'
          ? sequentialMeanDiff(c.a, c.b, opts)
          : c.kind === 'proportions'
            ? sequentialProportionDiff(c.x1, c.n1, c.x2, c.n2, opts)
            : sequentialFromEstimate(c.diff, c.se, c.n, opts);
      expect(r.valid).toBe(true);
      close(r.diff, c.diff, 'diff');
      close(r.halfWidth, c.expected.halfWidth, 'half-width');
      close(r.ci[0], c.expected.ci[0], 'ci low');
      close(r.ci[1], c.expected.ci[1], 'ci high');
      close(r.p, c.expected.p, 'p');
      expect(r.significant).toBe(c.expected.significant);
    });
  }
});

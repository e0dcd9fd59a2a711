import { comparisonBadges, headline } from './significance.ts';

const c = {
  latency: { p: 0.002, diff: 14.8, ci: [5.4, 24.2] as [number, number] },
  errorRate: { p: 0.27, diff: 0.004, ci: [-0.003, 0.011] as [number, number], lift: 0.18 },
  conversions: { buy: { p: 0.016, diff: 0.012, ci: [0.002, 0.022] as [number, number], lift: 0.12 } },
  srm: { p: 0.52, flagged: false },
};

test('badges and sentences derive verdicts from p-values and the good direction', () => {
  const b = comparisonBadges('checkout-v2', c);
  expect(b.map((x) => `${x.key}:${x.verdict}:${x.tone}`)).toEqual(['srm:ok:good', 'latency:worse:bad', 'errorRate:inconclusive:neutral', 'conversion:buy:better:good']);
  expect(b[1].sentence).toBe('checkout-v2 is 14.8 ms slower than the original on average (p = 0.002, 95% CI +5.4 ms to +24.2 ms) — a real regression.');
  expect(b[2].sentence).toBe('checkout-v2 has a error rate 0.40 pp higher than the original (+18.0% relative) (p = 0.27, 95% CI −0.30 pp to +1.10 pp) — not enough evidence yet to call a difference.');
  expect(b[3].sentence).toContain('a real improvement');
  expect(headline('checkout-v2', c)).toBe('checkout-v2 is worse than the original on latency.');
});

test('server verdicts and sentence win; SRM flagged leads the headline', () => {
  expect(comparisonBadges('s', { latency: { p: 0.9, diff: 1 }, verdicts: { latency: 'better' } })[0].verdict).toBe('better');
  expect(headline('s', { sentence: 'From the server.' })).toBe('From the server.');
  const srm = { srm: { p: 0.0001, flagged: true }, latency: { p: 0.01, diff: -5 } };
  expect(comparisonBadges('s', srm)[0]).toMatchObject({ verdict: 'srm', tone: 'warn', text: 'Sample ratio mismatch' });
  expect(headline('s', srm)).toMatch(/^The traffic split for s does not match its configured share \(p < 0.001\)/);
  expect(headline('s', { latency: { p: 0.01, diff: -5 } })).toBe('s is better than the original on latency, and no metric is worse.');
});

test('missing pieces: nothing to say yet', () => {
  expect(comparisonBadges('s', undefined)).toEqual([]);
  expect(headline('s', null)).toBe('No comparison for s yet — waiting for enough traffic.');
  expect(headline('s', { errorRate: { p: 0.5, diff: 0.001 } })).toBe('No significant difference between s and the original yet.');
});

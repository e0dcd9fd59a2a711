import { armSizes, comparisonBadges, headline } from './significance.ts';

/** A comparison the way the server sends it (pipeline/telemetry/comparisons.ts), trimmed. */
const c = {
  shadow: 'checkout-v2', baseline: 'control', hasBaseline: true, noBaseline: null, sessions: { shadow: 1180, control: 1204 },
  latency: { significant: true, p: 0.002, diff: 14.8, ci: [5.4, 24.2] as [number, number], fixed: { t: 3.1, p: 0.0001 } },
  errorRate: { significant: false, p: 0.27, diff: 0.004, ci: [-0.003, 0.011] as [number, number], relativeLift: 0.18, fixed: { z: 1.1, p: 0.04 } },
  conversions: { buy: { significant: true, p: 0.016, diff: 0.012, ci: [0.002, 0.022] as [number, number], relativeLift: 0.12 } },
  perf: { lcp: { significant: true, p: 0.01, diff: 310, ci: [80, 540] as [number, number] }, cls: { significant: false, p: 0.6, diff: 0.004, ci: [-0.01, 0.018] as [number, number] } },
  srm: { p: 0.52, flagged: false },
};

test('badges and sentences: verdicts from the always-valid interval and the good direction, against the control', () => {
  const b = comparisonBadges('checkout-v2', c);
  expect(b.map((x) => `${x.key}:${x.verdict}:${x.tone}`)).toEqual([
    'srm:ok:good', 'latency:worse:bad', 'perf:lcp:worse:bad', 'perf:cls:inconclusive:neutral', 'errorRate:inconclusive:neutral', 'conversion:buy:better:good',
  ]);
  expect(b[1].sentence).toBe("checkout-v2's mean request latency is 14.8 ms slower than its control's (p = 0.002, always-valid 95% CI +5.4 ms to +24.2 ms) — a real regression.");
  expect(b[2].text).toBe('LCP: Worse');
  expect(b[3].sentence).toBe("checkout-v2's mean CLS (cumulative layout shift) is 0.004 higher than its control's (p = 0.6, always-valid 95% CI −0.01 to +0.018) — not enough evidence yet to call a difference.");
  // Fixed-horizon p = 0.04 would have said "significant"; the always-valid interval does not.
  expect(b[4].sentence).toBe('checkout-v2 has a error rate 0.40 pp higher than its control (+18.0% relative) (p = 0.27, always-valid 95% CI −0.30 pp to +1.10 pp) — not enough evidence yet to call a difference.');
  expect(b[5].sentence).toContain('a real improvement');
  expect(headline('checkout-v2', c)).toBe('checkout-v2 is worse than its control on latency, lcp.');
  expect(armSizes(c)).toBe('Baseline: control arm, 1,204 sessions · shadow 1,180 sessions');
});

test('server verdicts and sentence win; SRM flagged leads the headline; older servers (p only) still work', () => {
  expect(comparisonBadges('s', { latency: { p: 0.9, diff: 1 }, verdicts: { latency: 'better' } })[0].verdict).toBe('better');
  expect(headline('s', { sentence: 'From the server.' })).toBe('From the server.');
  const srm = { srm: { p: 0.0001, flagged: true }, latency: { p: 0.01, diff: -5 } };
  expect(comparisonBadges('s', srm)[0]).toMatchObject({ verdict: 'srm', tone: 'warn', text: 'Sample ratio mismatch' });
  expect(headline('s', srm)).toMatch(/^The traffic split for s does not match its configured share \(p < 0.001\)/);
  expect(headline('s', { latency: { p: 0.01, diff: -5 } })).toBe('s is better than its control on latency, and no metric is worse.');
});

test('no baseline: said in words, no metric badges', () => {
  const off = { hasBaseline: false, noBaseline: { reason: 'control_off', message: 'No baseline for s: its control arm is switched off, so nothing is compared.' }, sessions: { shadow: 40, control: 0 } };
  expect(comparisonBadges('s', off).map((b) => [b.key, b.text])).toEqual([['baseline', 'No baseline']]);
  expect(headline('s', off)).toBe('No baseline for s: its control arm is switched off, so nothing is compared.');
});

test('missing pieces: nothing to say yet', () => {
  expect(comparisonBadges('s', undefined)).toEqual([]);
  expect(armSizes(undefined)).toBeNull();
  expect(headline('s', null)).toBe('No comparison for s yet — waiting for enough traffic.');
  expect(headline('s', { errorRate: { p: 0.5, diff: 0.001 } })).toBe('No significant difference between s and its control yet.');
});

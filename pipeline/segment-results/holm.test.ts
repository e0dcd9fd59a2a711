import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { holm } from './holm.ts';

interface Golden { name: string; p: number[]; alpha: number; adjusted: number[]; reject: boolean[] }
const cases: Golden[] = JSON.parse(readFileSync(fileURLToPath(new URL('./golden/holm.json', import.meta.url)), 'utf8'));

describe('Holm correction', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s matches statsmodels', (_n, c) => {
    const r = holm(c.p, c.alpha);
    r.adjusted.forEach((a, i) => expect(Math.abs(a - c.adjusted[i])).toBeLessThanOrEqual(1e-12));
    expect(r.reject).toEqual(c.reject);
  });

  it('ignores cells without a p-value (not enough data)', () => {
    const r = holm([0.01, Number.NaN, 0.04]);
    expect(r.m).toBe(2);
    expect(r.adjusted[0]).toBeCloseTo(0.02, 12);
    expect(r.adjusted[1]).toBeNaN();
    expect(r.adjusted[2]).toBeCloseTo(0.04, 12);
    expect(r.reject).toEqual([true, false, true]);
  });
});

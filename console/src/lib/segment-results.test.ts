import { cellLabel, correctionNote, metricColumns, resultRows } from './segment-results.ts';
import type { SegmentShadowResultsView } from './types.ts';

const m = (diff: number, p: number | null, verdict: 'better' | 'worse' | 'inconclusive', adjustedP?: number, correctedVerdict?: 'better' | 'worse' | 'inconclusive') => ({ valid: p !== null, diff, p, ci: [null, null] as [null, null], verdict, adjustedP, correctedVerdict });
const r: SegmentShadowResultsView = {
  shadow: 's',
  global: { sessions: { shadow: 100, control: 90 }, metrics: { 'conversion:buy': m(-0.002, 0.9, 'inconclusive'), latency: m(1.5, 0.5, 'inconclusive') } },
  breakdown: {
    shadow: 's', alpha: 0.05, correction: { method: 'holm', tests: 4, family: 'every cell × metric of this shadow' },
    cells: [
      { dimension: 'deviceType', value: 'android', sessions: { shadow: 45, control: 40 }, metrics: { 'conversion:buy': m(-0.25, 0.0001, 'worse', 0.0004, 'worse'), latency: m(2, 0.4, 'inconclusive', 1, 'inconclusive') } },
      { dimension: 'segment:power', value: 'out', sessions: { shadow: 55, control: 50 }, metrics: { 'conversion:buy': m(0.2, 0.001, 'better', 0.003, 'better'), latency: m(0, null, 'inconclusive', null as unknown as number, 'inconclusive') } },
    ],
    regressions: [{ dimension: 'deviceType', value: 'android', metric: 'conversion:buy', diff: -0.25, adjustedP: 0.0004, verdict: 'worse' }],
    improvements: [], sentence: 'x',
  },
};

test('rows: all users first (uncorrected), then each cell with its corrected verdict; the regression row marked', () => {
  expect(metricColumns(r)).toEqual(['latency', 'conversion:buy']);
  const rows = resultRows(r);
  expect(rows.map((x) => x.label)).toEqual(['All users', 'Device android', 'Not in segment power']);
  expect(rows[0]).toMatchObject({ global: true, sessions: '100 / 90' });
  expect(rows[0].cells['conversion:buy']).toMatchObject({ text: '−0.2 pp', verdict: 'inconclusive', p: '0.900' });
  expect(rows[1]).toMatchObject({ regression: true });
  expect(rows[1].cells['conversion:buy']).toMatchObject({ text: '−25.0 pp', verdict: 'worse', p: '<0.001' });
  expect(rows[2].cells['conversion:buy']).toMatchObject({ verdict: 'better', p: '0.003' });
  expect(rows[2].cells.latency).toMatchObject({ text: '—', title: 'Too few sessions to compare' });
  expect(cellLabel('segment:power', 'in')).toBe('In segment power');
  const cls = resultRows({ ...r, global: { ...r.global, metrics: { 'perf:cls': m(-0.0123, 0.5, 'inconclusive') } } })[0].cells['perf:cls'];
  expect(cls.text).toBe('−0.012');
  expect(correctionNote(r)).toMatch(/Holm's method over 4 tests .* α = 0.05/);
});

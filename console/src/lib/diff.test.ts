import { describeDiff, diffJson, formatPath } from './diff.ts';

test('object fields: added, removed, changed; equal values produce nothing', () => {
  expect(diffJson({ a: 1, b: 2, c: { d: 'x' } }, { a: 1, b: 3, e: true, c: { d: 'x' } })).toEqual([
    { path: ['b'], kind: 'changed', before: 2, after: 3 },
    { path: ['e'], kind: 'added', after: true },
  ]);
  expect(diffJson({ a: null }, { a: null })).toEqual([]);
});

test('shadows are matched by name, so inserting one does not mark the others changed', () => {
  const a = { shadows: [{ name: 'x', traffic: { percentage: 10 } }, { name: 'y', traffic: { percentage: 5 } }] };
  const b = { shadows: [{ name: 'new', traffic: { percentage: 1 } }, { name: 'x', traffic: { percentage: 20 } }, { name: 'y', traffic: { percentage: 5 } }] };
  expect(describeDiff(diffJson(a, b))).toEqual([
    'shadows › x › traffic › percentage: 10 → 20',
    'shadows › new: added {"name":"new","traffic":{"percentage":1}}',
  ]);
});

test('plain arrays by index; removals and null before/after (audit create/delete)', () => {
  expect(describeDiff(diffJson({ values: ['a', 'b'] }, { values: ['a'] }))).toEqual(['values › #2: removed (was "b")']);
  expect(diffJson(undefined, { state: 'active' })).toEqual([{ path: [], kind: 'added', after: { state: 'active' } }]);
  expect(formatPath([])).toBe('(whole value)');
});

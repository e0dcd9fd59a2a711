import { draftOf, draftToWeights } from './segment-allocation.ts';

describe('per-segment override draft', () => {
  it('starts from the cell\'s weights in percent and returns weights or the fields at fault', () => {
    expect(draftOf([{ arm: 'a', weight: 0.9 }, { arm: 'b', weight: 0.05 }, { arm: 'control', weight: 0.05 }])).toEqual({ a: '90', b: '5', control: '5' });
    expect(draftToWeights({ a: '75', b: '', control: '25' })).toEqual({ weights: { a: 75, b: 0, control: 25 }, errors: [] });
    expect(draftToWeights({ a: '-1', b: 'x', control: '1' }).errors.map((e) => e.path)).toEqual(['weights/a', 'weights/b']);
    expect(draftToWeights({ a: '0', b: '0' })).toEqual({ weights: null, errors: [{ path: 'weights', message: expect.any(String) }] });
  });
});

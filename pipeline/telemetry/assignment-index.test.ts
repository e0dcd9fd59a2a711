/**
 * The assignment index never grows for unknown items and keeps per-item state for at most
 * `maxItems` items (issue 17, item 4): item ids in telemetry and resolves are anonymous input.
 */
import { AssignmentIndex } from './assignment-index.ts';

const known = new Set(['com.example.a', 'com.example.b']);

test('unknown items create no per-item state, from assignments or from telemetry', () => {
  const idx = new AssignmentIndex(1000, { isKnownItem: (id) => known.has(id) });
  for (let i = 0; i < 10_000; i++) {
    idx.apply({ itemId: `junk-${i}`, userId: `u${i}`, variant: 'original', profileVersion: 1, reason: 'no_profile' });
    expect(idx.join({ itemId: `junk-${i}`, userId: `u${i}`, variant: 'shadow' })).toBe('unassigned');
  }
  expect(idx.items).toBe(0);
  expect(idx.size).toBe(0);
  expect(idx.unknownItems).toBe(20_000);
  expect(idx.totals.unassigned).toBe(10_000); // still counted overall
  idx.apply({ itemId: 'com.example.a', userId: 'u1', variant: 's1', profileVersion: 3, reason: 'assigned' });
  expect(idx.join({ itemId: 'com.example.a', userId: 'u1', variant: 's1' })).toBe('match');
  expect(idx.joins('com.example.a')).toEqual({ matched: 1, mismatched: 0, unassigned: 0 });
  expect(idx.exposures('com.example.a')).toEqual({ profileVersion: 3, counts: { s1: 1 } });
});

test('per-item state is LRU-bounded by maxItems', () => {
  const idx = new AssignmentIndex(1000, { maxItems: 50 });
  for (let i = 0; i < 500; i++) {
    idx.apply({ itemId: `item-${i}`, userId: 'u', variant: 's', profileVersion: 1, reason: 'assigned' });
    idx.join({ itemId: `item-${i}`, userId: 'other', variant: 's' });
    // A busy item stays: it is touched on every round.
    idx.join({ itemId: 'item-0', userId: 'u', variant: 's' });
  }
  expect(idx.items).toBeLessThanOrEqual(50);
  expect(idx.joins('item-0').unassigned + idx.joins('item-0').matched).toBeGreaterThan(400);
  expect(idx.joins('item-499').unassigned).toBe(1);
});

/**
 * Issue 15 item 4, the pure parts of moving items between metrics members: a member that loses a
 * by-item partition forgets those items' cumulative aggregates and comparisons (and only those),
 * and the window stage reads a by-item record's telemetry.raw position from its header.
 */
import type { TelemetryEvent } from '../windows/types.ts';
import { ComparisonStore } from './comparisons.ts';
import { itemPartition } from './item-partition.ts';
import { SOURCE_HEADER, sourceOf } from './repartition.ts';

const T = 1_764_200_000_000;
let n = 0;
const ev = (p: Partial<TelemetryEvent>): TelemetryEvent => ({
  id: `o${n++}`, itemId: 'it', version: '1', variant: 'original', profileVersion: 1, sessionId: 's', userId: 'u',
  type: 'request', name: 'api', ts: T, value: 100, attrs: { status: '200' }, verified: true, ...p,
});

test('dropItems forgets the aggregates and comparisons of the lost partition’s items, keeps the others', () => {
  const c = new ComparisonStore({});
  const items = Array.from({ length: 40 }, (_, i) => `com.example.own-${i}`);
  for (const itemId of items) {
    for (const variant of ['shadow', 'control']) c.add(ev({ itemId, variant, controlOf: variant === 'control' ? 'shadow' : null, sessionId: `${itemId}-${variant}` }));
    c.compareItem(itemId, undefined, null, T);
  }
  const lost = (itemId: string) => itemPartition(itemId, 4) === 1;
  const gone = items.filter(lost);
  const kept = items.filter((i) => !lost(i));
  expect(gone.length).toBeGreaterThan(0);
  expect(kept.length).toBeGreaterThan(0);
  expect(c.dropItems(lost)).toBe(gone.length * 2);
  for (const i of gone) {
    expect(c.totals(i, 'shadow')).toBeUndefined();
    expect(c.latestFor(i)).toEqual({});
  }
  for (const i of kept) {
    expect(c.totals(i, 'shadow')).toMatchObject({ sessions: 1, requests: 1 });
    expect(Object.keys(c.latestFor(i))).toEqual(['shadow']);
  }
  expect(c.bounds).toMatchObject({ arms: kept.length * 2, items: kept.length });
});

test('sourceOf reads `<raw partition>:<raw offset>` from the by-item header, null otherwise', () => {
  expect(sourceOf({ [SOURCE_HEADER]: Buffer.from('3:1234567890123') })).toEqual({ partition: 3, offset: '1234567890123' });
  expect(sourceOf({ [SOURCE_HEADER]: '0:0' })).toEqual({ partition: 0, offset: '0' });
  expect(sourceOf(undefined)).toBeNull();
  expect(sourceOf({})).toBeNull();
  expect(sourceOf({ [SOURCE_HEADER]: Buffer.from('x:1') })).toBeNull();
  expect(sourceOf({ [SOURCE_HEADER]: Buffer.from('1:2:3') })).toBeNull();
});

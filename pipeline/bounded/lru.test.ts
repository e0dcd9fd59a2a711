import { LruMap } from './lru.ts';

test('evicts the least recently used entry, counts it and reports it', () => {
  const evicted: [string, number][] = [];
  const m = new LruMap<string, number>(3, { onEvict: (k, v) => evicted.push([k, v]) });
  m.set('a', 1).set('b', 2).set('c', 3);
  expect(m.get('a')).toBe(1); // a is now the most recent
  m.set('d', 4);
  expect(evicted).toEqual([['b', 2]]);
  expect([...m.keys()]).toEqual(['c', 'a', 'd']);
  m.set('c', 30); // an update refreshes, never evicts
  expect(m.evictions).toBe(1);
  expect(m.peek('a')).toBe(1); // peek does not refresh: a stays the oldest
  m.set('e', 5);
  expect(evicted.map(([k]) => k)).toEqual(['b', 'a']);
  expect(m.size).toBe(3);
  expect(m.evictions).toBe(2);
});

test('many distinct keys never grow it past its cap', () => {
  const m = new LruMap<number, number>(1000);
  for (let i = 0; i < 50_000; i++) m.set(i, i);
  expect(m.size).toBe(1000);
  expect(m.evictions).toBe(49_000);
  expect(m.has(49_999) && !m.has(48_999)).toBe(true);
});

test('canEvict protects entries; with none evictable it grows and counts overCap', () => {
  const m = new LruMap<string, { open: boolean }>(2, { canEvict: (_k, v) => !v.open });
  m.set('open', { open: true }).set('x', { open: false });
  m.set('y', { open: false });
  expect([...m.keys()]).toEqual(['open', 'y']);
  m.set('y', { open: true });
  m.set('z', { open: true });
  expect(m.size).toBe(3);
  expect(m.overCap).toBe(1);
});

test('a cap must be a positive integer', () => {
  expect(() => new LruMap(0)).toThrow(RangeError);
  expect(() => new LruMap(1.5)).toThrow(RangeError);
});

/**
 * The de-duplication index of telemetry_events: what it remembers, for how long, within what
 * memory; hash hits are only candidates (the sink confirms them against the stored rows).
 */
import { randomUUID } from 'node:crypto';
import { HashSet53, RecentIds, hashId, hashIdBytes } from './recent-ids.ts';

test('hashId is deterministic, 53-bit, never 0, and spreads similar ids', () => {
  expect(hashId('ev-1')).toBe(hashId('ev-1'));
  const hs = new Set<number>();
  for (let i = 0; i < 200_000; i++) {
    const h = hashId(`ev-${i}`);
    expect(Number.isSafeInteger(h) && h > 0).toBe(true);
    hs.add(h);
  }
  expect(hs.size).toBe(200_000);
});

test('hashIdBytes reads the hash of an ASCII id from its UTF-8 bytes, and declines anything else', () => {
  const ids = ['', 'a', 'ev-1', randomUUID(), `evt-${'x'.repeat(300)}`, '~!@#$%^&*()_+{}|:"<>?\x7f'];
  for (const id of ids) {
    const buf = Buffer.concat([Buffer.from('prefix'), Buffer.from(id, 'utf8'), Buffer.from('suffix')]);
    expect(hashIdBytes(buf, 6, 6 + Buffer.byteLength(id))).toBe(hashId(id));
  }
  // Non-ASCII: UTF-16 code units differ from the bytes, so the caller must hash the string.
  for (const id of ['é', 'ev-ü-1', '事件', '\u{1F600}']) expect(hashIdBytes(Buffer.from(id, 'utf8'), 0, Buffer.byteLength(id))).toBe(0);
});

test('HashSet53 grows and finds what it holds, nothing else', () => {
  const s = new HashSet53(4);
  for (let i = 1; i <= 50_000; i++) s.add(hashId(`a${i}`));
  expect(s.size).toBe(50_000);
  for (let i = 1; i <= 50_000; i++) expect(s.has(hashId(`a${i}`))).toBe(true);
  let falseHits = 0;
  for (let i = 1; i <= 50_000; i++) if (s.has(hashId(`b${i}`))) falseHits++;
  expect(falseHits).toBe(0);
  expect(s.bytes).toBeLessThanOrEqual(50_000 * 8 * 4);
});

test('RecentIds forgets arrivals older than the horizon, slice by slice', () => {
  const r = new RecentIds({ horizonMs: 60_000, maxIds: 1_000_000, slices: 6 });
  r.add(hashId('old'), 0);
  r.add(hashId('mid'), 30_000);
  expect(r.has(hashId('old'))).toBe(true);
  r.add(hashId('new'), 65_000);
  expect(r.has(hashId('old'))).toBe(false); // its 10 s slice fell out of the last 60 s
  expect(r.has(hashId('mid'))).toBe(true);
  expect(r.coveredFrom()).toBe(10_000);
  r.add(hashId('late'), 1_000); // arrived long before the horizon: not kept
  expect(r.has(hashId('late'))).toBe(false);
});

test('RecentIds keeps at most maxIds by dropping the oldest slice first', () => {
  const r = new RecentIds({ horizonMs: 600_000, maxIds: 10_000, slices: 6 });
  for (let i = 0; i < 30_000; i++) r.add(hashId(`x${i}`), i * 10); // 300 s of arrivals
  expect(r.size).toBeLessThanOrEqual(10_000 + 4096);
  expect(r.has(hashId('x29999'))).toBe(true);
  expect(r.has(hashId('x0'))).toBe(false);
});

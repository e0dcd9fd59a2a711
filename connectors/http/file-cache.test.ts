/**
 * /d/ keeps single files within a byte budget, not whole unpacked archives (issue 17, item 4).
 * Before, the 32 most recent unpacked trees stayed in memory: 32 archives of up to 200 MiB each.
 */
import { FileCache } from './file-cache.ts';
import type { ItemTree } from '../../pipeline/shadowing/archive.ts';

function tree(files: number, size: number): ItemTree {
  const m = new Map<string, Buffer>();
  for (let i = 0; i < files; i++) m.set(`f${i}.js`, Buffer.alloc(size, i % 251));
  return { files: m, manifest: {} } as unknown as ItemTree;
}

test('memory stays within the byte budget whatever is requested', async () => {
  let loads = 0;
  const cache = new FileCache(async () => {
    loads++;
    return tree(100, 4 * 1024); // 400 KiB unpacked per archive
  }, 160 * 1024);
  for (let a = 0; a < 40; a++) {
    for (let f = 0; f < 100; f += 7) expect((await cache.get(`sha${a}`, `f${f}.js`))?.length).toBe(4 * 1024);
  }
  const s = cache.snapshot();
  expect(s.bytes).toBeLessThanOrEqual(160 * 1024);
  expect(s.files).toBeLessThanOrEqual(40);
  expect(loads).toBeGreaterThanOrEqual(40);
});

test('a hit is served from memory, a missing name from the member list, concurrent misses share one unpack', async () => {
  let loads = 0;
  const cache = new FileCache(async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 10));
    return tree(10, 10);
  });
  const all = await Promise.all(Array.from({ length: 20 }, () => cache.get('a', 'f1.js')));
  expect(all.every((b) => b?.length === 10)).toBe(true);
  expect(loads).toBe(1);
  expect(await cache.get('a', 'f1.js')).not.toBeNull();
  for (let i = 0; i < 100; i++) expect(await cache.get('a', `missing-${i}.js`)).toBeNull();
  expect(loads).toBe(1); // nonexistent names never unpack again
  expect(cache.stats.hits).toBeGreaterThan(0);
});

test('a file larger than an eighth of the budget is served but not kept', async () => {
  const cache = new FileCache(async () => tree(1, 300_000), 1_000_000);
  expect((await cache.get('a', 'f0.js'))?.length).toBe(300_000);
  expect(cache.snapshot().bytes).toBe(0);
});

test('at most two archives are unpacked at once', async () => {
  let now = 0;
  let peak = 0;
  const cache = new FileCache(async () => {
    peak = Math.max(peak, ++now);
    await new Promise((r) => setTimeout(r, 5));
    now--;
    return tree(1, 10);
  });
  const got = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.get(`sha${i}`, 'f0.js')));
  expect(got.every((b) => b?.length === 10)).toBe(true);
  expect(peak).toBe(2);
});

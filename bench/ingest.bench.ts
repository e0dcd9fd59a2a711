/**
 * Ingest of a 5 MB, 500-file web item (issue 3): items/s through the full core
 * (validate archive → build the shadow: inject + rewrite → deterministic archive → blob store),
 * next to the raw limit of a plain extract-and-store of the same item (read the archive with the
 * same limits, write it to the same blob store). The ratio is the cost of shadowing.
 * Both run in this process, interleaved, on the same bytes and a fresh blob folder each.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FsBlobStore } from '../connectors/blob-store/blob-store.ts';
import { buildLibrary } from '../connectors/instrumentation/build.ts';
import { readArchiveBuffer, writeArchive } from '../pipeline/shadowing/archive.ts';
import { buildShadow } from '../pipeline/ingest/ingest-service.ts';
import type { ShadowConfig } from '../pipeline/domain/types.ts';
import type { BenchOptions, BenchResult } from './types.ts';

/** 500 files, ~5 MB: 100 HTML pages, 200 JS, 100 CSS, 99 binary assets, referencing the API. */
async function makeItem(): Promise<Buffer> {
  const files = new Map<string, Buffer>();
  const manifest = { id: 'com.example.bench', version: '1.0.0', name: 'Bench', entry: 'index.html', endpoints: { api: 'https://api.example.com/v1' } };
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  const filler = (n: number) => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(n / 27)).slice(0, n);
  files.set('index.html', Buffer.from(`<!doctype html><html><head><script src="js/app0.js"></script></head><body>${filler(8000)}</body></html>`));
  for (let i = 1; i < 100; i++) files.set(`pages/p${i}.html`, Buffer.from(`<!doctype html><html><head><title>${i}</title><script src="../js/app${i}.js"></script></head><body><a href="https://api.example.com/v1/x">x</a>${filler(8000)}</body></html>`));
  for (let i = 0; i < 200; i++) files.set(`js/app${i}.js`, Buffer.from(`const API = "https://api.example.com/v1";\nfetch(API + "/items/${i}");\n// ${filler(9000)}\n`));
  for (let i = 0; i < 100; i++) files.set(`css/s${i}.css`, Buffer.from(`body{background:url("https://api.example.com/v1/bg${i}.png")}\n/* ${filler(6000)} */`));
  for (let i = 0; i < 99; i++) files.set(`img/i${i}.bin`, randomBytes(30000));
  let total = 0;
  for (const b of files.values()) total += b.length;
  uncompressedBytes = total;
  return writeArchive({ manifest, files }, 'zip');
}

let uncompressedBytes = 0;

const config: ShadowConfig = {
  name: 'bench-shadow',
  instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
  endpoints: { api: 'https://shadow-api.example.com/v1' },
  traffic: { percentage: 10, match: 'all', rules: [] },
};

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const archive = await makeItem();
  const library = await buildLibrary();
  const rounds = opts.quick ? 3 : 8;
  const oursMs: number[] = [];
  const rawMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-ingest-'));
    try {
      const blobs = new FsBlobStore(path.join(dir, 'a'));
      let t = performance.now();
      const tree = await readArchiveBuffer(archive);
      await blobs.put(archive);
      const built = await buildShadow(tree, config, 'zip', { library, publicUrl: 'http://127.0.0.1:7070', profileVersion: 1 });
      await blobs.put(built.bytes);
      oursMs.push(performance.now() - t);

      const plain = new FsBlobStore(path.join(dir, 'b'));
      t = performance.now();
      await readArchiveBuffer(archive);
      await plain.put(archive);
      rawMs.push(performance.now() - t);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ours = 1000 / median(oursMs);
  const raw = 1000 / median(rawMs);
  return [
    {
      name: 'ingest 5 MB / 500-file item with one shadow',
      unit: 'items/s',
      ours,
      peer: raw,
      peerName: 'plain extract-and-store',
      ratio: ours / raw,
      notes: `${(uncompressedBytes / 1e6).toFixed(1)} MB in 500 files (${(archive.length / 1e6).toFixed(1)} MB zipped); shadowing cost = ${(median(oursMs) / median(rawMs)).toFixed(2)}× plain (median of ${rounds})`,
    },
  ];
}

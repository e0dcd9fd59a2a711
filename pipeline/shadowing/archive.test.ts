/**
 * Hostile-archive suite: every refusal reason of readArchive, for zip and tar.gz where the attack
 * exists in that format, built in the test (by hand where yazl/tar-stream refuse to write it).
 * Each must be refused with the stable `reason`, quickly, without writing anything.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { ArchiveRejectedError } from '../errors.ts';
import { detectFormat, readArchive, readArchiveBuffer, writeArchive, type ArchiveLimits } from './archive.ts';
import { fixtureArchive, fixtureTree } from './fixtures.ts';
import { gzipWrap, paxData, rawTar, rawTarGz, rawZip, tarHeader, unixMode, zeroCrc, zeroDeflate, type RawTarEntry, type RawZipEntry } from './test-archives.ts';

const MANIFEST = Buffer.from(JSON.stringify({ id: 'com.example.t', version: '1.0.0', name: 'T', entry: 'index.html' }));
const base = (): { name: string; data: Buffer }[] => [
  { name: 'manifest.json', data: MANIFEST },
  { name: 'index.html', data: Buffer.from('<!doctype html><p>hi</p>') },
];
const zipWith = (...extra: RawZipEntry[]): Buffer => rawZip([...base(), ...extra]);
const tgzWith = (...extra: RawTarEntry[]): Buffer => rawTarGz([...base(), ...extra]);

async function rejection(p: Promise<unknown>): Promise<ArchiveRejectedError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ArchiveRejectedError) return err;
    throw new Error(`expected ArchiveRejectedError, got ${String(err)}`);
  }
  throw new Error('expected the archive to be refused, but it was accepted');
}
const reasonOf = async (buf: Buffer, limits?: Partial<ArchiveLimits>): Promise<string> =>
  (await rejection(readArchiveBuffer(buf, limits))).reason;

describe('valid archives', () => {
  test.each(['zip', 'tar.gz'] as const)('a %s made by writeArchive reads back to the same tree', async (format) => {
    const tree = fixtureTree('multi-page-web');
    const back = await readArchiveBuffer(await writeArchive(tree, format));
    expect([...back.files.keys()]).toEqual([...tree.files.keys()].sort());
    for (const [p, b] of tree.files) expect(back.files.get(p)?.equals(b)).toBe(true);
    expect(back.manifest.id).toBe('com.example.multipage');
  });

  test('hand-made archives with directory entries, ./ prefixes and deflate are accepted and normalised', async () => {
    const zip = rawZip([
      { name: './', externalAttr: unixMode(0o040755) },
      { name: 'manifest.json', data: MANIFEST, method: 8 },
      { name: 'sub/', externalAttr: unixMode(0o040755) },
      { name: './sub//a.js', data: Buffer.from('a') },
      { name: 'index.html', data: Buffer.from('x'.repeat(5000)), method: 8 },
    ]);
    const t = await readArchiveBuffer(zip);
    expect([...t.files.keys()]).toEqual(['index.html', 'manifest.json', 'sub/a.js']);
    const tgz = rawTarGz([{ name: 'sub/', type: '5' }, ...base(), { name: './sub/a.js', data: Buffer.from('a') }]);
    expect([...(await readArchiveBuffer(tgz)).files.keys()]).toEqual(['index.html', 'manifest.json', 'sub/a.js']);
  });

  test('detects the format from magic bytes, not the name', async () => {
    const zip = await fixtureArchive('js-entry', 'zip');
    const tgz = await fixtureArchive('js-entry', 'tar.gz');
    expect(detectFormat(zip)).toBe('zip');
    expect(detectFormat(tgz)).toBe('tar.gz');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-archive-'));
    try {
      // Deliberately misleading extensions.
      writeFileSync(path.join(dir, 'item.tar.gz'), zip);
      writeFileSync(path.join(dir, 'item.zip'), tgz);
      expect((await readArchive({ path: path.join(dir, 'item.tar.gz') })).manifest.entry).toBe('main.js');
      expect((await readArchive({ path: path.join(dir, 'item.zip') })).manifest.entry).toBe('main.js');
      expect((await rejection(readArchive({ path: path.join(dir, 'item.zip') }, { maxArchiveBytes: 100 }))).reason).toBe('too-large');
      expect((await rejection(readArchive({ path: dir }))).reason).toBe('unsupported-format');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('names', () => {
  test.each([
    ['../x', 'path-traversal'],
    ['a/../../x', 'path-traversal'],
    ['a/../b', 'path-traversal'],
    ['..\\x', 'path-traversal'],
    ['a\0b', 'path-traversal'],
    ['/etc/x', 'absolute-path'],
    ['C:\\x', 'absolute-path'],
    ['c:/x', 'absolute-path'],
  ])('zip member %j → %s', async (name, reason) => {
    expect(await reasonOf(zipWith({ name, data: Buffer.from('x') }))).toBe(reason);
  });

  test.each([
    ['../x', 'path-traversal'],
    ['/etc/x', 'absolute-path'],
  ])('tar member %j → %s', async (name, reason) => {
    expect(await reasonOf(tgzWith({ name, data: Buffer.from('x') }))).toBe(reason);
  });

  test('traversal hidden in a directory entry is refused too', async () => {
    expect(await reasonOf(zipWith({ name: '../evil/', externalAttr: unixMode(0o040755) }))).toBe('path-traversal');
  });

  test('non-UTF-8 names (zip without the UTF-8 flag, ustar, pax)', async () => {
    const bad = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x6a, 0x73]);
    expect(await reasonOf(zipWith({ name: bad, data: Buffer.from('x'), flags: 0 }))).toBe('non-utf8-name');
    expect(await reasonOf(zipWith({ name: bad, data: Buffer.from('x'), flags: 0x800 }))).toBe('non-utf8-name');
    expect(await reasonOf(tgzWith({ name: bad, data: Buffer.from('x') }))).toBe('non-utf8-name');
    const pax = paxData({ path: Buffer.concat([Buffer.from('dir/'), bad]) });
    expect(await reasonOf(tgzWith({ name: 'PaxHeader', type: 'x', data: pax }, { name: 'placeholder', data: Buffer.from('x') }))).toBe(
      'non-utf8-name',
    );
  });

  test('valid non-ASCII UTF-8 names are accepted (with or without the zip flag)', async () => {
    const t = await readArchiveBuffer(zipWith({ name: Buffer.from('café/ünï.txt'), data: Buffer.from('x'), flags: 0 }));
    expect(t.files.has('café/ünï.txt')).toBe(true);
    const pax = paxData({ path: 'long/' + 'é'.repeat(80) + '.txt' });
    const t2 = await readArchiveBuffer(tgzWith({ name: 'PaxHeader', type: 'x', data: pax }, { name: 'short', data: Buffer.from('x') }));
    expect(t2.files.has('long/' + 'é'.repeat(80) + '.txt')).toBe(true);
  });

  test.each([
    ['exact', 'a.js', 'a.js'],
    ['case-insensitive', 'App.js', 'app.js'],
    ['unicode-normalisation', 'caf\u00e9.js', 'cafe\u0301.js'],
    ['same after normalising', 'a.js', './a.js'],
    ['file vs directory', 'a', 'a/b.js'],
    ['directory vs file', 'a/b.js', 'a'],
  ])('duplicate names (%s) in zip and tar', async (_label, first, second) => {
    const one = { name: first, data: Buffer.from('1') };
    const two = { name: second, data: Buffer.from('2') };
    expect(await reasonOf(zipWith(one, two))).toBe('duplicate-name');
    expect(await reasonOf(tgzWith(one, two))).toBe('duplicate-name');
  });
});

describe('member types', () => {
  test('zip symlink', async () => {
    expect(await reasonOf(zipWith({ name: 'link', data: Buffer.from('/etc/passwd'), externalAttr: unixMode(0o120777) }))).toBe('link');
  });
  test.each([
    ['fifo', 0o010644],
    ['char device', 0o020644],
    ['block device', 0o060644],
    ['socket', 0o140644],
  ])('zip %s → special-file', async (_label, mode) => {
    expect(await reasonOf(zipWith({ name: 'dev', externalAttr: unixMode(mode) }))).toBe('special-file');
  });
  test.each([
    ['2', 'link'],
    ['1', 'link'],
    ['3', 'special-file'],
    ['4', 'special-file'],
    ['6', 'special-file'],
  ])('tar typeflag %s → %s', async (type, reason) => {
    expect(await reasonOf(tgzWith({ name: 'x', type, linkname: type === '1' ? 'index.html' : '/etc/passwd' }))).toBe(reason);
  });
});

describe('counts and sizes', () => {
  const tiny = (n: number): RawZipEntry[] => Array.from({ length: n }, (_, i) => ({ name: `f/${i}.txt` }));

  test('10,000 members pass, 10,001 do not (zip, refused from the central directory count)', async () => {
    const ok = rawZip([...base(), ...tiny(10_000 - 2)]);
    expect((await readArchiveBuffer(ok)).files.size).toBe(10_000);
    expect(await reasonOf(rawZip([...base(), ...tiny(10_001 - 2)]))).toBe('too-many-files');
  });

  test('10,001 members in tar.gz', async () => {
    expect(await reasonOf(rawTarGz([...base(), ...tiny(10_001 - 2)]))).toBe('too-many-files');
  });

  test('100,000 tiny files, zip64 and tar.gz, refused quickly', async () => {
    const zip = rawZip([...base(), ...tiny(100_000)]);
    let t0 = Date.now();
    expect(await reasonOf(zip)).toBe('too-many-files');
    expect(Date.now() - t0).toBeLessThan(5000);
    // 100,000 tar headers, gzipped as they are produced so the raw tar (~50 MB) never exists at once.
    const gz = zlib.createGzip({ level: 1 });
    const out: Buffer[] = [];
    gz.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((r) => gz.on('end', r));
    for (const e of base()) gz.write(rawTar([e], { end: false }));
    for (let i = 0; i < 100_000; i += 1000) {
      gz.write(Buffer.concat(Array.from({ length: 1000 }, (_, k) => tarHeader({ name: `f/${i + k}.txt` }))));
    }
    gz.end(Buffer.alloc(1024));
    await done;
    t0 = Date.now();
    expect(await reasonOf(Buffer.concat(out))).toBe('too-many-files');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('total size over the limit (actual bytes), per-file size over the limit', async () => {
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `d/${i}.bin`, data: Buffer.alloc(300, i) }));
    expect(await reasonOf(zipWith(...files), { maxTotalBytes: 1200 })).toBe('too-large');
    expect(await reasonOf(tgzWith(...files), { maxTotalBytes: 2500 })).toBe('too-large');
    expect(await reasonOf(zipWith(...files), { maxEntryBytes: 299 })).toBe('too-large');
    expect(await reasonOf(tgzWith(...files), { maxEntryBytes: 299 })).toBe('too-large');
    // The same archives pass with the default limits.
    await expect(readArchiveBuffer(zipWith(...files))).resolves.toBeDefined();
  });

  test('archive larger than maxArchiveBytes', async () => {
    expect(await reasonOf(zipWith(), { maxArchiveBytes: 64 })).toBe('too-large');
  });

  test('per-entry compression ratio counts actual bytes (stored entries cannot exceed 1:1)', async () => {
    const zeros = Buffer.alloc(2 * 1024 * 1024);
    expect(await reasonOf(zipWith({ name: 'z.bin', data: zeros, method: 8 }))).toBe('compression-ratio');
    await expect(readArchiveBuffer(zipWith({ name: 'z.bin', data: zeros, method: 0 }))).resolves.toBeDefined();
    await expect(readArchiveBuffer(zipWith({ name: 'z.bin', data: zeros, method: 8 }), { maxRatio: 10_000 })).resolves.toBeDefined();
  });
});

describe('compression bombs (1 GiB of zeros)', () => {
  const GiB_MiB = 1024;
  const bomb = zeroDeflate(GiB_MiB); // ~1 MiB of deflate; the 1 GiB is never materialised

  test('zip with honest sizes: refused from the declared ratio before inflating', async () => {
    const t0 = Date.now();
    expect(await reasonOf(zipWith({ name: 'bomb.bin', compressed: bomb, declaredSize: 1024 ** 3 }))).toBe('compression-ratio');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('zip with lying sizes: refused as soon as the output passes the declared size', async () => {
    const t0 = Date.now();
    const err = await rejection(readArchiveBuffer(zipWith({ name: 'bomb.bin', compressed: bomb, declaredSize: bomb.length })));
    expect(err.reason).toBe('corrupt');
    expect(err.message).toMatch(/bomb\.bin/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('zip bomb of many entries that each look fine: the archive-wide limits stop it', async () => {
    const part = zeroDeflate(16);
    const crc = zeroCrc(16); // honest entries: each passes its own checks, CRC included
    const entries = Array.from({ length: 12 }, (_, i) => ({ name: `p${i}.bin`, compressed: part, declaredSize: 16 * 1024 * 1024, crc }));
    const zip = zipWith(...entries);
    const t0 = Date.now();
    expect(await reasonOf(zip, { maxRatio: 2000, maxTotalBytes: 64 * 1024 * 1024 })).toBe('too-large');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('tar.gz: gzip stream of zero blocks, counted on the actual gunzip output', async () => {
    const t0 = Date.now();
    expect(await reasonOf(gzipWrap(bomb))).toBe('compression-ratio');
    expect(Date.now() - t0).toBeLessThan(5000);
    // Without the ratio rule, the total-bytes limit still stops it.
    expect(await reasonOf(gzipWrap(bomb), { maxRatio: Infinity })).toBe('too-large');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('tar.gz: one member declaring 1 GiB', async () => {
    const header = Buffer.concat([rawTar(base(), { end: false }), tarHeader({ name: 'bomb.bin', size: 1024 ** 3 })]);
    const t0 = Date.now();
    expect(await reasonOf(gzipWrap(zeroDeflate(GiB_MiB, header)))).toBe('too-large');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('broken input', () => {
  test('truncated zip and tar.gz', async () => {
    const zip = await fixtureArchive('multi-page-web', 'zip');
    const tgz = await fixtureArchive('multi-page-web', 'tar.gz');
    expect(await reasonOf(zip.subarray(0, Math.floor(zip.length / 2)))).toBe('corrupt');
    expect(await reasonOf(zip.subarray(0, zip.length - 5))).toBe('corrupt');
    expect(await reasonOf(tgz.subarray(0, Math.floor(tgz.length / 2)))).toBe('corrupt');
    expect(await reasonOf(tgz.subarray(0, tgz.length - 4))).toBe('corrupt');
  });

  test('garbage', async () => {
    const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));
    expect(await reasonOf(noise)).toBe('unsupported-format');
    expect(await reasonOf(Buffer.alloc(0))).toBe('unsupported-format');
    expect(await reasonOf(Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), noise]))).toBe('corrupt');
    expect(await reasonOf(Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), noise]))).toBe('corrupt');
    expect(await reasonOf(zlib.gzipSync(Buffer.from('not a tar file '.repeat(100))))).toBe('corrupt');
    expect(await reasonOf(rawTar(base()))).toBe('unsupported-format'); // plain tar: gzip it
  });

  test('zip entry whose CRC-32 does not match its bytes', async () => {
    expect(await reasonOf(zipWith({ name: 'c.txt', data: Buffer.from('hello'), crc: 1234 }))).toBe('corrupt');
  });

  test('encrypted or exotic zip compression', async () => {
    // Traditional PKWARE encryption flag on a deflated entry; bzip2 (method 12).
    expect(await reasonOf(zipWith({ name: 'e.bin', data: Buffer.from('x'), method: 8, flags: 0x801 }))).toBe('unsupported-format');
    expect(await reasonOf(zipWith({ name: 'b.bin', data: Buffer.from('x'), method: 12 as 8 }))).toBe('unsupported-format');
  });
});

describe('manifest', () => {
  test('missing, and nested in a folder (with a hint)', async () => {
    expect(await reasonOf(rawZip([{ name: 'index.html', data: Buffer.from('x') }]))).toBe('manifest-missing');
    const err = await rejection(
      readArchiveBuffer(rawZip([{ name: 'item/manifest.json', data: MANIFEST }, { name: 'item/index.html', data: Buffer.from('x') }])),
    );
    expect(err.reason).toBe('manifest-missing');
    expect(err.message).toContain('item/manifest.json');
  });

  const withManifest = (m: unknown): Buffer =>
    rawZip([
      { name: 'manifest.json', data: Buffer.from(typeof m === 'string' ? m : JSON.stringify(m)) },
      { name: 'index.html', data: Buffer.from('x') },
    ]);
  const good = { id: 'com.example.t', version: '1.0.0', name: 'T', entry: 'index.html', endpoints: { api: 'https://api.example.com/v1' } };

  test.each([
    ['not JSON', '{"id":', 'manifest'],
    ['not an object', '[]', 'manifest'],
    ['bad id', { ...good, id: '-bad id' }, 'manifest/id'],
    ['bad version', { ...good, version: 'v1.0' }, 'manifest/version'],
    ['missing name', { ...good, name: undefined }, 'manifest/name'],
    ['entry escapes', { ...good, entry: '../index.html' }, 'manifest/entry'],
    ['entry not a page or module', { ...good, entry: 'manifest.json' }, 'manifest/entry'],
    ['relative endpoint', { ...good, endpoints: { api: '/v1' } }, 'manifest/endpoints/api'],
    ['ftp endpoint', { ...good, endpoints: { api: 'ftp://x.example.com' } }, 'manifest/endpoints/api'],
    ['endpoint with credentials', { ...good, endpoints: { api: 'https://u:p@x.example.com' } }, 'manifest/endpoints/api'],
  ])('invalid: %s', async (_label, m, issuePath) => {
    const err = await rejection(readArchiveBuffer(withManifest(m)));
    expect(err.reason).toBe('manifest-invalid');
    expect(err.issues.map((i) => i.path)).toContain(issuePath);
  });

  test('valid manifest variants pass', async () => {
    await expect(readArchiveBuffer(withManifest(good))).resolves.toBeDefined();
    await expect(readArchiveBuffer(withManifest({ ...good, version: '1.0.0-rc.1+build.5', endpoints: undefined }))).resolves.toBeDefined();
  });

  test('entry missing', async () => {
    const err = await rejection(readArchiveBuffer(rawZip([{ name: 'manifest.json', data: MANIFEST }])));
    expect(err.reason).toBe('entry-missing');
    expect(err.issues[0].path).toBe('manifest/entry');
  });
});

test('the reader has no way to write: archive.ts imports no file-writing API', () => {
  // Guards "nothing written anywhere": the module only stats and reads.
  const src = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'archive.ts'), 'utf8');
  expect(src).not.toMatch(/\b(writeFile|createWriteStream|mkdir|appendFile|rename|copyFile|symlink|link)\s*\(/);
});

/**
 * Reading and writing item archives (`.zip`, `.tar.gz`).
 *
 * Reads untrusted archives into memory as an ItemTree — and only after every limit has been
 * enforced on the bytes actually produced while streaming (declared sizes are checked up front
 * as a cheap early refusal, never relied on). Nothing is ever written to disk. Every refusal is
 * an ArchiveRejectedError with a stable `reason`; see README.md in this folder for the table.
 *
 * Writes archives deterministically: identical trees give byte-identical archives (sorted
 * entries, fixed mtime and modes, no extra fields), so artifacts are content-addressable.
 */
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import yazl from 'yazl';
import type { ItemManifest } from '../domain/types.ts';
import { ArchiveRejectedError } from '../errors.ts';
import { MANIFEST_PATH, manifestFromFiles } from './manifest.ts';

export interface ItemTree {
  /** Validated view of `files.get('manifest.json')`. */
  manifest: ItemManifest;
  /** Every file, keyed by normalised POSIX relative path (manifest.json included). Directories are implied. */
  files: Map<string, Buffer>;
}

export type ArchiveFormat = 'zip' | 'tar.gz';

export interface ArchiveLimits {
  /** Size of the archive itself (compressed input). */
  maxArchiveBytes: number;
  /** Members of any kind (files, directory entries); counted before and while reading. */
  maxFiles: number;
  /** Sum of actual decompressed bytes (for tar.gz: of the whole tar stream, headers included). */
  maxTotalBytes: number;
  /** Actual decompressed bytes of one file. */
  maxEntryBytes: number;
  /**
   * Decompressed ÷ compressed bytes. Applied per entry for zip, to the whole gzip stream for
   * tar.gz (entries share one stream), and to the whole archive for both — once the decompressed
   * side exceeds `ratioThresholdBytes` (small files legitimately compress very well).
   */
  maxRatio: number;
  ratioThresholdBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxArchiveBytes: 100 * 1024 * 1024,
  maxFiles: 10_000,
  maxTotalBytes: 200 * 1024 * 1024,
  maxEntryBytes: 100 * 1024 * 1024,
  maxRatio: 100,
  ratioThresholdBytes: 1024 * 1024,
});

const reject = (reason: string, message: string): ArchiveRejectedError => new ArchiveRejectedError(reason, message);

/** Detect the format from magic bytes (never from a file extension). */
export function detectFormat(buf: Buffer): ArchiveFormat | null {
  // Local file header, or end-of-central-directory first (an empty zip).
  if (buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && ((buf[2] === 3 && buf[3] === 4) || (buf[2] === 5 && buf[3] === 6))) {
    return 'zip';
  }
  if (buf.length >= 3 && buf[0] === 0x1f && buf[1] === 0x8b && buf[2] === 8) return 'tar.gz';
  return null;
}

/** Read an archive from disk. The file is size-checked before it is read. */
export async function readArchive(input: { path: string }, limits: Partial<ArchiveLimits> = {}): Promise<ItemTree> {
  const lim = { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
  const st = await stat(input.path);
  if (!st.isFile()) throw reject('unsupported-format', `${input.path} is not a regular file`);
  if (st.size > lim.maxArchiveBytes) {
    throw reject('too-large', `archive is ${st.size} bytes; the limit is ${lim.maxArchiveBytes}`);
  }
  return readArchiveBuffer(await readFile(input.path), lim);
}

/** Read an archive held in memory. */
export async function readArchiveBuffer(buf: Buffer, limits: Partial<ArchiveLimits> = {}): Promise<ItemTree> {
  const lim = { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
  if (buf.length > lim.maxArchiveBytes) {
    throw reject('too-large', `archive is ${buf.length} bytes; the limit is ${lim.maxArchiveBytes}`);
  }
  const format = detectFormat(buf);
  if (format === null) {
    const tarMagic = buf.length >= 262 && buf.subarray(257, 262).toString('latin1') === 'ustar';
    throw reject(
      'unsupported-format',
      tarMagic ? 'uncompressed tar is not supported; gzip it (.tar.gz)' : 'not a .zip or .tar.gz archive',
    );
  }
  const collector = new Collector(lim, buf.length);
  if (format === 'zip') await readZip(buf, collector);
  else await readTarGz(buf, collector);
  collector.checkWholeArchiveRatio();
  return { manifest: manifestFromFiles(collector.files), files: collector.sortedFiles() };
}

// ---------------------------------------------------------------------------------------------
// Names and limits shared by both formats

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode a raw member name; names must be valid UTF-8 whatever the archive's flags claim. */
function decodeName(raw: Buffer): string {
  try {
    return fatalUtf8.decode(raw);
  } catch {
    throw reject('non-utf8-name', `member name is not valid UTF-8: ${raw.toString('hex').slice(0, 64)}`);
  }
}

/**
 * Normalise a member name to a relative POSIX path, or null for the root itself.
 * `\` is treated as a separator (Windows archivers), `.` and empty segments are dropped; any `..`
 * segment is refused even when it would stay inside the root — there is no legitimate use.
 */
export function normaliseMemberName(name: string): string | null {
  if (name.includes('\0')) throw reject('path-traversal', `member name contains NUL: ${JSON.stringify(name)}`);
  const slashed = name.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed)) {
    throw reject('absolute-path', `absolute member path: ${JSON.stringify(name)}`);
  }
  const segments = slashed.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw reject('path-traversal', `member path escapes the archive: ${JSON.stringify(name)}`);
  return segments.length === 0 ? null : segments.join('/');
}

/**
 * Collects members, enforcing counts, sizes, ratios and name uniqueness. Names are also unique
 * case-insensitively (after Unicode NFC): items are served from CDNs and unpacked on macOS and
 * Windows, where `A.js` and `a.js` are one file and one would silently replace the other. A file
 * may not share its path with a directory either (`a` and `a/b`).
 */
class Collector {
  readonly files = new Map<string, Buffer>();
  private readonly fileKeys = new Map<string, string>();
  private readonly dirKeys = new Set<string>();
  private members = 0;
  private totalBytes = 0;

  constructor(
    readonly lim: ArchiveLimits,
    private readonly archiveBytes: number,
  ) {}

  private static key(path: string): string {
    return path.normalize('NFC').toLowerCase();
  }

  countMember(): void {
    this.members += 1;
    if (this.members > this.lim.maxFiles) throw reject('too-many-files', `more than ${this.lim.maxFiles} members`);
  }

  /** Early refusal from declared sizes (cheap; actual bytes are checked again while streaming). */
  checkDeclared(path: string, uncompressed: number, compressed: number | null): void {
    if (compressed !== null) this.checkRatio(path, uncompressed, compressed);
    if (uncompressed > this.lim.maxEntryBytes) {
      throw reject('too-large', `${path} declares ${uncompressed} bytes; the per-file limit is ${this.lim.maxEntryBytes}`);
    }
    if (this.totalBytes + uncompressed > this.lim.maxTotalBytes) {
      throw reject('too-large', `archive expands beyond ${this.lim.maxTotalBytes} bytes`);
    }
  }

  checkRatio(what: string, out: number, inBytes: number): void {
    if (out > this.lim.ratioThresholdBytes && out > this.lim.maxRatio * Math.max(inBytes, 1)) {
      throw reject('compression-ratio', `${what} expands more than ${this.lim.maxRatio}:1 (${out} bytes from ${inBytes})`);
    }
  }

  /** Account actual decompressed bytes (zip: per entry; tar: the raw tar stream). */
  addBytes(n: number): void {
    this.totalBytes += n;
    if (this.totalBytes > this.lim.maxTotalBytes) throw reject('too-large', `archive expands beyond ${this.lim.maxTotalBytes} bytes`);
  }

  checkWholeArchiveRatio(): void {
    this.checkRatio('archive', this.totalBytes, this.archiveBytes);
  }

  addDirectory(path: string | null): void {
    if (path === null) return;
    const key = Collector.key(path);
    if (this.fileKeys.has(key)) throw reject('duplicate-name', `${path} is both a file and a directory`);
    this.dirKeys.add(key);
  }

  /** Reserve a file path before its bytes are read, so duplicates are refused without reading. */
  reserveFile(path: string): void {
    const key = Collector.key(path);
    const existing = this.fileKeys.get(key);
    if (existing !== undefined) {
      throw reject('duplicate-name', existing === path ? `duplicate member ${path}` : `${path} collides with ${existing} (names are case-insensitive)`);
    }
    if (this.dirKeys.has(key)) throw reject('duplicate-name', `${path} is both a file and a directory`);
    const parts = key.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.fileKeys.has(dir)) throw reject('duplicate-name', `${path} is inside ${this.fileKeys.get(dir)}, which is a file`);
      this.dirKeys.add(dir);
    }
    this.fileKeys.set(key, path);
  }

  setFile(path: string, data: Buffer): void {
    this.files.set(path, data);
  }

  sortedFiles(): Map<string, Buffer> {
    return new Map([...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

// ---------------------------------------------------------------------------------------------
// zip

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function openZip(buf: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject_) => {
    yauzl.fromBuffer(
      buf,
      // decodeStrings:false — we validate raw names ourselves (UTF-8 required, CP437 refused).
      { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, strictFileNames: true },
      (err, zip) => (err || !zip ? reject_(reject('corrupt', `corrupt zip: ${err?.message ?? 'unreadable'}`)) : resolve(zip)),
    );
  });
}

function readZip(buf: Buffer, c: Collector): Promise<void> {
  return openZip(buf).then(
    (zip) =>
      new Promise<void>((resolve, reject_) => {
        let failed = false;
        const fail = (err: unknown): void => {
          if (failed) return;
          failed = true;
          zip.close();
          reject_(
            err instanceof ArchiveRejectedError ? err : reject('corrupt', `corrupt zip: ${(err as Error)?.message ?? String(err)}`),
          );
        };
        // The central directory says how many entries follow; refuse before reading any.
        if (zip.entryCount > c.lim.maxFiles) {
          fail(reject('too-many-files', `archive has ${zip.entryCount} members; the limit is ${c.lim.maxFiles}`));
          return;
        }
        zip.on('error', fail);
        zip.on('end', () => {
          if (!failed) resolve();
        });
        zip.on('entry', (entry: yauzl.Entry) => {
          readZipEntry(zip, entry, c).then(() => {
            if (!failed) zip.readEntry();
          }, fail);
        });
        zip.readEntry();
      }),
  );
}

async function readZipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, c: Collector): Promise<void> {
  c.countMember();
  const rawName = entry.fileName as unknown as Buffer;
  const name = decodeName(rawName);
  const path = normaliseMemberName(name);
  // Unix mode lives in the high 16 bits of the external attributes (when the archiver set it).
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  const type = mode & S_IFMT;
  if (type === S_IFLNK) throw reject('link', `symbolic link ${name}`);
  const isDir = name.endsWith('/') || name.endsWith('\\') || type === S_IFDIR;
  if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) throw reject('special-file', `special file ${name} (mode ${mode.toString(8)})`);
  if (isDir) {
    c.addDirectory(path);
    return;
  }
  if (path === null) throw reject('corrupt', `member with an empty name`);
  if (entry.isEncrypted()) throw reject('unsupported-format', `${path} is encrypted`);
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    throw reject('unsupported-format', `${path} uses compression method ${entry.compressionMethod} (only stored and deflate)`);
  }
  c.reserveFile(path);
  c.checkDeclared(path, entry.uncompressedSize, entry.compressedSize);
  const stream = await new Promise<Readable>((resolve, reject_) =>
    zip.openReadStream(entry, (err, s) => (err || !s ? reject_(err ?? new Error('no stream')) : resolve(s))),
  );
  const data = await collectStream(stream, path, c, entry.compressedSize);
  // yauzl does not verify CRC-32; gunzip does for tar.gz. (zlib.crc32: Node >= 20.15.)
  if (typeof zlib.crc32 === 'function' && zlib.crc32(data) >>> 0 !== entry.crc32 >>> 0) {
    throw reject('corrupt', `${path}: CRC-32 mismatch`);
  }
  c.setFile(path, data);
}

/** Buffer one member while counting its actual bytes; abort the stream as soon as a limit is crossed. */
function collectStream(stream: Readable, path: string, c: Collector, compressed: number | null): Promise<Buffer> {
  return new Promise((resolve, reject_) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    const fail = (err: unknown): void => {
      if (done) return;
      done = true;
      stream.destroy();
      reject_(err);
    };
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      n += chunk.length;
      try {
        if (compressed !== null) c.checkRatio(path, n, compressed);
        if (n > c.lim.maxEntryBytes) throw reject('too-large', `${path} exceeds the per-file limit of ${c.lim.maxEntryBytes} bytes`);
        // zip: count here; tar: the raw stream is counted before parsing, so don't count twice.
        if (compressed !== null) c.addBytes(chunk.length);
      } catch (err) {
        fail(err);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('error', (err: Error) =>
      fail(err instanceof ArchiveRejectedError ? err : reject('corrupt', `${path}: ${err.message}`)),
    );
    stream.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, n));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// tar.gz

const FEED_CHUNK = 64 * 1024;

/** Name of a tar member as raw-checked text. */
function tarName(header: tar.Header): string {
  const pax = header.pax as Record<string, string> | null | undefined;
  if (pax && typeof pax.path === 'string') {
    // tar-stream decodes pax records as UTF-8 with replacement; a U+FFFD means the bytes were not UTF-8.
    if (header.name.includes('\uFFFD')) throw reject('non-utf8-name', `member name is not valid UTF-8: ${header.name}`);
    return header.name;
  }
  // Extracted with filenameEncoding latin1, which maps bytes 1:1 to code points: recover the bytes.
  return decodeName(Buffer.from(header.name, 'latin1'));
}

async function readTarGz(buf: Buffer, c: Collector): Promise<void> {
  const gunzip = zlib.createGunzip({ chunkSize: FEED_CHUNK });
  const extract = tar.extract({ filenameEncoding: 'latin1' } as never);
  let failure: unknown = null;
  const fail = (err: unknown): void => {
    if (failure === null) failure = err;
    gunzip.destroy(err instanceof Error ? err : new Error(String(err)));
  };

  // Feed compressed input in slices so the ratio is measured against what was consumed so far.
  let fed = 0;
  const source = Readable.from(
    (function* () {
      for (let off = 0; off < buf.length; off += FEED_CHUNK) {
        const slice = buf.subarray(off, off + FEED_CHUNK);
        fed += slice.length;
        yield slice;
      }
    })(),
  );
  source.on('error', fail);
  source.pipe(gunzip);

  extract.on('entry', (header, stream, next) => {
    void handleTarEntry(header, stream as unknown as Readable, c).then(
      () => next(),
      (err) => {
        (stream as unknown as Readable).destroy();
        fail(err);
        extract.destroy(err);
      },
    );
  });
  extract.on('error', (err: Error) => fail(err));
  const finished = new Promise<void>((resolve, reject_) => {
    extract.on('finish', () => resolve());
    extract.on('close', () => (failure === null ? resolve() : reject_(failure)));
    extract.on('error', (err: Error) => reject_(err));
  });
  finished.catch(() => undefined); // observed below; avoid an unhandled rejection meanwhile

  let out = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      if (failure !== null) break;
      out += chunk.length;
      // The raw tar stream (headers, padding, contents) is what a bomb inflates; count all of it.
      c.addBytes(chunk.length);
      c.checkRatio('gzip stream', out, fed);
      if (!extract.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            extract.off('drain', done);
            extract.off('close', done);
            resolve();
          };
          extract.on('drain', done);
          extract.on('close', done);
        });
      }
    }
    if (failure === null) {
      (extract as unknown as { end(): void }).end();
      await finished;
    }
  } catch (err) {
    if (failure === null) failure = err;
  } finally {
    source.destroy();
    gunzip.destroy();
    if (failure !== null) extract.destroy();
  }
  if (failure !== null) {
    throw failure instanceof ArchiveRejectedError
      ? failure
      : reject('corrupt', `corrupt tar.gz: ${(failure as Error)?.message ?? String(failure)}`);
  }
}

async function handleTarEntry(header: tar.Header, stream: Readable, c: Collector): Promise<void> {
  c.countMember();
  const name = tarName(header);
  const path = normaliseMemberName(name);
  const type = header.type as string | null;
  switch (type) {
    case 'symlink':
    case 'link':
      throw reject('link', `${type === 'link' ? 'hard' : 'symbolic'} link ${name}`);
    case 'character-device':
    case 'block-device':
    case 'fifo':
      throw reject('special-file', `special file ${name} (${type})`);
    case 'directory':
      c.addDirectory(path);
      stream.resume();
      return;
    case 'file':
    case 'contiguous-file':
      break;
    default:
      throw reject('unsupported-format', `unsupported tar member type for ${name}`);
  }
  if (path === null) throw reject('corrupt', 'member with an empty name');
  c.reserveFile(path);
  c.checkDeclared(path, header.size, null);
  c.setFile(path, await collectStream(stream, path, c, null));
}

// ---------------------------------------------------------------------------------------------
// Deterministic writing

/** DOS timestamps are local time; 1980-01-01 00:00 is the DOS epoch in every time zone. */
const ZIP_MTIME = (): Date => new Date(1980, 0, 1, 0, 0, 0);
const TAR_MTIME = new Date(0);
/** Fixed gzip header OS byte (3 = Unix) so the output does not depend on the platform. */
const GZIP_OS_UNIX = 3;

function sortedEntries(tree: ItemTree): [string, Buffer][] {
  const files = new Map(tree.files);
  if (!files.has(MANIFEST_PATH)) files.set(MANIFEST_PATH, Buffer.from(JSON.stringify(tree.manifest, null, 2) + '\n'));
  return [...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Write a tree as an archive. Deterministic for a given Node/zlib build: entries sorted by path,
 * mtime fixed (zip 1980-01-01 DOS time, tar epoch 0), mode 0644, uid/gid 0, no extra fields,
 * no directory entries, gzip header without name/mtime and with a fixed OS byte.
 */
export async function writeArchive(tree: ItemTree, format: ArchiveFormat): Promise<Buffer> {
  const entries = sortedEntries(tree);
  for (const [path] of entries) {
    if (normaliseMemberName(path) !== path) throw reject('path-traversal', `refusing to write non-normal path ${path}`);
  }
  if (format === 'zip') {
    const zip = new yazl.ZipFile();
    for (const [path, data] of entries) {
      zip.addBuffer(data, path, { mtime: ZIP_MTIME(), mode: 0o100644, compress: true, forceDosTimestamp: true });
    }
    zip.end();
    const chunks: Buffer[] = [];
    for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const [path, data] of entries) {
    await new Promise<void>((resolve, reject_) =>
      pack.entry(
        { name: path, size: data.length, mode: 0o644, mtime: TAR_MTIME, uid: 0, gid: 0, uname: '', gname: '', type: 'file' },
        data,
        (err) => (err ? reject_(err) : resolve()),
      ),
    );
  }
  pack.finalize();
  await collected;
  const gz = zlib.gzipSync(Buffer.concat(chunks), { level: 9 });
  gz[9] = GZIP_OS_UNIX;
  return gz;
}

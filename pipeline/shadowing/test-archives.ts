/**
 * Hand-made zip and tar bytes for the hostile-archive tests. yazl and tar-stream refuse to write
 * most of what an attacker would send (traversal, non-UTF-8 names, lying sizes, devices), so the
 * formats are written here directly from the specs: PKWARE APPNOTE 6.3.x (local header,
 * central directory, EOCD, zip64 EOCD) and POSIX ustar (512-byte headers, octal fields).
 */
import zlib from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// zip

export interface RawZipEntry {
  name: string | Buffer;
  data?: Buffer;
  /** 0 stored (default), 8 deflate (data is deflated here unless `compressed` is given). */
  method?: 0 | 8;
  /** Pre-compressed raw deflate bytes (for bombs built without materialising the output). */
  compressed?: Buffer;
  /** Override the uncompressed size written in the headers (a lying header). */
  declaredSize?: number;
  /** Full 32-bit external attributes; unix mode goes in the high 16 bits. */
  externalAttr?: number;
  /** General purpose flags; bit 11 (0x800) says the name is UTF-8. */
  flags?: number;
  crc?: number;
}

export const unixMode = (mode: number): number => (mode << 16) >>> 0;

const DOS_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1;

export function rawZip(entries: RawZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name, 'utf8') : e.name;
    const data = e.data ?? Buffer.alloc(0);
    const method = e.compressed ? 8 : (e.method ?? 0);
    const body = e.compressed ?? (method === 8 ? zlib.deflateRawSync(data) : data);
    const size = e.declaredSize ?? data.length;
    const crc = e.crc ?? (e.compressed ? 0 : zlib.crc32(data));
    const flags = e.flags ?? (typeof e.name === 'string' ? 0x800 : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(DOS_DATE_1980_01_01, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size >>> 0, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the external attributes hold a mode
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(DOS_DATE_1980_01_01, 14);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size >>> 0, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(e.externalAttr ?? unixMode(0o100644), 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  const zip64 = entries.length >= 0xffff;
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, ...tail, eocd]);
}

/**
 * Raw deflate of `mib` MiB of zeros, built from one 1 MiB block flushed with Z_FULL_FLUSH (which
 * resets the dictionary, so identical blocks can be concatenated) and a final empty block. About
 * 1 KiB per MiB: a 1 GiB bomb costs ~1 MiB to build and hold.
 */
export function zeroDeflate(mib: number, prefix?: Buffer): Buffer {
  const block = zlib.deflateRawSync(Buffer.alloc(1024 * 1024), { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const parts: Buffer[] = [];
  if (prefix) parts.push(zlib.deflateRawSync(prefix, { finishFlush: zlib.constants.Z_FULL_FLUSH }));
  for (let i = 0; i < mib; i++) parts.push(block);
  parts.push(Buffer.from([0x03, 0x00])); // final, fixed-Huffman block with only end-of-block
  return Buffer.concat(parts);
}

/** CRC-32 of `mib` MiB of zeros, computed a MiB at a time. */
export function zeroCrc(mib: number): number {
  const block = Buffer.alloc(1024 * 1024);
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = zlib.crc32(block, crc);
  return crc;
}

/** Wrap raw deflate bytes as a gzip member (CRC/size trailer deliberately zero: never reached). */
export function gzipWrap(rawDeflate: Buffer): Buffer {
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  return Buffer.concat([header, rawDeflate, Buffer.alloc(8)]);
}

// ---------------------------------------------------------------------------------------------
// tar (ustar)

export interface RawTarEntry {
  name: string | Buffer;
  data?: Buffer;
  /** '0' file, '1' hard link, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' fifo, 'x' pax. */
  type?: string;
  linkname?: string;
  /** Override the size field (for a header that declares more than it carries). */
  size?: number;
}

function octal(buf: Buffer, value: number, offset: number, length: number): void {
  buf.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'latin1');
}

export function tarHeader(e: RawTarEntry): Buffer {
  const h = Buffer.alloc(512);
  const name = typeof e.name === 'string' ? Buffer.from(e.name, 'utf8') : e.name;
  name.copy(h, 0, 0, Math.min(name.length, 100));
  octal(h, 0o644, 100, 8);
  octal(h, 0, 108, 8);
  octal(h, 0, 116, 8);
  octal(h, e.size ?? e.data?.length ?? 0, 124, 12);
  octal(h, 0, 136, 12);
  h.write(e.type ?? '0', 156, 1, 'latin1');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);

/** A pax extended header record list as one entry's data (`"<len> key=value\n"`). */
export function paxData(records: Record<string, Buffer | string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.isBuffer(v) ? v : Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), body]));
  }
  return Buffer.concat(parts);
}

export function rawTar(entries: RawTarEntry[], { end = true }: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(tarHeader(e), data, pad(data.length));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const rawTarGz = (entries: RawTarEntry[]): Buffer => zlib.gzipSync(rawTar(entries));

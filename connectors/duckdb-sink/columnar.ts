/**
 * Avro records straight into columns, for the warehouse sink's hot table (telemetry_events).
 *
 * Why: decoding each record into a JavaScript object (avsc), mapping it to a row of cells and
 * handing every cell to DuckDB's Appender cost the sink ~8 µs of its JavaScript thread per event
 * — most of it one N-API call per cell and the garbage of objects that live for microseconds
 * (docs/warehouse.md "Throughput"). Here a decoder compiled once per writer schema reads the
 * Avro body and writes each field into a typed column: numbers into Float64Arrays, strings as
 * their UTF-8 bytes into one byte arena (offset + length per cell), never creating a JavaScript
 * string. chunk-append.ts then hands whole columns to DuckDB.
 *
 * Pure: no DuckDB, no Kafka. What it must match: `TableSpec.rows()` applied to avsc's decoding
 * of the same bytes with the same writer and reader schemas — the same cells for every record
 * avsc accepts, and a refusal (DecodeError → dead letter) for every record avsc refuses
 * (columnar.test.ts checks both on generated records and on mutated bytes). Schema resolution
 * covers what our schemas' evolution uses: fields matched by name, reader fields missing from the
 * writer take their default, writer fields the reader lacks are skipped, numeric promotion
 * (int → long/double, long → double). Anything else — a logical type, an alias, a union whose
 * branches differ between writer and reader — makes `compileColumnDecoder` answer null and the
 * sink keeps avsc for that schema id.
 *
 * Strings are copied byte for byte; one holding a byte ≥ 0x80 is checked to be UTF-8 and, if it
 * is not, replaced by what avsc would have produced (invalid sequences become U+FFFD), so DuckDB
 * never receives invalid UTF-8. Every read is bounds-checked against the body (a truncated or
 * lying record is refused, never read past its end), and every loop consumes at least one byte
 * per turn, so a poison block count cannot spin (the guard avro-bounds.ts adds in front of avsc).
 */
import { isUtf8 } from 'node:buffer';
import type avro from 'avsc';
import { DecodeError } from '../../pipeline/kafka/registry.ts';
import type { Cell, ColumnType } from './tables.ts';

/** Where a column's value comes from: a field of the record, or a map field rendered as JSON text. */
export interface ColumnSource {
  field: string;
  /** The field is a map of strings; the column holds JSON.stringify of it (like `rows()`). */
  json?: boolean;
}

interface ColumnData {
  type: ColumnType;
  /** 1 where the cell is NULL. */
  nul: Uint8Array;
  /** Numbers (BIGINT, INTEGER, DOUBLE; TIMESTAMP as epoch ms; BOOLEAN as 0/1). */
  num: Float64Array | null;
  /** VARCHAR: byte offset in the arena and byte length. */
  off: Int32Array | null;
  len: Int32Array | null;
}

/** Rows of one table being collected column by column (reused: `reset()` between chunks). */
export class ColumnBatch {
  readonly cols: ColumnData[];
  rows = 0;
  capacity: number;
  /** UTF-8 bytes of every string cell of the batch (a Buffer: `string()` slices it without a wrapper). */
  arena: Buffer;
  arenaLen = 0;

  constructor(readonly types: readonly ColumnType[], capacity = 2048) {
    this.capacity = capacity;
    this.cols = types.map((type) => this.alloc(type, capacity));
    this.arena = Buffer.allocUnsafeSlow(capacity * 128);
  }

  private alloc(type: ColumnType, n: number): ColumnData {
    const str = type === 'VARCHAR';
    if (type === 'BLOB') throw new Error('BLOB columns are not supported by ColumnBatch');
    return { type, nul: new Uint8Array(n), num: str ? null : new Float64Array(n), off: str ? new Int32Array(n) : null, len: str ? new Int32Array(n) : null };
  }

  reset(): void {
    this.rows = 0;
    this.arenaLen = 0;
  }

  /** Room for one more row. */
  reserveRow(): void {
    if (this.rows < this.capacity) return;
    const n = this.capacity * 2;
    for (const c of this.cols) {
      const grown = this.alloc(c.type, n);
      grown.nul.set(c.nul);
      grown.num?.set(c.num!);
      grown.off?.set(c.off!);
      grown.len?.set(c.len!);
      Object.assign(c, grown);
    }
    this.capacity = n;
  }

  /** Room for `extra` more arena bytes. */
  reserveBytes(extra: number): void {
    const need = this.arenaLen + extra;
    if (need <= this.arena.length) return;
    let n = this.arena.length * 2;
    while (n < need) n *= 2;
    const a = Buffer.allocUnsafeSlow(n);
    a.set(this.arena.subarray(0, this.arenaLen));
    this.arena = a;
  }

  /** Drop the last row (one decoded but not kept, e.g. a repeated id). */
  pop(arenaMark: number): void {
    this.rows--;
    this.arenaLen = arenaMark;
  }

  /** A VARCHAR cell as a JavaScript string (ids for de-duplication, tests). */
  string(col: number, row: number): string | null {
    const c = this.cols[col];
    if (c.nul[row]) return null;
    const at = c.off![row];
    return this.arena.toString('utf8', at, at + c.len![row]);
  }

  /** A cell as `TableSpec.rows()` gives it (tests; rare fallbacks). */
  cell(col: number, row: number): Cell {
    const c = this.cols[col];
    if (c.nul[row]) return null;
    if (c.type === 'VARCHAR') return this.string(col, row);
    if (c.type === 'BOOLEAN') return c.num![row] !== 0;
    return c.num![row];
  }

  row(row: number): Cell[] {
    return this.cols.map((_, k) => this.cell(k, row));
  }
}

/** Reads one field's value at `pos` and writes it to the batch (or skips it); returns the new position. */
type Op = (buf: Buffer, pos: number, end: number, b: ColumnBatch, row: number) => number;

export interface ColumnDecoder {
  /**
   * Decode the Avro body `buf[start, end)` as one more row of `batch`. Throws DecodeError (and
   * leaves the batch as it was) when avsc would refuse the record.
   */
  decode(buf: Buffer, start: number, end: number, batch: ColumnBatch): void;
}

const truncated = (): DecodeError => new DecodeError('Avro body ends before the record does (truncated buffer)');

/** Zig-zag varint as avsc's Tap.readLong computes it; `[value, newPos]` packed via a module slot. */
let longPos = 0;
function readLong(buf: Buffer, pos: number, end: number): number {
  let n = 0;
  let k = 0;
  let b: number;
  do {
    if (pos >= end) throw truncated();
    b = buf[pos++];
    n |= (b & 0x7f) << k;
    k += 7;
  } while (b & 0x80 && k < 28);
  if (b & 0x80) {
    let f = n;
    let fk = 268435456;
    do {
      if (pos >= end) throw truncated();
      b = buf[pos++];
      f += (b & 0x7f) * fk;
      fk *= 128;
    } while (b & 0x80);
    longPos = pos;
    return (f % 2 ? -(f + 1) : f) / 2;
  }
  longPos = pos;
  return (n >> 1) ^ -(n & 1);
}

const isSafeLong = (n: number): boolean => n >= -9007199254740990 && n <= 9007199254740990;

/** Copy a string's bytes into the arena (fixing invalid UTF-8 the way avsc decodes it). */
function putBytes(b: ColumnBatch, buf: Buffer, from: number, len: number, col: ColumnData, row: number): void {
  b.reserveBytes(len);
  const a = b.arena;
  const at = b.arenaLen;
  let high = 0;
  if (len <= 64) {
    for (let i = 0; i < len; i++) {
      const x = buf[from + i];
      high |= x;
      a[at + i] = x;
    }
  } else {
    a.set(buf.subarray(from, from + len), at);
    for (let i = 0; i < len && high < 0x80; i++) high |= buf[from + i];
  }
  if (high & 0x80 && !isUtf8(buf.subarray(from, from + len))) {
    // avsc would have decoded this with utf8Slice: invalid sequences become U+FFFD.
    putString(b, buf.toString('utf8', from, from + len), col, row);
    return;
  }
  col.nul[row] = 0;
  col.off![row] = at;
  col.len![row] = len;
  b.arenaLen = at + len;
}

const encoder = new TextEncoder();
/** A JavaScript string into the arena as UTF-8. */
function putString(b: ColumnBatch, s: string, col: ColumnData, row: number): void {
  b.reserveBytes(s.length * 3);
  const at = b.arenaLen;
  let n: number;
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    const a = b.arena;
    for (let i = 0; i < s.length; i++) a[at + i] = s.charCodeAt(i);
    n = s.length;
  } else {
    n = encoder.encodeInto(s, b.arena.subarray(at)).written;
  }
  col.nul[row] = 0;
  col.off![row] = at;
  col.len![row] = n;
  b.arenaLen = at + n;
}

/** Bytes of `"__proto__"`, a key JSON.stringify of a plain object would not print as sent. */
const PROTO = Buffer.from('__proto__');

/** A string in buf[from, from + len) that JSON.stringify prints as its own bytes: printable ASCII, no `"` or `\`. */
function plainJson(buf: Buffer, from: number, len: number): boolean {
  for (let i = from; i < from + len; i++) {
    const x = buf[i];
    if (x < 0x20 || x > 0x7e || x === 0x22 || x === 0x5c) return false;
  }
  return true;
}

/**
 * The common case of a `map<string>` → JSON text column, written straight from the Avro bytes
 * to the arena: every key and value plain (`plainJson`), keys neither repeated, nor `__proto__`,
 * nor starting with a digit (an integer-like key would be moved to the front by the object).
 * Then JSON.stringify of the object avsc decodes is exactly `{"k":"v",…}` in wire order, so the
 * cell is the same without an object, its strings and the stringify per record (the slow path
 * below stays the reference). Returns the position after the map, or -1 (nothing written) to
 * take the slow path.
 */
/** Undo a partly written jsonMapFast cell (b.arenaLen follows what is written). */
function jsonMapFail(b: ColumnBatch, mark: number): number {
  b.arenaLen = mark;
  return -1;
}

/**
 * Key positions (start, length) of the map jsonMapFast is reading, to refuse a repeated key: one
 * array for the process (at most 16 entries). No closure or array per record here: under tsx,
 * whose `keepNames` wraps every arrow function in a `__name` call (Object.defineProperty) each
 * time it is created, the `fail` closure and the key array this function made per record took
 * the decoder from 0.84 to 1.32 µs per telemetry event (medians of 8 interleaved passes over
 * 200,000 generated records, one process, load 15; found in a profile of run-sink.ts).
 */
const mapKeys = new Int32Array(32);

function jsonMapFast(buf: Buffer, pos: number, end: number, b: ColumnBatch, c: ColumnData, row: number): number {
  const mark = b.arenaLen;
  // b.arenaLen follows what is written (reserveBytes keeps only bytes below it when it grows).
  let entries = 0;
  let nKeys = 0;
  for (;;) {
    let n = readLong(buf, pos, end);
    pos = longPos;
    if (n === 0) break;
    if (n < 0) {
      readLong(buf, pos, end);
      pos = longPos;
      n = -n;
    }
    if (entries + n > 16) return jsonMapFail(b, mark);
    for (let i = 0; i < n; i++) {
      const kl = readLong(buf, pos, end);
      pos = longPos;
      if (kl < 0 || pos + kl > end) return jsonMapFail(b, mark);
      const kp = pos;
      pos += kl;
      const vl = readLong(buf, pos, end);
      pos = longPos;
      if (vl < 0 || pos + vl > end) return jsonMapFail(b, mark);
      const vp = pos;
      pos += vl;
      if (kl > 0 && buf[kp] >= 0x30 && buf[kp] <= 0x39) return jsonMapFail(b, mark);
      if (!plainJson(buf, kp, kl) || !plainJson(buf, vp, vl)) return jsonMapFail(b, mark);
      if (kl === PROTO.length && buf.compare(PROTO, 0, kl, kp, kp + kl) === 0) return jsonMapFail(b, mark);
      for (let k = 0; k < nKeys; k += 2) if (mapKeys[k + 1] === kl && buf.compare(buf, mapKeys[k], mapKeys[k] + kl, kp, kp + kl) === 0) return jsonMapFail(b, mark);
      mapKeys[nKeys++] = kp;
      mapKeys[nKeys++] = kl;
      b.reserveBytes(kl + vl + 8);
      const a = b.arena;
      let out = b.arenaLen;
      a[out++] = entries === 0 ? 0x7b : 0x2c; // { or ,
      a[out++] = 0x22;
      buf.copy(a, out, kp, kp + kl);
      out += kl;
      a[out++] = 0x22;
      a[out++] = 0x3a;
      a[out++] = 0x22;
      buf.copy(a, out, vp, vp + vl);
      out += vl;
      a[out++] = 0x22;
      b.arenaLen = out;
      entries++;
    }
  }
  b.reserveBytes(2);
  let out = b.arenaLen;
  if (entries === 0) b.arena[out++] = 0x7b;
  b.arena[out++] = 0x7d;
  c.nul[row] = 0;
  c.off![row] = mark;
  c.len![row] = out - mark;
  b.arenaLen = out;
  return pos;
}

type AnyType = avro.Type & {
  typeName: string;
  fields?: { name: string; type: AnyType; aliases?: string[]; defaultValue(): unknown }[];
  valuesType?: AnyType;
  itemsType?: AnyType;
  types?: AnyType[];
  symbols?: string[];
  size?: number;
};

const PRIMITIVE = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** True when every value of `t` takes zero bytes (then a block of them must not be looped over). */
function alwaysEmpty(t: AnyType): boolean {
  switch (t.typeName) {
    case 'null': return true;
    case 'record': case 'error': return (t.fields ?? []).every((f) => alwaysEmpty(f.type));
    case 'fixed': return (t.size ?? 0) === 0;
    default: return false;
  }
}

/** Skip one value of writer type `t` (any Avro type); null when the type is not understood. */
function skipper(t: AnyType): ((buf: Buffer, pos: number, end: number) => number) | null {
  switch (t.typeName) {
    case 'null': return (_b, pos) => pos;
    case 'boolean': return (_b, pos, end) => {
      if (pos + 1 > end) throw truncated();
      return pos + 1;
    };
    case 'int': case 'long': case 'enum': return (buf, pos, end) => {
      readLong(buf, pos, end);
      return longPos;
    };
    case 'float': return (_b, pos, end) => {
      if (pos + 4 > end) throw truncated();
      return pos + 4;
    };
    case 'double': return (_b, pos, end) => {
      if (pos + 8 > end) throw truncated();
      return pos + 8;
    };
    case 'fixed': {
      const n = t.size ?? 0;
      return (_b, pos, end) => {
        if (pos + n > end) throw truncated();
        return pos + n;
      };
    }
    case 'bytes': case 'string': return (buf, pos, end) => {
      const n = readLong(buf, pos, end);
      pos = longPos;
      if (n < 0 || pos + n > end) throw truncated();
      return pos + n;
    };
    case 'record': case 'error': {
      const fs = (t.fields ?? []).map((f) => skipper(f.type));
      if (fs.some((f) => f === null)) return null;
      return (buf, pos, end) => {
        for (const f of fs) pos = f!(buf, pos, end);
        return pos;
      };
    }
    case 'array': case 'map': {
      const item = t.typeName === 'map' ? t.valuesType! : t.itemsType!;
      const skipItem = skipper(item);
      if (!skipItem) return null;
      const isMap = t.typeName === 'map';
      const empty = alwaysEmpty(item) && !isMap;
      return (buf, pos, end) => {
        for (;;) {
          let n = readLong(buf, pos, end);
          pos = longPos;
          if (n === 0) return pos;
          if (n < 0) {
            // A block with its byte size: skip it whole, but it must fit.
            const size = readLong(buf, pos, end);
            pos = longPos;
            if (size < 0 || pos + size > end) throw truncated();
            n = -n;
          }
          if (empty) continue; // zero-byte items: nothing to walk, and a huge count must not spin
          for (let i = 0; i < n; i++) {
            const before = pos;
            if (isMap) pos = skipString(buf, pos, end);
            pos = skipItem(buf, pos, end);
            if (pos === before) throw truncated(); // cannot happen for non-empty items; belt and braces
          }
        }
      };
    }
    default:
      if (t.typeName.startsWith('union')) {
        const branches = (t.types ?? []).map(skipper);
        if (branches.some((x) => x === null)) return null;
        return (buf, pos, end) => {
          const k = readLong(buf, pos, end);
          pos = longPos;
          const br = branches[k];
          if (br === undefined) throw new DecodeError(`Avro union branch ${k} does not exist`);
          return br!(buf, pos, end);
        };
      }
      return null;
  }
}

function skipString(buf: Buffer, pos: number, end: number): number {
  const n = readLong(buf, pos, end);
  pos = longPos;
  if (n < 0 || pos + n > end) throw truncated();
  return pos + n;
}

/** `null`, `[null, x]` or `[x, null]`: the non-null branch and the null branch's index. */
function nullable(t: AnyType): { inner: AnyType; nullIndex: number } | null {
  if (!t.typeName.startsWith('union')) return null;
  const ts = t.types ?? [];
  if (ts.length !== 2) return null;
  const k = ts.findIndex((x) => x.typeName === 'null');
  if (k < 0 || ts[1 - k].typeName === 'null') return null;
  return { inner: ts[1 - k], nullIndex: k };
}

/**
 * Reader of one writer value (a non-union type) into a column, with avsc's promotion rules for
 * reader type `r`; null when the pair is not supported here.
 */
function valueOp(w: AnyType, r: AnyType, col: number, colType: ColumnType, json: boolean): Op | null {
  if (json) {
    if (w.typeName !== 'map' || r.typeName !== 'map' || w.valuesType!.typeName !== 'string' || r.valuesType!.typeName !== 'string' || colType !== 'VARCHAR') return null;
    return (buf, pos, end, b, row) => {
      const c = b.cols[col];
      const fast = jsonMapFast(buf, pos, end, b, c, row);
      if (fast >= 0) return fast;
      let obj: Record<string, string> | null = null;
      for (;;) {
        let n = readLong(buf, pos, end);
        pos = longPos;
        if (n === 0) break;
        if (n < 0) {
          readLong(buf, pos, end);
          pos = longPos;
          n = -n;
        }
        for (let i = 0; i < n; i++) {
          const kl = readLong(buf, pos, end);
          pos = longPos;
          if (kl < 0 || pos + kl > end) throw truncated();
          const key = buf.toString('utf8', pos, pos + kl);
          pos += kl;
          const vl = readLong(buf, pos, end);
          pos = longPos;
          if (vl < 0 || pos + vl > end) throw truncated();
          obj ??= {};
          // Plain assignment on a plain object, exactly what avsc's MapType does (so even a
          // "__proto__" key or a repeated key ends up the same after JSON.stringify).
          obj[key] = buf.toString('utf8', pos, pos + vl);
          pos += vl;
        }
      }
      if (obj === null) {
        b.reserveBytes(2);
        b.arena[b.arenaLen] = 0x7b; // {
        b.arena[b.arenaLen + 1] = 0x7d; // }
        c.nul[row] = 0;
        c.off![row] = b.arenaLen;
        c.len![row] = 2;
        b.arenaLen += 2;
      } else putString(b, JSON.stringify(obj), c, row);
      return pos;
    };
  }
  const wn = w.typeName;
  const rn = r.typeName;
  switch (colType) {
    case 'VARCHAR': {
      if (wn === 'string' && rn === 'string') {
        return (buf, pos, end, b, row) => {
          const n = readLong(buf, pos, end);
          pos = longPos;
          if (n < 0 || pos + n > end) throw truncated();
          putBytes(b, buf, pos, n, b.cols[col], row);
          return pos + n;
        };
      }
      if (wn === 'enum' && rn === 'enum') {
        // avsc resolves enum symbols by name; a writer symbol the reader lacks would need the
        // reader's default: left to avsc.
        const readerSymbols = new Set(r.symbols);
        if (!w.symbols!.every((s) => readerSymbols.has(s))) return null;
        const bytes = w.symbols!.map((s) => Buffer.from(s, 'utf8'));
        return (buf, pos, end, b, row) => {
          const k = readLong(buf, pos, end);
          pos = longPos;
          const s = bytes[k];
          if (s === undefined) throw new DecodeError(`Avro enum index ${k} does not exist`);
          const c = b.cols[col];
          b.reserveBytes(s.length);
          b.arena.set(s, b.arenaLen);
          c.nul[row] = 0;
          c.off![row] = b.arenaLen;
          c.len![row] = s.length;
          b.arenaLen += s.length;
          return pos;
        };
      }
      return null;
    }
    case 'BIGINT': case 'TIMESTAMP': case 'INTEGER': {
      if (rn === 'long' && (wn === 'long' || wn === 'int')) {
        const check = wn === 'long';
        return (buf, pos, end, b, row) => {
          const v = readLong(buf, pos, end);
          if (check && !isSafeLong(v)) throw new DecodeError('Avro long loses precision as a JavaScript number');
          const c = b.cols[col];
          c.nul[row] = 0;
          c.num![row] = v;
          return longPos;
        };
      }
      if (rn === 'int' && wn === 'int') {
        return (buf, pos, end, b, row) => {
          const v = readLong(buf, pos, end);
          const c = b.cols[col];
          c.nul[row] = 0;
          c.num![row] = v;
          return longPos;
        };
      }
      return null;
    }
    case 'DOUBLE': {
      if (rn === 'double' && wn === 'double') {
        return (buf, pos, end, b, row) => {
          if (pos + 8 > end) throw truncated();
          const c = b.cols[col];
          c.nul[row] = 0;
          c.num![row] = buf.readDoubleLE(pos);
          return pos + 8;
        };
      }
      if ((rn === 'double' || rn === 'float') && wn === 'float') {
        return (buf, pos, end, b, row) => {
          if (pos + 4 > end) throw truncated();
          const c = b.cols[col];
          c.nul[row] = 0;
          c.num![row] = buf.readFloatLE(pos);
          return pos + 4;
        };
      }
      if (rn === 'double' && (wn === 'int' || wn === 'long')) {
        return (buf, pos, end, b, row) => {
          const v = readLong(buf, pos, end);
          const c = b.cols[col];
          c.nul[row] = 0;
          c.num![row] = v;
          return longPos;
        };
      }
      return null;
    }
    case 'BOOLEAN': {
      if (rn === 'boolean' && wn === 'boolean') {
        return (buf, pos, end, b, row) => {
          if (pos + 1 > end) throw truncated();
          const c = b.cols[col];
          c.nul[row] = 0;
          c.num![row] = buf[pos] !== 0 ? 1 : 0;
          return pos + 1;
        };
      }
      return null;
    }
    default:
      return null;
  }
}

/** Reader of one writer field into its column, unions of null included. */
function fieldOp(w: AnyType, r: AnyType, col: number, colType: ColumnType, json: boolean): Op | null {
  const wu = nullable(w);
  const ru = nullable(r);
  if (w.typeName.startsWith('union') && !wu) return null;
  if (r.typeName.startsWith('union') && !ru) return null;
  if (!wu) {
    // Writer not a union: a nullable reader takes the value in its non-null branch.
    return valueOp(w, ru ? ru.inner : r, col, colType, json);
  }
  if (!ru) return null; // a writer union into a non-union reader: leave it to avsc
  const inner = valueOp(wu.inner, ru.inner, col, colType, json);
  if (!inner) return null;
  const nullIndex = wu.nullIndex;
  return (buf, pos, end, b, row) => {
    const k = readLong(buf, pos, end);
    pos = longPos;
    if (k === nullIndex) {
      b.cols[col].nul[row] = 1;
      return pos;
    }
    if (k !== 1 - nullIndex) throw new DecodeError(`Avro union branch ${k} does not exist`);
    return inner(buf, pos, end, b, row);
  };
}

/** Writes a reader field's default (the writer lacks the field) into its column. */
function defaultOp(value: unknown, col: number, colType: ColumnType, json: boolean): Op | null {
  if (value === null || value === undefined) {
    return (_buf, pos, _end, b, row) => {
      b.cols[col].nul[row] = 1;
      return pos;
    };
  }
  if (colType === 'VARCHAR') {
    const text = json ? JSON.stringify(value) : typeof value === 'string' ? value : null;
    if (text === null) return null;
    const bytes = Buffer.from(text, 'utf8');
    return (_buf, pos, _end, b, row) => {
      const c = b.cols[col];
      b.reserveBytes(bytes.length);
      b.arena.set(bytes, b.arenaLen);
      c.nul[row] = 0;
      c.off![row] = b.arenaLen;
      c.len![row] = bytes.length;
      b.arenaLen += bytes.length;
      return pos;
    };
  }
  let n: number;
  if (typeof value === 'boolean' && colType === 'BOOLEAN') n = value ? 1 : 0;
  else if (typeof value === 'number' && colType !== 'BOOLEAN') n = value;
  else return null;
  return (_buf, pos, _end, b, row) => {
    const c = b.cols[col];
    c.nul[row] = 0;
    c.num![row] = n;
    return pos;
  };
}

/**
 * Compile the decoder of records written with `writer` and read as `reader` into columns
 * (`sources[k]` feeds column k of type `types[k]`). Null when something is outside what this
 * decoder reproduces exactly; the caller then decodes with avsc.
 */
export function compileColumnDecoder(writer: avro.Type, reader: avro.Type, sources: readonly ColumnSource[], types: readonly ColumnType[]): ColumnDecoder | null {
  const w = writer as AnyType;
  const r = reader as AnyType;
  if (w.typeName !== 'record' || r.typeName !== 'record') return null;
  const rFields = new Map((r.fields ?? []).map((f) => [f.name, f]));
  if ((r.fields ?? []).some((f) => (f.aliases ?? []).length > 0)) return null;
  const all = [w, r, ...(w.fields ?? []).map((f) => f.type), ...(r.fields ?? []).map((f) => f.type)];
  if (all.some((t) => !PRIMITIVE.has(t.typeName) && !['record', 'enum', 'map', 'array', 'fixed', 'union:unwrapped', 'union:wrapped'].includes(t.typeName))) return null;
  const colOf = new Map<string, number>();
  sources.forEach((s, k) => colOf.set(s.field, k));
  for (const s of sources) if (!rFields.has(s.field)) return null;
  const ops: Op[] = [];
  const written = new Set<string>();
  for (const wf of w.fields ?? []) {
    const k = colOf.get(wf.name);
    const rf = rFields.get(wf.name);
    if (k === undefined || !rf) {
      // Not a column (or not in the reader): skip its bytes. A field the reader has but no column
      // uses still has to be read the way avsc would to refuse the same records.
      const sk = rf ? readerCheckedSkip(wf.type, rf.type) : skipper(wf.type);
      if (!sk) return null;
      ops.push((buf, pos, end) => sk(buf, pos, end));
      continue;
    }
    const op = fieldOp(wf.type, rf.type, k, types[k], sources[k].json ?? false);
    if (!op) return null;
    ops.push(op);
    written.add(wf.name);
  }
  const wNames = new Set((w.fields ?? []).map((f) => f.name));
  for (const rf of r.fields ?? []) {
    if (wNames.has(rf.name)) continue;
    const k = colOf.get(rf.name);
    let dv: unknown;
    try {
      dv = rf.defaultValue();
    } catch {
      return null;
    }
    if (dv === undefined) return null; // avsc cannot resolve a reader field without default
    if (k === undefined) continue;
    const op = defaultOp(dv, k, types[k], sources[k].json ?? false);
    if (!op) return null;
    ops.push(op);
    written.add(rf.name);
  }
  if (sources.some((s) => !written.has(s.field))) return null;
  // avsc checks for trailing bytes only when it reads with the writer's own type (fromBuffer
  // without a resolver; the codec passes noCheck with one). Same here.
  const checkTrailing = writer.equals(reader);
  const n = ops.length;
  return {
    decode(buf, start, end, batch) {
      batch.reserveRow();
      const row = batch.rows;
      const mark = batch.arenaLen;
      let pos = start;
      try {
        for (let i = 0; i < n; i++) pos = ops[i](buf, pos, end, batch, row);
      } catch (err) {
        batch.arenaLen = mark;
        if (err instanceof DecodeError) throw err;
        throw new DecodeError(`Avro body does not match its schema: ${(err as Error).message}`, err);
      }
      if (checkTrailing && pos !== end) {
        batch.arenaLen = mark;
        throw new DecodeError('Avro body has trailing data after the record');
      }
      batch.rows = row + 1;
    },
  };
}

/**
 * Skip a field the reader has but no column needs, refusing what avsc's resolved read would
 * refuse: a long beyond 2^53, an enum symbol the reader lacks. Only identical simple types are
 * accepted here; anything else falls back to avsc.
 */
function readerCheckedSkip(w: AnyType, r: AnyType): ((buf: Buffer, pos: number, end: number) => number) | null {
  if (!w.equals(r)) return null;
  if (w.typeName === 'long') {
    return (buf, pos, end) => {
      const v = readLong(buf, pos, end);
      if (!isSafeLong(v)) throw new DecodeError('Avro long loses precision as a JavaScript number');
      return longPos;
    };
  }
  if (['string', 'bytes', 'int', 'double', 'float', 'boolean', 'null'].includes(w.typeName)) return skipper(w);
  return null;
}

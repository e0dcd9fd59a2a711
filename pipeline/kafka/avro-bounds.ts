/**
 * A linear-time bounds check of Avro binary data against a schema, found necessary by the Kafka
 * fuzzer: avsc 5.7 trusts the block counts of maps and arrays, so a ~20-byte record whose map
 * announces 2^50 entries makes `Type.fromBuffer` loop for hours (each entry "reads" past the
 * end of the buffer and the loop goes on) — one poison record on penumbra.telemetry.raw freezes
 * every process that decodes it, the API included when processors run in it.
 *
 * `avroBoundsOk(type, body)` walks the schema over the bytes without building values: every
 * length, block count, enum index and union branch must fit in the bytes that remain. It is
 * O(bytes) and is what AvroCodec.decode should call before `fromBuffer` (refusing with a
 * DecodeError → dead letter). Until it does, the fuzzers use it to keep such inputs out of the
 * processes under test, and count them.
 */
import type avro from 'avsc';

interface Cursor {
  pos: number;
}

function readLong(buf: Buffer, c: Cursor): number | null {
  let n = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= buf.length) return null;
    const b = buf[c.pos++];
    n += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2; // zig-zag
    mul *= 128;
  }
  return null;
}

type AnyType = avro.Type & {
  typeName: string;
  fields?: { type: AnyType }[];
  valuesType?: AnyType;
  itemsType?: AnyType;
  types?: AnyType[];
  symbols?: string[];
  size?: number;
  underlyingType?: AnyType;
};

/** Smallest encoded size of a value of `t` (0 for null, empty records, …). */
function minSize(t: AnyType): number {
  switch (t.typeName) {
    case 'null':
      return 0;
    case 'record':
    case 'error':
      return (t.fields ?? []).reduce((s, f) => s + minSize(f.type), 0);
    case 'fixed':
      return t.size ?? 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    default:
      return t.typeName.startsWith('logical') && t.underlyingType ? minSize(t.underlyingType) : 1;
  }
}

type Check = (buf: Buffer, c: Cursor) => boolean;

const checkString: Check = (buf, c) => {
  const len = readLong(buf, c);
  if (len === null || len < 0 || c.pos + len > buf.length) return false;
  c.pos += len;
  return true;
};
const checkLong: Check = (buf, c) => readLong(buf, c) !== null;
const fixedSize = (n: number): Check => (buf, c) => {
  c.pos += n;
  return c.pos <= buf.length;
};

/**
 * The walker for `t`, built once per type (a closure per schema node): the hot path of every
 * decode (the warehouse sink checks each record), so no per-value type dispatch or allocation.
 */
function compile(t: AnyType, seen: Map<AnyType, Check>): Check {
  const known = seen.get(t);
  if (known) return known;
  // Recursive schemas: the slot is filled before the children are compiled.
  let impl: Check = () => false;
  const self: Check = (buf, c) => impl(buf, c);
  seen.set(t, self);
  impl = build(t, seen);
  return impl;
}

function build(t: AnyType, seen: Map<AnyType, Check>): Check {
  const name = t.typeName;
  if (name.startsWith('logical')) return t.underlyingType ? compile(t.underlyingType, seen) : () => false;
  switch (name) {
    case 'null':
      return () => true;
    case 'boolean':
      return fixedSize(1);
    case 'int':
    case 'long':
      return checkLong;
    case 'float':
      return fixedSize(4);
    case 'double':
      return fixedSize(8);
    case 'string':
    case 'bytes':
      return checkString;
    case 'fixed':
      return fixedSize(t.size ?? 0);
    case 'enum': {
      const count = t.symbols?.length ?? 0;
      return (buf, c) => {
        const i = readLong(buf, c);
        return i !== null && i >= 0 && i < count;
      };
    }
    case 'record':
    case 'error': {
      const fields = (t.fields ?? []).map((f) => compile(f.type, seen));
      return (buf, c) => {
        for (let i = 0; i < fields.length; i++) if (!fields[i](buf, c)) return false;
        return true;
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const branches = (t.types ?? []).map((b) => compile(b, seen));
      return (buf, c) => {
        const i = readLong(buf, c);
        const branch = i === null || i < 0 ? undefined : branches[i];
        return branch !== undefined && branch(buf, c);
      };
    }
    case 'map':
    case 'array': {
      const isMap = name === 'map';
      const itemType = isMap ? t.valuesType! : t.itemsType!;
      const item = compile(itemType, seen);
      const perItem = (isMap ? 1 : 0) + minSize(itemType);
      return (buf, c) => {
        for (;;) {
          let n = readLong(buf, c);
          if (n === null) return false;
          if (n === 0) return true;
          if (n < 0) {
            n = -n;
            if (readLong(buf, c) === null) return false; // block size in bytes
          }
          // A block cannot announce more items than the remaining bytes can hold.
          if (perItem > 0 ? n > (buf.length - c.pos) / perItem : n > 1_000_000) return false;
          for (let k = 0; k < n; k++) {
            if (isMap && !checkString(buf, c)) return false;
            if (!item(buf, c)) return false;
          }
        }
      };
    }
    default:
      return () => false;
  }
}

/**
 * The same walk as straight-line JavaScript generated once per type (issue 15 item 1: the
 * closure per schema node, a call and a cursor object per field, made the walk ≈ 4 % of a metrics
 * member's CPU). Same rules, step for step, as `build` above — varints of at most 10 bytes,
 * lengths and block counts against the bytes that remain, enum indexes, union branches — with
 * the position in a local variable. Null for a recursive schema (the closures handle it) or one
 * whose code would be large; `avro-bounds.test.ts` checks both walkers agree on every cut and on
 * random bytes.
 */
function generate(root: AnyType): ((body: Buffer) => boolean) | null {
  const path = new Set<AnyType>();
  let depth = 0;
  // Reads a zig-zag varint into v (return false when the bytes end or it exceeds 10 bytes).
  const long = 'v = 0; m = 1; for (i = 0; ; i++) { if (i === 10 || p >= L) return false; b = buf[p++]; v += (b & 0x7f) * m; if ((b & 0x80) === 0) break; m *= 128; } v = v % 2 === 0 ? v / 2 : -(v + 1) / 2;';
  const str = `${long} if (v < 0 || p + v > L) return false; p += v;`;
  const fixed = (n: number) => `p += ${n}; if (p > L) return false;`;
  const gen = (t: AnyType): string | null => {
    const name = t.typeName;
    if (name.startsWith('logical')) return t.underlyingType ? gen(t.underlyingType) : 'return false;';
    switch (name) {
      case 'null':
        return '';
      case 'boolean':
        return fixed(1);
      case 'int':
      case 'long':
        return long;
      case 'float':
        return fixed(4);
      case 'double':
        return fixed(8);
      case 'string':
      case 'bytes':
        return str;
      case 'fixed':
        return fixed(t.size ?? 0);
      case 'enum':
        return `${long} if (v < 0 || v >= ${t.symbols?.length ?? 0}) return false;`;
      case 'record':
      case 'error': {
        if (path.has(t)) return null; // recursive: left to the closures
        path.add(t);
        const parts: string[] = [];
        for (const f of t.fields ?? []) {
          const c = gen(f.type);
          if (c === null) return null;
          parts.push(c);
        }
        path.delete(t);
        return parts.join('\n');
      }
      case 'union:unwrapped':
      case 'union:wrapped': {
        const branches: string[] = [];
        for (const b of t.types ?? []) {
          const c = gen(b);
          if (c === null) return null;
          branches.push(c);
        }
        return `${long}\nswitch (v) {\n${branches.map((c, i) => `case ${i}: {\n${c}\nbreak; }`).join('\n')}\ndefault: return false; }`;
      }
      case 'map':
      case 'array': {
        const isMap = name === 'map';
        const itemType = isMap ? t.valuesType! : t.itemsType!;
        const d = depth++;
        const item = gen(itemType);
        depth--;
        if (item === null) return null;
        const perItem = (isMap ? 1 : 0) + minSize(itemType);
        const limit = perItem > 0 ? `n${d} > (L - p) / ${perItem}` : `n${d} > 1000000`;
        return `for (;;) {\n${long} let n${d} = v; if (n${d} === 0) break;\nif (n${d} < 0) { n${d} = -n${d}; ${long} }\nif (${limit}) return false;\nfor (let k${d} = 0; k${d} < n${d}; k${d}++) {\n${isMap ? str : ''}\n${item}\n} }`;
      }
      default:
        return 'return false;';
    }
  };
  const body = gen(root);
  if (body === null || body.length > 200_000) return null;
  // Code generated from the schema alone (types, counts, sizes), never from data.
  return new Function('buf', `'use strict'; const L = buf.length; let p = 0, v = 0, m = 1, i = 0, b = 0;\n${body}\nreturn true;`) as (body: Buffer) => boolean;
}

const compiled = new WeakMap<avro.Type, (body: Buffer) => boolean>();

/** True when `body` (Avro binary, without the 5-byte Confluent header) stays within its bytes under `type`. */
export function avroBoundsOk(type: avro.Type, body: Buffer): boolean {
  let check = compiled.get(type);
  if (!check) {
    const generated = generate(type as AnyType);
    if (generated) check = generated;
    else {
      const walk = compile(type as AnyType, new Map());
      check = (b) => walk(b, { pos: 0 });
    }
    compiled.set(type, check);
  }
  return check(body);
}

/** The closure walker alone (tests: the generated one must agree with it). */
export function avroBoundsOkWalk(type: avro.Type, body: Buffer): boolean {
  return compile(type as AnyType, new Map())(body, { pos: 0 });
}

/**
 * The same for a Confluent-framed value whose schema id is `ownId` (the topic's own schema);
 * values framed with another id (or not framed) are left to the codec, which refuses them
 * without reading a block count of ours.
 */
export function framedBoundsOk(type: avro.Type, ownId: number, value: Buffer | null): boolean {
  if (!value || value.length < 5 || value[0] !== 0 || value.readInt32BE(1) !== ownId) return true;
  return avroBoundsOk(type, value.subarray(5));
}

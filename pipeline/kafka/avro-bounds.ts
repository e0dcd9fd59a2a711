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

function walk(t: AnyType, buf: Buffer, c: Cursor): boolean {
  const name = t.typeName;
  if (name.startsWith('logical')) return t.underlyingType ? walk(t.underlyingType, buf, c) : false;
  switch (name) {
    case 'null':
      return true;
    case 'boolean':
      c.pos += 1;
      return c.pos <= buf.length;
    case 'int':
    case 'long':
      return readLong(buf, c) !== null;
    case 'float':
      c.pos += 4;
      return c.pos <= buf.length;
    case 'double':
      c.pos += 8;
      return c.pos <= buf.length;
    case 'string':
    case 'bytes': {
      const len = readLong(buf, c);
      if (len === null || len < 0 || c.pos + len > buf.length) return false;
      c.pos += len;
      return true;
    }
    case 'fixed':
      c.pos += t.size ?? 0;
      return c.pos <= buf.length;
    case 'enum': {
      const i = readLong(buf, c);
      return i !== null && i >= 0 && i < (t.symbols?.length ?? 0);
    }
    case 'record':
    case 'error':
      return (t.fields ?? []).every((f) => walk(f.type, buf, c));
    case 'union:unwrapped':
    case 'union:wrapped': {
      const i = readLong(buf, c);
      const branch = i === null ? undefined : t.types?.[i];
      return branch !== undefined && walk(branch, buf, c);
    }
    case 'map':
    case 'array': {
      const item = name === 'map' ? t.valuesType! : t.itemsType!;
      const perItem = (name === 'map' ? 1 : 0) + minSize(item);
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
          if (name === 'map' && !walk({ typeName: 'string' } as AnyType, buf, c)) return false;
          if (!walk(item, buf, c)) return false;
        }
      }
    }
    default:
      return false;
  }
}

/** True when `body` (Avro binary, without the 5-byte Confluent header) stays within its bytes under `type`. */
export function avroBoundsOk(type: avro.Type, body: Buffer): boolean {
  return walk(type as AnyType, body, { pos: 0 });
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

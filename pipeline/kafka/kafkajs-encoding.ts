/**
 * Cheaper produce encoding in kafkajs 2.2.4 (issue 15: every µs the collector's process spends
 * encoding records is taken from the 2 cores it shares with the broker and the consumers).
 * kafkajs encodes each record into an Encoder of its own, and its Encoder:
 *  - starts with `Buffer.alloc(512)`: a fresh, zero-filled ArrayBuffer per record (and per header,
 *    per batch, per request), although every byte below `offset` is written before it is read and
 *    nothing reads above it (`buffer` is `buf.slice(0, offset)`; `.buf` is read nowhere else);
 *    growing (`ensureAvailable`) does the same with the doubled size;
 *  - writes each varint through `Buffer.from([...bytes])` (an array and a Buffer per varint), and
 *    each varlong (the record's timestamp delta) and its size through BigInt-backed `Long` objects;
 *  - and the record batch's CRC32C runs table-by-byte, then goes through `Uint32Array.from`.
 * Here the Encoder allocates from Node's buffer pool (`allocUnsafe`; same bytes, since every byte
 * that ends up in `buffer` is written), writes varints in place, takes a number fast path for
 * varlongs whose zigzag stays exact in a double (|v| < 2^52; anything else — Long, BigInt,
 * strings, larger numbers — goes to kafkajs's own code), and CRC32C is slicing-by-8 in JS
 * (8 table lookups per 8 bytes instead of per byte; no native dependency).
 *
 * How, without touching node_modules (as kafkajs-grouping.ts does): prototype and static methods
 * are replaced on kafkajs's own Encoder class (that works whenever this runs); the constructor and
 * the CRC32C module are swapped in their CommonJS cache entries, which only takes effect if this
 * runs BEFORE kafkajs loads the modules that capture them (it is imported first by
 * pipeline/kafka/client.ts). `kafkajsEncoding` says what took effect; kafkajs-encoding.test.ts
 * encodes record batches and produce requests with patched and stock kafkajs (a plain node
 * process) and compares them byte for byte. `PENUMBRA_KAFKAJS_STOCK=1` disables all of it (for
 * same-run comparisons in the benches).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 --------------------
const TABLES: Int32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[0][n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k][n] = (t[k - 1][n] >>> 8) ^ t[0][t[k - 1][n] & 0xff];
  }
  return t;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES;

/** CRC32C of `buf` as an unsigned 32-bit number (kafkajs's `crc32C/index.js` contract). */
export function crc32c(buf: Uint8Array): number {
  let crc = -1;
  let i = 0;
  const n = buf.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = crc ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    crc = T7[a & 0xff] ^ T6[(a >>> 8) & 0xff] ^ T5[(a >>> 16) & 0xff] ^ T4[a >>> 24]
      ^ T3[buf[i + 4]] ^ T2[buf[i + 5]] ^ T1[buf[i + 6]] ^ T0[buf[i + 7]];
    i += 8;
  }
  while (i < n) crc = T0[(crc ^ buf[i++]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

// ---- Encoder --------------------------------------------------------------------------------
interface EncoderLike {
  buf: Buffer;
  offset: number;
  ensureAvailable(length: number): void;
  writeBufferInternal(b: Buffer): void;
  writeUVarInt(v: number): EncoderLike;
  writeVarLong(v: unknown): EncoderLike;
}
type EncoderClass = (new (initialSize?: number) => EncoderLike) & {
  nextPowerOfTwo(v: number): number;
  sizeOfVarLong(v: unknown): number;
  prototype: EncoderLike;
};

const encoderPath = require.resolve('kafkajs/src/protocol/encoder.js');
const crcPath = require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js');
const recordBatchPath = require.resolve('kafkajs/src/protocol/recordBatch/v0/index.js');
const recordPath = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');

const TWO52 = 2 ** 52;
/** The zigzag of a 64-bit number, when it is exact in a double; otherwise -1. */
const zigzagNumber = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v > -TWO52 && v < TWO52 ? (v >= 0 ? 2 * v : -2 * v - 1) : -1);

export interface KafkajsEncoding {
  /** Encoder methods (pool allocation when growing, in-place varints, varlong fast path). */
  methods: boolean;
  /** `new Encoder()` allocates from the pool (the constructor swapped before kafkajs loaded). */
  constructor: boolean;
  /** Record batches use the slicing-by-8 CRC32C (swapped before kafkajs loaded). */
  crc32c: boolean;
  /** Produce requests v3–v7 without compression or headers are written into one buffer. */
  produce: boolean;
  /** Fetched records are decoded without BigInt arithmetic (swapped before kafkajs loaded). */
  recordDecoder: boolean;
  /** A consumer's Batch compares offsets as numbers (swapped before kafkajs loaded). */
  batch: boolean;
}

const stock = process.env.PENUMBRA_KAFKAJS_STOCK === '1';
const state: KafkajsEncoding = { methods: false, constructor: false, crc32c: false, produce: false, recordDecoder: false, batch: false };

if (!stock) {
  // Loaded before the modules that capture them: only encoder.js (needs utils/long) and crc32C.
  const recordBatchLoaded = require.cache[recordBatchPath] !== undefined;
  const recordLoaded = require.cache[recordPath] !== undefined;
  const Original = require(encoderPath) as EncoderClass & { __penumbraPatched?: KafkajsEncoding };
  if (Original.__penumbraPatched) {
    // A second copy of this file (a test importing it again): report what the first did.
    Object.assign(state, Original.__penumbraPatched);
  } else {
    const proto = Original.prototype;
    const origVarLong = proto.writeVarLong;
    const origSizeOfVarLong = Original.sizeOfVarLong;
    proto.ensureAvailable = function ensureAvailable(this: EncoderLike, length: number) {
      if (this.offset + length > this.buf.length) {
        const next = Buffer.allocUnsafe(Original.nextPowerOfTwo(this.offset + length));
        this.buf.copy(next, 0, 0, this.offset);
        this.buf = next;
      }
    };
    proto.writeUVarInt = function writeUVarInt(this: EncoderLike, value: number) {
      // kafkajs's loop: 7 bits at a time while any bit above the low 7 of the uint32 is set.
      this.ensureAvailable(5);
      const buf = this.buf;
      let o = this.offset;
      while ((value & 0xffffff80) !== 0) {
        buf[o++] = (value & 0x7f) | 0x80;
        value >>>= 7;
      }
      buf[o++] = value & 0x7f;
      this.offset = o;
      return this;
    };
    proto.writeVarLong = function writeVarLong(this: EncoderLike, value: unknown) {
      let z = zigzagNumber(value);
      if (z < 0) return origVarLong.call(this, value);
      this.ensureAvailable(8);
      const buf = this.buf;
      let o = this.offset;
      while (z >= 128) {
        buf[o++] = (z % 128) | 0x80;
        z = Math.floor(z / 128);
      }
      buf[o++] = z;
      this.offset = o;
      return this;
    };
    const sizeOfVarLong = (value: unknown): number => {
      let z = zigzagNumber(value);
      if (z < 0) return origSizeOfVarLong.call(Original, value);
      let bytes = 1;
      while (z >= 128) {
        bytes++;
        z = Math.floor(z / 128);
      }
      return bytes;
    };
    Original.sizeOfVarLong = sizeOfVarLong;
    state.methods = true;

    if (!recordLoaded && !recordBatchLoaded) {
      // The same prototype and statics; only the first buffer comes from the pool.
      const Pooled = function Encoder(this: EncoderLike, initialSize = 511) {
        this.buf = Buffer.allocUnsafe(Original.nextPowerOfTwo(initialSize));
        this.offset = 0;
      } as unknown as EncoderClass;
      for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(Original))) {
        if (k !== 'prototype' && k !== 'length' && k !== 'name') Object.defineProperty(Pooled, k, d);
      }
      Pooled.prototype = proto;
      const entry = require.cache[encoderPath];
      if (entry) {
        entry.exports = Pooled;
        state.constructor = true;
      }
    }
    if (!recordBatchLoaded) {
      require(crcPath);
      const entry = require.cache[crcPath];
      if (entry) {
        entry.exports = crc32c;
        state.crc32c = true;
      }
    }
    const v3Path = require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js');
    if (state.constructor && state.crc32c && require.cache[v3Path] === undefined) {
      // Loads record/v0 and recordBatch/v0, which now capture the pooled Encoder and our CRC.
      const stockV3 = require(v3Path) as ProduceV3;
      require.cache[v3Path]!.exports = produceV3(stockV3, require(encoderPath) as EncoderClass);
      state.produce = true;
    }
    const recordDecoderPath = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
    const batchDecoderPath = require.resolve('kafkajs/src/protocol/recordBatch/v0/decoder.js');
    if (require.cache[batchDecoderPath] === undefined) {
      const stockDecode = require(recordDecoderPath) as RecordDecode;
      require.cache[recordDecoderPath]!.exports = recordDecoder(stockDecode);
      state.recordDecoder = true;
    }
    const batchPath = require.resolve('kafkajs/src/consumer/batch.js');
    const groupPath = require.resolve('kafkajs/src/consumer/consumerGroup.js');
    if (require.cache[groupPath] === undefined) {
      const StockBatch = require(batchPath) as BatchClass;
      require.cache[batchPath]!.exports = batchClass(StockBatch);
      state.batch = true;
    }
    Original.__penumbraPatched = { ...state };
    if (state.constructor) (require.cache[encoderPath]!.exports as { __penumbraPatched?: KafkajsEncoding }).__penumbraPatched = { ...state };
  }
}

// ---- Produce request v3 (v4–v7 call it and change only apiVersion) ---------------------------
interface Message { key?: unknown; value?: unknown; timestamp?: unknown; headers?: unknown }
interface PartitionData { partition: number; messages: Message[]; firstSequence?: number }
interface ProduceArgs {
  acks: number; timeout: number; transactionalId?: string | null; producerId?: unknown; producerEpoch?: number; compression?: number;
  topicData: { topic: string; partitions: PartitionData[] }[];
}
type ProduceV3 = (args: ProduceArgs) => { encode: () => Promise<unknown> };
interface FullEncoder extends EncoderLike {
  writeString(v: string | null): FullEncoder; writeInt8(v: number): FullEncoder; writeInt16(v: number): FullEncoder; writeInt32(v: number): FullEncoder;
  writeUInt32(v: number): FullEncoder; writeInt64(v: unknown): FullEncoder; writeVarInt(v: number): FullEncoder; writeVarIntBytes(v: unknown): FullEncoder;
}
type Statics = { sizeOfVarInt(v: number): number; sizeOfVarIntBytes(v: unknown): number; sizeOfVarLong(v: unknown): number };

const room = (v: unknown): number => (v == null ? 0 : Buffer.isBuffer(v) ? v.length : (v as string).length * 3);
const plainKV = (v: unknown) => v == null || typeof v === 'string' || Buffer.isBuffer(v);
/** Records the one-buffer writer reproduces exactly: no compression, no headers, keys/values null, strings or Buffers. */
function eligible(args: ProduceArgs): boolean {
  if ((args.compression ?? 0) !== 0) return false;
  for (const t of args.topicData) {
    for (const p of t.partitions) {
      for (const m of p.messages) {
        const h = m.headers;
        if (h !== undefined && (h === null || typeof h !== 'object' || Object.keys(h).length > 0)) return false;
        if (!plainKV(m.key) || !plainKV(m.value)) return false;
      }
    }
  }
  return true;
}

/**
 * kafkajs's first/max timestamp of a batch: the first and last of the non-null timestamps after a
 * DEFAULT sort (string order). For integer numbers of 13 digits (epoch ms 2001–2286) string order
 * is numeric order, so one pass finds them; anything else sorts exactly as kafkajs does.
 */
function firstAndMax(messages: Message[], dateNow: number): [unknown, unknown] {
  let min = Infinity;
  let max = -Infinity;
  let n = 0;
  for (const m of messages) {
    const t = m.timestamp;
    if (t == null) continue;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1e12 || t >= 1e13) {
      // kafkajs's own (string) order, on purpose.
      const sorted = messages.map((x) => x.timestamp).filter((x) => x != null).sort();
      return [sorted[0], sorted[sorted.length - 1]];
    }
    if (t < min) min = t;
    if (t > max) max = t;
    n++;
  }
  return n === 0 ? [dateNow, dateNow] : [min, max];
}

/**
 * kafkajs's produce request v3 with the same bytes, written into one buffer: no Encoder, object
 * spread and header array per record, no copy of each record into the batch, of the batch into the
 * partition, of the partition into the topic and of the topic into the request. Requests it does
 * not reproduce (compression, headers, other key/value types) are kafkajs's own.
 */
function produceV3(stock: ProduceV3, Enc: EncoderClass): ProduceV3 {
  const S = Enc as unknown as Statics;
  const crc = require(crcPath) as (b: Buffer) => number;
  const Long = require('kafkajs/src/utils/long.js') as { fromInt(v: number): unknown };
  return (args) => {
    const request = stock(args);
    if (!eligible(args)) return request;
    const { acks, timeout, transactionalId = null, producerId = Long.fromInt(-1), producerEpoch = 0, topicData } = args;
    request.encode = async () => {
      let estimate = 64;
      for (const t of topicData) {
        estimate += 64 + t.topic.length * 3;
        for (const p of t.partitions) {
          estimate += 96;
          for (const m of p.messages) {
            estimate += 24 + room(m.key) + room(m.value);
          }
        }
      }
      const e = new Enc(estimate) as FullEncoder;
      e.writeString(transactionalId).writeInt16(acks).writeInt32(timeout).writeInt32(topicData.length);
      for (const { topic, partitions } of topicData) {
        e.writeString(topic).writeInt32(partitions.length);
        for (const { partition, messages, firstSequence = 0 } of partitions) {
          const dateNow = Date.now();
          const [firstTimestamp, maxTimestamp] = firstAndMax(messages, dateNow);
          e.writeInt32(partition);
          const sizeAt = e.offset;
          e.writeInt32(0); // recordBatch.size(), below
          const batchAt = e.offset;
          e.writeInt64(Long.fromInt(0)); // firstOffset
          const lengthAt = e.offset;
          e.writeInt32(0); // the batch's length (writeBytes), below
          const innerAt = e.offset;
          e.writeInt32(0).writeInt8(2); // partitionLeaderEpoch, magic
          const crcAt = e.offset;
          e.writeUInt32(0); // CRC32C of the body, below
          const bodyAt = e.offset;
          e.writeInt16(transactionalId ? 16 : 0).writeInt32(messages.length - 1).writeInt64(firstTimestamp).writeInt64(maxTimestamp)
            .writeInt64(producerId).writeInt16(producerEpoch).writeInt32(firstSequence).writeInt32(messages.length);
          for (let i = 0; i < messages.length; i++) {
            const m = messages[i];
            const timestampDelta = ((m.timestamp || dateNow) as number) - (firstTimestamp as number);
            const size = 1 + S.sizeOfVarLong(timestampDelta) + S.sizeOfVarInt(i) + S.sizeOfVarIntBytes(m.key) + S.sizeOfVarIntBytes(m.value) + 1;
            e.writeVarInt(size).writeInt8(0);
            e.writeVarLong(timestampDelta);
            e.writeVarInt(i).writeVarIntBytes(m.key).writeVarIntBytes(m.value).writeVarInt(0);
          }
          const end = e.offset;
          const buf = e.buf;
          buf.writeUInt32BE(crc(buf.subarray(bodyAt, end)), crcAt);
          buf.writeInt32BE(end - innerAt, lengthAt);
          buf.writeInt32BE(end - batchAt, sizeAt);
        }
      }
      return e;
    };
    return request;
  };
}

// ---- Record decoder (fetch) ------------------------------------------------------------------
interface DecoderLike { buffer: Buffer; offset: number; readInt8(): number; readVarInt(): number; readVarIntBytes(): Buffer | null }
interface BatchContext { firstOffset?: string; firstTimestamp?: string; magicByte?: number; isControlBatch?: boolean; timestampType?: number; maxTimestamp?: string }
type RecordDecode = (decoder: DecoderLike, batchContext?: BatchContext) => unknown;

/** A decimal string kafkajs made from an int64, as a number when exact (else NaN). */
const SMALL_INT = /^-?\d{1,15}$/;
const exact = (s: unknown): number => (typeof s === 'string' && SMALL_INT.test(s) ? Number(s) : NaN);

/**
 * kafkajs's record decoder (record/v0/decoder.js) with the same result: the timestamp delta is
 * read as a number (≤ 7 varint bytes) instead of through BigInt-backed Longs, and timestamp and
 * offset are `String(first + delta)` (the same decimal text as BigInt's for safe integers) instead
 * of two BigInt additions and toString per record. A record with headers, a longer varlong or
 * bases that are not small decimal strings is rewound and decoded by kafkajs's own function.
 */
function recordDecoder(stock: RecordDecode): RecordDecode {
  const TimestampTypes = require('kafkajs/src/protocol/timestampTypes.js') as { LOG_APPEND_TIME: number };
  let lastTs: unknown;
  let lastTsNum = NaN;
  let lastOff: unknown;
  let lastOffNum = NaN;
  return (decoder, batchContext = {}) => {
    const { firstOffset, firstTimestamp, magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
    if (firstTimestamp !== lastTs) {
      lastTs = firstTimestamp;
      lastTsNum = exact(firstTimestamp);
    }
    if (firstOffset !== lastOff) {
      lastOff = firstOffset;
      lastOffNum = exact(firstOffset);
    }
    const start = decoder.offset;
    const attributes = decoder.readInt8();
    // The zigzag varlong, when it fits 7 bytes (49 bits: exact in a double).
    const buf = decoder.buffer;
    let o = decoder.offset;
    let z = 0;
    let scale = 1;
    let b: number;
    let n = 0;
    do {
      b = buf[o++];
      z += (b & 0x7f) * scale;
      scale *= 128;
      n++;
    } while (b >= 0x80 && n < 7);
    if (b >= 0x80 || b === undefined) {
      decoder.offset = start;
      return stock(decoder, batchContext);
    }
    decoder.offset = o;
    const timestampDelta = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    let timestamp: string | undefined;
    if (timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp) timestamp = maxTimestamp;
    else {
      const t = lastTsNum + timestampDelta;
      if (Number.isSafeInteger(t)) timestamp = String(t);
    }
    const offsetDelta = decoder.readVarInt();
    const off = lastOffNum + offsetDelta;
    if (timestamp === undefined || !Number.isSafeInteger(off)) {
      decoder.offset = start;
      return stock(decoder, batchContext);
    }
    const key = decoder.readVarIntBytes();
    const value = decoder.readVarIntBytes();
    // Headers: only an empty array (varint 0) here.
    if (decoder.buffer[decoder.offset] !== 0) {
      decoder.offset = start;
      return stock(decoder, batchContext);
    }
    decoder.offset++;
    return {
      magicByte,
      attributes,
      timestamp,
      offset: String(off),
      key,
      value,
      headers: {},
      isControlRecord: isControlBatch,
      batchContext,
    };
  };
}

// ---- Consumer Batch (consumer/batch.js) -----------------------------------------------------
interface FetchedMessage { offset: string; isControlRecord?: boolean }
interface PartitionFetch { partition: number; highWatermark: string; abortedTransactions?: unknown[]; messages: FetchedMessage[] }
type BatchClass = (new (topic: string, fetchedOffset: unknown, data: PartitionFetch) => object) & { prototype: object };

/**
 * kafkajs's Batch with the same fields and methods (its prototype): the offset filter compares
 * `message.offset >= fetchedOffset` as numbers when both are exact (decimal strings of ≤ 15
 * digits, or safe integers), instead of a BigInt per fetched record; anything else through
 * kafkajs's Long, as before.
 */
function batchClass(Stock: BatchClass): BatchClass {
  const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: unknown): { gte(o: unknown): boolean } };
  const filterAborted = require('kafkajs/src/consumer/filterAbortedMessages.js') as (a: { messages: FetchedMessage[]; abortedTransactions?: unknown[] }) => FetchedMessage[];
  const Batch = function Batch(this: Record<string, unknown>, topic: string, fetchedOffset: unknown, partitionData: PartitionFetch) {
    this.fetchedOffset = fetchedOffset;
    const longFetchedOffset = Long.fromValue(fetchedOffset); // throws where kafkajs throws
    const fetched = typeof fetchedOffset === 'number' && Number.isSafeInteger(fetchedOffset) ? fetchedOffset : exact(fetchedOffset);
    const { abortedTransactions, messages } = partitionData;
    this.topic = topic;
    this.partition = partitionData.partition;
    this.highWatermark = partitionData.highWatermark;
    this.rawMessages = messages;
    const within = Number.isNaN(fetched)
      ? messages.filter((m) => Long.fromValue(m.offset).gte(longFetchedOffset))
      : messages.filter((m) => {
        const o = exact(m.offset);
        return Number.isNaN(o) ? Long.fromValue(m.offset).gte(longFetchedOffset) : o >= fetched;
      });
    this.messagesWithinOffset = within;
    this.messages = filterAborted({ messages: within, abortedTransactions }).filter((m) => !m.isControlRecord);
  } as unknown as BatchClass;
  Batch.prototype = Stock.prototype;
  return Batch;
}

/** What of the encoding patch took effect in this process (all false with PENUMBRA_KAFKAJS_STOCK=1). */
export const kafkajsEncoding: Readonly<KafkajsEncoding> = state;
/** PENUMBRA_KAFKAJS_STOCK=1 was set: all false above on purpose, not an import-order miss (health). */
export const kafkajsStock = stock;

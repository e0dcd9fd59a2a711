/**
 * Encodes seeded produce requests (kafkajs Produce v3 and v7: record batches, records, headers,
 * varints, varlongs, CRC32C) and prints them as hex with the encoding patch's state, for
 * kafkajs-encoding.test.ts, which runs it twice in plain node processes: with the patch, and
 * with `PENUMBRA_KAFKAJS_STOCK=1` (stock kafkajs). Not part of the pipeline.
 */
import './kafkajs-encoding.ts';
import { createRequire } from 'node:module';
import { kafkajsEncoding } from './kafkajs-encoding.ts';

const require = createRequire(import.meta.url);
// kafkajs stamps records without a timestamp (or with 0) and empty batches with Date.now(): one
// fixed clock makes the two processes' requests comparable.
Date.now = () => 1_766_000_000_000;
type Request = (args: Record<string, unknown>) => { encode: () => Promise<{ buffer: Buffer }> };
const v3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as Request;
const v7 = require('kafkajs/src/protocol/requests/produce/v7/request.js') as Request;
const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => { writeVarLong(v: unknown): unknown; writeVarInt(v: number): unknown; writeUVarInt(v: number): unknown; buffer: Buffer };
type Dec = { buffer: Buffer; readString(): string; readInt16(): number; readInt32(): number; slice(n: number): Dec; forward(n: number): void };
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => Dec;
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: Dec) => Promise<unknown>;
/** The record batches of an encoded produce request, decoded by kafkajs's fetch-side decoder. */
async function decodeRequest(buf: Buffer, seed: number): Promise<string> {
  const d = new Decoder(buf);
  d.readString();
  d.readInt16();
  d.readInt32();
  const batches: unknown[] = [];
  for (let t = d.readInt32(); t > 0; t--) {
    d.readString();
    for (let p = d.readInt32(); p > 0; p--) {
      d.readInt32();
      const size = d.readInt32();
      const batch = d.slice(size);
      // A first offset as a fetch returns it (a produced batch says 0): large, and past 2^53 on
      // some seeds (kafkajs's own decoding then). On a copy: the request's bytes are compared too.
      batch.buffer = Buffer.from(batch.buffer);
      batch.buffer.writeBigInt64BE(seed % 8 === 0 ? 2n ** 60n + BigInt(p) : BigInt(seed * 1e9 + p * 7), 0);
      d.forward(size);
      batches.push(await decodeBatch(batch));
    }
  }
  return JSON.stringify(batches, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? `buf:${Buffer.from((v as { data: number[] }).data).toString('hex')}` : v));
}
const { sizeOfVarLong } = Encoder as unknown as { sizeOfVarLong(v: unknown): number };

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const out: string[] = [];
for (let seed = 1; seed <= 36; seed++) {
  const rnd = seeded(seed);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  const base = 1_765_000_000_000 + Math.floor(rnd() * 1e9);
  const partitions = Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, p) => ({
    partition: p,
    firstSequence: Math.floor(rnd() * 1000),
    messages: Array.from({ length: Math.floor(rnd() * 150) }, (_, i) => ({
      key: rnd() < 0.1 ? null : rnd() < 0.5 ? `key-${i}-é✓` : bytes(Math.floor(rnd() * 40)),
      // Sizes across the 512-byte start and several doublings.
      value: rnd() < 0.05 ? null : bytes(Math.floor(rnd() ** 3 * 5000)),
      // Deltas of both signs (out-of-order timestamps); every 5th seed a string timestamp now and
      // then, every 7th small numbers (string order ≠ numeric order), every 9th some missing.
      timestamp: seed % 5 === 0 && rnd() < 0.1 ? String(base + i) : seed % 7 === 0 ? Math.floor(rnd() * 1000) : seed % 9 === 0 && rnd() < 0.3 ? undefined : base + Math.floor((rnd() - 0.3) * 100_000),
      // Headers every 4th seed (kafkajs's own path), an empty object every 6th (the one-buffer path).
      headers: seed % 4 === 0 && rnd() < 0.3 ? { a: 'x', b: bytes(Math.floor(rnd() * 20)), c: ['1', '✓✓'] } : seed % 6 === 0 ? {} : undefined,
    })),
  }));
  const args = { acks: -1, timeout: 30000, transactionalId: seed % 3 === 0 ? `tx-${seed}` : null, producerId: seed, producerEpoch: seed % 5, topicData: [{ topic: `t${seed}`, partitions }] };
  const encoded = (await (seed % 2 ? v3 : v7)(args).encode()).buffer;
  out.push(encoded.toString('hex'));
  out.push(await decodeRequest(encoded, seed));
}
// Varints and varlongs at their edges (the fast path's bounds and beyond it).
const edges = [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 52 - 1, -(2 ** 52) + 1, 2 ** 52, -(2 ** 52), 2 ** 53, -(2 ** 53), 2 ** 60, '12345', '-98765432101234'];
const e = new Encoder();
for (const v of edges) {
  e.writeVarLong(v);
  out.push(`${String(v)}:${sizeOfVarLong(v)}`);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) e.writeVarInt(v);
  if (typeof v === 'number' && v >= 0 && v < 2 ** 32) e.writeUVarInt(v);
}
out.push(e.buffer.toString('hex'));
// A consumer's Batch: the offset filter around the fetched offset (strings, numbers, past 2^53),
// control records, and what its methods answer.
type BatchLike = { firstOffset(): unknown; lastOffset(): unknown; isEmpty(): boolean; offsetLag(): unknown; offsetLagLow(): unknown };
const Batch = require('kafkajs/src/consumer/batch.js') as new (topic: string, fetched: unknown, data: unknown) => BatchLike;
for (let seed = 1; seed <= 60; seed++) {
  const rnd = seeded(1000 + seed);
  const big = seed % 5 === 0;
  const base = big ? 2n ** 53n - 20n : BigInt(Math.floor(rnd() * 1e12));
  const fetchedBig = base + BigInt(Math.floor(rnd() * 30));
  const fetched = seed % 3 === 0 && !big ? Number(fetchedBig) : String(fetchedBig);
  const messages = Array.from({ length: Math.floor(rnd() * 40) }, (_, i) => ({ offset: String(base + BigInt(i)), isControlRecord: rnd() < 0.05, key: null, value: null }));
  const b = new Batch('t', fetched, { partition: 1, highWatermark: String(base + 60n), messages, abortedTransactions: [] });
  out.push(JSON.stringify({ b, first: b.firstOffset(), last: b.lastOffset(), empty: b.isEmpty(), lag: b.offsetLag(), low: b.offsetLagLow() }));
}
console.log(JSON.stringify({ state: kafkajsEncoding, encoded: out }));

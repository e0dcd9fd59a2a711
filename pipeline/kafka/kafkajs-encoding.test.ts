/**
 * The kafkajs encoding patch (kafkajs-encoding.ts) must put the same bytes on the wire as stock
 * kafkajs: seeded produce requests (v3 and v7, with record batches, headers, nulls, multi-byte
 * strings, negative timestamp deltas, values across the Encoder's growth steps) and varints and
 * varlongs at the fast path's edges are encoded by kafkajs-encoding-sample.ts in two plain node
 * processes — patched, and with PENUMBRA_KAFKAJS_STOCK=1 — and compared byte for byte. The
 * slicing-by-8 CRC32C is compared with kafkajs's table-by-byte one on its own.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c } from './kafkajs-encoding.ts';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const stockCrc = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;

function sample(env: Record<string, string>): { state: Record<string, boolean>; encoded: string[] } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'kafkajs-encoding-sample.ts')], {
    cwd: path.resolve(here, '../..'), env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8',
  });
  return JSON.parse(out) as { state: Record<string, boolean>; encoded: string[] };
}

describe('kafkajs encoding patch', () => {
  it('computes CRC32C like kafkajs on every length 0..300 and unaligned views', () => {
    let s = 7;
    const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const big = Buffer.from(Array.from({ length: 70_000 }, () => Math.floor(rnd() * 256)));
    for (let n = 0; n <= 300; n++) {
      const off = n % 7;
      const view = big.subarray(off, off + n);
      expect(crc32c(view)).toBe(stockCrc(view) >>> 0);
    }
    expect(crc32c(big)).toBe(stockCrc(big) >>> 0);
    // The check value of CRC-32C (RFC 3720): "123456789" → 0xE3069283.
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('encodes produce requests byte for byte like stock kafkajs', () => {
    const patched = sample({});
    const stock = sample({ PENUMBRA_KAFKAJS_STOCK: '1' });
    // Every part took effect in a process that loads it before kafkajs, none with the switch.
    expect(patched.state).toEqual({ methods: true, constructor: true, crc32c: true, produce: true, recordDecoder: true, batch: true });
    expect(stock.state).toEqual({ methods: false, constructor: false, crc32c: false, produce: false, recordDecoder: false, batch: false });
    expect(patched.encoded.length).toBe(stock.encoded.length);
    expect(patched.encoded.length).toBeGreaterThan(40);
    patched.encoded.forEach((hex, i) => {
      if (hex !== stock.encoded[i]) throw new Error(`encoding ${i} differs from stock kafkajs (${hex.length / 2} vs ${stock.encoded[i].length / 2} bytes)`);
    });
  }, 60_000);
});

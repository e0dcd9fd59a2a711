/**
 * The bounds walker accepts every value avsc writes and refuses, quickly, bodies whose lengths or
 * block counts overrun their bytes (the fuzzer's 2^49-entry map) — compiled once per type.
 */
import avro from 'avsc';
import { avroType } from '../../schemas/index.ts';
import { telemetryEvent } from '../../connectors/duckdb-sink/fixtures.ts';
import { avroBoundsOk, avroBoundsOkWalk } from './avro-bounds.ts';

const type = avroType('telemetry-event');

test('accepts what avsc writes, for every shape of the fixture', () => {
  for (let i = 0; i < 50; i++) expect(avroBoundsOk(type, type.toBuffer(telemetryEvent(i)))).toBe(true);
});

test('refuses truncated bodies and a map announcing more entries than bytes', () => {
  const body = type.toBuffer(telemetryEvent(1));
  for (let cut = 0; cut < body.length; cut++) expect(avroBoundsOk(type, body.subarray(0, cut))).toBe(false);
  const m = avro.Type.forSchema({ type: 'map', values: 'string' });
  // zig-zag varint of 2^49 entries, then nothing
  const huge = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x04]);
  const t0 = Date.now();
  expect(avroBoundsOk(m, huge)).toBe(false);
  expect(Date.now() - t0).toBeLessThan(1000);
});

test('recursive schemas and unions walk to the end', () => {
  const node = avro.Type.forSchema({ type: 'record', name: 'Node', fields: [{ name: 'v', type: 'long' }, { name: 'next', type: ['null', 'Node'] }] });
  const v = { v: 1, next: { v: 2, next: { v: 3, next: null } } };
  const buf = node.toBuffer(v);
  expect(avroBoundsOk(node, buf)).toBe(true);
  expect(avroBoundsOk(node, buf.subarray(0, buf.length - 1))).toBe(false);
  expect(avroBoundsOk(node, Buffer.from([0x02, 0x08]))).toBe(false); // union branch 4 does not exist
});

test('the generated walker (issue 15 item 1) agrees with the closure walker on every cut, on random bytes and on mutations', () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const nested = avro.Type.forSchema({
    type: 'record', name: 'N', fields: [
      { name: 'e', type: { type: 'enum', name: 'E', symbols: ['a', 'b', 'c'] } },
      { name: 'f', type: { type: 'fixed', name: 'F', size: 3 } },
      { name: 'm', type: { type: 'map', values: { type: 'array', items: ['null', 'long', { type: 'map', values: 'bytes' }] } } },
      { name: 'a', type: { type: 'array', items: 'null' } },
      { name: 'x', type: ['null', 'float', 'double', 'boolean'] },
    ],
  });
  const nestedValues = [
    { e: 'a', f: Buffer.from('abc'), m: {}, a: [], x: null },
    { e: 'c', f: Buffer.from('xyz'), m: { k: [null, 5, { q: Buffer.from('zz') }], l: [] }, a: [null, null], x: { double: 1.5 } },
    { e: 'b', f: Buffer.from('123'), m: { z: [{ r: Buffer.alloc(0) }, -7] }, a: [null], x: { boolean: true } },
  ];
  const cases: [avro.Type, Buffer[]][] = [
    [type, Array.from({ length: 20 }, (_, i) => type.toBuffer(telemetryEvent(i)))],
    [nested, nestedValues.map((v) => nested.toBuffer(v))],
  ];
  for (const [t, bodies] of cases) {
    for (const body of bodies) {
      expect(avroBoundsOk(t, body)).toBe(true);
      for (let cut = 0; cut < body.length; cut++) expect(avroBoundsOk(t, body.subarray(0, cut))).toBe(avroBoundsOkWalk(t, body.subarray(0, cut)));
      for (let k = 0; k < 300; k++) {
        const mutated = Buffer.from(body);
        for (let j = 0; j < 1 + Math.floor(rnd() * 3); j++) mutated[Math.floor(rnd() * mutated.length)] = Math.floor(rnd() * 256);
        expect(avroBoundsOk(t, mutated)).toBe(avroBoundsOkWalk(t, mutated));
      }
    }
    for (let k = 0; k < 500; k++) {
      const junk = Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
      expect(avroBoundsOk(t, junk)).toBe(avroBoundsOkWalk(t, junk));
    }
  }
});

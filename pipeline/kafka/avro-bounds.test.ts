/**
 * The bounds walker accepts every value avsc writes and refuses, quickly, bodies whose lengths or
 * block counts overrun their bytes (the fuzzer's 2^49-entry map) — compiled once per type.
 */
import avro from 'avsc';
import { avroType } from '../../schemas/index.ts';
import { telemetryEvent } from '../../connectors/duckdb-sink/fixtures.ts';
import { avroBoundsOk } from './avro-bounds.ts';

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

/**
 * The columnar decoder must give exactly what the sink's reference path gives — avsc's decoding
 * (behind the Avro bounds guard) mapped through `TableSpec.rows()` — cell for cell, and refuse
 * exactly the records that path refuses. Checked on generated records (labelled: generated), on
 * records written with the previous schema version, and on every truncation and many byte
 * mutations of real bodies. Pure: no DuckDB, no Kafka.
 */
import avro from 'avsc';
import { avroType, listSchemaFiles } from '../../schemas/index.ts';
import { avroBoundsOk } from '../../pipeline/kafka/avro-bounds.ts';
import { DecodeError } from '../../pipeline/kafka/registry.ts';
import { ColumnBatch, compileColumnDecoder } from './columnar.ts';
import { TELEMETRY_EVENTS, type Cell } from './tables.ts';
import { telemetryEvent } from './fixtures.ts';
import type { TelemetryEvent } from '../../schemas/types.generated.ts';

const reader = avroType('telemetry-event');
const types = TELEMETRY_EVENTS.columns.map((c) => c.type);
const fields = TELEMETRY_EVENTS.fields!;
const v1 = avro.Type.forSchema(listSchemaFiles().find((f) => f.name === 'telemetry-event' && f.version === 1)!.schema);

/** The reference: what the sink stores for `body` through avsc and rows(), or 'refused'. */
function reference(writer: avro.Type, body: Buffer): Cell[] | 'refused' {
  if (!avroBoundsOk(writer, body)) return 'refused';
  try {
    const value = writer.equals(reader) ? reader.fromBuffer(body) : reader.fromBuffer(body, reader.createResolver(writer), true);
    return TELEMETRY_EVENTS.rows(value as TelemetryEvent, { topic: 't', partition: 0, offset: '0' })[0];
  } catch {
    return 'refused';
  }
}

function columnar(writer: avro.Type, bodies: Buffer[]): (Cell[] | 'refused')[] {
  const dec = compileColumnDecoder(writer, reader, fields, types);
  expect(dec).not.toBeNull();
  const batch = new ColumnBatch(types, 2); // small: growth is exercised too
  const out: (Cell[] | 'refused')[] = [];
  for (const b of bodies) {
    const before = batch.rows;
    try {
      dec!.decode(b, 0, b.length, batch);
      out.push(batch.row(before));
    } catch (err) {
      expect(err).toBeInstanceOf(DecodeError);
      expect(batch.rows).toBe(before);
      out.push('refused');
    }
  }
  return out;
}

/** Generated events covering the shapes the columns see: nulls, unicode, maps, extreme numbers. */
function generated(): TelemetryEvent[] {
  const evs: TelemetryEvent[] = [];
  for (let i = 0; i < 300; i++) evs.push(telemetryEvent(i));
  evs.push({
    ...telemetryEvent(1), id: 'ünïcødé-ид-日本語-😀', name: 'x'.repeat(5000), attrs: { 'ключ': 'значение', a: '"quoted"\n', __proto__: 'p', '': '' },
    controlOf: 'checkout-v2', verified: false, unverifiedReason: 'expired', value: -0.5,
  });
  evs.push({ ...telemetryEvent(2), id: '', itemId: 'exactly12byt', ts: -1, sentAt: 2 ** 53 - 2, receivedAt: 0, profileVersion: -(2 ** 40), value: 1e308 });
  evs.push({ ...telemetryEvent(3), value: Number.NaN, attrs: Object.fromEntries(Array.from({ length: 40 }, (_, k) => [`k${k}`, `v${k}`])) });
  // The attrs fast path (bytes straight to JSON) must give JSON.stringify's text or step aside:
  // integer-like keys (an object moves them first), an own "__proto__" key, characters JSON
  // escapes or that are not ASCII, DEL, 16 and 17 entries, keys like numbers that are not indexes.
  const attrCases: [string, string][][] = [
    [['b', 'x'], ['10', 'y'], ['2', 'z']],
    [['__proto__', 'p'], ['k', 'v']],
    [['del', 'a\x7fb'], ['tab', 'a\tb'], ['q', 'say "hi"'], ['bs', 'a\\b']],
    [['-1', 'a'], ['x', 'b'], ['1.5', 'c'], ['', ''], ['path', '/a?b=c&d=e']],
    [['é', 'v']],
    Array.from({ length: 16 }, (_, k) => [`k${k}`, `v${k}`] as [string, string]),
    Array.from({ length: 17 }, (_, k) => [`k${k}`, `v${k}`] as [string, string]),
  ];
  for (const [i, entries] of attrCases.entries()) evs.push({ ...telemetryEvent(10 + i), type: 'request', attrs: Object.fromEntries(entries) });
  return evs;
}

test('generated v2 records: the same cells as avsc + rows()', () => {
  const bodies = generated().map((e) => reader.toBuffer(e));
  const want = bodies.map((b) => reference(reader, b));
  expect(want.every((w) => w !== 'refused')).toBe(true);
  expect(columnar(reader, bodies)).toEqual(want);
});

test('records written with telemetry-event v1 read with v2 defaults (verified false, nulls)', () => {
  const bodies = generated().slice(0, 50).map(({ controlOf: _c, verified: _v, unverifiedReason: _u, ...e }) => v1.toBuffer(e));
  const want = bodies.map((b) => reference(v1, b));
  expect(want.every((w) => w !== 'refused')).toBe(true);
  const got = columnar(v1, bodies);
  expect(got).toEqual(want);
  expect((got[0] as Cell[])[types.length - 2]).toBe(false);
});

test('every truncation of a body is refused exactly when avsc refuses it', () => {
  const body = reader.toBuffer(generated()[300]); // the long unicode one
  const bodies: Buffer[] = [];
  for (let n = 0; n < body.length; n += n < 200 ? 1 : 97) bodies.push(body.subarray(0, n));
  const want = bodies.map((b) => reference(reader, b));
  expect(want.filter((w) => w === 'refused').length).toBeGreaterThan(100);
  expect(columnar(reader, bodies)).toEqual(want);
});

test('mutated bytes: same verdict and same cells as avsc (trailing data, bad branches, bad enum, lying counts)', () => {
  // Deterministic pseudo-random mutations (xorshift), so a failure reproduces.
  let x = 0x9e3779b9;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const sources = generated().slice(295).map((e) => reader.toBuffer(e));
  const bodies: Buffer[] = [];
  for (let k = 0; k < 4000; k++) {
    const b = Buffer.from(sources[k % sources.length]);
    const edits = 1 + rnd(3);
    for (let e = 0; e < edits; e++) b[rnd(b.length)] = rnd(4) === 0 ? 0xff : rnd(256);
    bodies.push(b);
  }
  bodies.push(Buffer.concat([sources[0], Buffer.from([0])])); // trailing byte: avsc refuses with its own type
  const want = bodies.map((b) => reference(reader, b));
  const refused = want.filter((w) => w === 'refused').length;
  expect(refused).toBeGreaterThan(100);
  expect(refused).toBeLessThan(bodies.length);
  expect(columnar(reader, bodies)).toEqual(want);
});

test('a reader shape outside the decoder (alias, unknown field) answers null so the sink keeps avsc', () => {
  const other = avro.Type.forSchema({ type: 'record', name: 'X', fields: [{ name: 'id', type: 'string', aliases: ['ident'] }] } as unknown as avro.Schema);
  expect(compileColumnDecoder(other, other, [{ field: 'id' }], ['VARCHAR'])).toBeNull();
  const noField = avro.Type.forSchema({ type: 'record', name: 'Y', fields: [{ name: 'a', type: 'string' }] });
  expect(compileColumnDecoder(noField, noField, [{ field: 'b' }], ['VARCHAR'])).toBeNull();
});

import kafkajs from 'kafkajs';
import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { itemIdOf, itemPartition, murmur2 } from './item-partition.ts';

// Golden values of Kafka's own UtilsTest.testMurmur2 (Java client).
test.each([
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
])('murmur2(%s) = %d (Kafka Java client)', (s, h) => {
  expect(murmur2(Buffer.from(s))).toBe(h);
});

test("itemPartition agrees with kafkajs's DefaultPartitioner (so either can key telemetry.by-item)", () => {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  for (const n of [1, 3, 6, 12]) {
    const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    for (let i = 0; i < 500; i++) {
      const key = `com.example.item-${i}-ü${'x'.repeat(i % 7)}`;
      expect(itemPartition(key, n)).toBe(partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }));
    }
  }
});

test.each(['v1', 'v2'])('itemIdOf reads the item id of a framed telemetry-event %s without decoding', (v) => {
  const type = avro.Type.forSchema(JSON.parse(readFileSync(new URL(`../../schemas/avro/telemetry-event.${v}.avsc`, import.meta.url), 'utf8')) as avro.Schema);
  const fields = (type as unknown as { fields: { name: string }[] }).fields.map((f) => f.name);
  expect(fields.slice(0, 2)).toEqual(['id', 'itemId']);
  const rec = type.random() as unknown as Record<string, unknown>;
  for (const itemId of ['com.example.a', 'é'.repeat(100), '']) {
    const body = type.toBuffer({ ...rec, id: 'x'.repeat(70), itemId });
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), body]);
    expect(itemIdOf(framed)).toBe(itemId);
  }
});

test('itemIdOf refuses what is not a framed record (null, the caller dead-letters it after a full decode)', () => {
  expect(itemIdOf(null)).toBeNull();
  expect(itemIdOf(Buffer.from([0xff, 0, 0, 0, 1, 2, 0x61, 2, 0x62]))).toBeNull();
  expect(itemIdOf(Buffer.from([0, 0, 0, 0, 1, 2, 0x61]))).toBeNull(); // truncated before itemId
  expect(itemIdOf(Buffer.from([0, 0, 0, 0, 1, 2, 0x61, 20, 0x62]))).toBeNull(); // length past the end
  expect(itemIdOf(Buffer.from([0, 0, 0, 0, 1, 1, 0x61, 2, 0x62]))).toBeNull(); // negative length
  expect(itemIdOf(Buffer.from([0, 0, 0, 0, 1, 2, 0x61, 2, 0x62]))).toBe('b');
});

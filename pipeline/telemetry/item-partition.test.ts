import kafkajs from 'kafkajs';
import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { isDirect, itemIdOf, itemPartition, murmur2 } from './item-partition.ts';

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

/** A framed record whose id is 'e' and item id `item` (the rest of the record does not matter here). */
const framed = (item: string): Buffer => {
  const b = Buffer.from(item, 'utf8');
  return Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 2, 0x65, b.length * 2]), b]);
};

test('isDirect: in its item partition of raw with equal partition counts → windowed from raw; anything else → the hop', () => {
  // Golden: 'foobar' hashes to (−790332482 & 0x7fffffff) % 6 = 1357151166 % 6 = 0 (Kafka's murmur2 case above).
  expect(itemPartition('foobar', 6)).toBe(0);
  expect(isDirect(framed('foobar'), 0, 6, 6)).toBe(true);
  expect(isDirect(framed('foobar'), 3, 6, 6)).toBe(false); // another producer's partition (e.g. by session)
  expect(isDirect(framed('foobar'), 0, 6, 12)).toBe(false); // partition counts differ: all through the hop
  expect(isDirect(framed('foobar'), 0, 12, 6)).toBe(false);
  expect(isDirect(null, 0, 6, 6)).toBe(false); // unreadable frame: the repartition stage dead-letters it
  expect(isDirect(Buffer.from([0xff, 0, 0, 0, 1, 2, 0x65, 2, 0x62]), 0, 1, 1)).toBe(false);
  // One partition: every readable record is direct.
  expect(isDirect(framed('anything'), 0, 1, 1)).toBe(true);
});

test('isDirect agrees with the collector: an item-partitioned record is direct in exactly one partition', () => {
  for (let i = 0; i < 200; i++) {
    const item = `com.example.item-${i}`;
    const p = itemPartition(item, 6);
    const direct = [0, 1, 2, 3, 4, 5].filter((q) => isDirect(framed(item), q, 6, 6));
    expect(direct).toEqual([p]);
  }
});

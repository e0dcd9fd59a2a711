/**
 * A fetched batch that takes longer than the consumer's session timeout (10 s) to handle must
 * not get the telemetry consumer that reads telemetry.raw evicted from its group — since the
 * window stage forwards the raw records not in their item's partition itself (issue 15 item 1,
 * README "The hop-free path") that is the metrics processor's window stage, which dead-letters
 * what it cannot key by item (before: the repartition stage, which now runs only when the
 * partition counts differ).
 *
 * Found by the fresh-seed fuzz pass (test/fuzz/kafka-topics, FUZZ_SEED=123456789 on a loaded
 * machine): 12,000 garbage records on telemetry.raw, many with unknown schema ids — one registry
 * round trip each — arrived in one fetch; the processor heartbeated only between batches, the
 * broker evicted it mid-batch ("The coordinator is not aware of this member"), its commit
 * failed, and the partition was handled again: 12,802 dead letters for 12,000 records, and on a
 * slower machine a batch that never finishes within a session would be replayed forever.
 *
 * Here the slowness is made deterministic: the codec takes 15 ms for each of 1,000 undecodable
 * records sent in one produce request (15 s for the batch). Every record must be dead-lettered by
 * the window stage exactly once, its group's raw marks must reach the end, and it must not have
 * had to rejoin its group (an eviction replays whatever was not committed yet).
 */
import { randomUUID } from 'node:crypto';
import { startTestPenumbra, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { kafkaFor } from '../../test/stack-helpers.ts';
import { waitFor } from '../../test/wait-for.ts';
import { METRICS_PROCESSOR, telemetryRawLag } from './metrics-processor.ts';
import { streamHandles } from './feature.ts';

const RECORDS = 1000;
const DECODE_MS = 15;
const MARK = Buffer.from('slow-garbage');

let t: TestPenumbra;

beforeAll(async () => {
  // Without the warehouse sink: the slow codec is shared, and this test is about the metrics processor.
  t = await startTestPenumbra('slow-batch', {}, { sink: false });
  const codec = t.p.ctx.codec;
  const decode = codec.decode.bind(codec);
  // Undecodable anyway (magic byte 0xff): only made slow, like a registry lookup per record.
  codec.decode = (async (name, buf) => {
    if (buf && buf[0] === 0xff && buf.includes(MARK)) await new Promise((r) => setTimeout(r, DECODE_MS));
    return decode(name, buf);
  }) as typeof codec.decode;
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

test(`a ${(RECORDS * DECODE_MS) / 1000} s batch (longer than the session timeout) is dead-lettered once: no eviction, no replay`, async () => {
  const topic = t.cfg.topics.telemetryRaw;
  const handle = streamHandles.get(t.p.ctx)!;
  // The partition counts match (the test stack's topics): no repartition stage, the window stage reads raw.
  expect(handle.repartitioner).toBeNull();
  const consumer0 = handle.processor!.consumer;
  const joins: number[] = [];
  consumer0.on(consumer0.events.GROUP_JOIN, () => joins.push(Date.now()));
  const kafka = kafkaFor('slow-batch');
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // One request, one partition (one key): the processor fetches them as one batch.
  await producer.send({ topic, acks: -1, messages: Array.from({ length: RECORDS }, (_, i) => ({ key: 'one-session', value: Buffer.concat([Buffer.from([0xff]), MARK, Buffer.from(`-${i}`)]) })) });
  await producer.disconnect();

  const admin = kafka.admin();
  await admin.connect();
  await waitFor('the window stage to commit past the slow batch', async () => (await telemetryRawLag(admin, t.cfg.topics, t.prefix)) === 0, 90_000, 500);
  const dlqRecords = (await admin.fetchTopicOffsets(t.cfg.topics.dlq)).reduce((s, o) => s + Number(o.high) - Number(o.low), 0);
  await admin.disconnect();

  const seen = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: `${t.prefix}dlq-reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: t.cfg.topics.dlq, fromBeginning: true });
  let read = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        const d = await t.p.ctx.codec.decode('dead-letter', message.value);
        if (d.processor === METRICS_PROCESSOR && d.sourceTopic === topic) seen.set(`${d.partition}@${d.offset}`, (seen.get(`${d.partition}@${d.offset}`) ?? 0) + 1);
        if (++read >= dlqRecords) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  const twice = [...seen].filter(([, n]) => n > 1);
  process.stderr.write(`slow batch: ${seen.size} records dead-lettered, ${twice.length} of them more than once\n`);
  process.stderr.write(`slow batch: the window stage rejoined its group ${joins.length} time(s)\n`);
  expect(seen.size).toBe(RECORDS);
  expect(twice.slice(0, 5)).toEqual([]);
  expect(joins).toEqual([]);
}, 150_000);

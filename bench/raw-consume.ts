/**
 * The raw limit the benches compare against: plain kafkajs `eachBatch` consuming a topic from the
 * beginning in a fresh group and only counting messages (no decode, no storage). The clock starts
 * when the group join completes (the broker's initial rebalance delay is excluded) and stops when
 * `n` messages are counted. Returns messages per second.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';

export async function rawConsume(kafka: Kafka, topic: string, n: number): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench-raw-${randomUUID()}`, maxWaitTimeInMs: 200, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 32 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let joined = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = performance.now()));
  const elapsed = await new Promise<number>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        count += batch.messages.length;
        if (count >= n) resolve(performance.now() - joined);
      },
    });
  });
  await consumer.disconnect();
  return (n / elapsed) * 1000;
}

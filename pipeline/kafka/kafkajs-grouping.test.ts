/**
 * The linear grouping that replaces kafkajs's groupMessagesPerPartition (kafkajs-grouping.ts)
 * must give the same answer: same partitions, same messages in the same order, the partitioner
 * asked once per message in order, `{}` without partition metadata.
 */
import { groupLinear, groupOriginal } from './kafkajs-grouping.ts';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('kafkajs grouping: linear replacement', () => {
  it('groups like kafkajs on seeded inputs', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const rnd = seeded(seed);
      const parts = 1 + Math.floor(rnd() * 6);
      const partitionMetadata = Array.from({ length: parts }, (_, i) => ({ partitionId: i }));
      const messages = Array.from({ length: Math.floor(rnd() * 300) }, (_, i) => ({ key: `k${i}`, value: Buffer.from(String(i)), partition: Math.floor(rnd() * parts) }));
      const asked: [unknown[], unknown[]] = [[], []];
      const partitioner = (i: 0 | 1) => ({ message }: { message: unknown }) => {
        asked[i].push(message);
        return (message as { partition: number }).partition;
      };
      const a = groupOriginal({ topic: 't', partitionMetadata, messages, partitioner: partitioner(0) });
      const b = groupLinear({ topic: 't', partitionMetadata, messages, partitioner: partitioner(1) });
      expect(b).toEqual(a);
      expect(Object.keys(b)).toEqual(Object.keys(a));
      expect(asked[1]).toEqual(asked[0]);
    }
  });

  it('answers {} without partition metadata, as kafkajs does', () => {
    const args = { topic: 't', partitionMetadata: [], messages: [{ value: 'x' }], partitioner: () => 0 };
    expect(groupLinear(args)).toEqual(groupOriginal(args));
    expect(groupLinear(args)).toEqual({});
  });
});

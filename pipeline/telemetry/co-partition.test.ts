import { AssignerProtocol } from 'kafkajs';
import { coPartitionAssigner, coPartitionAssignment, CO_PARTITION_ASSIGNER } from './co-partition.ts';

// Golden cases: partition number p of every topic goes to sorted member p mod n.
test('one member gets every partition of both topics', () => {
  expect(coPartitionAssignment(['m1'], { raw: 3, byItem: 3 })).toEqual({ m1: { raw: [0, 1, 2], byItem: [0, 1, 2] } });
});

test('three members over six partitions: p and p of the other topic always together (ids sorted, not in join order)', () => {
  expect(coPartitionAssignment(['c', 'a', 'b'], { raw: 6, byItem: 6 })).toEqual({
    a: { raw: [0, 3], byItem: [0, 3] },
    b: { raw: [1, 4], byItem: [1, 4] },
    c: { raw: [2, 5], byItem: [2, 5] },
  });
});

test('more members than partitions: the extra member is listed with nothing', () => {
  expect(coPartitionAssignment(['a', 'b', 'c'], { raw: 2, byItem: 2 })).toEqual({ a: { raw: [0], byItem: [0] }, b: { raw: [1], byItem: [1] }, c: {} });
});

test('topics of different sizes: partition numbers still line up', () => {
  expect(coPartitionAssignment(['a', 'b'], { raw: 4, byItem: 2 })).toEqual({ a: { raw: [0, 2], byItem: [0] }, b: { raw: [1, 3], byItem: [1] } });
});

test('no members: no plan', () => {
  expect(coPartitionAssignment([], { raw: 4 })).toEqual({});
});

test('the kafkajs assigner encodes the same plan for every member and offers its protocol', async () => {
  const cluster = { findTopicPartitionMetadata: (t: string) => Array.from({ length: t === 'raw' ? 4 : 4 }, (_, i) => ({ partitionId: i })) };
  const assigner = coPartitionAssigner({ cluster: cluster as never, groupId: 'g', logger: undefined as never });
  expect(assigner.name).toBe(CO_PARTITION_ASSIGNER);
  const out = await assigner.assign({ members: [{ memberId: 'y', memberMetadata: Buffer.alloc(0) }, { memberId: 'x', memberMetadata: Buffer.alloc(0) }], topics: ['raw', 'by-item'] });
  const decoded = Object.fromEntries(out.map((o) => [o.memberId, AssignerProtocol.MemberAssignment.decode(o.memberAssignment)!.assignment]));
  expect(decoded).toEqual({ x: { raw: [0, 2], 'by-item': [0, 2] }, y: { raw: [1, 3], 'by-item': [1, 3] } });
  const proto = assigner.protocol({ topics: ['raw', 'by-item'] });
  expect(proto.name).toBe(CO_PARTITION_ASSIGNER);
  expect(AssignerProtocol.MemberMetadata.decode(proto.metadata)!.topics).toEqual(['raw', 'by-item']);
});

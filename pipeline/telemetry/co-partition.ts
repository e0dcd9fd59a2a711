/**
 * Co-partitioning assigner of the window stage (issue 15 item 1, the hop-free path): the group
 * `<prefix>telemetry-metrics` reads telemetry.raw AND telemetry.by-item, and partition number p
 * of BOTH topics must go to the same member — the records of an item sit in partition
 * itemPartition(item) of either topic, and one aggregator per partition number windows them
 * (Kafka Streams requires the same of a task's input topics). kafkajs's round-robin assigner
 * deals topic-partitions out in turn and does not guarantee it, hence this one.
 *
 * Rule (pure, `coPartitionAssignment`): members sorted by id; partition number p of every
 * subscribed topic goes to member p mod n. Deterministic, so every member that leads computes the
 * same plan; a topic with fewer partitions simply has no partition p beyond its count.
 *
 * Every member of the group must offer this assigner (a member without it — an older build —
 * makes the group refuse the join with INCONSISTENT_GROUP_PROTOCOL rather than mis-assign).
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export const CO_PARTITION_ASSIGNER = 'PenumbraCoPartitioned';

/** Partitions per topic for each member id (every member listed, possibly with nothing). */
export function coPartitionAssignment(memberIds: readonly string[], partitionsByTopic: Readonly<Record<string, number>>): Record<string, Record<string, number[]>> {
  const members = [...memberIds].sort();
  const out: Record<string, Record<string, number[]>> = {};
  for (const m of members) out[m] = {};
  if (members.length === 0) return out;
  for (const [topic, count] of Object.entries(partitionsByTopic)) {
    for (let p = 0; p < count; p++) {
      const m = out[members[p % members.length]];
      (m[topic] ??= []).push(p);
    }
  }
  return out;
}

/** The kafkajs assigner (`partitionAssigners: [coPartitionAssigner]`). */
export const coPartitionAssigner: PartitionAssigner = ({ cluster }) => ({
  name: CO_PARTITION_ASSIGNER,
  version: 0,
  async assign({ members, topics }) {
    const counts: Record<string, number> = {};
    for (const t of topics) counts[t] = cluster.findTopicPartitionMetadata(t).length;
    const plan = coPartitionAssignment(members.map((m) => m.memberId), counts);
    return Object.entries(plan).map(([memberId, assignment]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: CO_PARTITION_ASSIGNER, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});

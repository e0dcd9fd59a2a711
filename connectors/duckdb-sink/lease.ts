/**
 * The warehouse sink's lease (docs/scaling.md "Hazards"; issue 15 gaps): exactly one sink writes
 * per topic prefix, also when several start at the same instant on different hosts.
 *
 * Decision: Kafka's group protocol elects the holder, not a lease record of our own. Every sink
 * candidate joins the consumer group `<prefix>warehouse-sink-lease` on the ONE-partition topic
 * `<prefix>warehouse-sink.lease` (no records are ever written to it); the group coordinator runs
 * one generation at a time and the assignment of a generation gives partition 0 to exactly one
 * member — the holder. Why this and not a compacted "owner + expiry" record:
 * - the election is the broker's (the coordinator serialises joins), so there is no read-your-
 *   write race to reason about, and no wall-clock expiry compared across hosts (clock skew);
 * - liveness is the group session (heartbeats every second, `sessionTimeoutMs` 10 s): a holder
 *   killed with -9 loses the lease when its session expires, the coordinator rebalances, and a
 *   waiting candidate gets partition 0 — the take-over bound is the session timeout plus one
 *   rebalance, no renewal loop of our own;
 * - a clean stop leaves the group at once (immediate take-over).
 * The assignment is sticky (`electHolder`): a member that holds the lease says so in its join
 * metadata and keeps it when others join; only without a holder does the smallest member id win.
 * A plain round-robin assignor would hand partition 0 to a newcomer with a smaller member id.
 *
 * Fencing, honestly: a holder that stalls longer than its session (a very long GC pause, a
 * suspended VM) is replaced while it still believes it holds; it learns it at its next heartbeat
 * (rebalance → it is not the holder, or its member id is unknown) and the sink stops writing
 * (`onLost`). Kafka Streams has the same window; each sink writes its own DuckDB file, so the two
 * never corrupt one file — the stalled one's rows after the take-over are the duplicates of a
 * second warehouse, not of this one.
 */
import { AssignerProtocol, type Consumer, type Kafka } from 'kafkajs';

export const leaseTopic = (prefix: string): string => `${prefix}warehouse-sink.lease`;
export const leaseGroup = (prefix: string): string => `${prefix}warehouse-sink-lease`;
const PROTOCOL = 'PenumbraSinkLease';

/** What a candidate says of itself when it joins (the member metadata's userData). */
export interface Candidate {
  memberId: string;
  /** It holds the lease now (keeps it across rebalances). */
  holder: boolean;
}

/**
 * Who gets partition 0 (pure): the member that holds it already (the smallest member id among
 * holders, should two claim it after a split), else the smallest member id. Null without members.
 */
export function electHolder(members: readonly Candidate[]): string | null {
  if (members.length === 0) return null;
  const ids = (ms: readonly Candidate[]) => ms.map((m) => m.memberId).sort();
  const holders = members.filter((m) => m.holder);
  return (holders.length > 0 ? ids(holders) : ids(members))[0];
}

export interface SinkLease {
  /** Resolves once this process holds the lease. */
  acquired: Promise<void>;
  readonly holding: boolean;
  /** Leaves the group (a waiting sink takes over at once). */
  release(): Promise<void>;
}

export interface SinkLeaseOptions {
  /** Group session: how long a killed holder keeps the lease (default 10 s). */
  sessionTimeoutMs?: number;
  /** Called once when a lease held is lost (the sink must stop writing). */
  onLost?: (why: string) => void;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

async function ensureLeaseTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    let createError: string | null = null;
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }).catch((err: Error) => {
      // "already exists": another candidate created it between list and create (they start at
      // the same instant); UNKNOWN_TOPIC_OR_PARTITION: a KRaft broker's metadata lagging its
      // controller right after the create (pipeline/kafka/topics.ts) — kafkajs gives up on it.
      // Either way the metadata poll below decides; a real failure is named there.
      createError = err.message;
    });
    // Every candidate must see the one partition with a leader before joining (the assignor reads metadata).
    for (let i = 0; i < 120; i++) {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => ({ topics: [] as { partitions: { leader: number }[] }[] }));
      if (topics[0]?.partitions.length === 1 && topics[0].partitions[0].leader >= 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`lease topic ${topic} has no leader after 30 s${createError ? ` (creating it: ${createError})` : ''}`);
  } finally {
    await admin.disconnect();
  }
}

/** Joins the lease group; `acquired` resolves when this process is the holder. */
export async function acquireSinkLease(kafka: Kafka, prefix: string, opts: SinkLeaseOptions = {}): Promise<SinkLease> {
  const topic = leaseTopic(prefix);
  await ensureLeaseTopic(kafka, topic);
  let holding = false;
  let lost = false;
  let resolveAcquired!: () => void;
  const acquired = new Promise<void>((r) => (resolveAcquired = r));
  const userData = () => Buffer.from(JSON.stringify({ holder: holding }));
  const assigner = () => ({
    name: PROTOCOL,
    version: 1,
    async assign({ members }: { members: { memberId: string; memberMetadata: Buffer }[] }) {
      const candidates = members.map((m) => {
        let holder = false;
        try {
          holder = (JSON.parse(AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData.toString() || '{}') as { holder?: boolean }).holder === true;
        } catch {
          /* a member of another version: no claim */
        }
        return { memberId: m.memberId, holder };
      });
      const winner = electHolder(candidates);
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: m.memberId === winner ? { [topic]: [0] } : {}, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }: { topics: string[] }) {
      return { name: PROTOCOL, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: userData() }) };
    },
  });
  const consumer: Consumer = kafka.consumer({
    groupId: leaseGroup(prefix),
    partitionAssigners: [assigner],
    sessionTimeout: opts.sessionTimeoutMs ?? 10_000,
    heartbeatInterval: 1000,
    // Nothing is ever written to the topic: idle fetches only keep the member polling.
    maxWaitTimeInMs: 1000,
  });
  const lose = (why: string) => {
    if (!holding || lost) return;
    holding = false;
    lost = true;
    opts.log?.('warehouse sink: lease lost', { why });
    opts.onLost?.(why);
  };
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assignment = e.payload.memberAssignment as unknown as Record<string, number[]>;
    if ((assignment[topic] ?? []).includes(0)) {
      if (!holding && !lost) {
        holding = true;
        opts.log?.('warehouse sink: lease acquired', { group: leaseGroup(prefix), memberId: e.payload.memberId });
        resolveAcquired();
      }
    } else if (holding) lose('another member holds the lease after a rebalance (this one stalled past its session)');
    else opts.log?.('warehouse sink: another sink holds the lease; waiting (a killed holder expires with its session)', { group: leaseGroup(prefix), sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000 });
  });
  consumer.on(consumer.events.CRASH, (e) => lose(`lease consumer crashed: ${String((e.payload as { error?: Error }).error?.message ?? 'unknown')}`));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({ eachMessage: async () => {} });
  return {
    acquired,
    get holding() {
      return holding;
    },
    async release() {
      holding = false;
      lost = true;
      await consumer.disconnect().catch(() => {});
    },
  };
}

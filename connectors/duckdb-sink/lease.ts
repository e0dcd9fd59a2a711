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
 *
 * Crashes of the lease consumer (`leaseStep`, golden cases in lease.test.ts). kafkajs handles a
 * crash by disconnecting the consumer — which LEAVES the group, so partition 0 is free for a
 * waiting candidate from that instant — and, when the error is retriable
 * (`payload.restart === true`), starting it again after a retry delay. So:
 * - a crash with restart while holding is a PAUSE, not a loss: the sink stops writing at once
 *   (this member no longer holds partition 0 at the broker; writing on would break the fencing
 *   guarantee), and when the restarted consumer joins again and is assigned partition 0 the sink
 *   resumes (`onResumed`). A restarted member claims no holdership in its join metadata (it left
 *   the group): if another candidate took the partition meanwhile, that one keeps it and this
 *   one's pause becomes a loss. Before this rule any crash counted as a permanent loss, so a sink
 *   whose lease consumer hit one retriable broker error stopped writing for good while its
 *   restarted consumer went on holding partition 0 — no sink wrote at all.
 * - a crash without restart is a LOSS (`onLost`: visible in the sink's stats and the health
 *   check; `penumbra start` closes the sink and acquires again every 10 s; `run-sink.ts` exits 3).
 *   Waiting without ever holding, such a crash rejects `acquired` (nobody would ever assign it).
 * - after a loss the lease consumer leaves the group, so a member that does not write can never
 *   hold partition 0 and keep a standby out.
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

/** Where one candidate stands. `lost` and `released` are final for this lease object. */
export type LeaseState = 'waiting' | 'holding' | 'paused' | 'lost' | 'released';

/** What the lease consumer reports: a generation joined, a crash (kafkajs's CRASH), or release(). */
export type LeaseEvent =
  | { kind: 'join'; assigned: boolean }
  | { kind: 'crash'; restart: boolean; error: string }
  | { kind: 'release' };

/**
 * What to do: `acquired` (first time holding: the sink starts), `pause` (stop writing until
 * resumed), `resume` (holding again after a pause), `lost` (stop writing for good), `failed`
 * (never held, and never will: `acquired` rejects), `waiting` (another member holds it; log).
 */
export type LeaseAction = 'none' | 'acquired' | 'pause' | 'resume' | 'lost' | 'failed' | 'waiting';

export interface LeaseStep {
  state: LeaseState;
  action: LeaseAction;
  /** Why, for the log, the stats and the health check (pause, lost, failed). */
  why?: string;
}

/** The lease's rule (pure): the next state and the action for one event (see the header). */
export function leaseStep(state: LeaseState, ev: LeaseEvent): LeaseStep {
  if (ev.kind === 'release') return { state: 'released', action: 'none' };
  if (state === 'lost' || state === 'released') return { state, action: 'none' };
  if (ev.kind === 'join') {
    if (ev.assigned) {
      if (state === 'waiting') return { state: 'holding', action: 'acquired' };
      if (state === 'paused') return { state: 'holding', action: 'resume' };
      return { state, action: 'none' };
    }
    if (state === 'waiting') return { state, action: 'waiting' };
    return {
      state: 'lost',
      action: 'lost',
      why: state === 'holding'
        ? 'another member holds the lease after a rebalance (this one stalled past its session)'
        : 'another member took the lease over while the lease consumer restarted after a crash',
    };
  }
  // A crash: kafkajs has disconnected the consumer (left the group) before reporting it.
  if (ev.restart) {
    if (state === 'holding') return { state: 'paused', action: 'pause', why: `lease consumer crashed and restarts: ${ev.error}` };
    return { state, action: 'none' }; // waiting or paused: kafkajs restarts it, it joins again
  }
  if (state === 'waiting') return { state: 'lost', action: 'failed', why: `lease consumer crashed and does not restart: ${ev.error}` };
  return { state: 'lost', action: 'lost', why: `lease consumer crashed and does not restart: ${ev.error}` };
}

export interface SinkLease {
  /** Resolves once this process holds the lease. */
  acquired: Promise<void>;
  readonly holding: boolean;
  readonly state: LeaseState;
  /** Leaves the group (a waiting sink takes over at once). */
  release(): Promise<void>;
}

export interface SinkLeaseOptions {
  /** Group session: how long a killed holder keeps the lease (default 10 s). */
  sessionTimeoutMs?: number;
  /** Called once when a lease held is lost (the sink must stop writing). */
  onLost?: (why: string) => void;
  /** Called when the lease consumer crashed and restarts (the sink must stop writing until onResumed). */
  onPaused?: (why: string) => void;
  /** Called when the restarted lease consumer holds partition 0 again (the sink may write again). */
  onResumed?: () => void;
  /**
   * Fault tests only: called for a record on the lease topic (sinks never write one). A test
   * writes one and throws here to crash the lease consumer the way a broker error does.
   */
  eachRecord?: (value: Buffer | null) => Promise<void>;
  /** The lease consumer's kafkajs retry policy (default: the client's); fault tests shorten it. */
  retry?: { retries?: number; initialRetryTime?: number; maxRetryTime?: number };
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
  let state: LeaseState = 'waiting';
  let resolveAcquired!: () => void;
  let rejectAcquired!: (err: Error) => void;
  const acquired = new Promise<void>((res, rej) => {
    resolveAcquired = res;
    rejectAcquired = rej;
  });
  acquired.catch(() => {}); // observed by whoever awaits it; a failure before that is not unhandled
  // Only a member holding the lease now claims it: a restarted one (it left the group) does not.
  const userData = () => Buffer.from(JSON.stringify({ holder: state === 'holding' }));
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
    ...(opts.retry ? { retry: opts.retry } : {}),
  });
  const apply = (ev: LeaseEvent, memberId?: string) => {
    const step = leaseStep(state, ev);
    state = step.state;
    switch (step.action) {
      case 'acquired':
        opts.log?.('warehouse sink: lease acquired', { group: leaseGroup(prefix), memberId });
        resolveAcquired();
        break;
      case 'waiting':
        opts.log?.('warehouse sink: another sink holds the lease; waiting (a killed holder expires with its session)', { group: leaseGroup(prefix), sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000 });
        break;
      case 'pause':
        opts.log?.('warehouse sink: lease paused', { why: step.why });
        opts.onPaused?.(step.why!);
        break;
      case 'resume':
        opts.log?.('warehouse sink: lease held again; resuming', { group: leaseGroup(prefix), memberId });
        opts.onResumed?.();
        break;
      case 'lost':
        opts.log?.('warehouse sink: lease lost', { why: step.why });
        // Out of the group: a member that does not write must never hold partition 0 again.
        void consumer.disconnect().catch(() => {});
        opts.onLost?.(step.why!);
        break;
      case 'failed':
        opts.log?.('warehouse sink: lease consumer failed before acquiring', { why: step.why });
        rejectAcquired(new Error(`warehouse sink lease: ${step.why}`));
        break;
      case 'none':
        break;
    }
  };
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assignment = e.payload.memberAssignment as unknown as Record<string, number[]>;
    apply({ kind: 'join', assigned: (assignment[topic] ?? []).includes(0) }, e.payload.memberId);
  });
  consumer.on(consumer.events.CRASH, (e) => {
    const p = e.payload as { error?: Error; restart?: boolean };
    apply({ kind: 'crash', restart: p.restart === true, error: String(p.error?.message ?? 'unknown') });
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({ eachMessage: async ({ message }) => opts.eachRecord?.(message.value) });
  return {
    acquired,
    get holding() {
      return state === 'holding';
    },
    get state() {
      return state;
    },
    async release() {
      apply({ kind: 'release' });
      await consumer.disconnect().catch(() => {});
    },
  };
}

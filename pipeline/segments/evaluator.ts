/**
 * The segment evaluator: runs each segment's SQL on its schedule against the warehouse snapshot
 * and publishes what changed.
 *
 * Reads: the definitions (SegmentStore, from penumbra.segments), the Parquet snapshot
 * (sandbox.ts), on becoming leader the whole of penumbra.segments.memberships (its state).
 * Writes: penumbra.segments.memberships (one complete record per user whose membership changed,
 * key userId) and then penumbra.segments.status (key segment id).
 *
 * One writer: every process running processors joins the consumer group
 * `<prefix>segment-evaluator` on penumbra.segments, and only the member assigned partition 0
 * evaluates (the memberships topic holds complete per-user records, so two writers composing
 * them from different states would overwrite each other). A new leader rebuilds its state from
 * the memberships topic before its first evaluation.
 *
 * Guarantees: a failing, slow or oversized query changes nothing that resolvers see (the last
 * good membership stays in force, the status says why — evaluation.ts); membership records of
 * an evaluation are all acknowledged before its status is produced and before the state moves
 * on, so a crash in between makes the next evaluation resend them (records are complete, so
 * resending is idempotent).
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer } from '../kafka/client.ts';
import { followTopic } from '../kafka/follow.ts';
import { readSnapshotMeta, type ParquetSource } from '../../connectors/duckdb-sink/query.ts';
import type { Segment, SegmentStatus } from '../../schemas/types.generated.ts';
import type { SegmentLimits } from './definition.ts';
import { decideOutcome, dueSegments, statusAfter, type QueryResult } from './evaluation.ts';
import { Sandbox, SegmentTimeoutError, firstLine } from './sandbox.ts';
import { MembershipState, type MemberChange } from './state.ts';
import type { SegmentStore } from './segment-store.ts';

export interface SegmentEvaluatorDeps {
  kafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  topics: TopicNames;
  groupPrefix: string;
  store: SegmentStore;
  /** Last known status per segment (from penumbra.segments.status). */
  status: (id: string) => SegmentStatus | undefined;
  parquetDir: ParquetSource;
  limits: SegmentLimits;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  /** Scheduler tick (default 1000 ms). */
  tickMs?: number;
  memoryLimit?: string;
  now?: () => number;
}

export interface SegmentEvaluatorStats {
  leader: boolean;
  loaded: boolean;
  evaluations: number;
  failures: number;
  lastEvaluationAt: number | null;
  membersInForce: number;
}

export interface SegmentEvaluator {
  readonly stats: SegmentEvaluatorStats;
  /** Evaluate one segment now (only on the leader); resolves with its new status. */
  evaluateNow(id: string): Promise<SegmentStatus>;
  stop(): Promise<void>;
}

export class NotLeaderError extends Error {}

export async function startSegmentEvaluator(deps: SegmentEvaluatorDeps): Promise<SegmentEvaluator> {
  const now = deps.now ?? Date.now;
  const stats: SegmentEvaluatorStats = { leader: false, loaded: false, evaluations: 0, failures: 0, lastEvaluationAt: null, membersInForce: 0 };
  const lastRun = new Map<string, number>();
  const produced = new Map<string, SegmentStatus>();
  let counts = new Map<string, number>();
  let state: MembershipState | null = null;
  let stopped = false;
  let generation = 0;
  // Evaluations, loads and the scheduler run one at a time.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => {});
    return p;
  };
  const statusOf = (id: string) => produced.get(id) ?? deps.status(id);

  async function load(gen: number): Promise<void> {
    state?.close();
    state = null;
    stats.loaded = false;
    const s = await MembershipState.create(deps.memoryLimit);
    const follower = await followTopic({
      kafka: deps.kafka, codec: deps.codec, topic: deps.topics.segmentMemberships, schema: 'segment-membership', groupPrefix: deps.groupPrefix,
      onRecord: (m) => s.replayRecord(m.userId, m.segments),
      onError: (err) => deps.log('segment membership decode failed', { err: String(err) }),
    });
    try {
      await follower.ready;
    } finally {
      await follower.stop();
    }
    await s.finishReplay();
    if (gen !== generation || stopped) {
      s.close();
      return;
    }
    state = s;
    counts = await s.counts();
    stats.membersInForce = [...counts.values()].reduce((a, b) => a + b, 0);
    stats.loaded = true;
    deps.log('segment evaluator loaded its state', { users: stats.membersInForce, segments: counts.size });
  }

  async function publishMembers(evaluationId: string, segmentId: string, batch: MemberChange[]): Promise<void> {
    const at = now();
    await deps.producer.send(batch.map((c) => ({
      topic: deps.topics.segmentMemberships, key: c.userId,
      value: { userId: c.userId, segments: c.segments, evaluationId, changed: [segmentId], updatedAt: at },
    })));
  }

  async function evaluate(def: Segment): Promise<SegmentStatus> {
    if (!state) throw new NotLeaderError('the segment evaluator has not loaded its state');
    const st = state;
    const evaluationId = randomUUID();
    const t0 = now();
    lastRun.set(def.id, t0);
    const meta = await readSnapshotMeta(deps.parquetDir);
    let result: QueryResult;
    const appender = await st.beginCandidates();
    let sandbox: Sandbox | null = null;
    try {
      sandbox = await Sandbox.open(deps.parquetDir, { memoryLimit: deps.memoryLimit });
      const rows = await sandbox.members(def.sql, def.maxMembers, def.timeoutMs, (chunk) => appender.appendDataChunk(chunk));
      result = { kind: 'ok', candidates: rows };
    } catch (err) {
      result = err instanceof SegmentTimeoutError ? { kind: 'timeout', error: err.message } : { kind: 'failed', error: validationText(err) };
    } finally {
      appender.closeSync();
      sandbox?.close();
    }
    const mine = counts.get(def.id) ?? 0;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const outcome = decideOutcome(def, result, { otherMembers: total - mine, totalMembers: deps.limits.totalMembers });
    let facts = { added: 0, removed: 0, members: mine };
    if (outcome.apply) {
      facts = await st.applyCandidates(def.id, (b) => publishMembers(evaluationId, def.id, b));
      counts.set(def.id, facts.members);
      stats.membersInForce = total - mine + facts.members;
    }
    const status = statusAfter(def, outcome, statusOf(def.id), {
      evaluationId, evaluatedAt: now(), durationMs: now() - t0, snapshotAt: meta?.exportedAt ?? null,
      candidates: result.kind === 'ok' ? result.candidates : null, ...facts,
    });
    await deps.producer.send([{ topic: deps.topics.segmentStatus, key: def.id, value: status }]);
    produced.set(def.id, status);
    stats.evaluations++;
    stats.lastEvaluationAt = status.evaluatedAt;
    if (!outcome.apply) {
      stats.failures++;
      deps.log('segment evaluation kept the last good membership', { segmentId: def.id, state: outcome.state, error: outcome.error });
    }
    return status;
  }

  /** A deleted segment: its members leave (records), then a `deleted` status. */
  async function cleanUp(id: string): Promise<void> {
    if (!state) return;
    const evaluationId = randomUUID();
    await state.beginCandidates().then((a) => a.closeSync());
    const facts = await state.applyCandidates(id, (b) => publishMembers(evaluationId, id, b));
    counts.delete(id);
    const at = now();
    const status: SegmentStatus = {
      segmentId: id, state: 'deleted', evaluationId, evaluatedAt: at, durationMs: 0, snapshotAt: null, members: 0, candidateMembers: null,
      added: 0, removed: facts.removed, lastGoodEvaluationId: null, lastGoodAt: null, error: null, definitionUpdatedAt: at,
    };
    await deps.producer.send([{ topic: deps.topics.segmentStatus, key: id, value: status }]);
    produced.set(id, status);
  }

  async function tick(): Promise<void> {
    if (!stats.leader || !state) return;
    for (const id of counts.keys()) if (deps.store.get(id) === undefined) await cleanUp(id);
    for (const id of deps.store.deletedIds()) {
      const st = statusOf(id);
      if (st && st.state !== 'deleted' && !counts.has(id)) await cleanUp(id);
    }
    for (const def of dueSegments(deps.store.all(), statusOf, (id) => lastRun.get(id), now())) {
      if (stopped || !stats.leader) return;
      try {
        await evaluate(def);
      } catch (err) {
        stats.failures++;
        deps.log('segment evaluation failed to publish; retrying at the next period', { segmentId: def.id, err: firstLine(err) });
      }
    }
  }

  // Leadership: the member of the group that holds partition 0 of the definitions topic.
  const consumer: Consumer = deps.kafka.consumer({ groupId: `${deps.groupPrefix}segment-evaluator`, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 1000 });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = e.payload.memberAssignment[deps.topics.segments] ?? [];
    const lead = parts.includes(0);
    if (lead && !stats.leader) {
      stats.leader = true;
      const gen = ++generation;
      void serial(() => load(gen)).catch((err) => deps.log('segment evaluator could not load its state', { err: firstLine(err) }));
    } else if (!lead && stats.leader) {
      stats.leader = false;
      generation++;
      void serial(async () => {
        state?.close();
        state = null;
        stats.loaded = false;
      });
    }
  });
  await consumer.connect();
  await consumer.subscribe({ topic: deps.topics.segments, fromBeginning: false });
  // Definitions come from the SegmentStore; the group only elects the evaluator.
  await consumer.run({ autoCommit: true, eachMessage: async () => {} });

  const timer = setInterval(() => {
    if (stats.leader && stats.loaded) void serial(tick);
  }, deps.tickMs ?? 1000);
  timer.unref();

  return {
    stats,
    evaluateNow(id) {
      return serial(async () => {
        if (!stats.leader || !state) throw new NotLeaderError('segments are evaluated by another process (or this one is still loading)');
        const def = deps.store.get(id);
        if (!def) throw new Error(`segment ${id} does not exist`);
        return evaluate(def);
      });
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await consumer.disconnect().catch(() => {});
      await chain.catch(() => {});
      state?.close();
      state = null;
    },
  };
}

function validationText(err: unknown): string {
  const issues = (err as { issues?: { message: string }[] }).issues;
  if (Array.isArray(issues) && issues.length > 0) return issues.map((i) => i.message).join('; ');
  return firstLine(err);
}

/**
 * Idempotent topic provisioning: creates what is missing with the configured partition count
 * and the cleanup policy of ARCHITECTURE.md (compaction for state topics), leaves existing
 * topics alone (and tells which ones differ), so `npm start` can run it every time.
 *
 * Non-compacted topics get a size bound as well as Kafka's time bound (retention.bytes per
 * partition, PENUMBRA_TOPIC_RETENTION_BYTES, default 1 GiB): the input topics and the DLQ take
 * writes from the internet through the collector, and a flood must cost old records, not the
 * broker's disk. Existing topics keep their settings (change them with
 * `kafka-configs.sh --alter --entity-type topics --entity-name <topic> --add-config retention.bytes=<n>`).
 */
import type { Admin, ITopicConfig } from 'kafkajs';
import type { PenumbraConfig, TopicNames } from '../config/config.ts';

/** retention.bytes per partition of new delete-policy topics unless configured. */
export const DEFAULT_RETENTION_BYTES = 1024 * 1024 * 1024;

export const COMPACTED: ReadonlySet<keyof TopicNames> = new Set([
  'itemsCatalog', 'shadowProfiles', 'resolvers', 'alertRules', 'riskModels', 'segments', 'segmentStatus', 'segmentMemberships', 'pins', 'pinPolicies', 'banditSticky', 'comparisons',
]);

/**
 * Delete-policy topics whose records are worthless after minutes (the live view's provisional
 * windows): a short time bound instead of Kafka's 7 days, so they never fill a disk.
 */
export const SHORT_LIVED: ReadonlyMap<keyof TopicNames, number> = new Map([['telemetryLive', 10 * 60 * 1000]]);

export interface TopicPlan {
  key: keyof TopicNames;
  topic: string;
  partitions: number;
  compacted: boolean;
}

export function topicPlan(topics: TopicNames, partitions: number): TopicPlan[] {
  return (Object.keys(topics) as (keyof TopicNames)[]).map((key) => ({
    key,
    topic: topics[key],
    partitions,
    compacted: COMPACTED.has(key),
  }));
}

export async function provisionTopics(admin: Admin, cfg: Pick<PenumbraConfig, 'topics' | 'partitions'> & Partial<Pick<PenumbraConfig, 'topicRetentionBytes'>>): Promise<{ created: string[]; existing: string[] }> {
  const plan = topicPlan(cfg.topics, cfg.partitions);
  const existing = new Set(await admin.listTopics());
  const missing = plan.filter((p) => !existing.has(p.topic));
  const configs: ITopicConfig[] = missing.map((p) => ({
    topic: p.topic,
    numPartitions: p.partitions,
    configEntries: p.compacted
      ? [
          { name: 'cleanup.policy', value: 'compact' },
          // Small segments so compaction actually runs on a dev broker, keeping restarts fast.
          { name: 'segment.ms', value: String(60 * 60 * 1000) },
          { name: 'min.cleanable.dirty.ratio', value: '0.1' },
        ]
      : [
          { name: 'cleanup.policy', value: 'delete' },
          { name: 'retention.bytes', value: String(cfg.topicRetentionBytes ?? DEFAULT_RETENTION_BYTES) },
          ...(SHORT_LIVED.has(p.key) ? [{ name: 'retention.ms', value: String(SHORT_LIVED.get(p.key)) }, { name: 'segment.ms', value: String(SHORT_LIVED.get(p.key)) }] : []),
        ],
  }));
  if (configs.length > 0) {
    try {
      await admin.createTopics({ topics: configs, waitForLeaders: true });
    } catch (err) {
      // Another process may have created them between list and create; that is fine.
      // A KRaft broker can also answer kafkajs's leader wait with UNKNOWN_TOPIC_OR_PARTITION for a
      // moment after creating the topics (its metadata cache lags the controller); kafkajs retries
      // only LEADER_NOT_AVAILABLE and gives up, so the wait is finished here.
      const e = err as Error & { type?: string };
      if (e.type === 'UNKNOWN_TOPIC_OR_PARTITION' || /does not host this topic-partition/i.test(e.message)) {
        await waitForLeaders(admin, configs.map((c) => c.topic));
      } else if (!/already exists/i.test(e.message)) {
        throw err;
      }
    }
  }
  return { created: missing.map((m) => m.topic), existing: plan.filter((p) => existing.has(p.topic)).map((p) => p.topic) };
}

/** Polls topic metadata until every partition of `topics` has a leader (bounded; the last error is thrown). */
async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      if (meta.length === topics.length && meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
      if (Date.now() > deadline) throw new Error(`topics without leaders after ${timeoutMs} ms: ${topics.join(', ')}`);
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
  'itemsCatalog', 'shadowProfiles', 'resolvers', 'alertRules', 'riskModels', 'segments', 'segmentStatus', 'segmentMemberships', 'pins', 'pinPolicies', 'banditSticky',
]);

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
      : [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.bytes', value: String(cfg.topicRetentionBytes ?? DEFAULT_RETENTION_BYTES) }],
  }));
  if (configs.length > 0) {
    try {
      await admin.createTopics({ topics: configs, waitForLeaders: true });
    } catch (err) {
      // Another process may have created them between list and create; that is fine.
      if (!/already exists/i.test((err as Error).message)) throw err;
    }
  }
  return { created: missing.map((m) => m.topic), existing: plan.filter((p) => existing.has(p.topic)).map((p) => p.topic) };
}

/**
 * Provision topics and register every topic's value schema: what `npm start` and integration
 * tests run before anything produces. Idempotent.
 */
import type { Kafka } from 'kafkajs';
import type { PenumbraConfig, TopicNames } from '../config/config.ts';
import { TOPIC_SCHEMAS } from '../../schemas/index.ts';
import { provisionTopics } from './topics.ts';
import { AvroCodec } from './registry.ts';
import { withRetry } from '../errors.ts';

export async function provisionAll(kafka: Kafka, cfg: Pick<PenumbraConfig, 'topics' | 'partitions' | 'schemaRegistryUrl'> & Partial<Pick<PenumbraConfig, 'topicRetentionBytes'>>, codec = new AvroCodec(cfg.schemaRegistryUrl)) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await provisionTopics(admin, cfg);
    await withRetry(() => codec.ensureCompatibility(), { retries: 10, initialMs: 200 });
    const ids: Record<string, number> = {};
    for (const key of Object.keys(cfg.topics) as (keyof TopicNames)[]) {
      const topic = cfg.topics[key];
      ids[topic] = await withRetry(() => codec.registerForTopic(topic, TOPIC_SCHEMAS[key]), { retries: 5, initialMs: 200 });
    }
    return { codec, topics, schemaIds: ids };
  } finally {
    await admin.disconnect();
  }
}

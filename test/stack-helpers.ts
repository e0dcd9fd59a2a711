/** Small helpers for integration tests running against the stack global-setup provides. */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

/**
 * A topic prefix unique to one test file and run, e.g. `t-resolver-3fa9c2d1.`: tests share one
 * broker and registry, and leftovers from earlier runs must not be read as this run's data.
 */
export function uniquePrefix(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'test';
  return `t-${slug}-${randomBytes(4).toString('hex')}.`;
}

export function testBrokers(): string[] {
  const raw = process.env.KAFKA_BROKERS;
  if (!raw) throw new Error('KAFKA_BROKERS is not set: run integration tests through jest --selectProjects integration (global-setup sets it)');
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

export function testRegistryUrl(): string {
  const raw = process.env.SCHEMA_REGISTRY_URL;
  if (!raw) throw new Error('SCHEMA_REGISTRY_URL is not set: run integration tests through jest --selectProjects integration (global-setup sets it)');
  return raw;
}

/** A kafkajs client for `test`; quiet unless `verbose` (or PENUMBRA_KAFKAJS_DEBUG) asks for warnings. */
export function kafkaFor(test: string, opts: { verbose?: boolean; brokers?: string[] } = {}): InstanceType<typeof Kafka> {
  return new Kafka({
    clientId: `penumbra-test-${test.replace(/[^A-Za-z0-9._-]+/g, '-')}`,
    brokers: opts.brokers ?? testBrokers(),
    logLevel: opts.verbose || process.env.PENUMBRA_KAFKAJS_DEBUG ? logLevel.WARN : logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 200 },
  });
}

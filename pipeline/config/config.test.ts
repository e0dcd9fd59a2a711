import { loadConfig } from './config.ts';
import { ConfigError } from '../errors.ts';

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const c = loadConfig({}, '/srv');
    expect(c.kafkaBrokers).toEqual(['127.0.0.1:9092']);
    expect(c.schemaRegistryUrl).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(c.port).toBe(7070);
    expect(c.dataDir).toBe('/srv/.penumbra');
    expect(c.topics.shadowProfiles).toBe('penumbra.shadow.profiles');
    expect(c.externalCluster).toBe(false);
  });

  it('uses an existing cluster when both variables are set', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'k1:9092,k2:9092', SCHEMA_REGISTRY_URL: 'http://reg:8080/apis/ccompat/v7/' });
    expect(c.externalCluster).toBe(true);
    expect(c.kafkaBrokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.schemaRegistryUrl).toBe('http://reg:8080/apis/ccompat/v7');
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PENUMBRA_PARTITIONS: '0' }, 'PENUMBRA_PARTITIONS'],
    [{ PENUMBRA_LOG_LEVEL: 'loud' }, 'PENUMBRA_LOG_LEVEL'],
    [{ PENUMBRA_TOPC_PREFIX: 'x.' }, 'PENUMBRA_TOPC_PREFIX'],
    [{ KAFKA_BROKERS: 'k1:9092' }, 'SCHEMA_REGISTRY_URL'],
    [{ KAFKA_BROKERS: 'no port', SCHEMA_REGISTRY_URL: 'http://r' }, 'KAFKA_BROKERS'],
    [{ PENUMBRA_WEBHOOK_URL: 'ftp://x' }, 'PENUMBRA_WEBHOOK_URL'],
  ])('refuses %j naming %s', (env, name) => {
    let err: unknown;
    try {
      loadConfig(env as Record<string, string>);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path)).toContain(name);
    expect((err as Error).message).toContain(name);
  });
});

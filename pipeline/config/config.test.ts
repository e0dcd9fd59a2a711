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

  it('item pages default to PORT + 1 (any free port when PORT is 0); DuckDB memory defaults to 512MB', () => {
    expect(loadConfig({ PORT: '8000' }).contentPort).toBe(8001);
    expect(loadConfig({ PORT: '0' }).contentPort).toBe(0);
    expect(loadConfig({ PORT: '8000', PENUMBRA_CONTENT_PORT: '9000' }).contentPort).toBe(9000);
    expect(loadConfig({}).duckdbMemoryLimit).toBe('512MB');
    expect(loadConfig({ PENUMBRA_DUCKDB_MEMORY_LIMIT: '2GB' }).duckdbMemoryLimit).toBe('2GB');
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
    [{ PENUMBRA_DUCKDB_MEMORY_LIMIT: 'lots' }, 'PENUMBRA_DUCKDB_MEMORY_LIMIT'],
    [{ PORT: '7070', PENUMBRA_CONTENT_PORT: '7070' }, 'PENUMBRA_CONTENT_PORT'],
    [{ PENUMBRA_PUBLIC_URL: 'http://a.example:7070', PENUMBRA_CONTENT_URL: 'http://a.example:7070/items' }, 'PENUMBRA_CONTENT_URL'],
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

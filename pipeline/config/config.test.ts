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

  it('reads the hardening settings (issue 17; issue 15 item 8)', () => {
    const d = loadConfig({});
    expect(d.rateLimits.resolve).toEqual({ perSecond: 200, burst: 400 });
    expect(d.rateLimits.authFailures).toEqual({ perSecond: 1, burst: 20 });
    expect(d.trustProxy).toBe('loopback');
    expect(d.listeners).toEqual({ maxConnections: 10000, headersTimeoutMs: 15000, requestTimeoutMs: 300000, streamsPerToken: 8 });
    expect(d.topicRetentionBytes).toBe(1073741824);
    expect(d.ingestUrlAllowPrivate).toBe(false);
    const c = loadConfig({
      PENUMBRA_RATE_RESOLVE: '2000:5000', PENUMBRA_RATE_FILES: '0', PENUMBRA_RATE_ARTIFACTS: '2', PENUMBRA_TRUST_PROXY: '10.0.0.0/8, loopback',
      PENUMBRA_WEBHOOK_URL: 'https://hooks.example.com/x', PENUMBRA_WEBHOOK_SECRET: 'whsec-0123456789abcdef', PENUMBRA_CONTENT_URL: 'https://*.items.example.com',
      PENUMBRA_TOPIC_RETENTION_BYTES: '-1', PENUMBRA_TOKEN: 'used-by-the-cli-only',
    });
    expect(c.rateLimits.resolve).toEqual({ perSecond: 2000, burst: 5000 });
    expect(c.rateLimits.files.perSecond).toBe(0);
    expect(c.rateLimits.artifacts).toEqual({ perSecond: 2, burst: 4 });
    expect(c.trustProxy).toBe('10.0.0.0/8, loopback');
    expect(loadConfig({ PENUMBRA_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ PENUMBRA_TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(c.webhookSecret).toBe('whsec-0123456789abcdef');
    expect(c.contentUrl).toBe('https://*.items.example.com');
    expect(c.topicRetentionBytes).toBe(-1);
  });

  it('the sequential tuning N* defaults to 5000 and is configurable', () => {
    expect(loadConfig({}).sequentialTuning).toBe(5000);
    expect(loadConfig({ PENUMBRA_SEQUENTIAL_TUNING: '20000' }).sequentialTuning).toBe(20000);
  });

  it('parses PENUMBRA_ASSIGNMENT_KEYS into a key ring (null when unset: the data folder\'s key file)', () => {
    expect(loadConfig({}).assignmentKeys).toBeNull();
    const secret = Buffer.alloc(32, 7).toString('base64');
    const ring = loadConfig({ PENUMBRA_ASSIGNMENT_KEYS: `new:${secret},old:${secret}` }).assignmentKeys!;
    expect(ring.map((k) => k.kid)).toEqual(['new', 'old']);
    expect(ring[0].secret).toEqual(Buffer.alloc(32, 7));
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
    [{ PENUMBRA_SEQUENTIAL_TUNING: '0' }, 'PENUMBRA_SEQUENTIAL_TUNING'],
    [{ PORT: '7070', PENUMBRA_CONTENT_PORT: '7070' }, 'PENUMBRA_CONTENT_PORT'],
    [{ PENUMBRA_ASSIGNMENT_KEYS: 'k1:c2hvcnQ=' }, 'PENUMBRA_ASSIGNMENT_KEYS'],
    [{ PENUMBRA_PUBLIC_URL: 'http://a.example:7070', PENUMBRA_CONTENT_URL: 'http://a.example:7070/items' }, 'PENUMBRA_CONTENT_URL'],
    [{ PENUMBRA_WEBHOOK_URL: 'https://hooks.example.com/x' }, 'PENUMBRA_WEBHOOK_SECRET'],
    [{ PENUMBRA_WEBHOOK_URL: 'https://hooks.example.com/x', PENUMBRA_WEBHOOK_SECRET: 'short' }, 'PENUMBRA_WEBHOOK_SECRET'],
    [{ PENUMBRA_RATE_RESOLVE: 'fast' }, 'PENUMBRA_RATE_RESOLVE'],
    [{ PENUMBRA_RATE_TELEMETRY: '10:0' }, 'PENUMBRA_RATE_TELEMETRY'],
    [{ PENUMBRA_TRUST_PROXY: 'not an address' }, 'PENUMBRA_TRUST_PROXY'],
    [{ PENUMBRA_INGEST_URL_ALLOW: 'cdn.example.com' }, 'PENUMBRA_INGEST_URL_ALLOW'],
    [{ PENUMBRA_INGEST_URL_ALLOW: 'https://user@cdn.example.com/' }, 'PENUMBRA_INGEST_URL_ALLOW'],
    [{ PENUMBRA_INGEST_URL_ALLOW_PRIVATE: 'yes' }, 'PENUMBRA_INGEST_URL_ALLOW_PRIVATE'],
    [{ PENUMBRA_CONTENT_URL: 'https://items.*.example.com' }, 'PENUMBRA_CONTENT_URL'],
    [{ PENUMBRA_TOPIC_RETENTION_BYTES: '0' }, 'PENUMBRA_TOPIC_RETENTION_BYTES'],
    [{ PENUMBRA_MAX_CONNECTIONS: '1' }, 'PENUMBRA_MAX_CONNECTIONS'],
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

/**
 * The one typed configuration of Penumbra, read from the environment (and an optional JSON
 * file named by PENUMBRA_CONFIG_FILE whose keys are the same variable names). Validated once
 * at start: an unknown PENUMBRA_* variable or an invalid value stops the process with a
 * ConfigError naming the variable, rather than running half-configured.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, type FieldIssue } from '../errors.ts';

export interface TopicNames {
  itemsIngest: string;
  itemsCatalog: string;
  shadowProfiles: string;
  shadowCommands: string;
  shadowOutcomes: string;
  resolvers: string;
  assignments: string;
  telemetryRaw: string;
  telemetryMetrics: string;
  alerts: string;
  alertRules: string;
  audit: string;
  dlq: string;
}

export interface PenumbraConfig {
  /** True when KAFKA_BROKERS/SCHEMA_REGISTRY_URL were given: the local stack is not started. */
  externalCluster: boolean;
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  host: string;
  port: number;
  /** Base URL devices and injected libraries use to reach us. */
  publicUrl: string;
  /** Port of the item-pages origin (/d/): never the console's origin (docs/security.md). 0 = any free port. */
  contentPort: number;
  /** Base URL of the item pages; null = http://HOST:<bound content port>. */
  contentUrl: string | null;
  dataDir: string;
  cacheDir: string;
  topicPrefix: string;
  topics: TopicNames;
  partitions: number;
  tokens: string | null;
  tokensFile: string | null;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  ingestInlineMaxBytes: number;
  ingestUrlAllow: string[];
  maxUploadBytes: number;
  webhookUrl: string | null;
  /** DuckDB buffer-pool limit of the warehouse sink (DuckDB's own default is 80 % of RAM). */
  duckdbMemoryLimit: string;
  stack: { kafkaPort: number; controllerPort: number; registryPort: number; registryManagementPort: number };
}

/** Every variable Penumbra reads. Anything else starting with PENUMBRA_ is refused. */
export const ENV_VARS = {
  KAFKA_BROKERS: 'Comma-separated bootstrap servers of an existing Kafka; skips the local stack',
  SCHEMA_REGISTRY_URL: 'Confluent-compatible registry URL (with /apis/ccompat/v7 for Apicurio)',
  HOST: 'Interface the API binds to',
  PORT: 'API, console and device routes port',
  PENUMBRA_PUBLIC_URL: 'Base URL devices use to reach the API (defaults to http://HOST:PORT)',
  PENUMBRA_CONTENT_PORT: 'Port of the item pages (/d/), a separate origin from the console (default PORT+1; 0 = any free port)',
  PENUMBRA_CONTENT_URL: 'Base URL of the item pages as devices reach them (defaults to http://HOST:PENUMBRA_CONTENT_PORT)',
  PENUMBRA_DATA_DIR: 'Data folder: DuckDB, blobs, Parquet, stack data',
  PENUMBRA_CACHE_DIR: 'Folder for downloaded Kafka/registry jars',
  PENUMBRA_TOPIC_PREFIX: 'Prefix of every topic name (default "penumbra.")',
  PENUMBRA_PARTITIONS: 'Partitions of newly created topics',
  PENUMBRA_TOKENS: 'Operator tokens: name:role:token,…',
  PENUMBRA_TOKENS_FILE: 'File with operator tokens (same format, one per line)',
  PENUMBRA_LOG_LEVEL: 'debug | info | warn | error',
  PENUMBRA_INGEST_INLINE_MAX_BYTES: 'Largest archive carried inline on penumbra.items.ingest',
  PENUMBRA_INGEST_URL_ALLOW: 'Comma-separated URL prefixes ingest records may reference',
  PENUMBRA_MAX_UPLOAD_BYTES: 'Largest archive accepted by POST /api/v1/items',
  PENUMBRA_WEBHOOK_URL: 'Optional webhook receiving alert records',
  PENUMBRA_DUCKDB_MEMORY_LIMIT: 'Memory limit of the warehouse DuckDB, e.g. 512MB or 2GB (default 512MB)',
  PENUMBRA_CONFIG_FILE: 'Optional JSON file with any of these variables',
  PENUMBRA_KAFKA_PORT: 'Local stack: Kafka broker port',
  PENUMBRA_CONTROLLER_PORT: 'Local stack: KRaft controller port',
  PENUMBRA_REGISTRY_PORT: 'Local stack: registry HTTP port',
  PENUMBRA_REGISTRY_MANAGEMENT_PORT: 'Local stack: registry management (health/metrics) port',
  // Read by the notebooks only (listed so an analyst's shell does not stop `npm start`).
  PENUMBRA_ITEM: 'Notebooks: item the readout is about',
  PENUMBRA_NOTEBOOK_OUT: 'Notebooks: where to write the computed numbers (CI comparison)',
} as const;

export type EnvName = keyof typeof ENV_VARS;

export function topicNames(prefix: string): TopicNames {
  return {
    itemsIngest: `${prefix}items.ingest`,
    itemsCatalog: `${prefix}items.catalog`,
    shadowProfiles: `${prefix}shadow.profiles`,
    shadowCommands: `${prefix}shadow.commands`,
    shadowOutcomes: `${prefix}shadow.outcomes`,
    resolvers: `${prefix}resolvers`,
    assignments: `${prefix}assignments`,
    telemetryRaw: `${prefix}telemetry.raw`,
    telemetryMetrics: `${prefix}telemetry.metrics`,
    alerts: `${prefix}alerts`,
    alertRules: `${prefix}alert.rules`,
    audit: `${prefix}audit`,
    dlq: `${prefix}dlq`,
  };
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env, cwd = process.cwd()): PenumbraConfig {
  const issues: FieldIssue[] = [];
  const merged: Env = { ...env };
  const file = env.PENUMBRA_CONFIG_FILE;
  if (file) {
    try {
      const parsed = JSON.parse(readFileSync(path.resolve(cwd, file), 'utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(parsed)) {
        if (!(k in ENV_VARS)) issues.push({ path: `${file}:${k}`, message: `unknown setting ${k}` });
        // The environment wins over the file so a one-off override needs no file edit.
        else if (merged[k] === undefined) merged[k] = String(v);
      }
    } catch (err) {
      throw new ConfigError(`PENUMBRA_CONFIG_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  for (const k of Object.keys(env)) {
    if (k.startsWith('PENUMBRA_') && !(k in ENV_VARS)) {
      issues.push({ path: k, message: `unknown variable ${k}; known: ${Object.keys(ENV_VARS).filter((n) => n.startsWith('PENUMBRA_')).join(', ')}` });
    }
  }
  const int = (name: EnvName, def: number, min: number, max: number): number => {
    const raw = merged[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      issues.push({ path: name, message: `${name} must be an integer in ${min}..${max}, got "${raw}"` });
      return def;
    }
    return n;
  };
  const url = (name: EnvName, def: string | null): string | null => {
    const raw = merged[name];
    if (raw === undefined || raw === '') return def;
    try {
      const u = new URL(raw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
      return raw.replace(/\/+$/, '');
    } catch {
      issues.push({ path: name, message: `${name} must be an absolute http(s) URL, got "${raw}"` });
      return def;
    }
  };

  const host = merged.HOST || '127.0.0.1';
  const port = int('PORT', 7070, 0, 65535);
  const kafkaPort = int('PENUMBRA_KAFKA_PORT', 9092, 1, 65535);
  const controllerPort = int('PENUMBRA_CONTROLLER_PORT', 9093, 1, 65535);
  const registryPort = int('PENUMBRA_REGISTRY_PORT', 8081, 1, 65535);
  const registryManagementPort = int('PENUMBRA_REGISTRY_MANAGEMENT_PORT', 9081, 1, 65535);

  const brokersRaw = merged.KAFKA_BROKERS;
  let kafkaBrokers = [`127.0.0.1:${kafkaPort}`];
  if (brokersRaw) {
    kafkaBrokers = brokersRaw.split(',').map((s) => s.trim()).filter(Boolean);
    if (kafkaBrokers.length === 0 || kafkaBrokers.some((b) => !/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(b))) {
      issues.push({ path: 'KAFKA_BROKERS', message: `KAFKA_BROKERS must be host:port[,host:port…], got "${brokersRaw}"` });
    }
  }
  const schemaRegistryUrl = url('SCHEMA_REGISTRY_URL', `http://127.0.0.1:${registryPort}/apis/ccompat/v7`)!;
  const externalCluster = Boolean(brokersRaw) || Boolean(merged.SCHEMA_REGISTRY_URL);
  if (Boolean(brokersRaw) !== Boolean(merged.SCHEMA_REGISTRY_URL)) {
    issues.push({
      path: brokersRaw ? 'SCHEMA_REGISTRY_URL' : 'KAFKA_BROKERS',
      message: 'KAFKA_BROKERS and SCHEMA_REGISTRY_URL go together: set both to use an existing cluster, or neither to run the local stack',
    });
  }

  const prefix = merged.PENUMBRA_TOPIC_PREFIX ?? 'penumbra.';
  if (!/^[A-Za-z0-9._-]{0,100}$/.test(prefix)) {
    issues.push({ path: 'PENUMBRA_TOPIC_PREFIX', message: `PENUMBRA_TOPIC_PREFIX may hold letters, digits, '.', '_' and '-' only, got "${prefix}"` });
  }
  const logLevel = (merged.PENUMBRA_LOG_LEVEL ?? 'info') as PenumbraConfig['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    issues.push({ path: 'PENUMBRA_LOG_LEVEL', message: `PENUMBRA_LOG_LEVEL must be debug, info, warn or error, got "${logLevel}"` });
  }
  const dataDir = path.resolve(cwd, merged.PENUMBRA_DATA_DIR || '.penumbra');
  const cacheDir = path.resolve(cwd, merged.PENUMBRA_CACHE_DIR || '.cache');
  const publicUrl = url('PENUMBRA_PUBLIC_URL', null) ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // Item pages run uploaded HTML and JS: they get their own origin (another port) so they can
  // never read the console's session or call the API as the operator looking at them.
  const contentPort = int('PENUMBRA_CONTENT_PORT', port === 0 ? 0 : Math.min(port + 1, 65535), 0, 65535);
  if (contentPort !== 0 && contentPort === port) {
    issues.push({ path: 'PENUMBRA_CONTENT_PORT', message: `PENUMBRA_CONTENT_PORT must differ from PORT (${port}): item pages must not share the console's origin` });
  }
  // DuckDB would otherwise cache up to 80 % of the machine's RAM next to the API and processors.
  const duckdbMemoryLimit = (merged.PENUMBRA_DUCKDB_MEMORY_LIMIT ?? '512MB').trim();
  if (!/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(duckdbMemoryLimit)) {
    issues.push({ path: 'PENUMBRA_DUCKDB_MEMORY_LIMIT', message: `PENUMBRA_DUCKDB_MEMORY_LIMIT must be a size such as 512MB or 2GB, got "${duckdbMemoryLimit}"` });
  }
  const contentUrl = url('PENUMBRA_CONTENT_URL', null);
  if (contentUrl && new URL(contentUrl).origin === new URL(publicUrl).origin) {
    issues.push({ path: 'PENUMBRA_CONTENT_URL', message: `PENUMBRA_CONTENT_URL must be another origin than PENUMBRA_PUBLIC_URL (${publicUrl})` });
  }

  const cfg: PenumbraConfig = {
    externalCluster,
    kafkaBrokers,
    schemaRegistryUrl,
    host,
    port,
    publicUrl,
    contentPort,
    contentUrl,
    dataDir,
    cacheDir,
    topicPrefix: prefix,
    topics: topicNames(prefix),
    partitions: int('PENUMBRA_PARTITIONS', 3, 1, 1000),
    tokens: merged.PENUMBRA_TOKENS || null,
    tokensFile: merged.PENUMBRA_TOKENS_FILE ? path.resolve(cwd, merged.PENUMBRA_TOKENS_FILE) : null,
    logLevel,
    ingestInlineMaxBytes: int('PENUMBRA_INGEST_INLINE_MAX_BYTES', 8 * 1024 * 1024, 0, 64 * 1024 * 1024),
    ingestUrlAllow: (merged.PENUMBRA_INGEST_URL_ALLOW ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    maxUploadBytes: int('PENUMBRA_MAX_UPLOAD_BYTES', 100 * 1024 * 1024, 1024, 2 * 1024 * 1024 * 1024),
    webhookUrl: url('PENUMBRA_WEBHOOK_URL', null),
    duckdbMemoryLimit,
    stack: { kafkaPort, controllerPort, registryPort, registryManagementPort },
  };
  if (issues.length > 0) {
    throw new ConfigError(`Invalid configuration:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
  }
  return cfg;
}

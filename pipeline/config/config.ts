/**
 * The one typed configuration of Penumbra, read from the environment (and an optional JSON
 * file named by PENUMBRA_CONFIG_FILE whose keys are the same variable names). Validated once
 * at start: an unknown PENUMBRA_* variable or an invalid value stops the process with a
 * ConfigError naming the variable, rather than running half-configured.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import proxyaddr from 'proxy-addr';
import { ConfigError, type FieldIssue } from '../errors.ts';
import { parseKeyRing, type KeyRing } from '../assignment-token/token.ts';
import { parseRoles, type Roles } from '../roles/roles.ts';

/** A per-client token bucket: `perSecond` refill, `burst` capacity; perSecond 0 = no limit. */
export interface RateSpec {
  perSecond: number;
  burst: number;
}

/** Per-client limits of the unauthenticated routes (docs/security.md, "Input limits"). */
export interface RateLimits {
  resolve: RateSpec;
  telemetry: RateSpec;
  files: RateSpec;
  runtimeConfig: RateSpec;
  artifacts: RateSpec;
  /** Failed authentications (unknown bearer token) per client before 429. */
  authFailures: RateSpec;
  /** Clients remembered per bucket set (least recently seen evicted first). */
  maxClients: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  resolve: { perSecond: 200, burst: 400 },
  telemetry: { perSecond: 500, burst: 1000 },
  files: { perSecond: 200, burst: 400 },
  runtimeConfig: { perSecond: 50, burst: 100 },
  artifacts: { perSecond: 5, burst: 20 },
  authFailures: { perSecond: 1, burst: 20 },
  maxClients: 100_000,
};

/** Connection limits of each listener (API and item pages). */
export interface ListenerLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Concurrent GET /api/v1/stream connections per operator token. */
  streamsPerToken: number;
}

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
  /** [added #15] telemetry.raw re-keyed by item id (pipeline/telemetry/repartition.ts): one metrics member owns each item. */
  telemetryByItem: string;
  alerts: string;
  alertRules: string;
  audit: string;
  dlq: string;
  /** [added #13] change features of each ingested version (pipeline/change-features). */
  changeFeatures: string;
  /** [added #13] rollout-risk scores (pipeline/risk-model). */
  riskScores: string;
  /** [added #13] how version rollouts ended: the risk model's labels. */
  riskOutcomes: string;
  /** [added #13] trained risk model versions (compacted). */
  riskModels: string;
  /** Behavioural segment definitions (pipeline/segments), compacted by segment id. */
  segments: string;
  /** Last evaluation of each segment, compacted by segment id. */
  segmentStatus: string;
  /** Segments of each user, compacted by userId (data engineers consume it). */
  segmentMemberships: string;
  /** Pinned variants (pipeline/preferences), compacted by '<itemId>/<userId>'. */
  pins: string;
  /** What devices may pin themselves to, compacted by itemId. */
  pinPolicies: string;
  /** Sticky bandit assignments (compacted; pipeline/bandit). */
  banditSticky: string;
  /** Accepted rollout/bandit/promotion decisions with their evidence (the timeline). */
  rolloutDecisions: string;
  /** [added #15] latest comparisons per item (compacted by itemId; pipeline/comparisons-topic): every API process follows them. */
  comparisons: string;
  /**
   * [added #15] provisional (still open) 10 s windows, keyed by itemId, short retention: the
   * owning processors member writes them every 250 ms for the API processes of a split deployment
   * (pipeline/telemetry README "Live windows across processes"). Not a record of anything.
   */
  telemetryLive: string;
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
  /** What this process runs (PENUMBRA_ROLES; `penumbra start --role` overrides): pipeline/roles. */
  roles: Roles;
  topics: TopicNames;
  partitions: number;
  tokens: string | null;
  tokensFile: string | null;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  ingestInlineMaxBytes: number;
  ingestUrlAllow: string[];
  maxUploadBytes: number;
  webhookUrl: string | null;
  /** HMAC-SHA256 key of the webhook's X-Penumbra-Signature header (required with webhookUrl). */
  webhookSecret: string | null;
  /** Ingest by URL may reach private, loopback and link-local addresses (development only). */
  ingestUrlAllowPrivate: boolean;
  /** Express `trust proxy` value: which peers may set X-Forwarded-For (PENUMBRA_TRUST_PROXY). */
  trustProxy: string | number | boolean;
  rateLimits: RateLimits;
  listeners: ListenerLimits;
  /** retention.bytes of new delete-policy topics, per partition; -1 = no size limit. */
  topicRetentionBytes: number;
  /** Bytes of single files /d/ keeps in memory (LRU). */
  fileCacheBytes: number;
  /** DuckDB buffer-pool limit of the warehouse sink (DuckDB's own default is 80 % of RAM). */
  duckdbMemoryLimit: string;
  /** Behavioural segments (pipeline/segments): size limits and the shortest schedule. */
  segments: { maxMembers: number; totalMembers: number; minIntervalSeconds: number };
  /** Pins every resolver holds at most (pipeline/preferences); new pins past it are refused. */
  pinsMax: number;
  /** Exposures (penumbra.assignments) produced from a worker thread (pipeline/resolver/exposure-producer.ts). */
  exposureWorker: boolean;
  /** V8's parallel scavenger in the resolver-only process: auto = off on ≤ 2 cores (pipeline/resolver/gc.ts). */
  resolverParallelScavenge: 'auto' | 'true' | 'false';
  /** [#13] Rollout-risk model: retraining schedule, training window and minimum history, Python interpreter. */
  risk: { retrainHours: number; windowDays: number; minRows: number; minClass: number; python: string; holdPercent: number; forecastHoldPercent: number };
  /**
   * HS256 key ring of assignment tokens (pipeline/assignment-token), first signs, all verify;
   * null = not configured: createPenumbra then uses `<data>/assignment-keys`, generated once
   * (pipeline/assignment-token/key-file.ts), so resolve always issues tokens.
   */
  assignmentKeys: KeyRing | null;
  /** Expo Updates code signing: PEM RSA private key file and the keyid apps verify with (pipeline/mobile). */
  expoSigningKeyFile: string | null;
  expoSigningKeyId: string;
  /** Telemetry event ids remembered for de-duplication: arrival span (minutes) and most ids. */
  dedupHorizonMinutes: number;
  dedupMaxIds: number;
  /** Raw events (telemetry_events, assignments) kept in DuckDB; older ones live in Parquet only. 0 = keep all. */
  warehouseRetentionHours: number;
  /** Where item archives live: the data folder, or the S3-compatible bucket of `s3`. */
  blobStore: 'fs' | 's3';
  /** Also publish the warehouse's Parquet exports to the bucket of `s3` (Hive layout under `<prefix>warehouse/`). */
  parquetToS3: boolean;
  /**
   * [added #15] Where Penumbra's own Parquet readers (older metric windows, per-segment results,
   * segments) read the warehouse export: `local` = `<data>/warehouse/parquet` (the sink's folder,
   * or a shared mount), `s3` = the bucket's export, read directly through DuckDB's httpfs when
   * the extension is in the cache, else synced into `<data>/warehouse/parquet-s3`
   * (connectors/parquet-source).
   */
  parquetRead: 'local' | 's3';
  /**
   * Where the metrics processor sends the provisional open windows of the live view
   * (PENUMBRA_LIVE_WINDOWS): `local` — this process's live stream only; `topic` — also
   * `<prefix>telemetry.live` for other processes' streams; `auto` (default) — `topic` when this
   * process has no `api` role (its windows would reach nobody otherwise).
   */
  liveWindows: 'auto' | 'local' | 'topic';
  /** The S3-compatible object store, when blobs or Parquet go there; null otherwise. */
  s3: S3Settings | null;
  /** N* of the live sequential comparisons: total observations where the always-valid interval is tightest (pipeline/stats/README.md). */
  sequentialTuning: number;
  /** The owner's keep-alive period for an item's record on the comparisons topic, ms (pipeline/comparisons-topic). */
  comparisonsRefreshMs: number;
  /** A follower's record older than this (by the owner's publishedAt) is answered `stale: true`, ms (default 3 × the refresh period). */
  comparisonsStaleMs: number;
  /** Shortest analysisSeconds a rollout plan may have (tests lower it). */
  rolloutMinAnalysisSeconds: number;
  /** Shortest reweightSeconds a bandit may have (the issue's "≥ 1 min", lowered only by tests). */
  banditMinReweightSeconds: number;
  stack: { kafkaPort: number; controllerPort: number; registryPort: number; registryManagementPort: number; s3Port: number };
}

export interface S3Settings {
  /** Endpoint URL; for `local` the stack's S3Proxy on 127.0.0.1:stack.s3Port. */
  endpoint: string;
  /** No endpoint was configured: the local stack runs S3Proxy (loopback, no authorization). */
  local: boolean;
  bucket: string;
  region: string;
  /** Null: the AWS SDK's default chain (AWS_ACCESS_KEY_ID, profiles, instance roles). */
  accessKeyId: string | null;
  secretAccessKey: string | null;
  /** Key prefix inside the bucket ('' or ending in '/'). */
  prefix: string;
  /** Path-style URLs (http://host/bucket/key): what S3Proxy, MinIO and most non-AWS stores need. */
  forcePathStyle: boolean;
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
  PENUMBRA_CACHE_DIR: 'Folder for downloaded Kafka/registry jars and DuckDB\'s httpfs extension (duckdb-extensions/)',
  PENUMBRA_TOPIC_PREFIX: 'Prefix of every topic name (default "penumbra.")',
  PENUMBRA_ROLES: 'What this process runs: comma list of api, processors, sink (default all; docs/scaling.md). `penumbra start --role` overrides it',
  PENUMBRA_PARTITIONS: 'Partitions of newly created topics',
  PENUMBRA_TOKENS: 'Operator tokens: name:role:token,…',
  PENUMBRA_TOKENS_FILE: 'File with operator tokens (same format, one per line)',
  PENUMBRA_LOG_LEVEL: 'debug | info | warn | error',
  PENUMBRA_INGEST_INLINE_MAX_BYTES: 'Largest archive carried inline on penumbra.items.ingest',
  PENUMBRA_INGEST_URL_ALLOW: 'Comma-separated absolute URLs (origin + path prefix) ingest records may reference',
  PENUMBRA_INGEST_URL_ALLOW_PRIVATE: 'true lets ingest by URL reach private, loopback and link-local addresses (development only; default false)',
  PENUMBRA_MAX_UPLOAD_BYTES: 'Largest archive accepted by POST /api/v1/items',
  PENUMBRA_WEBHOOK_URL: 'Optional webhook receiving alert records',
  PENUMBRA_WEBHOOK_SECRET: 'HMAC key (>= 16 characters) signing webhook bodies; required with PENUMBRA_WEBHOOK_URL',
  PENUMBRA_TRUST_PROXY: 'Peers trusted to set X-Forwarded-For: loopback (default), false, a hop count, or addresses/CIDRs/loopback/linklocal/uniquelocal, comma-separated',
  PENUMBRA_RATE_RESOLVE: 'Per-client limit of /api/v1/resolve and /launch: perSecond:burst (default 200:400; 0 = off)',
  PENUMBRA_RATE_TELEMETRY: 'Per-client limit of POST /api/v1/telemetry batches: perSecond:burst (default 500:1000)',
  PENUMBRA_RATE_FILES: 'Per-client limit of item page files /d/…: perSecond:burst (default 200:400)',
  PENUMBRA_RATE_RUNTIME_CONFIG: 'Per-client limit of runtime-config: perSecond:burst (default 50:100)',
  PENUMBRA_RATE_ARTIFACTS: 'Per-client limit of artifact downloads: perSecond:burst (default 5:20)',
  PENUMBRA_RATE_AUTH_FAILURES: 'Failed authentications per client before 429: perSecond:burst (default 1:20)',
  PENUMBRA_RATE_MAX_CLIENTS: 'Clients remembered per limit (least recently seen evicted; default 100000)',
  PENUMBRA_MAX_CONNECTIONS: 'Open connections per listener (API, item pages) before new ones are refused (default 10000)',
  PENUMBRA_HEADERS_TIMEOUT_MS: 'Time a client has to send request headers (default 15000)',
  PENUMBRA_REQUEST_TIMEOUT_MS: 'Time a client has to send a whole request, uploads included (default 300000)',
  PENUMBRA_STREAMS_PER_TOKEN: 'Concurrent live streams (GET /api/v1/stream) per operator token (default 8)',
  PENUMBRA_TOPIC_RETENTION_BYTES: 'retention.bytes per partition of new non-compacted topics (default 1073741824; -1 = no size limit)',
  PENUMBRA_FILE_CACHE_BYTES: 'Memory for single item-page files served under /d/ (LRU; default 67108864)',
  PENUMBRA_TOKEN: 'CLI: operator token for commands that call the API (instead of --token)',
  PENUMBRA_KAFKAJS_STOCK: '1 turns off the kafkajs produce-encoding patch (pipeline/kafka/kafkajs-encoding.ts) — for same-run comparisons in benches; default off',
  PENUMBRA_DUCKDB_MEMORY_LIMIT: 'Memory limit of the warehouse DuckDB, e.g. 512MB or 2GB (default 512MB)',
  PENUMBRA_ASSIGNMENT_KEYS: 'Assignment token keys kid:base64secret,… (first signs, all verify; ≥ 32 bytes each; shared by every process of a deployment; unset: <data>/assignment-keys)',
  PENUMBRA_EXPO_SIGNING_KEY_FILE: 'PEM RSA private key signing Expo Updates manifests and directives (apps send expo-expect-signature)',
  PENUMBRA_EXPO_SIGNING_KEY_ID: 'keyid of that key, as in the app\'s codeSigningMetadata (default "main")',
  PENUMBRA_DEDUP_HORIZON_MINUTES: 'Warehouse: an event id repeated within this many minutes of arrival is stored once (default 60)',
  PENUMBRA_DEDUP_MAX_IDS: 'Warehouse: most event ids remembered for that (16 bytes each; default 4000000)',
  PENUMBRA_WAREHOUSE_RETENTION_HOURS: 'Hours raw events stay in DuckDB once exported to Parquet (default 168; 0 = keep all)',
  PENUMBRA_BLOB_STORE: 'fs (default: <data>/blobs) or s3 (the PENUMBRA_S3_* bucket)',
  PENUMBRA_PARQUET_S3: 'true: also publish Parquet exports to the PENUMBRA_S3_* bucket (Hive layout under <prefix>warehouse/)',
  PENUMBRA_LIVE_WINDOWS: 'auto (default), local or topic: where the metrics processor sends the provisional open 10 s windows of the live view — topic also writes them to <prefix>telemetry.live, which every API process relays on its stream (auto: topic when the process has no api role)',
  PENUMBRA_PARQUET_READ: 'local (default: <data>/warehouse/parquet) or s3: Penumbra\'s own Parquet readers read the bucket\'s export (<prefix>warehouse/: directly with DuckDB httpfs, fetched from PyPI into PENUMBRA_CACHE_DIR; without it synced into <data>/warehouse/parquet-s3)',
  PENUMBRA_S3_ENDPOINT: 'S3-compatible endpoint URL; unset with s3 in use: the local stack starts S3Proxy',
  PENUMBRA_S3_BUCKET: 'Bucket for blobs and Parquet (default penumbra; created if missing)',
  PENUMBRA_S3_REGION: 'Region of the bucket (default us-east-1)',
  PENUMBRA_S3_ACCESS_KEY_ID: 'Access key (default: the AWS SDK chain; the local S3Proxy needs none)',
  PENUMBRA_S3_SECRET_ACCESS_KEY: 'Secret key matching PENUMBRA_S3_ACCESS_KEY_ID',
  PENUMBRA_S3_PREFIX: 'Key prefix inside the bucket (default none)',
  PENUMBRA_S3_FORCE_PATH_STYLE: 'true/false: path-style URLs (default true with an endpoint, false for AWS)',
  PENUMBRA_S3_PORT: 'Local stack: S3Proxy port (default 8333)',
  PENUMBRA_RISK_RETRAIN_HOURS: 'Retrain the rollout-risk model every N hours (default 24; 0 = only on demand)',
  PENUMBRA_RISK_WINDOW_DAYS: 'Training window of the rollout-risk model in days (default 90)',
  PENUMBRA_RISK_MIN_ROWS: 'Labelled rollouts needed to train a risk model (default 30; fewer → the documented prior)',
  PENUMBRA_RISK_MIN_CLASS: 'Regressions and successes each needed to train (default 5)',
  PENUMBRA_RISK_HOLD_PERCENT: 'Hold a rollout step early when its live-updated risk reaches this percentage (default 90; 0 = never)',
  PENUMBRA_FORECAST_HOLD_PERCENT: 'Hold a rollout step early when the forecast probability that a guardrail fails by the step\'s analysis reaches this percentage (default 90; 0 = never)',
  PENUMBRA_PYTHON: 'Python interpreter that trains the risk model (default python3; needs scikit-learn, skl2onnx)',
  PENUMBRA_SEQUENTIAL_TUNING: 'N* of the live always-valid comparisons: total observations (both arms) at which the interval is tightest (default 5000)',
  PENUMBRA_COMPARISONS_REFRESH_MS: 'The metrics member owning an item republishes its comparisons record (a keep-alive) this often, ms (default 10000: one window)',
  PENUMBRA_COMPARISONS_STALE_MS: 'A process that follows an item\'s comparisons answers them stale when the owner\'s latest record is older than this, ms (default 3 × PENUMBRA_COMPARISONS_REFRESH_MS)',
  PENUMBRA_SEGMENT_MAX_MEMBERS: 'Largest maxMembers a behavioural segment may have (default 1000000)',
  PENUMBRA_SEGMENT_TOTAL_MEMBERS: 'Members of all segments together that every resolver holds, 8 bytes each (default 4000000)',
  PENUMBRA_SEGMENT_MIN_INTERVAL_SECONDS: 'Shortest evaluation schedule of a segment, seconds (default 60)',
  PENUMBRA_PINS_MAX: 'Pinned users (all items) every resolver holds; new pins past it are refused (default 100000)',
  PENUMBRA_EXPOSURE_WORKER: 'Produce the resolver\'s exposure records from a worker thread (true) or on the event loop (false) (default true)',
  PENUMBRA_RESOLVER_PARALLEL_SCAVENGE: 'auto | true | false: V8\'s parallel young-generation GC in the resolver-only process; auto turns it off on hosts with 2 cores or fewer (default auto)',
  PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS: 'Shortest analysis period a rollout plan may have (default 10)',
  PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS: 'Shortest reweighting period a bandit may have (default 60)',
  PENUMBRA_CONFIG_FILE: 'Optional JSON file with any of these variables',
  PENUMBRA_KAFKA_PORT: 'Local stack: Kafka broker port',
  PENUMBRA_CONTROLLER_PORT: 'Local stack: KRaft controller port',
  PENUMBRA_REGISTRY_PORT: 'Local stack: registry HTTP port',
  PENUMBRA_REGISTRY_MANAGEMENT_PORT: 'Local stack: registry management (health/metrics) port',
  // Read by the notebooks only (listed so an analyst's shell does not stop `npm start`).
  PENUMBRA_ITEM: 'Notebooks: item the readout is about',
  PENUMBRA_NOTEBOOK_OUT: 'Notebooks: where to write the computed numbers (CI comparison)',
  PENUMBRA_API_URL: 'Notebooks: Penumbra API the risk notebook registers its model with (optional)',
  PENUMBRA_API_TOKEN: 'Notebooks: admin token for PENUMBRA_API_URL',
  PENUMBRA_RISK_MIN_ROWS_NOTEBOOK: 'Notebooks: minimum labelled rollouts the risk notebook trains on (default 30)',
  PENUMBRA_RISK_MIN_CLASS_NOTEBOOK: 'Notebooks: minimum regressions and successes each the risk notebook trains on (default 5)',
} as const;

export type EnvName = keyof typeof ENV_VARS;

/**
 * Creates the data folder readable by its owner only (0700) and tightens an existing one: it
 * holds the tokens file, the warehouse, blobs of every uploaded item and the local stack's
 * data, none of which other local users should read (issue 17, item 7).
 */
export function ensureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
}

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
    telemetryByItem: `${prefix}telemetry.by-item`,
    alerts: `${prefix}alerts`,
    alertRules: `${prefix}alert.rules`,
    audit: `${prefix}audit`,
    dlq: `${prefix}dlq`,
    changeFeatures: `${prefix}change.features`,
    riskScores: `${prefix}risk.scores`,
    riskOutcomes: `${prefix}risk.outcomes`,
    riskModels: `${prefix}risk.models`,
    segments: `${prefix}segments`,
    segmentStatus: `${prefix}segments.status`,
    segmentMemberships: `${prefix}segments.memberships`,
    pins: `${prefix}pins`,
    pinPolicies: `${prefix}pins.policies`,
    banditSticky: `${prefix}bandit.sticky`,
    rolloutDecisions: `${prefix}rollout.decisions`,
    comparisons: `${prefix}comparisons`,
    telemetryLive: `${prefix}telemetry.live`,
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
  const s3Port = int('PENUMBRA_S3_PORT', 8333, 1, 65535);

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
  const bool = (name: EnvName, def: boolean): boolean => {
    const raw = merged[name];
    if (raw === undefined || raw === '') return def;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    issues.push({ path: name, message: `${name} must be true or false, got "${raw}"` });
    return def;
  };
  const comparisonsRefreshMs = int('PENUMBRA_COMPARISONS_REFRESH_MS', 10_000, 500, 3_600_000);
  const blobStore = (merged.PENUMBRA_BLOB_STORE || 'fs') as PenumbraConfig['blobStore'];
  if (blobStore !== 'fs' && blobStore !== 's3') issues.push({ path: 'PENUMBRA_BLOB_STORE', message: `PENUMBRA_BLOB_STORE must be fs or s3, got "${blobStore}"` });
  const parquetToS3 = bool('PENUMBRA_PARQUET_S3', false);
  const liveWindows = (merged.PENUMBRA_LIVE_WINDOWS || 'auto') as PenumbraConfig['liveWindows'];
  if (liveWindows !== 'auto' && liveWindows !== 'local' && liveWindows !== 'topic') issues.push({ path: 'PENUMBRA_LIVE_WINDOWS', message: `PENUMBRA_LIVE_WINDOWS must be auto, local or topic, got "${liveWindows}"` });
  const parquetRead = (merged.PENUMBRA_PARQUET_READ || 'local') as PenumbraConfig['parquetRead'];
  if (parquetRead !== 'local' && parquetRead !== 's3') issues.push({ path: 'PENUMBRA_PARQUET_READ', message: `PENUMBRA_PARQUET_READ must be local or s3, got "${parquetRead}"` });
  let s3: S3Settings | null = null;
  if (blobStore === 's3' || parquetToS3 || parquetRead === 's3') {
    const endpoint = url('PENUMBRA_S3_ENDPOINT', null);
    const bucket = merged.PENUMBRA_S3_BUCKET || 'penumbra';
    // S3 bucket naming rules (the subset every S3-compatible store accepts).
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) issues.push({ path: 'PENUMBRA_S3_BUCKET', message: `PENUMBRA_S3_BUCKET must be 3-63 lowercase letters, digits, '.' or '-', got "${bucket}"` });
    let prefix = merged.PENUMBRA_S3_PREFIX ?? '';
    if (prefix && !prefix.endsWith('/')) prefix += '/';
    const accessKeyId = merged.PENUMBRA_S3_ACCESS_KEY_ID || null;
    const secretAccessKey = merged.PENUMBRA_S3_SECRET_ACCESS_KEY || null;
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      issues.push({ path: accessKeyId ? 'PENUMBRA_S3_SECRET_ACCESS_KEY' : 'PENUMBRA_S3_ACCESS_KEY_ID', message: 'PENUMBRA_S3_ACCESS_KEY_ID and PENUMBRA_S3_SECRET_ACCESS_KEY go together' });
    }
    s3 = {
      endpoint: endpoint ?? `http://127.0.0.1:${s3Port}`,
      local: endpoint === null,
      bucket,
      region: merged.PENUMBRA_S3_REGION || 'us-east-1',
      accessKeyId,
      secretAccessKey,
      prefix,
      forcePathStyle: bool('PENUMBRA_S3_FORCE_PATH_STYLE', true),
    };
  }
  const contentUrl = url('PENUMBRA_CONTENT_URL', null);
  if (contentUrl && new URL(contentUrl).origin === new URL(publicUrl).origin) {
    issues.push({ path: 'PENUMBRA_CONTENT_URL', message: `PENUMBRA_CONTENT_URL must be another origin than PENUMBRA_PUBLIC_URL (${publicUrl})` });
  }

  const rate = (name: EnvName, def: RateSpec): RateSpec => {
    const raw = merged[name];
    if (raw === undefined || raw === '') return def;
    const m = /^(\d+(?:\.\d+)?)(?::(\d+))?$/.exec(raw.trim());
    if (!m) {
      issues.push({ path: name, message: `${name} must be perSecond[:burst], e.g. 200:400 (0 = no limit), got "${raw}"` });
      return def;
    }
    const perSecond = Number(m[1]);
    const burst = m[2] === undefined ? Math.max(1, Math.ceil(perSecond * 2)) : Number(m[2]);
    if (perSecond > 0 && burst < 1) issues.push({ path: name, message: `${name}: burst must be at least 1` });
    return { perSecond, burst };
  };
  const rateLimits: RateLimits = {
    resolve: rate('PENUMBRA_RATE_RESOLVE', DEFAULT_RATE_LIMITS.resolve),
    telemetry: rate('PENUMBRA_RATE_TELEMETRY', DEFAULT_RATE_LIMITS.telemetry),
    files: rate('PENUMBRA_RATE_FILES', DEFAULT_RATE_LIMITS.files),
    runtimeConfig: rate('PENUMBRA_RATE_RUNTIME_CONFIG', DEFAULT_RATE_LIMITS.runtimeConfig),
    artifacts: rate('PENUMBRA_RATE_ARTIFACTS', DEFAULT_RATE_LIMITS.artifacts),
    authFailures: rate('PENUMBRA_RATE_AUTH_FAILURES', DEFAULT_RATE_LIMITS.authFailures),
    maxClients: int('PENUMBRA_RATE_MAX_CLIENTS', DEFAULT_RATE_LIMITS.maxClients, 100, 10_000_000),
  };
  const trustRaw = (merged.PENUMBRA_TRUST_PROXY ?? 'loopback').trim();
  let trustProxy: string | number | boolean = trustRaw;
  if (/^(false|none|off)$/i.test(trustRaw)) trustProxy = false;
  else if (/^\d+$/.test(trustRaw)) trustProxy = Number(trustRaw);
  else {
    try {
      proxyaddr.compile(trustRaw.split(',').map((x) => x.trim()).filter(Boolean));
    } catch (err) {
      issues.push({ path: 'PENUMBRA_TRUST_PROXY', message: `PENUMBRA_TRUST_PROXY: ${(err as Error).message} (use loopback, false, a hop count, or addresses/CIDRs)` });
    }
  }
  const webhookUrl = url('PENUMBRA_WEBHOOK_URL', null);
  const webhookSecret = merged.PENUMBRA_WEBHOOK_SECRET || null;
  if (webhookUrl && (!webhookSecret || webhookSecret.length < 16)) {
    issues.push({ path: 'PENUMBRA_WEBHOOK_SECRET', message: 'PENUMBRA_WEBHOOK_URL needs PENUMBRA_WEBHOOK_SECRET (at least 16 characters): every webhook body is signed with it (X-Penumbra-Signature)' });
  }
  const allowPrivateRaw = (merged.PENUMBRA_INGEST_URL_ALLOW_PRIVATE ?? 'false').trim();
  if (!/^(true|false)$/.test(allowPrivateRaw)) issues.push({ path: 'PENUMBRA_INGEST_URL_ALLOW_PRIVATE', message: `PENUMBRA_INGEST_URL_ALLOW_PRIVATE must be true or false, got "${allowPrivateRaw}"` });
  const ingestUrlAllow = (merged.PENUMBRA_INGEST_URL_ALLOW ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of ingestUrlAllow) {
    let u: URL | null = null;
    try {
      u = new URL(a);
    } catch {
      /* reported below */
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) {
      issues.push({ path: 'PENUMBRA_INGEST_URL_ALLOW', message: `each entry must be an absolute http(s) URL without credentials, query or fragment (origin + path prefix), got "${a}"` });
    }
  }
  const topicRetentionBytes = int('PENUMBRA_TOPIC_RETENTION_BYTES', 1024 * 1024 * 1024, -1, Number.MAX_SAFE_INTEGER);
  if (topicRetentionBytes !== -1 && topicRetentionBytes < 1024 * 1024) {
    issues.push({ path: 'PENUMBRA_TOPIC_RETENTION_BYTES', message: 'PENUMBRA_TOPIC_RETENTION_BYTES must be -1 (no size limit) or at least 1048576 bytes' });
  }
  if (contentUrl?.includes('*') && !/^https?:\/\/\*\.[^*/]+$/.test(contentUrl)) {
    issues.push({ path: 'PENUMBRA_CONTENT_URL', message: `a wildcard PENUMBRA_CONTENT_URL must be scheme://*.domain[:port], one * as the whole first label, got "${contentUrl}"` });
  }
  let assignmentKeys: KeyRing | null = null;
  if (merged.PENUMBRA_ASSIGNMENT_KEYS) {
    try {
      assignmentKeys = parseKeyRing(merged.PENUMBRA_ASSIGNMENT_KEYS);
    } catch (err) {
      issues.push({ path: 'PENUMBRA_ASSIGNMENT_KEYS', message: (err as Error).message });
    }
  }
  const expoSigningKeyId = merged.PENUMBRA_EXPO_SIGNING_KEY_ID || 'main';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(expoSigningKeyId)) {
    issues.push({ path: 'PENUMBRA_EXPO_SIGNING_KEY_ID', message: `letters, digits, _ . - (max 64), got "${expoSigningKeyId}"` });
  }

  let roles: Roles = parseRoles(undefined);
  try {
    roles = parseRoles(merged.PENUMBRA_ROLES);
  } catch (err) {
    issues.push(...(err as ConfigError).issues);
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
    roles,
    topics: topicNames(prefix),
    partitions: int('PENUMBRA_PARTITIONS', 3, 1, 1000),
    tokens: merged.PENUMBRA_TOKENS || null,
    tokensFile: merged.PENUMBRA_TOKENS_FILE ? path.resolve(cwd, merged.PENUMBRA_TOKENS_FILE) : null,
    logLevel,
    ingestInlineMaxBytes: int('PENUMBRA_INGEST_INLINE_MAX_BYTES', 8 * 1024 * 1024, 0, 64 * 1024 * 1024),
    ingestUrlAllow,
    ingestUrlAllowPrivate: allowPrivateRaw === 'true',
    maxUploadBytes: int('PENUMBRA_MAX_UPLOAD_BYTES', 100 * 1024 * 1024, 1024, 2 * 1024 * 1024 * 1024),
    webhookUrl,
    webhookSecret,
    trustProxy,
    rateLimits,
    listeners: {
      maxConnections: int('PENUMBRA_MAX_CONNECTIONS', 10_000, 10, 1_000_000),
      headersTimeoutMs: int('PENUMBRA_HEADERS_TIMEOUT_MS', 15_000, 1000, 600_000),
      requestTimeoutMs: int('PENUMBRA_REQUEST_TIMEOUT_MS', 300_000, 1000, 3_600_000),
      streamsPerToken: int('PENUMBRA_STREAMS_PER_TOKEN', 8, 1, 1000),
    },
    topicRetentionBytes,
    fileCacheBytes: int('PENUMBRA_FILE_CACHE_BYTES', 64 * 1024 * 1024, 0, 16 * 1024 * 1024 * 1024),
    duckdbMemoryLimit,
    risk: {
      retrainHours: int('PENUMBRA_RISK_RETRAIN_HOURS', 24, 0, 24 * 365),
      windowDays: int('PENUMBRA_RISK_WINDOW_DAYS', 90, 1, 3650),
      minRows: int('PENUMBRA_RISK_MIN_ROWS', 30, 4, 1_000_000),
      minClass: int('PENUMBRA_RISK_MIN_CLASS', 5, 2, 1_000_000),
      python: merged.PENUMBRA_PYTHON || 'python3',
      holdPercent: int('PENUMBRA_RISK_HOLD_PERCENT', 90, 0, 99),
      forecastHoldPercent: int('PENUMBRA_FORECAST_HOLD_PERCENT', 90, 0, 99),
    },
    segments: {
      maxMembers: int('PENUMBRA_SEGMENT_MAX_MEMBERS', 1_000_000, 1, 100_000_000),
      totalMembers: int('PENUMBRA_SEGMENT_TOTAL_MEMBERS', 4_000_000, 1, 1_000_000_000),
      minIntervalSeconds: int('PENUMBRA_SEGMENT_MIN_INTERVAL_SECONDS', 60, 1, 86_400),
    },
    pinsMax: int('PENUMBRA_PINS_MAX', 100_000, 0, 100_000_000),
    exposureWorker: bool('PENUMBRA_EXPOSURE_WORKER', true),
    resolverParallelScavenge: (() => {
      const v = merged.PENUMBRA_RESOLVER_PARALLEL_SCAVENGE || 'auto';
      if (v === 'auto' || v === 'true' || v === 'false') return v;
      issues.push({ path: 'PENUMBRA_RESOLVER_PARALLEL_SCAVENGE', message: `PENUMBRA_RESOLVER_PARALLEL_SCAVENGE must be auto, true or false, got "${v}"` });
      return 'auto' as const;
    })(),
    assignmentKeys,
    expoSigningKeyFile: merged.PENUMBRA_EXPO_SIGNING_KEY_FILE ? path.resolve(cwd, merged.PENUMBRA_EXPO_SIGNING_KEY_FILE) : null,
    expoSigningKeyId,
    dedupHorizonMinutes: int('PENUMBRA_DEDUP_HORIZON_MINUTES', 60, 1, 7 * 24 * 60),
    dedupMaxIds: int('PENUMBRA_DEDUP_MAX_IDS', 4_000_000, 10_000, 1_000_000_000),
    warehouseRetentionHours: int('PENUMBRA_WAREHOUSE_RETENTION_HOURS', 168, 0, 24 * 365 * 100),
    blobStore,
    parquetToS3,
    parquetRead,
    liveWindows,
    s3,
    sequentialTuning: int('PENUMBRA_SEQUENTIAL_TUNING', 5000, 10, 1_000_000_000),
    comparisonsRefreshMs,
    comparisonsStaleMs: int('PENUMBRA_COMPARISONS_STALE_MS', 3 * comparisonsRefreshMs, 1000, 86_400_000),
    rolloutMinAnalysisSeconds: int('PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS', 10, 1, 86_400),
    banditMinReweightSeconds: int('PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS', 60, 1, 86_400),
    stack: { kafkaPort, controllerPort, registryPort, registryManagementPort, s3Port },
  };
  if (issues.length > 0) {
    throw new ConfigError(`Invalid configuration:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
  }
  return cfg;
}

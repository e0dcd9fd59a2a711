/**
 * Integration tests need a real Kafka and schema registry. In order of preference: the cluster
 * named by KAFKA_BROKERS + SCHEMA_REGISTRY_URL, a healthy stack already on the default ports
 * (a developer's `penumbra stack up`), or a stack we start here and stop in global-teardown.
 * Workers inherit process.env, which is how tests learn the addresses.
 */
import path from 'node:path';
import { ConfigError } from '../pipeline/errors.ts';
import { ensureHttpfsExtension } from '../connectors/duckdb-httpfs/fetch.ts';
import { DEFAULT_S3_PORT, isStackHealthy, kafkaBrokers, registryUrl, s3Endpoint, s3Healthy, s3Up, stackUp, type StackOptions } from '../infra/stack.ts';

declare global {
  // Set only when this run started the stack, so teardown never stops someone else's.
  var __PENUMBRA_TEST_STACK__: StackOptions | undefined;
  // Set only when this run started the S3Proxy alone (the stack was reused).
  var __PENUMBRA_TEST_S3__: StackOptions | undefined;
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw ? Number(raw) : fallback;
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new ConfigError(`${name}=${raw} is not a TCP port`);
  return n;
}

export function testStackOptions(rootDir: string): StackOptions {
  return {
    dataDir: path.join(rootDir, '.penumbra-test'),
    cacheDir: process.env.PENUMBRA_CACHE_DIR ? path.resolve(process.env.PENUMBRA_CACHE_DIR) : path.join(rootDir, '.cache', 'stack'),
    kafkaPort: port('PENUMBRA_KAFKA_PORT', 9092),
    controllerPort: port('PENUMBRA_CONTROLLER_PORT', 9093),
    registryPort: port('PENUMBRA_REGISTRY_PORT', 8081),
    registryManagementPort: port('PENUMBRA_REGISTRY_MANAGEMENT_PORT', 9081),
    s3Port: port('PENUMBRA_S3_PORT', DEFAULT_S3_PORT),
    log: (line) => process.stderr.write(`[stack] ${line}\n`),
  };
}

/**
 * The object store of the S3 tests: S3_TEST_ENDPOINT if set (any S3-compatible server), else the
 * local S3Proxy on PENUMBRA_S3_PORT — reused when one answers there, started (alone, next to a
 * running Kafka and registry) when none does. Tests read S3_TEST_ENDPOINT.
 */
async function ensureS3(opts: StackOptions): Promise<void> {
  if (process.env.S3_TEST_ENDPOINT) return;
  const s3Port = opts.s3Port ?? DEFAULT_S3_PORT;
  if (!(await s3Healthy(s3Port))) {
    process.stderr.write(`\n[stack] no S3Proxy on ${s3Endpoint(s3Port)}; starting one in ${opts.dataDir}\n`);
    await s3Up({ ...opts, s3Port });
    if (!globalThis.__PENUMBRA_TEST_STACK__) globalThis.__PENUMBRA_TEST_S3__ = opts;
  }
  process.env.S3_TEST_ENDPOINT = s3Endpoint(s3Port);
}

/**
 * DuckDB's httpfs extension (connectors/duckdb-httpfs), fetched once from PyPI into the cache
 * like the jars. Tests find it through DUCKDB_HTTPFS_EXTENSION (its path; empty when missing,
 * with the reason in DUCKDB_HTTPFS_MISSING): a platform without a wheel, or a failed fetch, is
 * said here and makes the tests that need it skip visibly (fail under CI=true).
 */
async function ensureHttpfs(rootDir: string): Promise<void> {
  const cacheDir = process.env.PENUMBRA_CACHE_DIR ? path.resolve(process.env.PENUMBRA_CACHE_DIR) : path.join(rootDir, '.cache');
  const log = (line: string) => process.stderr.write(`[httpfs] ${line}\n`);
  try {
    const r = await ensureHttpfsExtension(cacheDir, { log });
    if (r.status === 'unsupported') {
      log(`no httpfs extension: ${r.reason}; the S3 direct-read tests skip`);
      process.env.DUCKDB_HTTPFS_EXTENSION = '';
      process.env.DUCKDB_HTTPFS_MISSING = r.reason;
    } else {
      process.env.DUCKDB_HTTPFS_EXTENSION = r.path;
    }
  } catch (err) {
    log(`fetching the httpfs extension failed: ${(err as Error).message}; the S3 direct-read tests skip`);
    process.env.DUCKDB_HTTPFS_EXTENSION = '';
    process.env.DUCKDB_HTTPFS_MISSING = (err as Error).message;
  }
}

export default async function globalSetup(_globalConfig?: unknown, projectConfig?: { rootDir?: string }): Promise<void> {
  const { KAFKA_BROKERS: brokers, SCHEMA_REGISTRY_URL: registry } = process.env;
  const opts = testStackOptions(projectConfig?.rootDir ?? process.cwd());
  await ensureHttpfs(projectConfig?.rootDir ?? process.cwd());
  if (brokers && registry) {
    await ensureS3(opts);
    return;
  }
  if (brokers || registry) {
    throw new ConfigError(
      `Only ${brokers ? 'KAFKA_BROKERS' : 'SCHEMA_REGISTRY_URL'} is set. Set both to test against an existing ` +
        'cluster, or neither to let the tests reuse or start the local stack.',
    );
  }
  if (!(await isStackHealthy(opts))) {
    process.stderr.write(`\n[stack] no healthy stack on ${kafkaBrokers(opts)} / ${registryUrl(opts)}; starting one in ${opts.dataDir}\n`);
    await stackUp(opts);
    globalThis.__PENUMBRA_TEST_STACK__ = opts;
  }
  process.env.KAFKA_BROKERS = kafkaBrokers(opts);
  process.env.SCHEMA_REGISTRY_URL = registryUrl(opts);
  await ensureS3(opts);
}

/**
 * DuckDB's official `httpfs` extension, fetched by the project (README.md): which binary fits
 * this DuckDB and platform, where the cache keeps it, and the SQL that loads it and points it at
 * the configured S3 store. Pure except `loadHttpfs` / `httpfsExtensionPath` (a file check).
 *
 * Why a fetched file and `LOAD '<path>'`, not `INSTALL httpfs`: INSTALL downloads from
 * extensions.duckdb.org, which is unreachable here; DuckDB publishes the same signed binaries on
 * PyPI as `duckdb-extension-httpfs` wheels. An extension must be built for DuckDB's exact version
 * (1.5.5 refuses to load on 1.5.6, even with allow_extensions_metadata_mismatch), and PyPI's
 * newest is 1.5.5, so @duckdb/node-api is pinned to 1.5.5-r.5: move both together.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { S3Settings } from '../../pipeline/config/config.ts';

/** The DuckDB version of the pinned @duckdb/node-api (httpfs.test.ts checks it against `version()`). */
export const DUCKDB_VERSION = '1.5.5';
/** The PyPI project of the extension's wheels. */
export const HTTPFS_PYPI_PROJECT = 'duckdb-extension-httpfs';

/** DuckDB's own platform name (the `extensions/v<version>/<platform>/` folders) and the wheel tag that carries it. */
export interface ExtensionPlatform {
  duckdb: string;
  wheelTag: string;
}

/**
 * The platform of this process in DuckDB's and PyPI's names, or null where no wheel is
 * published (e.g. 32-bit, FreeBSD, Windows on ARM). Linux wheels are manylinux2014 (glibc):
 * the same libc the @duckdb/node-bindings-linux-* packages need.
 */
export function extensionPlatform(platform: NodeJS.Platform = process.platform, arch: string = process.arch): ExtensionPlatform | null {
  const table: Record<string, ExtensionPlatform> = {
    'linux/x64': { duckdb: 'linux_amd64', wheelTag: 'manylinux2014_x86_64' },
    'linux/arm64': { duckdb: 'linux_arm64', wheelTag: 'manylinux2014_aarch64' },
    'darwin/x64': { duckdb: 'osx_amd64', wheelTag: 'macosx_11_0_x86_64' },
    'darwin/arm64': { duckdb: 'osx_arm64', wheelTag: 'macosx_11_0_arm64' },
    'win32/x64': { duckdb: 'windows_amd64', wheelTag: 'win_amd64' },
  };
  return table[`${platform}/${arch}`] ?? null;
}

/** `<cacheDir>/duckdb-extensions/v<version>/<platform>/httpfs.duckdb_extension` (cacheDir = PENUMBRA_CACHE_DIR, default `.cache`). */
export function httpfsCachePath(cacheDir: string, platform: ExtensionPlatform, version = DUCKDB_VERSION): string {
  return path.join(cacheDir, 'duckdb-extensions', `v${version}`, platform.duckdb, 'httpfs.duckdb_extension');
}

/** The marker written after the extension is verified and in place (an interrupted fetch has none). */
export const completeMarker = (extPath: string): string => `${extPath}.complete`;

/** The cached extension of this platform, or null when it was not fetched (or the platform has no wheel). */
export function httpfsExtensionPath(cacheDir: string, platform = extensionPlatform()): string | null {
  if (!platform) return null;
  const p = httpfsCachePath(cacheDir, platform);
  return existsSync(p) && existsSync(completeMarker(p)) ? p : null;
}

/** One file of PyPI's simple index (PEP 691 JSON). */
export interface IndexFile {
  filename: string;
  url: string;
  hashes: { sha256?: string };
  yanked?: boolean | string;
}

/**
 * The wheel of `version` for `platform` from the project's file list, or null. Wheel names are
 * `duckdb_extension_httpfs-<version>-py3-none-<tag>.whl` (PEP 427); a yanked file or one without
 * a sha256 is not used (the download is verified against it).
 */
export function pickWheel(files: readonly IndexFile[], platform: ExtensionPlatform, version = DUCKDB_VERSION): IndexFile | null {
  const name = `${HTTPFS_PYPI_PROJECT.replace(/-/g, '_')}-${version}-py3-none-${platform.wheelTag}.whl`;
  return files.find((f) => f.filename === name && !f.yanked && /^[0-9a-f]{64}$/.test(f.hashes.sha256 ?? '')) ?? null;
}

/** The extension's path inside the wheel. */
export const wheelMember = (version = DUCKDB_VERSION): string => `duckdb_extension_httpfs/extensions/v${version}/httpfs.duckdb_extension`;

const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * The `CREATE SECRET` that lets httpfs read `s3://<bucket>/…` on the configured store, the way
 * connectS3 (connectors/blob-store/s3.ts) reaches it: ENDPOINT is host[:port] without the
 * scheme, USE_SSL follows the scheme, URL_STYLE 'path' for path-style stores (S3Proxy, MinIO).
 * Keys: the configured ones; the local S3Proxy (no authorization) takes any; otherwise none, and
 * DuckDB's default (unsigned) requests apply — set PENUMBRA_S3_ACCESS_KEY_ID/SECRET for AWS.
 */
export function s3SecretSql(s3: S3Settings, name = 'penumbra_s3'): string {
  const url = new URL(s3.endpoint);
  const parts = [
    'TYPE s3',
    `ENDPOINT ${literal(url.host)}`,
    `USE_SSL ${url.protocol === 'https:' ? 'true' : 'false'}`,
    `URL_STYLE ${literal(s3.forcePathStyle ? 'path' : 'vhost')}`,
    `REGION ${literal(s3.region)}`,
    `SCOPE ${literal(`s3://${s3.bucket}/`)}`,
  ];
  const key = s3.accessKeyId && s3.secretAccessKey ? [s3.accessKeyId, s3.secretAccessKey] : s3.local ? ['penumbra-local', 'penumbra-local'] : null;
  if (key) parts.push(`KEY_ID ${literal(key[0])}`, `SECRET ${literal(key[1])}`);
  return `CREATE OR REPLACE SECRET ${name} (${parts.join(', ')})`;
}

/** `s3://<bucket>/<prefix>warehouse/`: where a sink with PENUMBRA_PARQUET_S3=true publishes the export. */
export function warehouseS3Url(s3: Pick<S3Settings, 'bucket' | 'prefix'>): string {
  return `s3://${s3.bucket}/${s3.prefix}warehouse/`;
}

/**
 * Load the cached extension into a connection's database (signature checking stays on: the
 * wheel carries DuckDB's signed official binary) and, given S3 settings, add the secret.
 */
export async function loadHttpfs(conn: DuckDBConnection, extPath: string, s3?: S3Settings): Promise<void> {
  await conn.run(`LOAD ${literal(extPath)}`);
  if (s3) await conn.run(s3SecretSql(s3));
}

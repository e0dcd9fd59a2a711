/**
 * The one-time fetch of DuckDB's httpfs extension from PyPI into the cache folder, the way
 * infra/artifacts.ts fetches the jars from Maven Central: idempotent (a `.complete` marker,
 * written last, names the verified wheel), so an interrupted fetch is redone and later starts do
 * no network at all.
 *
 * 1. PyPI's simple index for the project (PEP 691 JSON, what pip reads: file names, URLs and
 *    sha256 of every wheel) — the legacy JSON API (`/pypi/<p>/<v>/json`) is not reachable from
 *    every mirror/proxy, the simple index is;
 * 2. the wheel of this DuckDB version and platform (`pickWheel`), downloaded and checked against
 *    the index's sha256 (a mismatch is an error, nothing is written);
 * 3. `duckdb_extension_httpfs/extensions/v<version>/httpfs.duckdb_extension` out of the wheel
 *    (a zip) into `<cache>/duckdb-extensions/v<version>/<platform>/`, through a temp name and a
 *    rename; then the marker.
 * A platform PyPI publishes no wheel for is not an error: the caller says so and the readers
 * keep the S3 cache (connectors/parquet-source).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yauzl from 'yauzl';
import { UnavailableError } from '../../pipeline/errors.ts';
import {
  completeMarker, DUCKDB_VERSION, extensionPlatform, HTTPFS_PYPI_PROJECT, httpfsCachePath, pickWheel, wheelMember,
  type ExtensionPlatform, type IndexFile,
} from './httpfs.ts';

export type HttpfsFetchResult =
  | { status: 'cached' | 'fetched'; path: string; wheel?: string; sha256?: string; ms: number }
  | { status: 'unsupported'; reason: string };

export interface HttpfsFetchOptions {
  /** Defaults to `https://pypi.org/simple` (PIP_INDEX_URL's form: a PEP 503/691 simple index). */
  indexUrl?: string;
  platform?: ExtensionPlatform | null;
  version?: string;
  log?: (line: string) => void;
}

async function get(url: string, accept?: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { headers: accept ? { accept } : {}, signal: AbortSignal.timeout(120_000) });
  } catch (err) {
    throw new UnavailableError(`GET ${url} failed: ${(err as Error).message} (check the network or proxy)`, err, false);
  }
  if (!res.ok) throw new UnavailableError(`GET ${url} answered ${res.status} ${res.statusText}`, undefined, false);
  return res;
}

function extract(wheel: Buffer, member: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(wheel, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('not a zip'));
      let found = false;
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== member) return zip.readEntry();
        found = true;
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => (zip.close(), resolve(Buffer.concat(chunks))));
        });
      });
      zip.on('end', () => !found && reject(new Error(`the wheel holds no ${member}`)));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/** Make sure the cache holds this DuckDB's httpfs extension for this platform; fetch it once if not. */
export async function ensureHttpfsExtension(cacheDir: string, opts: HttpfsFetchOptions = {}): Promise<HttpfsFetchResult> {
  const t0 = Date.now();
  const version = opts.version ?? DUCKDB_VERSION;
  const platform = opts.platform === undefined ? extensionPlatform() : opts.platform;
  if (!platform) {
    return { status: 'unsupported', reason: `PyPI publishes no ${HTTPFS_PYPI_PROJECT} wheel for ${process.platform}/${process.arch}` };
  }
  const dest = httpfsCachePath(cacheDir, platform, version);
  if (existsSync(dest) && existsSync(completeMarker(dest))) return { status: 'cached', path: dest, ms: Date.now() - t0 };

  const indexUrl = `${(opts.indexUrl ?? 'https://pypi.org/simple').replace(/\/$/, '')}/${HTTPFS_PYPI_PROJECT}/`;
  const index = (await (await get(indexUrl, 'application/vnd.pypi.simple.v1+json')).json()) as { files?: IndexFile[] };
  const wheel = pickWheel(index.files ?? [], platform, version);
  if (!wheel) {
    return { status: 'unsupported', reason: `${indexUrl} lists no ${HTTPFS_PYPI_PROJECT} ${version} wheel for ${platform.wheelTag} (DuckDB ${version} on ${platform.duckdb})` };
  }
  opts.log?.(`Fetching DuckDB's httpfs extension ${version} for ${platform.duckdb} from PyPI (${wheel.filename}, one time) …`);
  const bytes = Buffer.from(await (await get(wheel.url)).arrayBuffer());
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== wheel.hashes.sha256) {
    throw new UnavailableError(`${wheel.filename} from ${wheel.url} has sha256 ${sha256}, the index says ${wheel.hashes.sha256}: refused (nothing written)`, undefined, false);
  }
  const ext = await extract(bytes, wheelMember(version)).catch((err: Error) => {
    throw new UnavailableError(`Could not extract ${wheelMember(version)} from ${wheel.filename}: ${err.message}`, err, false);
  });
  await mkdir(path.dirname(dest), { recursive: true });
  await rm(completeMarker(dest), { force: true });
  const tmp = `${dest}.${randomUUID()}.tmp`;
  await writeFile(tmp, ext);
  await rename(tmp, dest);
  await writeFile(completeMarker(dest), `${new Date().toISOString()} ${wheel.filename} sha256=${sha256}\n`);
  opts.log?.(`httpfs extension ready: ${dest} (${(ext.length / 1048576).toFixed(1)} MB)`);
  return { status: 'fetched', path: dest, wheel: wheel.filename, sha256, ms: Date.now() - t0 };
}

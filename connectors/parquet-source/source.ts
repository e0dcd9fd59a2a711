/**
 * Where Penumbra's own Parquet readers read the warehouse export (README.md): the sink's local
 * folder, or — with `PENUMBRA_PARQUET_READ=s3` — the bucket's Hive-partitioned export
 * (`<prefix>warehouse/`, written by a sink with `PENUMBRA_PARQUET_S3=true`): directly through
 * DuckDB's httpfs extension when it was fetched (`readerParquetSource`), else kept in a local
 * cache folder by `S3ParquetCache` through the AWS SDK (a platform without an httpfs wheel, or
 * a cache without the extension).
 *
 * Sync (one pass): list the export's objects with their ETags; download each object that is new
 * or changed (whole-table files such as `metric_windows/date=…/data_0.parquet` and
 * `items/data_0.parquet` are replaced under the same name) to `.staging/` and rename it into
 * place, so a reader lists whole files only; `_meta.json` last, so the layout it names is in
 * place; then delete the local files the bucket no longer has (compacted inputs: a listing in
 * between sees merged and inputs together, which `liveParts` already resolves, and a file deleted
 * under a reader is re-listed by query.ts's vanished-file retry).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { PenumbraConfig } from '../../pipeline/config/config.ts';
import { UnavailableError } from '../../pipeline/errors.ts';
import type { S3Connection } from '../blob-store/s3.ts';
import { httpfsExtensionPath, warehouseS3Url } from '../duckdb-httpfs/httpfs.ts';
import type { ParquetSource, S3ParquetSource } from '../duckdb-sink/query.ts';

/** The folder the readers of this process use for the export (the cache when reading from S3 without httpfs). */
export function readerParquetDir(cfg: Pick<PenumbraConfig, 'dataDir' | 'parquetRead'>): string {
  return path.join(cfg.dataDir, 'warehouse', cfg.parquetRead === 's3' ? 'parquet-s3' : 'parquet');
}

/**
 * The bucket's export read directly through DuckDB's httpfs (connectors/duckdb-httpfs), when
 * this process reads from S3 and the extension is in the cache (`<PENUMBRA_CACHE_DIR>/duckdb-extensions/…`,
 * fetched by `npm start` and the test setup); null otherwise.
 */
export function httpfsSourceFor(cfg: Pick<PenumbraConfig, 'parquetRead' | 's3' | 'cacheDir'>): S3ParquetSource | null {
  if (cfg.parquetRead !== 's3' || !cfg.s3) return null;
  const extension = httpfsExtensionPath(cfg.cacheDir);
  return extension ? { kind: 's3', url: warehouseS3Url(cfg.s3), extension, s3: cfg.s3 } : null;
}

/** What the parquet-source feature decided at start, by data folder (one process may host several Penumbras in tests). */
export const decidedSources = new Map<string, ParquetSource>();

/**
 * Where the readers of this process read the export: decided once at start by the parquet-source
 * feature (registered before the readers' features) — the bucket through httpfs when the
 * extension is present and loads, else the cache folder (S3ParquetCache) or the local folder.
 */
export function readerParquetSource(cfg: Pick<PenumbraConfig, 'dataDir' | 'parquetRead' | 's3' | 'cacheDir'>): ParquetSource {
  return decidedSources.get(cfg.dataDir) ?? httpfsSourceFor(cfg) ?? readerParquetDir(cfg);
}

export interface SyncResult {
  /** Objects listed under the export. */
  objects: number;
  downloaded: number;
  deleted: number;
  bytes: number;
  ms: number;
}

const STAGING = '.staging';
/** The ETag index, kept next to the files so a restarted process downloads only what changed. */
const INDEX = '.etags.json';

async function walk(dir: string, rel = ''): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (r === STAGING || r === INDEX) continue;
    if (e.isDirectory()) out.push(...(await walk(dir, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

export class S3ParquetCache {
  private readonly base: string;
  /** ETag of each local file as downloaded (relative path → ETag). */
  private readonly etags = new Map<string, string>();
  private indexLoaded = false;
  private running: Promise<SyncResult> | null = null;
  lastSync: (SyncResult & { at: number }) | null = null;
  lastError: string | null = null;

  constructor(private readonly c: S3Connection, readonly dir: string) {
    this.base = `${c.prefix}warehouse/`;
  }

  get source(): string {
    return `s3://${this.c.bucket}/${this.base}`;
  }

  /** One pass (concurrent callers share the running one). */
  sync(): Promise<SyncResult> {
    this.running ??= this.pass().then(
      (r) => ((this.lastSync = { ...r, at: Date.now() }), (this.lastError = null), (this.running = null), r),
      (err) => {
        this.lastError = (err as Error).message;
        this.running = null;
        throw err;
      },
    );
    return this.running;
  }

  private async list(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.c.client.send(new ListObjectsV2Command({ Bucket: this.c.bucket, Prefix: this.base, ContinuationToken: token }));
      } catch (err) {
        throw new UnavailableError(`S3 ListObjectsV2 of ${this.source} on ${this.c.endpoint} failed: ${(err as Error).message}`, err);
      }
      for (const o of res.Contents ?? []) {
        const rel = o.Key?.slice(this.base.length);
        // Only what readers read: no staging leftovers, no path escaping the folder.
        if (!rel || rel.startsWith(`${STAGING}/`) || rel.split('/').some((p) => p === '..' || p === '')) continue;
        out.set(rel, o.ETag ?? `${o.Size}:${o.LastModified?.getTime()}`);
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async download(rel: string): Promise<number> {
    let bytes: Uint8Array;
    try {
      const res = await this.c.client.send(new GetObjectCommand({ Bucket: this.c.bucket, Key: this.base + rel }));
      bytes = await res.Body!.transformToByteArray();
    } catch (err) {
      throw new UnavailableError(`S3 GetObject ${this.base + rel} on ${this.c.endpoint} failed: ${(err as Error).message}`, err);
    }
    const tmp = path.join(this.dir, STAGING, randomUUID());
    await writeFile(tmp, bytes);
    const dest = path.join(this.dir, ...rel.split('/'));
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(tmp, dest);
    return bytes.byteLength;
  }

  private async pass(): Promise<SyncResult> {
    const t0 = Date.now();
    await mkdir(path.join(this.dir, STAGING), { recursive: true });
    if (!this.indexLoaded) {
      // A previous process's index: its files are whole (renamed into place) and named by it.
      try {
        for (const [k, v] of Object.entries(JSON.parse(await readFile(path.join(this.dir, INDEX), 'utf8')) as Record<string, string>)) this.etags.set(k, v);
      } catch {
        /* none yet, or unreadable: everything is downloaded once */
      }
      this.indexLoaded = true;
    }
    const listed = await this.list();
    const local = new Set(await walk(this.dir));
    const todo = [...listed].filter(([rel, etag]) => this.etags.get(rel) !== etag || !local.has(rel)).map(([rel]) => rel);
    // _meta.json last: the layout it describes is then in place.
    todo.sort((a, b) => Number(a === '_meta.json') - Number(b === '_meta.json') || (a < b ? -1 : 1));
    let bytes = 0;
    for (const rel of todo) {
      bytes += await this.download(rel);
      this.etags.set(rel, listed.get(rel)!);
    }
    let deleted = 0;
    for (const rel of local) {
      if (listed.has(rel)) continue;
      await rm(path.join(this.dir, ...rel.split('/')), { force: true });
      this.etags.delete(rel);
      deleted++;
    }
    if (todo.length > 0 || deleted > 0) {
      const tmp = path.join(this.dir, STAGING, `${INDEX}.${randomUUID()}`);
      await writeFile(tmp, JSON.stringify(Object.fromEntries(this.etags)));
      await rename(tmp, path.join(this.dir, INDEX));
    }
    return { objects: listed.size, downloaded: todo.length, deleted, bytes, ms: Date.now() - t0 };
  }
}

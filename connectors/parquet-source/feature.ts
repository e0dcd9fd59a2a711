/**
 * The Parquet source feature (registered in pipeline/app/features.ts, before the readers'
 * features): with `PENUMBRA_PARQUET_READ=s3` it decides once, at start, how this process reads
 * the bucket's export (README.md):
 *  - `httpfs`: DuckDB's httpfs extension is in the cache (connectors/duckdb-httpfs) and loads —
 *    the readers read `s3://<bucket>/<prefix>warehouse/…` directly (query.ts, the sandbox), no
 *    local copy; health reads `_meta.json` from the bucket;
 *  - `s3-cache`: no extension (a platform without a wheel, a fetch that failed) or it does not
 *    load — `<data>/warehouse/parquet-s3` is kept in step with the bucket (S3ParquetCache,
 *    source.ts): a first pass at start (a failure is logged, not fatal: the readers find an
 *    empty export, as before the first snapshot), then one pass every `syncMs` (default 10 s).
 * Either way the `parquetSource` health check says which (`source`). With `local` (the default)
 * it does nothing: the readers read `<data>/warehouse/parquet`. The readers take the source from
 * `readerParquetSource(cfg)`.
 */
import type { Feature, FeatureContext, FeatureHandle } from '../../pipeline/app/features.ts';
import { connectS3 } from '../blob-store/s3.ts';
import { closeS3Readers, readSnapshotMeta, sharedInstance, type S3ParquetSource } from '../duckdb-sink/query.ts';
import { decidedSources, httpfsSourceFor, readerParquetDir, S3ParquetCache } from './source.ts';

export const DEFAULT_SYNC_MS = 10_000;

/** Caches of running instances by data folder (tests force a pass instead of waiting). */
export const parquetCaches = new Map<string, S3ParquetCache>();

export function parquetSourceFeature(opts: { syncMs?: number } = {}): Feature {
  return async (ctx) => {
    const { cfg } = ctx;
    if (cfg.parquetRead !== 's3' || !cfg.s3) return {};
    const direct = httpfsSourceFor(cfg);
    if (direct) {
      try {
        // The extension loads (signature checked) and the secret is accepted: decided. The
        // instance is the one the readers' queries then share (no second load).
        await sharedInstance(direct);
        return startDirect(ctx, direct);
      } catch (err) {
        ctx.log.warn('httpfs extension does not load; reading the bucket through the S3 cache instead', { extension: direct.extension, err: String(err) });
      }
    }
    decidedSources.set(cfg.dataDir, readerParquetDir(cfg));
    const cache = new S3ParquetCache(connectS3(cfg.s3), readerParquetDir(cfg));
    parquetCaches.set(cfg.dataDir, cache);
    const syncMs = opts.syncMs ?? DEFAULT_SYNC_MS;
    const pass = () => cache.sync().then(
      (r) => (r.downloaded || r.deleted ? ctx.log.debug('parquet cache synced from S3', { ...r }) : undefined),
      (err) => ctx.log.warn('parquet cache sync from S3 failed; readers keep the last copy', { err: String(err) }),
    );
    await pass();
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    const loop = () => {
      timer = setTimeout(() => void pass().finally(() => !stopped && loop()), syncMs);
      timer.unref();
    };
    loop();
    ctx.healthChecks.push(async () => {
      const last = cache.lastSync;
      const ageMs = last ? Date.now() - last.at : null;
      // Three missed passes: the readers' copy may lag the bucket by that much.
      const stale = ageMs === null || ageMs > 3 * syncMs;
      return {
        parquetSource: {
          status: cache.lastError || stale ? 'degraded' : 'ok',
          ...(cache.lastError ? { detail: `sync from ${cache.source} failing: ${cache.lastError}` } : stale ? { detail: 'no recent sync from the bucket' } : {}),
          source: 's3-cache', url: cache.source, dir: cache.dir, syncMs, lastSyncAt: last ? new Date(last.at).toISOString() : null, lastSyncAgeMs: ageMs,
          objects: last?.objects ?? null, lastDownloaded: last?.downloaded ?? null, lastDeleted: last?.deleted ?? null,
        },
      };
    });
    return {
      async stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        parquetCaches.delete(cfg.dataDir);
        decidedSources.delete(cfg.dataDir);
      },
    };
  };
}

/** Direct reads through httpfs: nothing to sync; health reads the export's `_meta.json` from the bucket. */
function startDirect(ctx: FeatureContext, source: S3ParquetSource): FeatureHandle {
  const { cfg } = ctx;
  decidedSources.set(cfg.dataDir, source);
  ctx.log.info('reading the Parquet export directly from the bucket (httpfs)', { url: source.url, extension: source.extension });
  ctx.healthChecks.push(async () => {
    const base = { source: 'httpfs', url: source.url, extension: source.extension };
    try {
      const meta = await readSnapshotMeta(source);
      return {
        parquetSource: {
          status: 'ok', ...base,
          ...(meta ? {} : { detail: 'no export in the bucket yet' }),
          exportedAt: meta?.exportedAtIso ?? null, exportAgeMs: meta ? Date.now() - meta.exportedAt : null,
        },
      };
    } catch (err) {
      return { parquetSource: { status: 'degraded', ...base, detail: `reading ${source.url}_meta.json failed: ${(err as Error).message.split('\n')[0]}` } };
    }
  });
  return {
    async stop() {
      decidedSources.delete(cfg.dataDir);
      await closeS3Readers(source);
    },
  };
}

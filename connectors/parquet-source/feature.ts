/**
 * The Parquet source feature (registered in pipeline/app/features.ts): with
 * `PENUMBRA_PARQUET_READ=s3` every process keeps `<data>/warehouse/parquet-s3` in step with the
 * bucket's export (S3ParquetCache, source.ts) — a first pass at start (a failure is logged, not
 * fatal: the readers find an empty export, as before the first snapshot), then one pass every
 * `syncMs` (default 10 s, the order of the sink's export interval) — and reports it as the
 * `parquetSource` health check. With `local` (the default) it does nothing: the readers read
 * `<data>/warehouse/parquet`. The readers take the folder from `readerParquetDir(cfg)`.
 */
import type { Feature } from '../../pipeline/app/features.ts';
import { connectS3 } from '../blob-store/s3.ts';
import { readerParquetDir, S3ParquetCache } from './source.ts';

export const DEFAULT_SYNC_MS = 10_000;

/** Caches of running instances by data folder (tests force a pass instead of waiting). */
export const parquetCaches = new Map<string, S3ParquetCache>();

export function parquetSourceFeature(opts: { syncMs?: number } = {}): Feature {
  return async (ctx) => {
    const { cfg } = ctx;
    if (cfg.parquetRead !== 's3' || !cfg.s3) return {};
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
          source: cache.source, dir: cache.dir, syncMs, lastSyncAt: last ? new Date(last.at).toISOString() : null, lastSyncAgeMs: ageMs,
          objects: last?.objects ?? null, lastDownloaded: last?.downloaded ?? null, lastDeleted: last?.deleted ?? null,
        },
      };
    });
    return {
      async stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        parquetCaches.delete(cfg.dataDir);
      },
    };
  };
}

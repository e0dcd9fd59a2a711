/**
 * The warehouse feature: runs the DuckDB warehouse sink (connectors/duckdb-sink) inside the
 * Penumbra process when `ctx.sink` is set, and reports it as the `duckdb` health check.
 *
 * Reads: every topic the sink stores (see connectors/duckdb-sink/sink.ts), consumer group
 * `<prefix>warehouse-sink`. Writes: `<dataDir>/warehouse/penumbra.duckdb` (this process is its
 * only writer) and incremental Parquet exports under `<dataDir>/warehouse/parquet/` every
 * `snapshotIntervalMs` (and to the S3 bucket with PENUMBRA_PARQUET_S3) — the layout
 * docs/warehouse.md and notebooks/penumbra_warehouse.py read.
 * Guarantees: those of the sink (exactly-once into DuckDB; whole Parquet files only).
 *
 * A sink that cannot start (typically: another process already holds the DuckDB file lock, the
 * "one writer" rule) does not take the API down: the check reports `degraded` with the reason
 * and the start is retried every `retryMs`, so the sink takes over once the other writer stops.
 */
import path from 'node:path';
import type { Feature, FeatureContext, FeatureHandle } from '../app/features.ts';
import { createWarehouseSink, DEFAULT_SNAPSHOT_INTERVAL_MS, type WarehouseSink } from '../../connectors/duckdb-sink/sink.ts';
import type { HealthReport } from '../../connectors/http/create-api.ts';
import { withAdmin, withDeadline } from '../kafka/probe.ts';
import { exportMirrorFor } from '../../connectors/blob-store/s3.ts';

export interface WarehousePaths {
  dbPath: string;
  parquetDir: string;
}

/** Where the sink of a data folder keeps its files (docs/warehouse.md). */
export function warehousePaths(dataDir: string): WarehousePaths {
  return {
    dbPath: path.join(dataDir, 'warehouse', 'penumbra.duckdb'),
    parquetDir: path.join(dataDir, 'warehouse', 'parquet'),
  };
}

export interface WarehouseFeatureOptions {
  snapshotIntervalMs?: number;
  /** Delay between start attempts after a failed start (default 10 s). */
  retryMs?: number;
  /** Snapshot older than this many intervals → degraded (default 3). */
  staleIntervals?: number;
}

export interface WarehouseFeatureHandle extends FeatureHandle {
  /** The running sink, or null while it is not (yet) started. */
  sink(): WarehouseSink | null;
}

type Check = HealthReport['checks'][string];

/** Records behind per topic, from the stored offsets and the topics' high watermarks. */
async function computeLag(ctx: FeatureContext, sink: WarehouseSink): Promise<{ total: number; topics: Record<string, number> }> {
  const stored = new Map<string, number>();
  for (const r of await sink.query('SELECT topic, partition, next_offset FROM sink_offsets')) {
    stored.set(`${r.topic as string}\u0000${r.partition as number}`, Number(r.next_offset));
  }
  const t = ctx.cfg.topics;
  const topics = [t.itemsCatalog, t.shadowProfiles, t.assignments, t.telemetryRaw, t.telemetryMetrics, t.alerts, t.audit, t.dlq, t.changeFeatures, t.riskOutcomes, t.riskScores, t.riskModels, t.segmentMemberships, t.segmentStatus, t.pins];
  const out: Record<string, number> = {};
  let total = 0;
  // Asked once and bounded: this runs inside the health endpoint (probe.ts says why).
  await withDeadline(withAdmin(ctx.probeKafka, async (admin) => {
    for (const topic of topics) {
      let lag = 0;
      for (const o of await admin.fetchTopicOffsets(topic)) {
        // Without a stored offset the sink starts at the log start, so everything retained is behind.
        const from = stored.get(`${topic}\u0000${o.partition}`) ?? Number(o.low);
        lag += Math.max(0, Number(o.high) - from);
      }
      out[topic] = lag;
      total += lag;
    }
  }), 1500, 'Kafka offsets request');
  return { total, topics: out };
}

export function startWarehouse(ctx: FeatureContext, opts: WarehouseFeatureOptions = {}): Promise<WarehouseFeatureHandle> {
  const { cfg, log } = ctx;
  const intervalMs = opts.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS;
  const retryMs = opts.retryMs ?? 10_000;
  const staleIntervals = opts.staleIntervals ?? 3;
  const paths = warehousePaths(cfg.dataDir);

  let sink: WarehouseSink | null = null;
  let lastError: string | null = null;
  let ready = false;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  let starting: Promise<void> | null = null;

  const attempt = async (): Promise<void> => {
    let s: WarehouseSink | null = null;
    try {
      // Exports also go to the S3 bucket when PENUMBRA_PARQUET_S3 is set (connectors/blob-store/s3.ts).
      const mirror = await exportMirrorFor(cfg);
      s = createWarehouseSink({
        cfg, kafka: ctx.kafka, codec: ctx.codec, ...paths, snapshotIntervalMs: intervalMs, mirror,
        log: (msg, extra) => log.debug(msg, extra),
        // Another sink took the lease over (this one stalled past its session): it has stopped
        // consuming; close it and go back to waiting like a sink that could not start.
        onLeaseLost: (why) => {
          if (sink !== s) return;
          sink = null;
          ready = false;
          lastError = `lost the sink lease: ${why}`;
          log.warn('warehouse sink lost its lease; retrying', { why, retryMs });
          void s!.stop().catch(() => {});
          if (!stopped) {
            retry = setTimeout(() => void (starting = attempt()), retryMs);
            retry.unref();
          }
        },
      });
      await s.start();
    } catch (err) {
      await s?.stop().catch(() => {});
      lastError = (err as Error).message;
      log.warn('warehouse sink could not start; retrying', { err: lastError, retryMs });
      if (!stopped) {
        retry = setTimeout(() => void (starting = attempt()), retryMs);
        retry.unref();
      }
      return;
    }
    if (stopped) {
      await s.stop();
      return;
    }
    sink = s;
    lastError = null;
    void s.ready.then(() => (ready = true));
    log.info('warehouse sink started', { dbPath: paths.dbPath, parquetDir: paths.parquetDir, snapshotIntervalMs: intervalMs });
  };

  const check = async (): Promise<Check> => {
    if (!sink) {
      return { status: 'degraded', detail: lastError ? `warehouse sink not running: ${lastError}` : 'warehouse sink starting', ...paths };
    }
    const st = sink.stats;
    const now = Date.now();
    const snapshotAge = st.lastSnapshotAt === null ? null : now - st.lastSnapshotAt;
    // Exports stretch with the warehouse (EXPORT_DUTY in sink.ts): stale is relative to that.
    const staleMs = staleIntervals * st.effectiveSnapshotIntervalMs;
    const base = {
      dbPath: paths.dbPath,
      parquetDir: paths.parquetDir,
      snapshotIntervalMs: intervalMs,
      effectiveSnapshotIntervalMs: st.effectiveSnapshotIntervalMs,
      lastExportMs: st.lastExportMs,
      lastSnapshotAt: st.lastSnapshotAt === null ? null : new Date(st.lastSnapshotAt).toISOString(),
      snapshotAgeMs: snapshotAge,
      lastCommitAt: st.lastCommitAt === null ? null : new Date(st.lastCommitAt).toISOString(),
      records: st.records,
      deadLettered: st.deadLettered,
      lastExportRows: st.lastExportRows,
      compactions: st.compactions,
      retentionDeleted: st.retentionDeleted,
      // telemetry_events de-duplication (docs/warehouse.md "Exactly once"): ids remembered and
      // the arrival time they reach back to.
      dedupIds: st.dedupIds,
      dedupCoveredFrom: st.dedupCoveredFrom === null ? null : new Date(st.dedupCoveredFrom).toISOString(),
      // The sink lease (connectors/duckdb-sink/lease.ts): paused = its consumer crashed and restarts.
      leaseState: st.leaseState,
      leasePauses: st.leasePauses,
    };
    let lag: Awaited<ReturnType<typeof computeLag>> | null = null;
    let lagError: string | undefined;
    try {
      lag = await computeLag(ctx, sink);
    } catch (err) {
      lagError = (err as Error).message;
    }
    const withLag = lag ? { ...base, lag: lag.total, lagByTopic: lag.topics } : { ...base, lag: null };
    if (st.leaseState === 'paused') return { status: 'degraded', detail: `warehouse sink paused (not writing until it holds its lease again): ${st.leasePaused}`, ...withLag };
    if (!ready) return { status: 'degraded', detail: 'warehouse sink has not joined its consumer group yet', ...withLag };
    if (snapshotAge === null || snapshotAge > staleMs) {
      return { status: 'degraded', detail: `last Parquet snapshot is ${snapshotAge === null ? 'missing' : `${Math.round(snapshotAge / 1000)} s old`} (interval ${st.effectiveSnapshotIntervalMs / 1000} s)`, ...withLag };
    }
    if (lagError) return { status: 'degraded', detail: `cannot compute lag: ${lagError}`, ...withLag };
    return { status: 'ok', ...withLag };
  };
  ctx.healthChecks.push(async () => ({ duckdb: await check() }));

  starting = attempt();
  return starting.then(() => ({
    sink: () => sink,
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      await starting?.catch(() => {});
      await sink?.stop();
      sink = null;
    },
  }));
}

/** The Feature registered in features.ts: a no-op unless this process runs the sink. */
export function warehouseFeature(opts: WarehouseFeatureOptions = {}): Feature {
  return async (ctx) => (ctx.sink ? startWarehouse(ctx, opts) : {});
}

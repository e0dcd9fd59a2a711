/**
 * Warehouse sink: Kafka topics → DuckDB, exactly once, plus incremental Parquet exports for readers.
 *
 * Reads: penumbra.items.catalog, penumbra.shadow.profiles, penumbra.assignments,
 * penumbra.telemetry.raw, penumbra.telemetry.metrics, penumbra.alerts, penumbra.audit and
 * penumbra.dlq (Avro, Confluent framing), consumer group `<prefix>warehouse-sink`.
 * Writes: the tables of tables.ts in one DuckDB file (this process is its only writer), and
 * every `snapshotIntervalMs` the rows changed since the last export as Parquet parts under
 * `parquetDir` (export.ts: Hive-partitioned, append-only, compacted in the background).
 *
 * Guarantee: exactly-once into DuckDB. Each chunk of a fetched batch (one topic-partition, at
 * most `maxRowsPerTx` records) is written in ONE DuckDB transaction together with the new
 * `sink_offsets.next_offset` of that partition: either the rows and the offset are both
 * stored, or neither is. `sink_offsets` is the source of truth; the Kafka group offset is only
 * committed afterwards as a hint (lag monitoring). On every partition assignment (GROUP_JOIN)
 * the sink positions each assigned partition at its stored next_offset, or at the log start when
 * the database has none (a deleted DB file rebuilds from the topics even though the group has
 * committed offsets) — by a seek wherever the consumer would otherwise start elsewhere. Batches
 * fetched before a seek are dropped (kafkajs marks them stale), and any record whose offset is below the stored next_offset is skipped, so a replay after
 * `kill -9` anywhere — before, during or after the DuckDB commit — neither loses nor repeats a
 * row. On top of that every table has a natural key (event id, …) enforced by its PRIMARY KEY,
 * so the same record produced twice by an upstream retry is stored once as well (for raw events:
 * within their DuckDB retention, export.ts).
 *
 * Write path (profiled: docs/warehouse.md "Throughput"). Chunks alternate between two writer
 * connections ("lanes"): while DuckDB commits chunk i on its own thread, JavaScript decodes chunk
 * i+1 into the other lane. `telemetry_events` (no key index; its ids are de-duplicated against
 * recent-ids.ts before anything is appended) goes through an Appender on the table itself whose
 * rows stay buffered until it is flushed inside the chunk's transaction; its records are decoded
 * straight into column vectors (columnar.ts) and appended by DuckDB data chunk (chunk-append.ts).
 * A chunk's transaction begins and its Appender is flushed (synchronous, on this thread) before
 * the next chunk is decoded; only the COMMIT then runs on DuckDB's thread meanwhile. A batch's
 * last transaction commits in the background while kafkajs fetches the next one (`pending`:
 * settled before the next commit; a failure seeks the partition back), and eachBatch itself
 * returns before the batch is decoded (`running`, resolved at once) so that kafkajs's next fetch
 * is under way while it is. Every other
 * table is staged in per-connection TEMP tables and moved by ONE call — `BEGIN; INSERT INTO <table> SELECT …
 * FROM <stage>; <sink_offsets upsert>; COMMIT` — where a primary key refuses the whole statement if
 * a key is already stored (a duplicate delivery); then the transaction rolls back and the chunk
 * goes in through `INSERT … ON CONFLICT DO NOTHING` after collapsing in-chunk duplicates
 * (mergeSql; first arrival wins). Upsert tables (catalog, metric windows) always take mergeSql
 * with `DO UPDATE`. Transactions commit strictly in offset order, numbered (`_sink_tx`) for the
 * incremental export.
 *
 * Records that cannot be decoded (or mapped) go to `dead_letters` with their bytes, position and
 * reason, in the same transaction, and the partition moves on. A retriable failure (registry
 * unreachable, DuckDB I/O) rolls the transaction back and throws, so kafkajs refetches the batch.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBAppender, type DuckDBConnection, type DuckDBTimestampValue } from '@duckdb/node-api';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { PenumbraConfig } from '../../pipeline/config/config.ts';
import type { AvroCodec } from '../../pipeline/kafka/registry.ts';
import { ConflictError, isRetriable, PenumbraError, UnavailableError } from '../../pipeline/errors.ts';
import { deadLetter } from '../../pipeline/kafka/dlq.ts';
import type { DeadLetter } from '../../schemas/types.generated.ts';
import {
  ALL_TABLES, DEAD_LETTERS, SINK_OFFSETS, SINK_TX, TOPIC_TABLES, createStageSql, createTableSql, deadLetterRow, insertSql, mergeSql, migrateSql,
  quoteIdent as q, stageName, stageType, type Cell, type ColumnType, type TableSpec,
} from './tables.ts';
import { createParquetExporter, type ExportMirror, type SnapshotMeta } from './export.ts';
import { HashSet53, hashId, hashIdBytes, RecentIds } from './recent-ids.ts';
import { assertNoOtherSink } from './singleton.ts';
import { acquireSinkLease, leaseGroup, type LeaseState, type SinkLease, type SinkLeaseOptions } from './lease.ts';
import { ColumnBatch, compileColumnDecoder, type ColumnDecoder } from './columnar.ts';
import { ChunkAppender, selfTest as chunkSelfTest } from './chunk-append.ts';

export type { SnapshotMeta } from './export.ts';

export const SINK_PROCESSOR = 'warehouse-sink';
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 5000;
/**
 * Rows per DuckDB transaction: large enough to amortise the commit, small enough to heartbeat. A
 * fetch of 4 MB per partition holds ~28,000 of our telemetry records, so on a backlog a batch is
 * one transaction. Measured (bench/sink.bench.ts workload, CPU of the whole sink process): 1.4 s
 * per 200,000 events at 50,000 against 1.5–2.0 s at 10,000 — DuckDB's work per committed row falls
 * with the transaction's size; the next batch is decoded while it commits (eachBatch, pending).
 */
export const DEFAULT_MAX_ROWS_PER_TX = 50_000;

export interface WarehouseSinkOptions {
  cfg: PenumbraConfig;
  kafka: Kafka;
  codec: AvroCodec;
  dbPath: string;
  parquetDir: string;
  snapshotIntervalMs?: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /** Records per transaction (default DEFAULT_MAX_ROWS_PER_TX, 50,000). */
  maxRowsPerTx?: number;
  /** Called after every committed transaction (progress reporting, benchmarks). */
  onCommit?: (c: CommitInfo) => void;
  /** Also publish every export to object storage (S3-compatible; connectors/blob-store/s3.ts). */
  mirror?: ExportMirror | null;
  /** Raw events older than this stay in Parquet only (default cfg.warehouseRetentionHours; 0 = keep). */
  retentionHours?: number;
  /** Refuse to start after this long while another sink is a live member of the group (singleton.ts; default 15 s). */
  singletonWaitMs?: number;
  /**
   * How long start() waits for the sink lease (lease.ts) before refusing with a ConflictError
   * (default singletonWaitMs, 15 s; Infinity: a hot standby that waits until the holder is gone).
   */
  leaseWaitMs?: number;
  /** The lease's group session: how long a killed holder keeps it (default 10 s). */
  leaseSessionMs?: number;
  /** Called when the lease held is lost; the sink has stopped consuming by then (default: only logged). */
  onLeaseLost?: (why: string) => void;
  /** Fault tests only: the lease consumer's record hook and retry policy (lease.ts). */
  leaseFaults?: Pick<SinkLeaseOptions, 'eachRecord' | 'retry'>;
}

export interface CommitInfo {
  topic: string;
  partition: number;
  /** Stored next offset of the partition after this commit. */
  nextOffset: string;
  /** Records of the chunk (after skipping already-stored offsets). */
  records: number;
  /** Rows inserted or updated, per table. */
  changed: Record<string, number>;
  /** The chunk met an already-stored key and was written through the staged (de-duplicating) path. */
  staged: boolean;
  ms: number;
}

/**
 * The ids a chunk keeps in a recentDedup table, by hash (53 bits, recent-ids.ts): `keys` to find a
 * repeat inside the chunk (or, while the chunk commits, in the next one), `hashes` and `arrivals`
 * for the index once it committed, `slowIds` the ids of rows that took the avsc path (as strings:
 * the exact check of a hash hit needs them; columnar rows are read back from their batch).
 */
interface Remember {
  table: string;
  keys: HashSet53;
  hashes: number[];
  arrivals: number[];
  slowIds: string[];
}

export interface WarehouseSinkStats {
  /** Records written in a committed transaction (including dead-lettered ones). */
  records: number;
  /** Records dropped because their offset was below the stored next_offset. */
  skipped: number;
  /** Rows inserted or updated per table. */
  rows: Record<string, number>;
  /** Rows that an existing row with the same key made a no-op (duplicate deliveries). */
  duplicates: number;
  /** telemetry_events: ids remembered for de-duplication, and the arrival time they reach back to. */
  dedupIds: number;
  dedupCoveredFrom: number | null;
  /** Chunks redone through the staged path because they held an already-stored key. */
  stagedRetries: number;
  /** Records decoded by the columnar path (columnar.ts) rather than avsc + rows(), committed. */
  columnar: number;
  deadLettered: number;
  transactions: number;
  snapshots: number;
  /** Epoch ms of the last consumer-group join (partitions assigned; throughput clocks start there). */
  joinedAt: number | null;
  /** Epoch ms of the first fetched batch. */
  firstBatchAt: number | null;
  lastCommitAt: number | null;
  lastSnapshotAt: number | null;
  /** Duration of the last Parquet export (ms) and the rows it wrote. */
  lastExportMs: number | null;
  lastExportRows: number | null;
  /** Interval exports actually run at: max(snapshotIntervalMs, lastExportMs / EXPORT_DUTY). */
  effectiveSnapshotIntervalMs: number;
  /** Parts merged by background compaction, and raw rows deleted by the DuckDB retention. */
  compactions: number;
  retentionDeleted: number;
  /** Epoch ms when this sink got the sink lease (lease.ts); null before. */
  leaseAcquiredAt: number | null;
  /** Why the lease was lost (the sink stopped consuming then); null while held or never held. */
  leaseLost: string | null;
  /** Where the lease stands (lease.ts `leaseStep`); null before start(). */
  leaseState: LeaseState | null;
  /** Why writing is paused (the lease consumer crashed and restarts); null while not paused. */
  leasePaused: string | null;
  /** Pauses so far (each one a restartable crash of the lease consumer), and resumes after them. */
  leasePauses: number;
  leaseResumes: number;
}

/**
 * Largest share of wall time Parquet exports may take. Exports are incremental (their cost
 * follows what changed, not the warehouse's size), but a burst or a stalled machine can still
 * make one slow: the interval stretches rather than letting exports crowd out the writer — by at
 * most EXPORT_MAX_STRETCH times, since one slow export says little about the next.
 */
export const EXPORT_DUTY = 0.1;
export const EXPORT_MAX_STRETCH = 6;

/** The interval the next export waits: the configured one, or longer when exports got slow. */
export function effectiveSnapshotInterval(intervalMs: number, lastExportMs: number): number {
  return Math.max(intervalMs, Math.min(Math.ceil(lastExportMs / EXPORT_DUTY), intervalMs * EXPORT_MAX_STRETCH));
}

export interface WarehouseSink {
  start(): Promise<void>;
  /** Stops consuming, writes a final export and closes the database. */
  stop(): Promise<void>;
  readonly stats: WarehouseSinkStats;
  /** Resolves once the group is joined and every assigned partition was positioned. */
  readonly ready: Promise<void>;
  /** Export now (the timer does this every snapshotIntervalMs). */
  snapshot(): Promise<SnapshotMeta>;
  /** Run the DuckDB retention of raw events now (the timer does this every 10 minutes). */
  applyRetention(): Promise<number>;
  /** Read the live database through a separate connection of the sink (tests, admin); rows as JS values. */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

type CellWriter = (a: DuckDBAppender, v: Cell) => void;
/** Appends one cell to the table's own column (the direct path). */
function directWriterFor(type: ColumnType): CellWriter {
  switch (type) {
    // The Appender takes microseconds; a plain { micros } is what the binding reads.
    case 'TIMESTAMP': return (a, v) => a.appendTimestamp({ micros: BigInt(v as number) * 1000n } as DuckDBTimestampValue);
    case 'BIGINT': return (a, v) => a.appendBigInt(BigInt(v as number));
    default: return writerFor(type);
  }
}

/**
 * Rows an Appender buffers before it flushes on its own (DuckDB: 100 vectors of 2,048). The direct
 * path relies on nothing reaching the table before the flush inside the transaction, so a chunk
 * must stay well below this (maxRowsPerTx is capped at half of it).
 */
export const APPENDER_AUTOFLUSH_ROWS = 204_800;

/** Appends one cell to a staging column (stageType: BIGINT and TIMESTAMP are staged as DOUBLE). */
function writerFor(type: ColumnType): CellWriter {
  switch (stageType(type)) {
    case 'VARCHAR': return (a, v) => a.appendVarchar(v as string);
    case 'DOUBLE': return (a, v) => a.appendDouble(v as number);
    case 'INTEGER': return (a, v) => a.appendInteger(v as number);
    case 'BOOLEAN': return (a, v) => a.appendBoolean(v as boolean);
    case 'BLOB': return (a, v) => a.appendBlob(v as Uint8Array);
    default: throw new Error(`no staging writer for ${type}`);
  }
}

/** One staging table and its appender on a lane's connection. */
interface Stage {
  table: TableSpec;
  appender: DuckDBAppender;
  writers: CellWriter[];
  /**
   * recentDedup tables (telemetry_events, no key index): an Appender on the table itself. Rows
   * are buffered in it while the previous transaction commits and flushed inside this chunk's
   * transaction — no staging copy, no INSERT … SELECT.
   */
  direct: DuckDBAppender | null;
  directWriters: CellWriter[];
  /**
   * Columnar path of the direct Appender (tables with `fields`, once chunk-append.ts's self-test
   * passed): records decoded straight into `batch`, handed over by data chunk.
   */
  batch: ColumnBatch | null;
  chunk: ChunkAppender | null;
  staged: number;
}

/** A writer connection with its own TEMP staging tables (TEMP tables are per connection). */
interface Lane {
  conn: DuckDBConnection;
  stages: Map<string, Stage>;
}

/** One staged chunk of one partition, ready to be committed. */
interface StagedChunk {
  lane: Lane;
  topic: string;
  partition: number;
  records: number;
  next: bigint;
  lastOffset: string;
  dead: number;
  used: Stage[];
  /** De-duplicated rows dropped before staging (a recentDedup table's repeated ids). */
  dropped: number;
  /** Ids this chunk stores in a recentDedup table (remembered once it committed): hash, arrival. */
  remember: Remember | null;
  started: number;
  /** The records (kept to stage the chunk again when the direct path meets a key). */
  messages: KafkaMessage[];
  /** The stage whose rows wait in its direct Appender, flushed inside the transaction. */
  direct: Stage | null;
  /** Transaction number the rows were stamped with. */
  tx: bigint;
  /** Records decoded by the columnar path. */
  columnar: number;
}

const isKeyViolation = (err: unknown): boolean => /constraint|duplicate key/i.test((err as Error)?.message ?? '');
const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export function createWarehouseSink(opts: WarehouseSinkOptions): WarehouseSink {
  const { cfg, kafka, codec } = opts;
  const log = opts.log ?? (() => {});
  const intervalMs = opts.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS;
  const maxRows = Math.min(opts.maxRowsPerTx ?? DEFAULT_MAX_ROWS_PER_TX, APPENDER_AUTOFLUSH_ROWS / 2);
  const retentionHours = opts.retentionHours ?? cfg.warehouseRetentionHours;
  const groupId = `${cfg.topicPrefix}warehouse-sink`;

  // topic name → tables fed by it (one topic may feed several: rollout decisions → decisions and bandit weights)
  const byTopic = new Map<string, TableSpec[]>();
  for (const t of TOPIC_TABLES) {
    const k = cfg.topics[t.source!.topic];
    byTopic.set(k, [...(byTopic.get(k) ?? []), t]);
  }

  const stats: WarehouseSinkStats = {
    records: 0, skipped: 0, rows: Object.fromEntries(ALL_TABLES.map((t) => [t.name, 0])), duplicates: 0, dedupIds: 0, dedupCoveredFrom: null, stagedRetries: 0, columnar: 0, deadLettered: 0,
    transactions: 0, snapshots: 0, joinedAt: null, firstBatchAt: null, lastCommitAt: null, lastSnapshotAt: null,
    lastExportMs: null, lastExportRows: null, effectiveSnapshotIntervalMs: intervalMs, compactions: 0, retentionDeleted: 0,
    leaseAcquiredAt: null, leaseLost: null, leaseState: null, leasePaused: null, leasePauses: 0, leaseResumes: 0,
  };

  let instance: DuckDBInstance | null = null;
  let writer!: DuckDBConnection;
  let reader!: DuckDBConnection;
  let adhoc!: DuckDBConnection;
  let maint!: DuckDBConnection;
  const lanes: Lane[] = [];
  let consumer: Consumer | null = null;
  let admin: Admin | null = null;
  let lease: SinkLease | null = null;
  /** In-memory copy of sink_offsets (this process is the only writer, so it never diverges). */
  const nextOffsets = new Map<string, bigint>();
  /** Recently stored ids of the recentDedup tables (telemetry_events), by table. */
  const recent = new Map<string, RecentIds>();
  /** The lane whose transaction is in flight (a chunk staged meanwhile commits one number later). */
  let committingLane: Lane | null = null;
  /** Ids of the chunk being committed right now (not yet in `recent`), by table. */
  const inflight = new Map<string, HashSet53>();
  /** Settles when the transaction in flight (if any) has committed or failed. */
  let inflightDone: Promise<void> = Promise.resolve();
  /** Number of the last committed sink transaction (rows carry the number of theirs: `_sink_tx`). */
  let lastTx = 0n;
  /** Positioning of the current assignment; eachBatch waits for it before touching any record. */
  let positioned: Promise<void> = Promise.resolve();
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  let timer: NodeJS.Timeout | null = null;
  let retentionTimer: NodeJS.Timeout | null = null;
  let snapshotRunning: Promise<SnapshotMeta> | null = null;
  let exporter: ReturnType<typeof createParquetExporter> | null = null;
  let stopping = false;

  async function openDatabase(): Promise<void> {
    await mkdir(path.dirname(path.resolve(opts.dbPath)), { recursive: true });
    try {
      instance = await DuckDBInstance.create(opts.dbPath, { memory_limit: opts.cfg.duckdbMemoryLimit });
    } catch (err) {
      // Typically the file lock: another sink (the one writer) already holds this database.
      throw new UnavailableError(`cannot open DuckDB ${opts.dbPath}: ${(err as Error).message}`, err, false);
    }
    writer = await instance.connect();
    reader = await instance.connect();
    adhoc = await instance.connect();
    maint = await instance.connect();
    for (const t of ALL_TABLES) {
      await writer.run(createTableSql(t));
      for (const sql of migrateSql(t)) await writer.run(sql);
    }
    // The direct path needs the stored column order to be ours (the Appender fills by position;
    // a table migrated from an older layout may differ and then keeps the staged path).
    const directOk = new Set<string>();
    for (const t of TOPIC_TABLES) {
      if (!t.recentDedup) continue;
      const actual = (await writer.runAndReadAll(`SELECT column_name FROM duckdb_columns() WHERE table_name = ${sqlString(t.name)} AND schema_name = 'main' ORDER BY column_index`))
        .getRowObjectsJS().map((r) => r.column_name as string);
      if (actual.join('\u0000') === [...t.columns.map((c) => c.name), SINK_TX].join('\u0000')) directOk.add(t.name);
      else log('warehouse sink: column order differs from this version; staged writes only', { table: t.name });
    }
    // The columnar path writes DuckDB's vectors by the C API's layout: proven once per process.
    const columnarOk = [...directOk].some((n) => TOPIC_TABLES.find((t) => t.name === n)?.fields) && (await chunkSelfTest(writer).catch((err: Error) => {
      log('warehouse sink: columnar self-test failed; per-cell appends', { error: err.message });
      return false;
    }));
    if (!columnarOk && directOk.size > 0) log('warehouse sink: columnar path off; per-cell appends');
    // Staging tables are TEMP: per-connection, never written to the WAL, gone after a crash.
    for (let i = 0; i < 2; i++) {
      const conn = i === 0 ? writer : await instance.connect();
      const stages = new Map<string, Stage>();
      for (const t of TOPIC_TABLES) {
        await conn.run(createStageSql(t));
        stages.set(t.name, {
          table: t,
          appender: await conn.createAppender(stageName(t)),
          writers: t.columns.map((c) => writerFor(c.type)),
          direct: directOk.has(t.name) ? await conn.createAppender(t.name) : null,
          directWriters: t.columns.map((c) => directWriterFor(c.type)),
          batch: columnarOk && directOk.has(t.name) && t.fields ? new ColumnBatch(t.columns.map((c) => c.type), 4096) : null,
          chunk: columnarOk && directOk.has(t.name) && t.fields ? new ChunkAppender(t.columns.map((c) => c.type), true) : null,
          staged: 0,
        });
      }
      lanes.push({ conn, stages });
    }
    const rows = (await writer.runAndReadAll(`SELECT topic, partition, next_offset, last_tx FROM ${q(SINK_OFFSETS.name)}`)).getRowObjectsJS();
    for (const r of rows) {
      nextOffsets.set(tpKey(r.topic as string, r.partition as number), r.next_offset as bigint);
      if (r.last_tx !== null && (r.last_tx as bigint) > lastTx) lastTx = r.last_tx as bigint;
    }
    for (const t of TOPIC_TABLES) if (t.recentDedup) await loadRecent(t);
    log('warehouse sink: database open', { dbPath: opts.dbPath, storedPartitions: nextOffsets.size, lastTx: lastTx.toString() });
  }

  /** Rebuild the de-duplication index from the rows stored within its horizon (after a restart). */
  async function loadRecent(t: TableSpec): Promise<void> {
    const idx = new RecentIds({ horizonMs: cfg.dedupHorizonMinutes * 60_000, maxIds: cfg.dedupMaxIds });
    recent.set(t.name, idx);
    const arrival = t.recentDedup!.arrival;
    // The horizon runs back from the newest stored arrival, as the index's own slices do.
    const [newest] = (await writer.runAndReadAll(`SELECT epoch_ms(max(${q(arrival)})) AS m FROM ${q(t.name)}`)).getRowObjectsJS();
    if (newest.m === null) return;
    const from = Number(newest.m) - cfg.dedupHorizonMinutes * 60_000;
    const res = await writer.stream(`SELECT ${q(t.key[0])} AS id, epoch_ms(${q(arrival)}) AS at FROM ${q(t.name)} WHERE ${q(arrival)} >= epoch_ms(${from}::BIGINT)`);
    for (;;) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const [ids, ats] = chunk.getColumns() as [string[], bigint[]];
      for (let i = 0; i < ids.length; i++) idx.add(hashId(ids[i]), Number(ats[i]));
    }
    stats.dedupIds = idx.size;
    stats.dedupCoveredFrom = idx.coveredFrom();
  }

  /** Dead letter for a record the sink itself cannot store; the id makes a replay a no-op. */
  function ownDeadLetter(topic: string, partition: number, m: KafkaMessage, err: unknown): DeadLetter {
    // Bounded like every dead letter (pipeline/kafka/dlq.ts): a prefix, the length and SHA-256.
    return deadLetter({
      id: `${SINK_PROCESSOR}:${topic}:${partition}:${m.offset}`,
      sourceTopic: topic, partition, offset: m.offset, key: m.key ?? null, value: m.value ?? null,
      reason: (err as Error)?.message ?? String(err),
      errorCode: err instanceof PenumbraError ? err.code : 'processing',
      processor: SINK_PROCESSOR,
    });
  }

  function appendDirect(stage: Stage, cells: Cell[], tx: bigint): void {
    const a = stage.direct!;
    const ws = stage.directWriters;
    for (let i = 0; i < ws.length; i++) {
      const v = cells[i];
      if (v === null || v === undefined) a.appendNull();
      else ws[i](a, v);
    }
    a.appendBigInt(tx);
    a.endRow();
    stage.staged++;
  }

  function append(stage: Stage, cells: Cell[]): void {
    const { appender, writers } = stage;
    for (let i = 0; i < writers.length; i++) {
      const v = cells[i];
      if (v === null || v === undefined) appender.appendNull();
      else writers[i](appender, v);
    }
    appender.appendInteger(stage.staged++);
    appender.endRow();
  }

  async function clearLane(lane: Lane): Promise<void> {
    const dirty: string[] = [];
    for (const st of lane.stages.values()) {
      st.appender.clear();
      st.direct?.clear();
      st.batch?.reset();
      if (st.staged > 0) dirty.push(`DELETE FROM ${q(stageName(st.table))}`);
      st.staged = 0;
    }
    if (dirty.length) await lane.conn.run(dirty.join(';\n'));
  }

  /** Column decoders by table and writer schema id; null: that schema is decoded with avsc. */
  const columnDecoders = new Map<string, ColumnDecoder | null>();

  /** The last lookup (one table and one schema id for long stretches): no key string per record. */
  let lastDecoder: { table: TableSpec; id: number; dec: ColumnDecoder | null } | null = null;

  /** The decoder of a record's schema id when already compiled (synchronous: no promise per record). */
  function knownColumnDecoder(table: TableSpec, value: Buffer | null): ColumnDecoder | null | undefined {
    const id = codec.schemaIdOf(value);
    if (lastDecoder && lastDecoder.id === id && lastDecoder.table === table) return lastDecoder.dec;
    const dec = columnDecoders.get(`${table.name}:${id}`);
    if (dec !== undefined) lastDecoder = { table, id, dec };
    return dec;
  }

  async function columnDecoderFor(table: TableSpec, value: Buffer | null): Promise<ColumnDecoder | null> {
    const known = knownColumnDecoder(table, value);
    if (known !== undefined) return known;
    const id = codec.schemaIdOf(value);
    const key = `${table.name}:${id}`;
    const { writer, reader } = await codec.typesFor(table.source!.schema, value);
    const dec = compileColumnDecoder(writer, reader, table.fields!, table.columns.map((c) => c.type));
    if (!dec) log('warehouse sink: schema outside the columnar decoder; avsc for it', { table: table.name, schemaId: id });
    columnDecoders.set(key, dec);
    lastDecoder = { table, id, dec };
    return dec;
  }

  /**
   * Decode one chunk of one partition into `lane`'s staging tables (no transaction: TEMP tables
   * belong to this connection alone). Synchronous except for the first record of a new schema id.
   */
  async function stageChunk(lane: Lane, topic: string, partition: number, messages: KafkaMessage[], staged = false): Promise<StagedChunk> {
    const started = Date.now();
    const tables = byTopic.get(topic)!;
    // Tables of one topic share its value schema: each record is decoded once; the first table
    // is the chunk's main one (direct path, de-duplication), the others (rollout decisions →
    // bandit weights) are derived from the same value and go through their staging tables.
    const table = tables[0];
    const schema = table.source!.schema;
    const main = lane.stages.get(table.name)!;
    const extraTables = tables.slice(1);
    const extras = extraTables.map((t) => lane.stages.get(t.name)!);
    // The transaction number this chunk will commit under: transactions commit one after another.
    const tx = lastTx + (committingLane && committingLane !== lane ? 2n : 1n);
    const direct = !staged && main.direct ? main : null;
    const dl = lane.stages.get(DEAD_LETTERS.name)!;
    let dead = 0;
    let dropped = 0;
    // recentDedup (telemetry_events): repeated ids are dropped here, before staging.
    const idx = recent.get(table.name);
    const remember: Remember | null = idx ? { table: table.name, keys: new HashSet53(Math.min(messages.length, maxRows)), hashes: [], arrivals: [], slowIds: [] } : null;
    const idCol = table.columns.findIndex((c) => c.name === table.key[0]);
    const atCol = table.recentDedup ? table.columns.findIndex((c) => c.name === table.recentDedup!.arrival) : -1;
    const committing = inflight.get(table.name);
    /**
     * Rows whose id hash is already known — kept earlier in this chunk, in the chunk committing
     * right now, or in the index of stored ids: a duplicate, or a hash collision. Confirmed
     * exactly below (rare: only retries and collisions get here).
     */
    const candidates: { row: Cell[]; h: number }[] = [];
    /** A candidate's hash is in the committing chunk: its outcome decides (awaited below). */
    let hitCommitting = false;
    /**
     * recentDedup bookkeeping for one row about to be kept, by the hash of its id (no string, no
     * Set of strings per record: this ran for every event and cost ~0.5–0.9 µs of it): true when
     * the row is kept, false when it is a candidate (the caller keeps the row for the check below).
     */
    const admit = (h: number, arrival: number): boolean => {
      const inCommitting = committing !== undefined && committing.has(h);
      if (inCommitting || remember!.keys.has(h) || idx!.has(h)) {
        if (inCommitting) hitCommitting = true;
        return false;
      }
      remember!.keys.add(h);
      remember!.hashes.push(h);
      remember!.arrivals.push(arrival);
      return true;
    };
    // Columnar path (telemetry_events): Avro bodies decoded straight into column vectors.
    const batch = direct?.batch ?? null;
    let columnar = 0;
    try {
      for (const m of messages) {
        if (batch) {
          let dec: ColumnDecoder | null;
          try {
            // Synchronous once the schema id's decoder is compiled (every record after the first).
            const known = knownColumnDecoder(table, m.value);
            dec = known === undefined ? await columnDecoderFor(table, m.value) : known;
            if (dec) {
              const mark = batch.arenaLen;
              dec.decode(m.value!, 5, m.value!.length, batch);
              columnar++;
              const row = batch.rows - 1;
              if (remember) {
                const ic = batch.cols[idCol];
                const at = ic.off![row];
                const h = hashIdBytes(batch.arena, at, at + ic.len![row]) || hashId(batch.string(idCol, row)!);
                if (!admit(h, batch.cols[atCol].num![row])) {
                  candidates.push({ row: batch.row(row), h });
                  batch.pop(mark);
                }
              }
              continue;
            }
          } catch (err) {
            if (isRetriable(err)) throw err; // registry outage: nothing is committed; kafkajs refetches the batch
            append(dl, deadLetterRow(ownDeadLetter(topic, partition, m, err)));
            dead++;
            continue;
          }
          // No column decoder for this writer schema: avsc and rows(), below.
        }
        let rows: Cell[][];
        let extraRows: Cell[][][];
        try {
          // Synchronous when the writer schema is known (every record after the first).
          const value = codec.decodeKnown(schema, m.value) ?? (await codec.decode(schema, m.value));
          rows = table.rows(value as never, { topic, partition, offset: m.offset });
          extraRows = extraTables.map((t) => t.rows(value as never, { topic, partition, offset: m.offset }));
        } catch (err) {
          if (isRetriable(err)) throw err; // registry outage: nothing is committed; kafkajs refetches the batch
          append(dl, deadLetterRow(ownDeadLetter(topic, partition, m, err)));
          dead++;
          continue;
        }
        for (const r of rows) {
          if (remember) {
            const h = hashId(r[idCol] as string);
            if (!admit(h, r[atCol] as number)) {
              candidates.push({ row: r, h });
              continue;
            }
            remember.slowIds.push(r[idCol] as string);
          }
          if (direct) appendDirect(main, r, tx);
          else append(main, r);
        }
        for (let e = 0; e < extras.length; e++) for (const r of extraRows[e]) append(extras[e], r);
      }
      /** Ids kept above whose hash a candidate shares (exact strings, for the check below). */
      const keptIds = new Set<string>();
      if (candidates.length > 0) {
        const hit = new HashSet53(candidates.length);
        for (const c of candidates) hit.add(c.h);
        for (const id of remember!.slowIds) if (hit.has(hashId(id))) keptIds.add(id);
        if (batch) {
          const ic = batch.cols[idCol];
          for (let r = 0; r < batch.rows; r++) {
            const at = ic.off![r];
            const h = hashIdBytes(batch.arena, at, at + ic.len![r]) || hashId(batch.string(idCol, r)!);
            if (hit.has(h)) keptIds.add(batch.string(idCol, r)!);
          }
        }
      }
      if (batch && batch.rows > 0) {
        // Whole columns into the direct Appender (buffered, like the per-cell appends).
        direct!.chunk!.append(direct!.direct!, batch, Number(tx));
        direct!.staged += batch.rows;
        batch.reset();
      }
      if (candidates.length > 0) {
        // A candidate may repeat an id of the chunk committing right now: once that commit is
        // through, its rows are stored (and the query below sees them) or it failed (and the
        // partition is fetched again: then neither chunk commits).
        if (hitCommitting) await inflightDone;
        // Which candidates are really stored (within the index's horizon)? Rare: only retries.
        // The ids are bound, not spliced in as literals: an id is whatever bytes a producer wrote,
        // and one holding a NUL ended the SQL text there ("unterminated quoted string") — a parse
        // error the sink took for an outage, retrying the batch forever (found by the fresh fuzz
        // seed 1021587882 in test/fuzz/kafka-topics.int.test.ts).
        const ids = candidates.map((c) => c.row[idCol] as string);
        const from = idx!.coveredFrom() ?? 0;
        const stored = new Set(
          (await lane.conn.runAndReadAll(`SELECT ${q(table.key[0])} AS id FROM ${q(table.name)} WHERE ${q(table.recentDedup!.arrival)} >= epoch_ms(${from}::BIGINT) AND ${q(table.key[0])} IN (${ids.map((_, i) => `$${i + 1}`).join(', ')})`, ids))
            .getRowObjectsJS().map((x) => x.id as string),
        );
        for (const { row: r, h } of candidates) {
          const id = r[idCol] as string;
          if (stored.has(id) || keptIds.has(id)) {
            dropped++;
            continue;
          }
          keptIds.add(id);
          remember!.keys.add(h);
          remember!.hashes.push(h);
          remember!.arrivals.push(r[atCol] as number);
          if (direct) appendDirect(main, r, tx);
          else append(main, r);
        }
      }
      // The direct appender is flushed inside the transaction (commitChunk), never here.
      for (const st of new Set([main, dl, ...extras])) st.appender.flushSync();
    } catch (err) {
      await clearLane(lane).catch(() => {});
      throw err;
    }
    const used = [...new Set([main, dl, ...extras])].filter((st) => st.staged > 0);
    const lastOffset = messages[messages.length - 1].offset;
    return { lane, topic, partition, records: messages.length, next: BigInt(lastOffset) + 1n, lastOffset, dead, used, dropped, remember, started, messages, direct, tx, columnar };
  }

  const offsetsSql = (c: StagedChunk, tx: bigint): string =>
    `INSERT INTO ${q(SINK_OFFSETS.name)} VALUES (${sqlString(c.topic)}, ${c.partition}, ${c.next}, epoch_ms(${Date.now()}::BIGINT), ${tx})
     ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at, last_tx = excluded.last_tx`;

  /**
   * ONE transaction: the staged rows of the chunk and the partition's new next_offset, sent as a
   * single call so DuckDB runs it on its own thread while JavaScript stages the next chunk.
   */
  function commitChunk(chunk: StagedChunk): { done: Promise<CommitInfo>; begun: Promise<void> } {
    // Set before the transaction starts (synchronously), so a chunk staged meanwhile can wait for it.
    let settled!: () => void;
    inflightDone = new Promise<void>((r) => (settled = r));
    let begin!: () => void;
    const begun = new Promise<void>((r) => (begin = r));
    const p = commitChunkNow(chunk, begin);
    p.then(settled, settled);
    p.then(begin, begin);
    return { done: p, begun };
  }

  /**
   * `begun` is called once the JavaScript thread's part of the transaction is done (BEGIN, the
   * Appender's synchronous flush) and the rest (offsets, COMMIT: WAL and checkpoint work) is with
   * DuckDB's thread. The caller waits for it before it decodes the next chunk: otherwise the flush,
   * queued behind BEGIN's round trip, waited for that whole decode and the commit overlapped
   * nothing (a trace showed every commit starting only after the next chunk was staged).
   */
  async function commitChunkNow(chunk: StagedChunk, begun: () => void): Promise<CommitInfo> {
    let c = chunk;
    const { lane } = c;
    const tx = lastTx + 1n;
    if (c.tx !== tx) throw new UnavailableError(`sink transaction order broken: chunk stamped ${c.tx}, next is ${tx}`, undefined, false);
    const changed: Record<string, number> = {};
    let staged = false;
    if (c.remember) inflight.set(c.remember.table, c.remember.keys);
    committingLane = lane;
    try {
      const sql = (x: StagedChunk) => x.used.filter((st) => st !== x.direct).map((st) => (st.table.mode === 'insert-once' ? insertSql(st.table, tx) : mergeSql(st.table, tx)));
      try {
        if (c.direct) {
          await lane.conn.run('BEGIN TRANSACTION');
          c.direct.direct!.flushSync();
          const rest = lane.conn.run([...sql(c), offsetsSql(c, tx), 'COMMIT'].join(';\n'));
          begun();
          await rest;
        } else {
          const all = lane.conn.run(['BEGIN TRANSACTION', ...sql(c), offsetsSql(c, tx), 'COMMIT'].join(';\n'));
          begun();
          await all;
        }
        for (const st of c.used) changed[st.table.name] = (changed[st.table.name] ?? 0) + st.staged;
      } catch (err) {
        c.direct?.direct?.clear();
        await lane.conn.run('ROLLBACK').catch(() => {});
        if (!isKeyViolation(err)) throw err;
        // A key already stored (a duplicate delivery) or repeated in the chunk: the same rows
        // again through the staging tables, de-duplicated, statement by statement to count what
        // each one stored.
        staged = true;
        if (c.direct) {
          await clearLane(lane);
          // Staged again, its ids must not meet themselves as the chunk in flight.
          if (c.remember) inflight.delete(c.remember.table);
          c = await stageChunk(lane, c.topic, c.partition, c.messages, true);
        }
        await lane.conn.run('BEGIN TRANSACTION');
        try {
          for (const st of c.used) changed[st.table.name] = (changed[st.table.name] ?? 0) + (await lane.conn.run(mergeSql(st.table, tx))).rowsChanged;
          await lane.conn.run(offsetsSql(c, tx));
          await lane.conn.run('COMMIT');
        } catch (err2) {
          await lane.conn.run('ROLLBACK').catch(() => {});
          throw err2;
        }
      }
    } catch (err) {
      if (c.remember) inflight.delete(c.remember.table);
      committingLane = null;
      await clearLane(lane).catch(() => {});
      throw new UnavailableError(`DuckDB transaction for ${c.topic}[${c.partition}] failed: ${(err as Error).message}`, err);
    }
    committingLane = null;
    // Committed: from here on the rows and the offset are durable together.
    lastTx = tx;
    if (c.remember) {
      // Only committed ids enter the index: a rolled-back chunk comes again and must not be dropped.
      const idx = recent.get(c.remember.table)!;
      const { hashes, arrivals } = c.remember;
      for (let i = 0; i < hashes.length; i++) idx.add(hashes[i], arrivals[i]);
      inflight.delete(c.remember.table);
      stats.dedupIds = idx.size;
      stats.dedupCoveredFrom = idx.coveredFrom();
    }
    nextOffsets.set(tpKey(c.topic, c.partition), c.next);
    let rowsIn = 0;
    for (const st of c.used) rowsIn += st.staged;
    await clearLane(lane);
    let stored = 0;
    for (const [name, n] of Object.entries(changed)) {
      stats.rows[name] += n;
      exporter?.touched(name, tx);
      stored += n;
    }
    exporter?.touched(SINK_OFFSETS.name, tx);
    stats.records += c.records;
    stats.deadLettered += c.dead;
    stats.columnar += c.columnar;
    stats.transactions++;
    stats.duplicates += rowsIn - stored + c.dropped;
    if (staged) stats.stagedRetries++;
    stats.lastCommitAt = Date.now();
    const info: CommitInfo = { topic: c.topic, partition: c.partition, nextOffset: c.next.toString(), records: c.records, changed, staged, ms: Date.now() - c.started };
    opts.onCommit?.(info);
    return info;
  }

  /**
   * The last chunk of the previous batch, still committing. eachBatch returns without waiting for
   * it (its offset resolved optimistically) so that kafkajs fetches, and the next batch is decoded,
   * while DuckDB commits: no idle gap at every batch boundary. It settles before the next commit
   * (transactions stay in offset order), before positioning and before the database closes. If it
   * fails, its partition is sought back to the stored next_offset right away, so the records it
   * held are fetched again — sink_offsets stays the only truth for where the sink resumes.
   */
  let pending: Promise<void> | null = null;
  /** Kafka offset hints, one after another, never awaited by the write path. */
  let hints: Promise<void> = Promise.resolve();

  function hint(info: CommitInfo): void {
    if (!consumer) return;
    const c = consumer;
    hints = hints.then(() => c.commitOffsets([{ topic: info.topic, partition: info.partition, offset: info.nextOffset }])).catch((err: Error) => {
      // Only a hint (lag monitoring); sink_offsets decides where we resume.
      log('warehouse sink: Kafka offset commit (hint) failed', { topic: info.topic, partition: info.partition, error: err.message });
    });
  }

  /** Make the consumer fetch `topic[partition]` again from the offset stored in DuckDB. */
  async function rewind(topic: string, partition: number): Promise<void> {
    if (!consumer) return;
    let offset = nextOffsets.get(tpKey(topic, partition))?.toString();
    offset ??= (await admin!.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.low ?? '0';
    consumer.seek({ topic, partition, offset });
  }

  function leavePending(c: StagedChunk, commit: Promise<CommitInfo>): void {
    const p: Promise<void> = commit.then(hint, async (err: unknown) => {
      log('warehouse sink: transaction failed; partition rewound to its stored offset', { topic: c.topic, partition: c.partition, error: (err as Error).message });
      await rewind(c.topic, c.partition).catch(() => {});
      throw err;
    });
    p.catch(() => {}); // observed by settlePending; keeps a failure from being unhandled meanwhile
    pending = p;
  }

  async function settlePending(): Promise<void> {
    const p = pending;
    if (!p) return;
    try {
      await p;
    } finally {
      if (pending === p) pending = null;
    }
  }

  /**
   * The batch being decoded and committed behind kafkajs's back (eachBatch). kafkajs fetches
   * again only once eachBatch returned for every batch of the last fetch, so eachBatch hands its
   * batch to this and returns: the next fetch's round trip to the broker overlaps the decoding
   * instead of following it. One batch at a time, in fetch order: it settles before the next
   * batch, before positioning and before the database closes.
   */
  let running: Promise<void> | null = null;

  async function settleRunning(): Promise<void> {
    const r = running;
    if (!r) return;
    try {
      await r;
    } finally {
      if (running === r) running = null;
    }
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    await positioned;
    // The previous batch first. If it failed, its partition was rewound to the stored offset
    // already; thrown here, kafkajs retries (with its backoff) as when the failure was its own.
    await settleRunning();
    const { batch } = payload;
    if (batch.messages.length === 0) return;
    stats.firstBatchAt ??= Date.now();
    if (!payload.isRunning() || payload.isStale()) return; // fetched before a seek: refetched from the sought offset
    const r = new Promise<void>((resolve) => setImmediate(resolve)) // after kafkajs has sent its next fetch
      .then(() => processBatch(payload))
      .catch(async (err: unknown) => {
        log('warehouse sink: batch failed; partition rewound to its stored offset', { topic: batch.topic, partition: batch.partition, error: (err as Error).message });
        await rewind(batch.topic, batch.partition).catch(() => {});
        throw err;
      });
    r.catch(() => {}); // observed by settleRunning; keeps a failure from being unhandled meanwhile
    running = r;
    // kafkajs fetches from the resolved offsets: resolved now (optimistically, like the pending
    // commit's), so the next fetch asks for what follows this batch. sink_offsets stays the only
    // truth for where the sink resumes; a failure seeks back (above).
    payload.resolveOffset(batch.messages[batch.messages.length - 1].offset);
  }

  /** Decode and commit one fetched batch (eachBatch's body, run as `running`). */
  async function processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    if (!payload.isRunning() || payload.isStale()) return; // a seek since the handover
    const stored = nextOffsets.get(tpKey(topic, partition));
    let messages = batch.messages;
    // Offsets rise within a batch: only a batch that starts below the stored offset needs filtering.
    if (stored !== undefined && BigInt(messages[0].offset) < stored) {
      messages = messages.filter((m) => BigInt(m.offset) >= stored);
      stats.skipped += batch.messages.length - messages.length;
    }
    // No resolveOffset in here: eachBatch resolved the whole batch already, and resolving a lower
    // offset now would move kafkajs's fetch position back (a later fetch would read it twice).
    if (messages.length === 0) return;
    // The lane the pending commit (if any) is not using.
    let k = committingLane === lanes[0] ? 1 : 0;
    let next: StagedChunk | null;
    try {
      next = await stageChunk(lanes[k], topic, partition, messages.slice(0, maxRows));
    } catch (err) {
      await settlePending().catch(() => {});
      throw err;
    }
    for (let i = 0; next; ) {
      const c: StagedChunk = next;
      try {
        await settlePending();
      } catch (err) {
        await clearLane(c.lane).catch(() => {});
        throw err;
      }
      // The transaction runs on DuckDB's thread; meanwhile the next chunk is staged on the other lane.
      const { done: commit, begun } = commitChunk(c);
      commit.catch(() => {}); // observed below; keeps a failure from being unhandled meanwhile
      // The flush runs on this thread; once it is done, the commit is DuckDB's alone.
      await begun;
      i += c.records;
      next = null;
      let stageErr: unknown = null;
      if (i < messages.length && payload.isRunning() && !payload.isStale()) {
        try {
          next = await stageChunk(lanes[++k % lanes.length], topic, partition, messages.slice(i, i + maxRows));
        } catch (err) {
          stageErr = err;
        }
      }
      if (!next && !stageErr) {
        // The batch's last chunk: commit in the background while kafkajs fetches on.
        leavePending(c, commit);
        break;
      }
      try {
        await commit;
      } catch (err) {
        if (next) await clearLane(next.lane).catch(() => {});
        throw err;
      }
      if (stageErr) throw stageErr;
      await payload.heartbeat();
    }
  }

  /**
   * Position every assigned partition at its stored next_offset, or at the log start without one.
   * A seek is only issued where the consumer would start elsewhere on its own — at the group's
   * committed offset (the hint), or at the log start when the group has none (fromBeginning) —
   * because a seek discards the fetch already under way (kafkajs marks it stale): on a fresh or
   * cleanly restarted sink that refetch cost ~0.7 s of every start (bench/sink.bench.ts).
   */
  async function position(assignment: Record<string, number[]>): Promise<void> {
    // A batch or commit still running decides the stored offsets: wait for it (a failure has rewound already).
    await settleRunning().catch(() => {});
    await settlePending().catch(() => {});
    const seeks: { topic: string; partition: number; offset: string; from: 'stored' | 'log-start' }[] = [];
    const topics = Object.keys(assignment);
    // One request in the common case; log starts only where the group has offsets the DB lacks.
    const committed = new Map((await admin!.fetchOffsets({ groupId, topics })).flatMap((t) => t.partitions.map((p) => [tpKey(t.topic, p.partition), p.offset] as const)));
    const lows = new Map<string, Map<number, string>>();
    let kept = 0;
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const stored = nextOffsets.get(tpKey(topic, partition));
        const hint = committed.get(tpKey(topic, partition));
        const hasHint = hint !== undefined && hint !== '-1';
        if (stored !== undefined) {
          // Where kafkajs starts by itself: the committed offset (the hint of our last commit).
          if (hasHint && hint === stored.toString()) kept++;
          else seeks.push({ topic, partition, offset: stored.toString(), from: 'stored' });
          continue;
        }
        // No stored offset and no group offset: kafkajs starts at the log start (fromBeginning).
        if (!hasHint) {
          kept++;
          continue;
        }
        // The group has offsets this database lacks (a deleted DB file): rebuild from the log start.
        if (!lows.has(topic)) lows.set(topic, new Map((await admin!.fetchTopicOffsets(topic)).map((o) => [o.partition, o.low])));
        seeks.push({ topic, partition, offset: lows.get(topic)!.get(partition) ?? '0', from: 'log-start' });
      }
    }
    for (const s of seeks) consumer!.seek({ topic: s.topic, partition: s.partition, offset: s.offset });
    log('warehouse sink: partitions positioned', {
      alreadyThere: kept,
      stored: seeks.filter((s) => s.from === 'stored').length,
      fromLogStart: seeks.filter((s) => s.from === 'log-start').length,
    });
  }

  async function snapshot(): Promise<SnapshotMeta> {
    if (!instance || !exporter) throw new UnavailableError('warehouse sink is not started');
    // One export at a time; a timer tick during an export just waits for it.
    while (snapshotRunning) await snapshotRunning.catch(() => {});
    const ex = exporter;
    snapshotRunning = (async () => {
      const started = Date.now();
      const meta = await ex.exportChanged(intervalMs);
      stats.snapshots++;
      stats.lastSnapshotAt = meta.exportedAt;
      stats.lastExportMs = Date.now() - started;
      stats.lastExportRows = meta.lastExport.rows;
      stats.effectiveSnapshotIntervalMs = effectiveSnapshotInterval(intervalMs, stats.lastExportMs);
      // Background compaction, in the export's slot so it never races an export's renames.
      if (!stopping) stats.compactions += await ex.compact().catch((err: Error) => {
        log('warehouse sink: compaction failed', { error: err.message });
        return 0;
      });
      return meta;
    })();
    try {
      return await snapshotRunning;
    } finally {
      snapshotRunning = null;
    }
  }

  async function applyRetention(): Promise<number> {
    if (!exporter) throw new UnavailableError('warehouse sink is not started');
    if (!retentionHours || retentionHours <= 0) return 0;
    const n = await exporter.applyRetention(maint, retentionHours);
    stats.retentionDeleted += n;
    if (n > 0) log('warehouse sink: retention deleted exported raw rows from DuckDB', { rows: n, retentionHours });
    return n;
  }

  /** The data consumer (group `groupId`); positions every assignment from sink_offsets. */
  async function openConsumer(): Promise<void> {
    const c = kafka.consumer({
      groupId,
      // A sink killed with -9 blocks the next one's group join until its session expires.
      sessionTimeout: 10000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 200,
      // Bigger fetches than the 1 MB default: a transaction amortises best over thousands of rows.
      maxBytesPerPartition: 4 * 1024 * 1024,
      maxBytes: 32 * 1024 * 1024,
    });
    consumer = c;
    c.on(c.events.GROUP_JOIN, (e) => {
      stats.joinedAt = Date.now();
      const assignment = e.payload.memberAssignment as unknown as Record<string, number[]>;
      positioned = position(assignment).then(
        () => resolveReady(),
        (err: Error) => {
          log('warehouse sink: positioning failed; consumer restarts', { error: err.message });
          throw err;
        },
      );
      positioned.catch(() => {});
    });
    await c.connect();
    await c.subscribe({ topics: [...byTopic.keys()], fromBeginning: true });
    await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
  }

  /**
   * Stops writing while the lease is paused: the data consumer stops fetching and leaves its
   * group, the batch and the transaction in flight settle (started under the lease; the same
   * window as a stall, lease.ts header), and on resume a new consumer is positioned from sink_offsets.
   */
  async function closeConsumer(): Promise<void> {
    const c = consumer;
    if (!c) return;
    await c.stop().catch(() => {});
    await settleRunning().catch(() => {});
    await settlePending().catch(() => {});
    await hints;
    consumer = null;
    await c.disconnect().catch(() => {});
    log('warehouse sink: stopped writing (lease paused)', { why: stats.leasePaused });
  }
  /** Pause and resume of the data consumer, one after the other. */
  let leaseOps: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    await openDatabase();
    exporter = createParquetExporter({ parquetDir: opts.parquetDir, reader, state: adhoc, mirror: opts.mirror ?? null, log });
    await exporter.init();
    admin = kafka.admin();
    await admin.connect();
    // One sink per warehouse, across hosts too: first the lease (lease.ts — Kafka's group
    // protocol elects one holder, also among sinks started at the same instant), then no other
    // member in the data group (a killed holder's consumer leaves with its session; an older
    // sink without the lease is still kept out — singleton.ts).
    stats.leaseState = 'waiting';
    lease = await acquireSinkLease(kafka, cfg.topicPrefix, {
      sessionTimeoutMs: opts.leaseSessionMs,
      log,
      ...opts.leaseFaults,
      onLost: (why) => {
        // Stop writing at once: another sink holds the lease now (or nobody can hold it for us).
        stats.leaseLost = why;
        stats.leaseState = 'lost';
        void consumer?.stop().catch(() => {});
        opts.onLeaseLost?.(why);
      },
      // The lease consumer crashed and kafkajs restarts it: it has left the group, so this sink
      // no longer holds the lease — stop writing now, and write again only once it holds it again.
      onPaused: (why) => {
        stats.leasePaused = why;
        stats.leasePauses++;
        stats.leaseState = 'paused';
        leaseOps = leaseOps.then(closeConsumer);
      },
      onResumed: () => {
        stats.leaseState = 'holding';
        leaseOps = leaseOps.then(async () => {
          if (stopping || !lease?.holding || consumer) return;
          log('warehouse sink: writing again after the lease pause', { pauses: stats.leasePauses });
          stats.leasePaused = null;
          await openConsumer();
          stats.leaseResumes++;
        }).catch((err: Error) => {
          // Could not open the data consumer again: as good as a loss (the owner retries or exits).
          stats.leaseLost = `could not resume after a lease pause: ${err.message}`;
          stats.leaseState = 'lost';
          opts.onLeaseLost?.(stats.leaseLost);
        });
      },
    });
    const leaseWaitMs = opts.leaseWaitMs ?? opts.singletonWaitMs ?? 15_000;
    let leaseTimer: NodeJS.Timeout | undefined;
    const got = await Promise.race([
      lease.acquired.then(() => true),
      new Promise<false>((r) => {
        if (Number.isFinite(leaseWaitMs)) leaseTimer = setTimeout(() => r(false), leaseWaitMs);
      }),
    ]);
    clearTimeout(leaseTimer);
    if (!got) {
      throw new ConflictError(
        `another warehouse sink is running: it holds the sink lease of ${groupId} (consumer group ${leaseGroup(cfg.topicPrefix)}). ` +
          'One sink per warehouse (docs/scaling.md): stop it, or give this deployment its own PENUMBRA_TOPIC_PREFIX.',
        { groupId: leaseGroup(cfg.topicPrefix) },
      );
    }
    stats.leaseAcquiredAt = Date.now();
    if (stats.leaseState === 'waiting') stats.leaseState = 'holding';
    await assertNoOtherSink(admin, groupId, { waitMs: opts.singletonWaitMs, log });
    await snapshot(); // readers find every table (possibly empty) as soon as the sink runs
    // Lost while starting (a stall past the lease session): no consumer for this one.
    if (stats.leaseLost) throw new ConflictError(`warehouse sink lost its lease while starting: ${stats.leaseLost}`, { groupId: leaseGroup(cfg.topicPrefix) });
    // Paused before the data consumer exists (a restartable lease crash while starting): the
    // resume opens it (onResumed), never this path without the lease.
    await leaseOps;
    if (lease.holding && !consumer) await openConsumer();
    timer = setInterval(() => {
      if (stopping || snapshotRunning) return;
      if (stats.lastSnapshotAt !== null && Date.now() - stats.lastSnapshotAt < stats.effectiveSnapshotIntervalMs - 50) return;
      snapshot().catch((err: Error) => log('warehouse sink: snapshot failed', { error: err.message }));
    }, intervalMs);
    timer.unref();
    retentionTimer = setInterval(() => {
      if (!stopping) applyRetention().catch((err: Error) => log('warehouse sink: retention failed', { error: err.message }));
    }, 10 * 60_000);
    retentionTimer.unref();
  }

  async function stop(): Promise<void> {
    stopping = true;
    await leaseOps.catch(() => {}); // a resume under way has opened its consumer (or given up)
    if (timer) clearInterval(timer);
    if (retentionTimer) clearInterval(retentionTimer);
    timer = null;
    retentionTimer = null;
    // Stop fetching (waits for a running eachBatch), let the background commit and its hint finish.
    await consumer?.stop().catch(() => {});
    await settleRunning().catch(() => {});
    await settlePending().catch(() => {});
    await hints;
    await consumer?.disconnect().catch(() => {});
    consumer = null;
    await admin?.disconnect().catch(() => {});
    admin = null;
    if (instance) {
      if (exporter) await snapshot().catch((err: Error) => log('warehouse sink: final snapshot failed', { error: err.message }));
      for (const lane of lanes) {
        for (const st of lane.stages.values()) {
          for (const a of [st.appender, st.direct]) {
            try {
              a?.closeSync();
            } catch {
              /* already closed */
            }
          }
        }
        if (lane.conn !== writer) lane.conn.closeSync();
      }
      lanes.length = 0;
      for (const c of [writer, reader, adhoc, maint]) c.closeSync();
      instance.closeSync();
      instance = null;
    }
    // Last, after the final export (it may write the shared bucket's copy): a waiting sink may go.
    await lease?.release();
    if (lease) stats.leaseState = 'released';
    lease = null;
    resolveReady(); // nobody waits forever on a sink that was stopped before joining
  }

  async function query(sql: string): Promise<Record<string, unknown>[]> {
    if (!instance) throw new UnavailableError('warehouse sink is not started');
    return (await adhoc.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  }

  return { start, stop, stats, ready, snapshot, applyRetention, query };
}

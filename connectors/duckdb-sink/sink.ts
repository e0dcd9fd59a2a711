/**
 * Warehouse sink: Kafka topics → DuckDB, exactly once, plus Parquet snapshots for readers.
 *
 * Reads: penumbra.items.catalog, penumbra.shadow.profiles, penumbra.assignments,
 * penumbra.telemetry.raw, penumbra.telemetry.metrics, penumbra.alerts, penumbra.audit and
 * penumbra.dlq (Avro, Confluent framing), consumer group `<prefix>warehouse-sink`.
 * Writes: the tables of tables.ts in one DuckDB file (this process is its only writer), and
 * every `snapshotIntervalMs` one `<table>.parquet` per table plus `_meta.json` in `parquetDir`.
 *
 * Guarantee: exactly-once into DuckDB. Each chunk of a fetched batch (one topic-partition, at
 * most `maxRowsPerTx` records) is written in ONE DuckDB transaction together with the new
 * `sink_offsets.next_offset` of that partition: either the rows and the offset are both
 * stored, or neither is. `sink_offsets` is the source of truth; the Kafka group offset is only
 * committed afterwards as a hint (lag monitoring). On every partition assignment (GROUP_JOIN)
 * the sink seeks each assigned partition to its stored next_offset, or to the log start when
 * the database has none (a deleted DB file rebuilds from the topics even though the group has
 * committed offsets). Batches fetched before the seek are dropped (kafkajs marks them stale),
 * and any record whose offset is below the stored next_offset is skipped, so a replay after
 * `kill -9` anywhere — before, during or after the DuckDB commit — neither loses nor repeats a
 * row. On top of that every table has a natural key (event id, …), so the same record produced
 * twice by an upstream retry is stored once as well.
 *
 * Records that cannot be decoded (or mapped) go to `dead_letters` with their bytes, position and
 * reason, in the same transaction, and the partition moves on. A retriable failure (registry
 * unreachable, DuckDB I/O) rolls the transaction back and throws, so kafkajs refetches the batch.
 *
 * Snapshots read through their own connection inside one read transaction (MVCC), so the Parquet
 * files of one export are consistent with each other and never block the writer; each file is
 * written to `<table>.parquet.tmp` and renamed into place, so a reader never sees half a file.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { PenumbraConfig } from '../../pipeline/config/config.ts';
import type { AvroCodec } from '../../pipeline/kafka/registry.ts';
import { isRetriable, PenumbraError, UnavailableError } from '../../pipeline/errors.ts';
import { deadLetter } from '../../pipeline/kafka/dlq.ts';
import type { DeadLetter } from '../../schemas/types.generated.ts';
import {
  ALL_TABLES, DEAD_LETTERS, SINK_OFFSETS, TOPIC_TABLES, createStageSql, createTableSql, deadLetterRow, mergeSql,
  quoteIdent as q, stageName, type Cell, type ColumnType, type TableSpec,
} from './tables.ts';

export const SINK_PROCESSOR = 'warehouse-sink';
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 5000;
/** Rows per DuckDB transaction: large enough to amortise the commit (WAL fsync), small enough to heartbeat. */
export const DEFAULT_MAX_ROWS_PER_TX = 5000;

export interface WarehouseSinkOptions {
  cfg: PenumbraConfig;
  kafka: Kafka;
  codec: AvroCodec;
  dbPath: string;
  parquetDir: string;
  snapshotIntervalMs?: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /** Records per transaction (default 5000). */
  maxRowsPerTx?: number;
  /** Called after every committed transaction (progress reporting, benchmarks). */
  onCommit?: (c: CommitInfo) => void;
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
  ms: number;
}

export interface WarehouseSinkStats {
  /** Records written in a committed transaction (including dead-lettered ones). */
  records: number;
  /** Records dropped because their offset was below the stored next_offset. */
  skipped: number;
  /** Rows inserted or updated per table. */
  rows: Record<string, number>;
  /** Staged rows that an existing row with the same key made a no-op (duplicate deliveries). */
  duplicates: number;
  deadLettered: number;
  transactions: number;
  snapshots: number;
  /** Epoch ms of the last consumer-group join (partitions assigned; throughput clocks start there). */
  joinedAt: number | null;
  /** Epoch ms of the first fetched batch. */
  firstBatchAt: number | null;
  lastCommitAt: number | null;
  lastSnapshotAt: number | null;
  /** Duration of the last Parquet export (ms). */
  lastExportMs: number | null;
  /** Interval exports actually run at: max(snapshotIntervalMs, lastExportMs / EXPORT_DUTY). */
  effectiveSnapshotIntervalMs: number;
}

/**
 * Largest share of wall time Parquet exports may take. An export rewrites each changed table
 * whole, so it grows with the warehouse; at a fixed 5 s interval a large warehouse would spend
 * all its time exporting and fall behind the topics. The interval stretches instead.
 */
export const EXPORT_DUTY = 0.1;

/** The interval the next export waits: the configured one, or longer when exports got slow. */
export function effectiveSnapshotInterval(intervalMs: number, lastExportMs: number): number {
  return Math.max(intervalMs, Math.ceil(lastExportMs / EXPORT_DUTY));
}

export interface SnapshotMeta {
  /** Epoch ms and ISO time of the read transaction the files reflect. */
  exportedAt: number;
  exportedAtIso: string;
  snapshotIntervalMs: number;
  /** Row count of each `<table>.parquet`. */
  tables: Record<string, number>;
  /** sink_offsets at export time: how far each partition is reflected. */
  offsets: { topic: string; partition: number; nextOffset: number }[];
}

export interface WarehouseSink {
  start(): Promise<void>;
  /** Stops consuming, writes a final snapshot and closes the database. */
  stop(): Promise<void>;
  readonly stats: WarehouseSinkStats;
  /** Resolves once the group is joined and every assigned partition was positioned. */
  readonly ready: Promise<void>;
  /** Export now (the timer does this every snapshotIntervalMs). */
  snapshot(): Promise<SnapshotMeta>;
  /** Read the live database through a separate connection of the sink (tests, admin); rows as JS values. */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

type CellWriter = (a: DuckDBAppender, v: Cell) => void;
function writerFor(type: ColumnType): CellWriter {
  switch (type) {
    case 'VARCHAR': return (a, v) => a.appendVarchar(v as string);
    case 'BIGINT':
    case 'TIMESTAMP': return (a, v) => a.appendBigInt(BigInt(v as number));
    case 'INTEGER': return (a, v) => a.appendInteger(v as number);
    case 'DOUBLE': return (a, v) => a.appendDouble(v as number);
    case 'BOOLEAN': return (a, v) => a.appendBoolean(v as boolean);
    case 'BLOB': return (a, v) => a.appendBlob(v as Uint8Array);
  }
}

/** One staging table and its appender on a lane's connection. */
interface Stage {
  table: TableSpec;
  appender: DuckDBAppender;
  writers: CellWriter[];
  merge: string;
  staged: number;
}

/** A writer connection with its own TEMP staging tables (TEMP tables are per connection). */
interface Lane {
  conn: DuckDBConnection;
  stages: Map<string, Stage>;
}

interface StagedChunk {
  lane: Lane;
  topic: string;
  partition: number;
  records: number;
  next: bigint;
  dead: number;
  staged: number;
  used: Stage[];
  started: number;
}

export function createWarehouseSink(opts: WarehouseSinkOptions): WarehouseSink {
  const { cfg, kafka, codec } = opts;
  const log = opts.log ?? (() => {});
  const intervalMs = opts.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS;
  const maxRows = opts.maxRowsPerTx ?? DEFAULT_MAX_ROWS_PER_TX;
  const groupId = `${cfg.topicPrefix}warehouse-sink`;

  // topic name → table fed by it
  const byTopic = new Map<string, TableSpec>();
  for (const t of TOPIC_TABLES) byTopic.set(cfg.topics[t.source!.topic], t);

  const stats: WarehouseSinkStats = {
    records: 0, skipped: 0, rows: Object.fromEntries(ALL_TABLES.map((t) => [t.name, 0])), duplicates: 0, deadLettered: 0,
    transactions: 0, snapshots: 0, joinedAt: null, firstBatchAt: null, lastCommitAt: null, lastSnapshotAt: null,
    lastExportMs: null, effectiveSnapshotIntervalMs: intervalMs,
  };

  let instance: DuckDBInstance | null = null;
  let writer!: DuckDBConnection;
  const lanes: Lane[] = [];
  let reader!: DuckDBConnection;
  let adhoc!: DuckDBConnection;
  let consumer: Consumer | null = null;
  let admin: Admin | null = null;
  /** In-memory copy of sink_offsets (this process is the only writer, so it never diverges). */
  const nextOffsets = new Map<string, bigint>();
  /** Positioning of the current assignment; eachBatch waits for it before touching any record. */
  let positioned: Promise<void> = Promise.resolve();
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  let timer: NodeJS.Timeout | null = null;
  let snapshotRunning: Promise<SnapshotMeta> | null = null;
  /** Tables changed since the last export; the first export writes all of them. */
  let dirty = new Set<string>(ALL_TABLES.map((t) => t.name));
  let lastMeta: SnapshotMeta | null = null;
  let stopping = false;

  async function openDatabase(): Promise<void> {
    await mkdir(path.dirname(path.resolve(opts.dbPath)), { recursive: true });
    await mkdir(opts.parquetDir, { recursive: true });
    try {
      instance = await DuckDBInstance.create(opts.dbPath, { memory_limit: opts.cfg.duckdbMemoryLimit });
    } catch (err) {
      // Typically the file lock: another sink (the one writer) already holds this database.
      throw new UnavailableError(`cannot open DuckDB ${opts.dbPath}: ${(err as Error).message}`, err, false);
    }
    writer = await instance.connect();
    reader = await instance.connect();
    adhoc = await instance.connect();
    for (const t of ALL_TABLES) await writer.run(createTableSql(t));
    // Staging tables are TEMP: per-connection, never written to the WAL, gone after a crash.
    for (let i = 0; i < 2; i++) {
      const conn = i === 0 ? writer : await instance.connect();
      const stages = new Map<string, Stage>();
      for (const t of TOPIC_TABLES) {
        await conn.run(createStageSql(t));
        stages.set(t.name, {
          table: t,
          appender: await conn.createAppender(stageName(t)),
          writers: [...t.columns.map((c) => writerFor(c.type)), writerFor('BIGINT')],
          merge: mergeSql(t),
          staged: 0,
        });
      }
      lanes.push({ conn, stages });
    }
    const rows = (await writer.runAndReadAll(`SELECT topic, partition, next_offset FROM ${q(SINK_OFFSETS.name)}`)).getRowObjectsJS();
    for (const r of rows) nextOffsets.set(tpKey(r.topic as string, r.partition as number), r.next_offset as bigint);
    log('warehouse sink: database open', { dbPath: opts.dbPath, storedPartitions: nextOffsets.size });
  }

  function append(stage: Stage, cells: Cell[], ord: number): void {
    const { appender, writers } = stage;
    for (let i = 0; i < cells.length; i++) {
      const v = cells[i];
      if (v === null || v === undefined) appender.appendNull();
      else writers[i](appender, v);
    }
    appender.appendBigInt(BigInt(ord));
    appender.endRow();
    stage.staged++;
  }

  async function clearLane(lane: Lane): Promise<void> {
    for (const st of lane.stages.values()) {
      if (st.staged > 0) {
        st.appender.clear();
        await lane.conn.run(`DELETE FROM ${q(stageName(st.table))}`);
        st.staged = 0;
      }
    }
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

  /** Decode one chunk of one partition and append it to `lane`'s staging tables (no transaction yet). */
  async function stageChunk(lane: Lane, topic: string, partition: number, messages: KafkaMessage[]): Promise<StagedChunk> {
    const started = Date.now();
    const table = byTopic.get(topic)!;
    const schema = table.source!.schema;
    const main = lane.stages.get(table.name)!;
    const dl = lane.stages.get(DEAD_LETTERS.name)!;
    const used = [...new Set([main, dl])];
    let ord = 0;
    let dead = 0;
    let staged = 0;
    try {
      for (const m of messages) {
        let rows: Cell[][];
        try {
          const value = await codec.decode(schema, m.value);
          rows = table.rows(value as never, { topic, partition, offset: m.offset });
        } catch (err) {
          if (isRetriable(err)) throw err; // registry outage: nothing is committed; kafkajs refetches the batch
          append(dl, deadLetterRow(ownDeadLetter(topic, partition, m, err)), ord++);
          dead++;
          continue;
        }
        for (const r of rows) append(main, r, ord++);
      }
      for (const st of used) {
        st.appender.flushSync();
        staged += st.staged;
      }
    } catch (err) {
      await clearLane(lane).catch(() => {});
      throw err;
    }
    const next = BigInt(messages[messages.length - 1].offset) + 1n;
    return { lane, topic, partition, records: messages.length, next, dead, staged, used, started };
  }

  /** ONE transaction: the staged rows of the chunk and the partition's new next_offset. */
  async function commitChunk(c: StagedChunk): Promise<CommitInfo> {
    const { lane, topic, partition, next } = c;
    const changed: Record<string, number> = {};
    await lane.conn.run('BEGIN TRANSACTION');
    try {
      for (const st of c.used) {
        if (st.staged === 0) continue;
        const res = await lane.conn.run(st.merge);
        changed[st.table.name] = (changed[st.table.name] ?? 0) + res.rowsChanged;
      }
      await lane.conn.run(
        `INSERT INTO ${q(SINK_OFFSETS.name)} VALUES ($topic, $partition, $next, epoch_ms($now::BIGINT))
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
        { topic, partition, next, now: Date.now() },
      );
      // Mark the touched tables for the next Parquet export BEFORE the commit: a snapshot that
      // starts right after COMMIT (while we await below) must see them as changed. Marking a
      // table whose transaction then rolls back only costs one needless re-export.
      for (const name of Object.keys(changed)) dirty.add(name);
      dirty.add(SINK_OFFSETS.name);
      await lane.conn.run('COMMIT');
    } catch (err) {
      await lane.conn.run('ROLLBACK').catch(() => {});
      await clearLane(lane).catch(() => {});
      throw new UnavailableError(`DuckDB transaction for ${topic}[${partition}] failed: ${(err as Error).message}`, err);
    }
    // Committed: from here on the rows and the offset are durable together.
    nextOffsets.set(tpKey(topic, partition), next);
    await clearLane(lane);
    const info: CommitInfo = { topic, partition, nextOffset: next.toString(), records: c.records, changed, ms: Date.now() - c.started };
    stats.records += c.records;
    stats.deadLettered += c.dead;
    stats.transactions++;
    stats.lastCommitAt = Date.now();
    let stored = 0;
    for (const [name, n] of Object.entries(changed)) {
      stats.rows[name] += n;
      dirty.add(name);
      stored += n;
    }
    dirty.add(SINK_OFFSETS.name);
    stats.duplicates += c.staged - stored;
    opts.onCommit?.(info);
    return info;
  }

  /**
   * Chunks alternate between two lanes so the JS work of chunk i+1 (decode, append) overlaps
   * DuckDB's merge and commit of chunk i on its worker threads. Transactions stay strictly in
   * offset order: chunk i+1's transaction begins only after chunk i's committed.
   */
  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    await positioned;
    const { batch } = payload;
    const { topic, partition } = batch;
    if (batch.messages.length === 0) return;
    stats.firstBatchAt ??= Date.now();
    if (!payload.isRunning() || payload.isStale()) return; // fetched before a seek: refetched from the sought offset
    const stored = nextOffsets.get(tpKey(topic, partition));
    let messages = batch.messages;
    if (stored !== undefined) {
      messages = messages.filter((m) => BigInt(m.offset) >= stored);
      stats.skipped += batch.messages.length - messages.length;
    }
    if (messages.length === 0) {
      payload.resolveOffset(batch.messages[batch.messages.length - 1].offset);
      return;
    }
    let pending: { commit: Promise<CommitInfo>; lastOffset: string } | null = null;
    const settle = async (): Promise<void> => {
      if (!pending) return;
      const { commit, lastOffset } = pending;
      pending = null;
      const info = await commit;
      payload.resolveOffset(lastOffset);
      // Only a hint (lag monitoring); sink_offsets decides where we resume.
      await consumer!.commitOffsets([{ topic, partition, offset: info.nextOffset }]).catch((err: Error) => {
        log('warehouse sink: Kafka offset commit (hint) failed', { topic, partition, error: err.message });
      });
      await payload.heartbeat();
    };
    try {
      for (let i = 0, k = 0; i < messages.length; i += maxRows, k++) {
        if (!payload.isRunning() || payload.isStale()) break;
        const chunk = messages.slice(i, i + maxRows);
        const lane = lanes[k % lanes.length];
        const staged = await stageChunk(lane, topic, partition, chunk);
        try {
          await settle(); // the previous transaction commits first (offset order, and its lane is free again)
        } catch (err) {
          await clearLane(lane).catch(() => {});
          throw err;
        }
        const commit = commitChunk(staged);
        commit.catch(() => {}); // observed in settle(); keeps a failure from being an unhandled rejection meanwhile
        pending = { commit, lastOffset: chunk[chunk.length - 1].offset };
      }
    } finally {
      // Whatever happened, no transaction is left running when eachBatch returns.
      const last = pending as { commit: Promise<CommitInfo> } | null;
      if (last) await last.commit.catch(() => {});
    }
    await settle();
  }

  /** Seek every assigned partition to its stored next_offset, or to the log start without one. */
  async function position(assignment: Record<string, number[]>): Promise<void> {
    const seeks: { topic: string; partition: number; offset: string; from: 'stored' | 'log-start' }[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      let low: Map<number, string> | null = null;
      for (const partition of partitions) {
        const stored = nextOffsets.get(tpKey(topic, partition));
        if (stored !== undefined) {
          seeks.push({ topic, partition, offset: stored.toString(), from: 'stored' });
          continue;
        }
        low ??= new Map((await admin!.fetchTopicOffsets(topic)).map((o) => [o.partition, o.low]));
        seeks.push({ topic, partition, offset: low.get(partition) ?? '0', from: 'log-start' });
      }
    }
    for (const s of seeks) consumer!.seek({ topic: s.topic, partition: s.partition, offset: s.offset });
    log('warehouse sink: partitions positioned', {
      stored: seeks.filter((s) => s.from === 'stored').length,
      fromLogStart: seeks.filter((s) => s.from === 'log-start').length,
    });
  }

  async function snapshot(): Promise<SnapshotMeta> {
    if (!instance) throw new UnavailableError('warehouse sink is not started');
    // One export at a time; a timer tick during an export just waits for it.
    while (snapshotRunning) await snapshotRunning.catch(() => {});
    snapshotRunning = exportParquet();
    try {
      return await snapshotRunning;
    } finally {
      snapshotRunning = null;
    }
  }

  async function exportParquet(): Promise<SnapshotMeta> {
    const todo = dirty;
    dirty = new Set();
    const tables: Record<string, number> = { ...(lastMeta?.tables ?? {}) };
    const written: string[] = [];
    let offsets: SnapshotMeta['offsets'] = [];
    const exportedAt = Date.now();
    try {
      // One read transaction: every file of this export reflects the same committed state.
      await reader.run('BEGIN TRANSACTION');
      try {
        for (const t of ALL_TABLES) {
          if (!todo.has(t.name) && t.name in tables) continue;
          const file = path.join(opts.parquetDir, `${t.name}.parquet`);
          await reader.run(`COPY (SELECT * FROM ${q(t.name)}) TO ${sqlString(`${file}.tmp`)} (FORMAT PARQUET)`);
          const [row] = (await reader.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM ${q(t.name)}`)).getRowObjectsJS();
          tables[t.name] = Number(row.n);
          written.push(file);
        }
        offsets = (await reader.runAndReadAll(`SELECT topic, partition, next_offset FROM ${q(SINK_OFFSETS.name)} ORDER BY topic, partition`))
          .getRowObjectsJS()
          .map((r) => ({ topic: r.topic as string, partition: r.partition as number, nextOffset: Number(r.next_offset) }));
      } finally {
        await reader.run('COMMIT').catch(() => {});
      }
      for (const f of written) await rename(`${f}.tmp`, f);
    } catch (err) {
      for (const t of todo) dirty.add(t); // try these again next time
      throw err;
    }
    const meta: SnapshotMeta = { exportedAt, exportedAtIso: new Date(exportedAt).toISOString(), snapshotIntervalMs: intervalMs, tables, offsets };
    // _meta.json last: its counts describe files that are already in place.
    const metaFile = path.join(opts.parquetDir, '_meta.json');
    await writeFile(`${metaFile}.tmp`, JSON.stringify(meta, null, 2));
    await rename(`${metaFile}.tmp`, metaFile);
    lastMeta = meta;
    stats.snapshots++;
    stats.lastSnapshotAt = exportedAt;
    stats.lastExportMs = Date.now() - exportedAt;
    stats.effectiveSnapshotIntervalMs = effectiveSnapshotInterval(intervalMs, stats.lastExportMs);
    return meta;
  }

  async function start(): Promise<void> {
    await openDatabase();
    admin = kafka.admin();
    await admin.connect();
    await snapshot(); // readers find every table (possibly empty) as soon as the sink runs
    consumer = kafka.consumer({
      groupId,
      // A sink killed with -9 blocks the next one's group join until its session expires.
      sessionTimeout: 10000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 200,
      // Bigger fetches than the 1 MB default: a transaction amortises best over thousands of rows.
      maxBytesPerPartition: 4 * 1024 * 1024,
      maxBytes: 32 * 1024 * 1024,
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
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
    await consumer.connect();
    await consumer.subscribe({ topics: [...byTopic.keys()], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
    timer = setInterval(() => {
      if (stopping || snapshotRunning) return;
      if (stats.lastSnapshotAt !== null && Date.now() - stats.lastSnapshotAt < stats.effectiveSnapshotIntervalMs - 50) return;
      snapshot().catch((err: Error) => log('warehouse sink: snapshot failed', { error: err.message }));
    }, intervalMs);
    timer.unref();
  }

  async function stop(): Promise<void> {
    stopping = true;
    if (timer) clearInterval(timer);
    timer = null;
    await consumer?.disconnect().catch(() => {});
    consumer = null;
    await admin?.disconnect().catch(() => {});
    admin = null;
    if (instance) {
      await snapshot().catch((err: Error) => log('warehouse sink: final snapshot failed', { error: err.message }));
      for (const lane of lanes) {
        for (const st of lane.stages.values()) {
          try {
            st.appender.closeSync();
          } catch {
            /* already closed */
          }
        }
        lane.conn.closeSync();
      }
      lanes.length = 0;
      reader.closeSync();
      adhoc.closeSync();
      instance.closeSync();
      instance = null;
    }
    resolveReady(); // nobody waits forever on a sink that was stopped before joining
  }

  async function query(sql: string): Promise<Record<string, unknown>[]> {
    if (!instance) throw new UnavailableError('warehouse sink is not started');
    return (await adhoc.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  }

  return { start, stop, stats, ready, snapshot, query };
}

/**
 * Incremental Parquet exports of the warehouse (the sink's only output besides DuckDB itself).
 *
 * Layout under `parquetDir` (and, mirrored, under `<prefix>warehouse/` of an S3 bucket):
 *
 *   <table>/date=YYYY-MM-DD/part-<fromTx>-<toTx>_<n>.parquet   append-only tables (Hive-partitioned)
 *   metric_windows/date=YYYY-MM-DD/data_0.parquet              upsert table partitioned by day: replaced whole
 *   items/data_0.parquet, sink_offsets/data_0.parquet          small tables: replaced whole
 *   _meta.json                                                 last export: time, row counts, offsets, layout
 *
 * `date` is the UTC day of the table's `partitionBy` column (tables.ts). Every row carries the
 * number of the sink transaction that stored it (`_sink_tx`); an export copies the rows above the
 * last exported number, read in ONE read transaction whose watermark is `max(sink_offsets.last_tx)`
 * (transactions commit in number order, so that snapshot holds exactly the rows up to it). Its
 * cost therefore follows the rows that changed, not the warehouse's size. Upserted metric windows
 * rewrite only the days they touched.
 *
 * Atomicity for readers that list files (DuckDB globs, Spark, Trino): a file is written under
 * `.staging/` and renamed into place, so nobody reads half a file. The watermark is committed to
 * `_sink_exports` in DuckDB after the files are in place; a part whose range ends above the
 * committed watermark (a crash between the two) is deleted before the next export writes it again.
 *
 * Compaction (background, in the export's slot): a run of ≥ COMPACT_MIN_PARTS consecutive small
 * parts of a partition is merged into one `part-<min>-<max>_c.parquet`; the inputs are deleted
 * right after the merged file is renamed in. A listing taken between those two steps sees both;
 * the merged part's name says which transactions it covers, so readers drop the parts inside its
 * range (`liveParts`; query.ts and notebooks/penumbra_warehouse.py do) and read each row once.
 *
 * Retention: raw-event tables (`retentionBy` in tables.ts) lose rows older than the retention from
 * DuckDB, but only rows already exported (`_sink_tx` ≤ watermark): their parts stay.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ALL_TABLES, SINK_OFFSETS, SINK_TX, quoteIdent as q, type ColumnType, type TableSpec } from './tables.ts';

/** Parts in one partition that trigger a compaction of that partition. */
export const COMPACT_MIN_PARTS = 12;
/** Parts larger than this are left alone by compaction (already big enough). */
export const COMPACT_MAX_PART_BYTES = 256 * 1024 * 1024;

/** Where a table's files are, relative to the export root, and how to read them. */
export interface TableLayout {
  /** Glob relative to the export root, e.g. `telemetry_events/*\/*.parquet`. */
  glob: string;
  /** Hive-partitioned by `date` (read with hive_partitioning; adds a DATE column `date`). */
  hive: boolean;
  /** Columns and DuckDB types, in order (a reader builds an empty view from them when no file exists yet). */
  columns: [string, ColumnType][];
}

export interface SnapshotMeta {
  /** Epoch ms and ISO time of the read transaction the export reflects. */
  exportedAt: number;
  exportedAtIso: string;
  snapshotIntervalMs: number;
  /** Sink transaction the export reflects (every row stored up to it is in the files). */
  exportedTx: number;
  /** Rows of each table in the Parquet files (raw events removed from DuckDB by retention included). */
  tables: Record<string, number>;
  /** sink_offsets at export time: how far each partition is reflected. */
  offsets: { topic: string; partition: number; nextOffset: number }[];
  layout: Record<string, TableLayout>;
  /** What this export did: rows and files written, time taken. */
  lastExport: { rows: number; files: number; ms: number };
}

/** Publishes exported files somewhere else too (an S3 bucket). Keys are paths relative to the export root. */
export interface ExportMirror {
  readonly description: string;
  put(key: string, file: string): Promise<void>;
  delete(keys: string[]): Promise<void>;
  /** Keys under `prefix` (relative to the export root). */
  list(prefix: string): Promise<string[]>;
}

export const tableLayout = (t: Pick<TableSpec, 'name' | 'partitionBy' | 'columns'>): TableLayout => ({
  glob: t.partitionBy ? `${t.name}/*/*.parquet` : `${t.name}/*.parquet`,
  hive: t.partitionBy !== null,
  columns: t.columns.map((c) => [c.name, c.type]),
});

const PART = /^part-(\d+)-(\d+)_(\w+)\.parquet$/;

/** `[fromTx, toTx]` of a part file name, or null for other files. */
export function partRange(file: string): [number, number] | null {
  const m = PART.exec(file);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * Which parts of one partition to merge: a run of at least `minParts` consecutive parts (in
 * transaction order) below the size limit (pure: file names and sizes in, a plan out). The run
 * stops at a large part: the merged part's name claims every transaction between its first and
 * last input, so a large part inside that range would be taken for covered (skipped by readers,
 * deleted by the next start) while its rows are not in the merged part.
 */
export function planCompaction(files: { name: string; bytes: number }[], minParts = COMPACT_MIN_PARTS, maxBytes = COMPACT_MAX_PART_BYTES): { inputs: string[]; output: string } | null {
  const parts = files.filter((f) => partRange(f.name)).sort((a, b) => partRange(a.name)![0] - partRange(b.name)![0] || partRange(a.name)![1] - partRange(b.name)![1]);
  let run: { name: string; bytes: number }[] = [];
  for (const f of [...parts, null]) {
    if (f && f.bytes < maxBytes) {
      run.push(f);
      continue;
    }
    if (run.length >= minParts) {
      const ranges = run.map((x) => partRange(x.name)!);
      return { inputs: run.map((x) => x.name), output: `part-${Math.min(...ranges.map((r) => r[0]))}-${Math.max(...ranges.map((r) => r[1]))}_c.parquet` };
    }
    run = [];
  }
  return null;
}

/**
 * Whether part `r` (file `f`) is covered by another part `o` of the same folder: its range lies
 * inside `o`'s, and either the ranges differ or `o` is a compacted part. Several files of one
 * export share a range (`_0`, `_1`): none covers the other.
 */
function covers(o: { f: string; r: [number, number] }, x: { f: string; r: [number, number] }): boolean {
  return o.f !== x.f && o.r[0] <= x.r[0] && x.r[1] <= o.r[1] && (o.r[0] !== x.r[0] || o.r[1] !== x.r[1] || o.f.endsWith('_c.parquet'));
}

/**
 * The files of one partition folder a reader must read: every Parquet file except parts covered
 * by another part (a compaction's inputs, in the moment between the merged part's rename and
 * their deletion, or after a crash in between). Readers that list the folder themselves (query.ts,
 * the notebook helper) apply this to their listing, so each row is read once whatever the moment.
 */
export function liveParts(files: string[]): string[] {
  const parts = files.map((f) => ({ f, r: partRange(f) })).filter((x): x is { f: string; r: [number, number] } => x.r !== null);
  const covered = new Set(parts.filter((x) => parts.some((o) => covers(o, x))).map((x) => x.f));
  return files.filter((f) => f.endsWith('.parquet') && !covered.has(f));
}

/**
 * Parts of one partition that must go: those ending above `watermark`, and those whose range lies
 * inside another part's (a compaction's inputs next to its output).
 */
export function stale(files: string[], watermark: number): string[] {
  const parts = files.map((f) => ({ f, r: partRange(f) })).filter((x): x is { f: string; r: [number, number] } => x.r !== null);
  return parts
    .filter((x) => x.r[1] > watermark || parts.some((o) => covers(o, x)))
    .map(({ f }) => f);
}

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const dayExpr = (col: string): string => `strftime(${q(col)}, '%Y-%m-%d')`;

export interface ParquetExporterOptions {
  parquetDir: string;
  /** A connection for the export's read transaction (never the writer). */
  reader: DuckDBConnection;
  /** A connection that writes the small `_sink_exports` table (never inside the writer's transaction). */
  state: DuckDBConnection;
  mirror: ExportMirror | null;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  /**
   * Test hook: called after a compaction renamed its merged part in and before it deletes the
   * inputs (the moment a listing sees both), with the partition folder.
   */
  afterCompactRename?: (partitionDir: string) => Promise<void>;
}

async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => !f.startsWith('.'));
}

export function createParquetExporter(o: ParquetExporterOptions) {
  const root = o.parquetDir;
  const staging = path.join(root, '.staging');
  /** Per table: last exported transaction, and Parquet row count. */
  const exported = new Map<string, { tx: number; rows: number }>();
  /** Per table: last transaction that changed it (unknown after a restart: assume it changed). */
  const changedAt = new Map<string, bigint>();
  let exportSeq = 0;

  async function mirrorPut(rel: string, file: string): Promise<void> {
    if (o.mirror) await o.mirror.put(rel, file);
  }

  /**
   * Remove parts that must not be read: above the committed watermark (an export that crashed or
   * failed before committing it), and parts whose range a compacted part already covers (a
   * compaction interrupted between renaming the merged part in and deleting its inputs).
   */
  async function removeOrphans(t: TableSpec, watermark: number): Promise<void> {
    if (!t.partitionBy || t.mode !== 'insert-once') return;
    const dir = path.join(root, t.name);
    for (const p of await listFiles(dir)) {
      for (const f of stale(await listFiles(path.join(dir, p)), watermark)) {
        await rm(path.join(dir, p, f), { force: true });
        o.log('warehouse export: removed a part that must not be read', { table: t.name, file: `${p}/${f}` });
      }
    }
    if (o.mirror) {
      const byPartition = new Map<string, string[]>();
      for (const k of await o.mirror.list(`${t.name}/`)) {
        const d = path.posix.dirname(k);
        byPartition.set(d, [...(byPartition.get(d) ?? []), path.posix.basename(k)]);
      }
      const gone = [...byPartition].flatMap(([d, files]) => stale(files, watermark).map((f) => `${d}/${f}`));
      if (gone.length) await o.mirror.delete(gone);
    }
  }

  async function init(): Promise<void> {
    await mkdir(root, { recursive: true });
    await rm(staging, { recursive: true, force: true });
    await o.state.run(`CREATE TABLE IF NOT EXISTS "_sink_exports" (table_name VARCHAR PRIMARY KEY, exported_tx BIGINT NOT NULL, parquet_rows BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL)`);
    for (const r of (await o.state.runAndReadAll('SELECT table_name, exported_tx, parquet_rows FROM "_sink_exports"')).getRowObjectsJS()) {
      exported.set(r.table_name as string, { tx: Number(r.exported_tx), rows: Number(r.parquet_rows) });
    }
    // Files of the single-file layout before exports were incremental: readers now use the folders.
    for (const f of await listFiles(root)) if (f.endsWith('.parquet')) await rm(path.join(root, f), { force: true });
    for (const t of ALL_TABLES) {
      const e = exported.get(t.name);
      if (e) await removeOrphans(t, e.tx);
      else {
        // Nothing exported from this database yet (new, rebuilt from the topics, or upgraded):
        // whatever files exist came from another database and are replaced by a full export.
        await rm(path.join(root, t.name), { recursive: true, force: true });
        if (o.mirror) {
          const keys = await o.mirror.list(`${t.name}/`);
          if (keys.length) await o.mirror.delete(keys);
        }
      }
    }
  }

  /** Move `.staging/<run>/<rel>` files into `<root>/<rel>` (rename: atomic), mirroring each. */
  async function publish(runDir: string, prefix: string): Promise<string[]> {
    const moved: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const e of await readdir(path.join(runDir, rel), { withFileTypes: true })) {
        const r = path.join(rel, e.name);
        if (e.isDirectory()) await walk(r);
        else if (e.name.endsWith('.parquet')) {
          const dest = path.join(root, prefix, r);
          await mkdir(path.dirname(dest), { recursive: true });
          await rename(path.join(runDir, r), dest);
          moved.push(path.join(prefix, r).split(path.sep).join('/'));
        }
      }
    };
    if (existsSync(runDir)) await walk('');
    for (const rel of moved) await mirrorPut(rel, path.join(root, rel));
    return moved;
  }

  const selectCols = (t: TableSpec): string => t.columns.map((c) => q(c.name)).join(', ');

  async function exportTable(t: TableSpec, watermark: number, from: number): Promise<{ rows: number; files: string[] }> {
    const run = path.join(staging, `${exportSeq}-${t.name}`);
    await mkdir(run, { recursive: true });
    try {
      if (t.partitionBy && t.mode === 'insert-once') {
        const res = await o.reader.run(
          `COPY (SELECT ${selectCols(t)}, ${dayExpr(t.partitionBy)} AS "date" FROM ${q(t.name)} WHERE ${q(SINK_TX)} > ${from}) ` +
            `TO ${sqlString(run)} (FORMAT PARQUET, PARTITION_BY ("date"), FILENAME_PATTERN ${sqlString(`part-${from + 1}-${watermark}_{i}`)})`,
        );
        return { rows: res.rowsChanged, files: await publish(run, t.name) };
      }
      if (t.partitionBy) {
        // Upsert table: rewrite each day that holds a changed row, whole (one file per day).
        const days = (await o.reader.runAndReadAll(`SELECT DISTINCT ${dayExpr(t.partitionBy)} AS d FROM ${q(t.name)} WHERE ${q(SINK_TX)} > ${from}`))
          .getRowObjectsJS().map((r) => r.d as string);
        let rows = 0;
        for (const d of days) {
          const dir = path.join(run, `date=${d}`);
          await mkdir(dir, { recursive: true });
          rows += (await o.reader.run(`COPY (SELECT ${selectCols(t)} FROM ${q(t.name)} WHERE ${dayExpr(t.partitionBy)} = ${sqlString(d)}) TO ${sqlString(path.join(dir, 'data_0.parquet'))} (FORMAT PARQUET)`)).rowsChanged;
        }
        return { rows, files: await publish(run, t.name) };
      }
      const res = await o.reader.run(`COPY (SELECT ${selectCols(t)} FROM ${q(t.name)}) TO ${sqlString(path.join(run, 'data_0.parquet'))} (FORMAT PARQUET)`);
      return { rows: res.rowsChanged, files: await publish(run, t.name) };
    } finally {
      await rm(run, { recursive: true, force: true });
    }
  }

  let lastMeta: SnapshotMeta | null = null;

  /** The previous export failed after renaming parts in (or mirroring them) but before committing. */
  let failed = false;

  async function exportChanged(intervalMs: number): Promise<SnapshotMeta> {
    if (failed) {
      // Its parts are above the committed watermark and are about to be exported again.
      for (const t of ALL_TABLES) {
        const e = exported.get(t.name);
        if (e) await removeOrphans(t, e.tx);
      }
      failed = false;
    }
    try {
      return await exportOnce(intervalMs);
    } catch (err) {
      failed = true;
      throw err;
    }
  }

  async function exportOnce(intervalMs: number): Promise<SnapshotMeta> {
    const started = Date.now();
    exportSeq++;
    await mkdir(staging, { recursive: true });
    let rowsOut = 0;
    let filesOut = 0;
    let offsets: SnapshotMeta['offsets'] = [];
    const done: { t: TableSpec; tx: number; rows: number }[] = [];
    let watermark = 0;
    // One read transaction: every file of this export reflects the same committed state.
    await o.reader.run('BEGIN TRANSACTION');
    try {
      const [w] = (await o.reader.runAndReadAll(`SELECT coalesce(max(last_tx), 0)::BIGINT AS w FROM ${q(SINK_OFFSETS.name)}`)).getRowObjectsJS();
      watermark = Number(w.w);
      for (const t of ALL_TABLES) {
        const prev = exported.get(t.name);
        const from = prev?.tx ?? -1;
        const changed = changedAt.get(t.name);
        // Nothing new since the last export (known from this process's own commits): skip.
        if (prev && (watermark <= from || (changed !== undefined && Number(changed) <= from))) continue;
        const r = await exportTable(t, watermark, from);
        rowsOut += r.rows;
        filesOut += r.files.length;
        let rows: number;
        if (t.partitionBy && t.mode === 'insert-once') rows = (prev?.rows ?? 0) + r.rows;
        else rows = Number((await o.reader.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM ${q(t.name)}`)).getRowObjectsJS()[0].n);
        done.push({ t, tx: watermark, rows });
        // From here on only this process's commits change the table (touched()).
        if (!changedAt.has(t.name)) changedAt.set(t.name, BigInt(watermark));
      }
      offsets = (await o.reader.runAndReadAll(`SELECT topic, partition, next_offset FROM ${q(SINK_OFFSETS.name)} ORDER BY topic, partition`))
        .getRowObjectsJS()
        .map((r) => ({ topic: r.topic as string, partition: r.partition as number, nextOffset: Number(r.next_offset) }));
    } finally {
      await o.reader.run('COMMIT').catch(() => {});
    }
    // The files are in place: commit the watermarks (one transaction, one WAL write), so a
    // restart neither repeats nor skips rows.
    if (done.length > 0) {
      const now = Date.now();
      await o.state.run([
        'BEGIN TRANSACTION',
        ...done.map((d) => `INSERT INTO "_sink_exports" VALUES (${sqlString(d.t.name)}, ${d.tx}, ${d.rows}, epoch_ms(${now}::BIGINT))
           ON CONFLICT (table_name) DO UPDATE SET exported_tx = excluded.exported_tx, parquet_rows = excluded.parquet_rows, updated_at = excluded.updated_at`),
        'COMMIT',
      ].join(';\n'));
      for (const d of done) exported.set(d.t.name, { tx: d.tx, rows: d.rows });
    }
    const meta: SnapshotMeta = {
      exportedAt: started,
      exportedAtIso: new Date(started).toISOString(),
      snapshotIntervalMs: intervalMs,
      exportedTx: watermark,
      tables: Object.fromEntries(ALL_TABLES.map((t) => [t.name, exported.get(t.name)?.rows ?? 0])),
      offsets,
      layout: Object.fromEntries(ALL_TABLES.map((t) => [t.name, tableLayout(t)])),
      lastExport: { rows: rowsOut, files: filesOut, ms: Date.now() - started },
    };
    // _meta.json last: its counts describe files that are already in place.
    const metaFile = path.join(root, '_meta.json');
    await writeFile(`${metaFile}.tmp`, JSON.stringify(meta, null, 2));
    await rename(`${metaFile}.tmp`, metaFile);
    await mirrorPut('_meta.json', metaFile);
    lastMeta = meta;
    return meta;
  }

  /** Merge the parts of at most one partition per call (bounded work per export slot). */
  async function compact(): Promise<number> {
    try {
      return await compactOnce();
    } catch (err) {
      failed = true; // the next export first removes what an interrupted compaction left
      throw err;
    }
  }

  async function compactOnce(): Promise<number> {
    for (const t of ALL_TABLES) {
      if (!t.partitionBy || t.mode !== 'insert-once') continue;
      const dir = path.join(root, t.name);
      for (const p of (await listFiles(dir)).sort()) {
        const files = await Promise.all((await listFiles(path.join(dir, p))).map(async (name) => ({ name, bytes: (await stat(path.join(dir, p, name))).size })));
        const plan = planCompaction(files);
        if (!plan) continue;
        const tmp = path.join(staging, `compact-${t.name}-${p}-${plan.output}`);
        await mkdir(staging, { recursive: true });
        const inputs = plan.inputs.map((f) => sqlString(path.join(dir, p, f))).join(', ');
        await o.reader.run(`COPY (SELECT * FROM read_parquet([${inputs}])) TO ${sqlString(tmp)} (FORMAT PARQUET)`);
        const dest = path.join(dir, p, plan.output);
        await rename(tmp, dest);
        if (o.afterCompactRename) await o.afterCompactRename(path.join(dir, p));
        for (const f of plan.inputs) await rm(path.join(dir, p, f), { force: true });
        if (o.mirror) {
          await o.mirror.put(`${t.name}/${p}/${plan.output}`, dest);
          await o.mirror.delete(plan.inputs.map((f) => `${t.name}/${p}/${f}`));
        }
        o.log('warehouse export: compacted a partition', { table: t.name, partition: p, parts: plan.inputs.length, into: plan.output });
        return plan.inputs.length;
      }
    }
    return 0;
  }

  /** Delete exported raw rows older than the retention from DuckDB (their Parquet parts stay). */
  async function applyRetention(conn: DuckDBConnection, hours: number): Promise<number> {
    let n = 0;
    const cutoff = Date.now() - hours * 3_600_000;
    for (const t of ALL_TABLES) {
      if (!t.retentionBy) continue;
      const e = exported.get(t.name);
      if (!e) continue;
      const res = await conn.run(
        `DELETE FROM ${q(t.name)} WHERE ${q(t.retentionBy)} < epoch_ms(${Math.floor(cutoff)}::BIGINT) AND ${q(SINK_TX)} <= ${e.tx}`,
      );
      n += res.rowsChanged;
    }
    return n;
  }

  return {
    init,
    exportChanged,
    compact,
    applyRetention,
    /** The sink committed transaction `tx` with rows of `table`. */
    touched(table: string, tx: bigint): void {
      changedAt.set(table, tx);
    },
    get lastMeta(): SnapshotMeta | null {
      return lastMeta;
    },
  };
}

/** The last export's `_meta.json` under `dir`, or null. */
export async function readMeta(dir: string): Promise<SnapshotMeta | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, '_meta.json'), 'utf8')) as SnapshotMeta;
  } catch {
    return null;
  }
}

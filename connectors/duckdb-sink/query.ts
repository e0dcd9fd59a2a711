/**
 * Read helper over the sink's Parquet exports, for processes that must never open the live
 * DuckDB file (the API for time ranges beyond the live stream, scripts, tests).
 *
 * Every call uses a fresh in-memory DuckDB with one VIEW per table over its files, listed when the
 * call starts (`read_parquet([<files>], hive_partitioning = true)` for the partitioned tables,
 * whose views gain the DATE column `date`; export.ts describes the layout): parts are renamed into
 * place, so a reader gets whole files only, and parts a compacted part covers are left out of the
 * listing, so a row is read once even while a compaction swaps files. When a listed file is gone
 * by the time DuckDB opens it (a compaction deleted it in between), the call lists again. A table without any file yet is an empty view with the table's columns (from `_meta.json`).
 * Values come back as JS values: BIGINT → bigint, TIMESTAMP → Date, DOUBLE → number, BLOB → Uint8Array.
 *
 * A source is a local folder, or (PENUMBRA_PARQUET_READ=s3 with DuckDB's httpfs extension
 * fetched: connectors/parquet-source) the bucket's export `s3://<bucket>/<prefix>warehouse/`
 * read directly: the same views over `s3://…` files, listed with one `glob('…/**')` (ListObjectsV2)
 * per call, `_meta.json` read with `read_text`. Loading httpfs checks its signature (~0.2–1 s on
 * this machine), so S3 calls share one DuckDB instance per source with the extension and the
 * secret loaded once, each call on its own connection with TEMP views.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import type { S3Settings } from '../../pipeline/config/config.ts';
import { loadHttpfs } from '../duckdb-httpfs/httpfs.ts';
import { ALL_TABLES } from './tables.ts';
import { liveParts, readMeta, tableLayout, type SnapshotMeta, type TableLayout } from './export.ts';

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** The bucket's export read directly through httpfs (connectors/parquet-source `readerParquetSource`). */
export interface S3ParquetSource {
  kind: 's3';
  /** `s3://<bucket>/<prefix>warehouse/` (with the trailing slash). */
  url: string;
  /** The cached httpfs extension (connectors/duckdb-httpfs). */
  extension: string;
  s3: S3Settings;
}

/** Where a reader reads the export: a local folder or the bucket (httpfs). */
export type ParquetSource = string | S3ParquetSource;

export const isS3Source = (s: ParquetSource): s is S3ParquetSource => typeof s !== 'string';

/** A readable name of a source (logs, errors). */
export const sourceName = (s: ParquetSource): string => (isS3Source(s) ? s.url : s);

/**
 * Open a DuckDB instance that can read `source`: httpfs loaded (signature checked) and the S3
 * secret added for a bucket source; a plain in-memory one for a folder. The caller closes it.
 */
export async function openReaderInstance(source: ParquetSource, options?: Record<string, string>): Promise<DuckDBInstance> {
  const instance = await DuckDBInstance.create(':memory:', options);
  if (!isS3Source(source)) return instance;
  const conn = await instance.connect();
  try {
    await loadHttpfs(conn, source.extension, source.s3);
  } catch (err) {
    instance.closeSync();
    throw err;
  } finally {
    conn.closeSync();
  }
  return instance;
}

/** One instance per bucket source, httpfs loaded once (see the header); closed by closeS3Readers. */
const sharedS3 = new Map<string, Promise<DuckDBInstance>>();
const sharedKey = (s: S3ParquetSource): string => `${s.s3.endpoint} ${s.url} ${s.extension}`;

/** The shared instance of a bucket source (opened now if it is not): rejects when httpfs does not load. */
export function sharedInstance(source: S3ParquetSource): Promise<DuckDBInstance> {
  const key = sharedKey(source);
  let p = sharedS3.get(key);
  if (!p) {
    p = openReaderInstance(source);
    sharedS3.set(key, p);
    // A failed open (extension refused, bad endpoint) is not kept: the next call tries again.
    p.catch(() => sharedS3.get(key) === p && sharedS3.delete(key));
  }
  return p;
}

/** Close the shared instance of a bucket source (the parquet-source feature's stop). */
export async function closeS3Readers(source: S3ParquetSource): Promise<void> {
  const key = sharedKey(source);
  const p = sharedS3.get(key);
  sharedS3.delete(key);
  if (p) (await p.catch(() => null))?.closeSync();
}

/**
 * The live files of every table of a bucket export, from one recursive listing: `<table>/<file>`
 * for plain tables, `<table>/<partition>/<file>` for Hive ones, each partition through
 * `liveParts` like a local folder; folders starting with '.' (staging) are left out.
 */
export function s3TableFiles(url: string, listed: readonly string[], layouts: (table: string) => TableLayout | undefined): Map<string, string[]> {
  const flat = new Map<string, string[]>();
  const parts = new Map<string, Map<string, string[]>>();
  for (const file of listed) {
    if (!file.startsWith(url) || !file.endsWith('.parquet')) continue;
    const rel = file.slice(url.length).split('/');
    const layout = layouts(rel[0]);
    if (!layout || rel.some((p) => p === '' || p.startsWith('.'))) continue;
    if (!layout.hive && rel.length === 2) flat.set(rel[0], [...(flat.get(rel[0]) ?? []), file]);
    if (layout.hive && rel.length === 3) {
      const t = parts.get(rel[0]) ?? new Map<string, string[]>();
      t.set(rel[1], [...(t.get(rel[1]) ?? []), rel[2]]);
      parts.set(rel[0], t);
    }
  }
  for (const [table, byPartition] of parts) {
    flat.set(table, [...byPartition].flatMap(([p, files]) => liveParts(files).map((f) => `${url}${table}/${p}/${f}`)).sort());
  }
  return flat;
}

/** `_meta.json` of a bucket export (null before the first export). */
async function readS3Meta(conn: DuckDBConnection, url: string): Promise<SnapshotMeta | null> {
  try {
    const rows = (await conn.runAndReadAll(`SELECT content FROM read_text(${literal(`${url}_meta.json`)})`)).getRowObjectsJS();
    return rows.length ? (JSON.parse(String(rows[0].content)) as SnapshotMeta) : null;
  } catch (err) {
    if (isVanishedFile(err)) return null;
    throw err;
  }
}

/**
 * The files a reader of one table must read, absolute paths, from one listing of its folders:
 * every Parquet file but the parts a compacted part covers (export.ts `liveParts`) — so a
 * listing taken while a compaction has renamed its merged part in but not yet deleted the inputs
 * still yields each row once.
 */
export function tableFiles(parquetDir: string, table: string, layout: TableLayout): string[] {
  const dir = path.join(parquetDir, table);
  if (!existsSync(dir)) return [];
  const entries = readdirSync(dir, { withFileTypes: true });
  if (!layout.hive) return entries.filter((e) => e.isFile() && e.name.endsWith('.parquet')).map((e) => path.join(dir, e.name));
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .flatMap((e) => {
      const files = readdirSync(path.join(dir, e.name), { withFileTypes: true }).filter((f) => f.isFile()).map((f) => f.name);
      return liveParts(files).map((f) => path.join(dir, e.name, f));
    })
    .sort();
}

/**
 * The SQL of a view over one table's export (what the notebook helper builds too): the listed
 * files (`tableFiles`) read with Hive partitioning where the table has it, or, with no file yet,
 * an empty view with the table's columns.
 */
export function viewSql(table: string, layout: TableLayout, files: string[], temp = false): string {
  const create = `CREATE OR REPLACE ${temp ? 'TEMP ' : ''}VIEW ${ident(table)} AS`;
  if (files.length > 0) {
    return `${create} SELECT * FROM read_parquet([${files.map(literal).join(', ')}], union_by_name = true${layout.hive ? ', hive_partitioning = true' : ''})`;
  }
  const cols = layout.columns.map(([n, t]) => `CAST(NULL AS ${t}) AS ${ident(n)}`);
  if (layout.hive) cols.push('CAST(NULL AS DATE) AS "date"');
  return `${create} SELECT ${cols.join(', ')} WHERE false`;
}

/**
 * Create one view per exported table on `conn`. The views read the files listed now: a
 * connection kept open sees later exports only after `createViews` runs again (queryParquet
 * opens a fresh one per call).
 */
export async function createViews(conn: DuckDBConnection, source: ParquetSource, opts: { temp?: boolean } = {}): Promise<void> {
  if (!isS3Source(source)) {
    const meta = await readMeta(source);
    for (const t of ALL_TABLES) {
      const layout = meta?.layout?.[t.name] ?? tableLayout(t);
      await conn.run(viewSql(t.name, layout, tableFiles(source, t.name, layout), opts.temp));
    }
    return;
  }
  // The connection's database has httpfs and the secret (openReaderInstance).
  const meta = await readS3Meta(conn, source.url);
  const layoutOf = (name: string): TableLayout | undefined => {
    const t = ALL_TABLES.find((x) => x.name === name);
    return t ? (meta?.layout?.[name] ?? tableLayout(t)) : undefined;
  };
  const listed = (await conn.runAndReadAll(`SELECT file FROM glob(${literal(`${source.url}**/*.parquet`)})`)).getRowObjectsJS().map((r) => String(r.file));
  const files = s3TableFiles(source.url, listed, layoutOf);
  for (const t of ALL_TABLES) await conn.run(viewSql(t.name, layoutOf(t.name)!, files.get(t.name) ?? [], opts.temp));
}

/**
 * A listed file was gone when DuckDB opened it: a compaction deleted its inputs between the
 * listing and the read (the merged part holds the same rows; a new listing finds it).
 */
export function isVanishedFile(err: unknown): boolean {
  const m = (err as Error)?.message ?? '';
  // Local: an IO error naming the missing file; S3 (httpfs): the GET of a listed object is a 404.
  return (/IO Error/i.test(m) && /(No such file|No files found|Cannot open file|does not exist)/i.test(m)) || (/HTTP Error/i.test(m) && /\b404\b/.test(m));
}

/** Listing + query attempts when listed files vanish under the reader (a compaction each time). */
const VANISHED_RETRIES = 5;

/** Run `sql` against views named after the tables (`telemetry_events`, `metric_windows`, …). */
export async function queryParquet(
  source: ParquetSource,
  sql: string,
  params?: DuckDBValue[] | Record<string, DuckDBValue>,
): Promise<Record<string, unknown>[]> {
  const s3 = isS3Source(source);
  // A bucket source: a connection of the shared instance, TEMP views (per connection) so calls
  // running at once do not replace each other's views.
  const instance = s3 ? await sharedInstance(source) : await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      await createViews(conn, source, { temp: s3 });
      try {
        return (await conn.runAndReadAll(sql, params)).getRowObjectsJS() as Record<string, unknown>[];
      } catch (err) {
        // An internal error can invalidate a DuckDB database for good: a shared one is dropped
        // (left to the garbage collector: other calls may still hold connections of it), so the
        // next call opens a fresh instance instead of failing forever.
        if (s3 && /INTERNAL Error|invalidated/i.test((err as Error)?.message ?? '')) sharedS3.delete(sharedKey(source));
        if (attempt >= VANISHED_RETRIES || !isVanishedFile(err)) throw err;
      }
    }
  } finally {
    conn.closeSync();
    if (!s3) instance.closeSync();
  }
}

/** The `_meta.json` of the last export: when it was taken, row counts, offsets reflected, layout. */
export async function readSnapshotMeta(source: ParquetSource): Promise<SnapshotMeta | null> {
  if (!isS3Source(source)) return readMeta(source);
  const conn = await (await sharedInstance(source)).connect();
  try {
    return await readS3Meta(conn, source.url);
  } finally {
    conn.closeSync();
  }
}

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
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { ALL_TABLES } from './tables.ts';
import { liveParts, readMeta, tableLayout, type SnapshotMeta, type TableLayout } from './export.ts';

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

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
export function viewSql(table: string, layout: TableLayout, files: string[]): string {
  if (files.length > 0) {
    return `CREATE OR REPLACE VIEW ${ident(table)} AS SELECT * FROM read_parquet([${files.map(literal).join(', ')}], union_by_name = true${layout.hive ? ', hive_partitioning = true' : ''})`;
  }
  const cols = layout.columns.map(([n, t]) => `CAST(NULL AS ${t}) AS ${ident(n)}`);
  if (layout.hive) cols.push('CAST(NULL AS DATE) AS "date"');
  return `CREATE OR REPLACE VIEW ${ident(table)} AS SELECT ${cols.join(', ')} WHERE false`;
}

/**
 * Create one view per exported table on `conn`. The views read the files listed now: a
 * connection kept open sees later exports only after `createViews` runs again (queryParquet
 * opens a fresh one per call).
 */
export async function createViews(conn: DuckDBConnection, parquetDir: string): Promise<void> {
  const meta = await readMeta(parquetDir);
  for (const t of ALL_TABLES) {
    const layout = meta?.layout?.[t.name] ?? tableLayout(t);
    await conn.run(viewSql(t.name, layout, tableFiles(parquetDir, t.name, layout)));
  }
}

/**
 * A listed file was gone when DuckDB opened it: a compaction deleted its inputs between the
 * listing and the read (the merged part holds the same rows; a new listing finds it).
 */
export function isVanishedFile(err: unknown): boolean {
  const m = (err as Error)?.message ?? '';
  return /IO Error/i.test(m) && /(No such file|No files found|Cannot open file|does not exist)/i.test(m);
}

/** Listing + query attempts when listed files vanish under the reader (a compaction each time). */
const VANISHED_RETRIES = 5;

/** Run `sql` against views named after the tables (`telemetry_events`, `metric_windows`, …). */
export async function queryParquet(
  parquetDir: string,
  sql: string,
  params?: DuckDBValue[] | Record<string, DuckDBValue>,
): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      await createViews(conn, parquetDir);
      try {
        return (await conn.runAndReadAll(sql, params)).getRowObjectsJS() as Record<string, unknown>[];
      } catch (err) {
        if (attempt >= VANISHED_RETRIES || !isVanishedFile(err)) throw err;
      }
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The `_meta.json` of the last export: when it was taken, row counts, offsets reflected, layout. */
export async function readSnapshotMeta(parquetDir: string): Promise<SnapshotMeta | null> {
  return readMeta(parquetDir);
}

/**
 * Read helper over the sink's Parquet exports, for processes that must never open the live
 * DuckDB file (the API for time ranges beyond the live stream, scripts, tests).
 *
 * Every call uses a fresh in-memory DuckDB with one VIEW per table over its files
 * (`read_parquet('<dir>/<table>/*\/*.parquet', hive_partitioning = true)` for the partitioned
 * tables, whose views gain the DATE column `date`; export.ts describes the layout), so a query sees
 * the files as they are when it runs: parts are renamed into place, so a reader gets whole files
 * only. A table without any file yet is an empty view with the table's columns (from `_meta.json`).
 * Values come back as JS values: BIGINT → bigint, TIMESTAMP → Date, DOUBLE → number, BLOB → Uint8Array.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { ALL_TABLES } from './tables.ts';
import { readMeta, tableLayout, type SnapshotMeta, type TableLayout } from './export.ts';

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** True when the table has at least one file in `parquetDir` (a glob with no match is an error in DuckDB). */
function hasFiles(parquetDir: string, table: string, layout: TableLayout): boolean {
  const dir = path.join(parquetDir, table);
  if (!existsSync(dir)) return false;
  const entries = readdirSync(dir, { withFileTypes: true });
  if (!layout.hive) return entries.some((e) => e.isFile() && e.name.endsWith('.parquet'));
  return entries.some((e) => e.isDirectory() && !e.name.startsWith('.') && readdirSync(path.join(dir, e.name)).some((f) => f.endsWith('.parquet')));
}

/** The SQL of a view over one table's export (what the notebook helper builds too). */
export function viewSql(parquetDir: string, table: string, layout: TableLayout, withFiles: boolean): string {
  if (withFiles) {
    const glob = path.join(parquetDir, layout.glob);
    return `CREATE OR REPLACE VIEW ${ident(table)} AS SELECT * FROM read_parquet(${literal(glob)}, union_by_name = true${layout.hive ? ', hive_partitioning = true' : ''})`;
  }
  const cols = layout.columns.map(([n, t]) => `CAST(NULL AS ${t}) AS ${ident(n)}`);
  if (layout.hive) cols.push('CAST(NULL AS DATE) AS "date"');
  return `CREATE OR REPLACE VIEW ${ident(table)} AS SELECT ${cols.join(', ')} WHERE false`;
}

/** Create one view per exported table on `conn`. */
export async function createViews(conn: DuckDBConnection, parquetDir: string): Promise<void> {
  const meta = await readMeta(parquetDir);
  for (const t of ALL_TABLES) {
    const layout = meta?.layout?.[t.name] ?? tableLayout(t);
    await conn.run(viewSql(parquetDir, t.name, layout, hasFiles(parquetDir, t.name, layout)));
  }
}

/** Run `sql` against views named after the tables (`telemetry_events`, `metric_windows`, …). */
export async function queryParquet(
  parquetDir: string,
  sql: string,
  params?: DuckDBValue[] | Record<string, DuckDBValue>,
): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    await createViews(conn, parquetDir);
    return (await conn.runAndReadAll(sql, params)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The `_meta.json` of the last export: when it was taken, row counts, offsets reflected, layout. */
export async function readSnapshotMeta(parquetDir: string): Promise<SnapshotMeta | null> {
  return readMeta(parquetDir);
}

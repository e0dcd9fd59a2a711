/**
 * Read helper over the sink's Parquet snapshots, for processes that must never open the live
 * DuckDB file (the API for time ranges beyond the live stream, scripts, tests).
 *
 * Every call uses a fresh in-memory DuckDB with one VIEW per `<table>.parquet` in `parquetDir`,
 * so a query sees the files as they are when it runs (the sink replaces them by rename, which is
 * atomic: a reader gets the old or the new file, never half of one). Values come back as JS
 * values: BIGINT → bigint, TIMESTAMP → Date, DOUBLE → number, BLOB → Uint8Array.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import type { SnapshotMeta } from './sink.ts';

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** Run `sql` against views named after the tables (`telemetry_events`, `metric_windows`, …). */
export async function queryParquet(
  parquetDir: string,
  sql: string,
  params?: DuckDBValue[] | Record<string, DuckDBValue>,
): Promise<Record<string, unknown>[]> {
  const files = (await readdir(parquetDir).catch(() => [] as string[])).filter((f) => f.endsWith('.parquet'));
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    for (const f of files) {
      const table = f.slice(0, -'.parquet'.length);
      await conn.run(`CREATE VIEW ${ident(table)} AS SELECT * FROM read_parquet(${literal(path.join(parquetDir, f))})`);
    }
    return (await conn.runAndReadAll(sql, params)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The `_meta.json` of the last export: when it was taken, row counts, offsets reflected. */
export async function readSnapshotMeta(parquetDir: string): Promise<SnapshotMeta | null> {
  try {
    return JSON.parse(await readFile(path.join(parquetDir, '_meta.json'), 'utf8')) as SnapshotMeta;
  } catch {
    return null;
  }
}

/**
 * Runs segment SQL read-only against the warehouse snapshot (the Parquet files the sink
 * publishes — never the live DuckDB file, which has one writer: docs/ARCHITECTURE.md).
 *
 * Each evaluation opens a fresh in-memory DuckDB with one view per warehouse table
 * (connectors/duckdb-sink/query.ts createViews), then locks it down before any operator SQL
 * runs:
 *   SET allowed_directories = ['<parquetDir>/']   the snapshot stays readable through the views
 *                                                 (a bucket source: ['s3://<bucket>/<prefix>warehouse/'],
 *                                                 httpfs and its secret loaded before the lock;
 *                                                 duckdb_secrets() shows the secret redacted)
 *   SET enable_external_access = false            no other file, no network, no INSTALL/LOAD from disk, no COPY/ATTACH
 *   SET lock_configuration = true                 and no SET can undo the above
 * with `threads` 1 and a memory limit, so a heavy query competes for one core at most. The SQL
 * must prepare as exactly one statement of type SELECT with a `user_id` column (DuckDB refuses
 * several statements in one prepare); the membership wrapper (sql.ts) is prepared the same way.
 * A time limit interrupts the connection (DuckDB's own cancellation).
 */
import { StatementType, type DuckDBConnection, type DuckDBDataChunk, type DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';
import { createViews, isS3Source, openReaderInstance, type ParquetSource } from '../../connectors/duckdb-sink/query.ts';
import { ValidationError } from '../errors.ts';
import { membershipSql } from './sql.ts';

export interface SandboxOptions {
  /** DuckDB memory_limit of one evaluation (default 256MB). */
  memoryLimit?: string;
}

const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export class Sandbox {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}

  static async open(parquetDir: ParquetSource, opts: SandboxOptions = {}): Promise<Sandbox> {
    const instance = await openReaderInstance(parquetDir, { threads: '1', memory_limit: opts.memoryLimit ?? '256MB' });
    const conn = await instance.connect();
    try {
      await createViews(conn, parquetDir);
      // A trailing separator so a sibling folder with the same prefix is not allowed too (the
      // bucket URL ends in '/').
      const allowed = isS3Source(parquetDir) ? parquetDir.url : path.resolve(parquetDir) + path.sep;
      await conn.run(`SET allowed_directories = [${literal(allowed)}]`);
      await conn.run('SET enable_external_access = false');
      await conn.run('SET lock_configuration = true');
    } catch (err) {
      conn.closeSync();
      instance.closeSync();
      throw err;
    }
    return new Sandbox(instance, conn);
  }

  /**
   * Checks that `sql` is one SELECT with a user_id column and binds against the snapshot's
   * tables; throws ValidationError on field `sql` with DuckDB's message otherwise.
   */
  async check(sql: string): Promise<void> {
    let prepared;
    try {
      prepared = await this.conn.prepare(sql);
    } catch (err) {
      throw new ValidationError('segment SQL does not prepare', [{ path: 'sql', message: firstLine(err) }]);
    }
    try {
      if (prepared.statementType !== StatementType.SELECT) {
        throw new ValidationError('segment SQL must be one SELECT', [{ path: 'sql', message: `must be one SELECT statement (got ${StatementType[prepared.statementType] ?? 'another statement'})` }]);
      }
      const names = Array.from({ length: prepared.columnCount }, (_, i) => prepared.columnName(i));
      if (!names.includes('user_id')) {
        throw new ValidationError('segment SQL has no user_id column', [{ path: 'sql', message: `must return a column named user_id (returns ${names.join(', ') || 'no columns'})` }]);
      }
    } finally {
      prepared.destroySync();
    }
  }

  /**
   * Runs the membership query: at most maxMembers + 1 distinct user ids, chunk by chunk into
   * `onChunk` (the caller appends them to its state). Rejects with the query's error, or with a
   * TimeoutError after `timeoutMs`.
   */
  async members(sql: string, maxMembers: number, timeoutMs: number, onChunk: (chunk: DuckDBDataChunk) => void): Promise<number> {
    await this.check(sql);
    const wrapped = await this.conn.prepare(membershipSql(sql, maxMembers));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.conn.interrupt();
    }, timeoutMs);
    try {
      if (wrapped.statementType !== StatementType.SELECT) throw new ValidationError('segment SQL must be one SELECT', [{ path: 'sql', message: 'must be one SELECT statement' }]);
      const result = await wrapped.stream();
      let rows = 0;
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        rows += chunk.rowCount;
        onChunk(chunk);
      }
      if (timedOut) throw new SegmentTimeoutError(timeoutMs);
      return rows;
    } catch (err) {
      if (timedOut) throw new SegmentTimeoutError(timeoutMs);
      throw err;
    } finally {
      clearTimeout(timer);
      wrapped.destroySync();
    }
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

export class SegmentTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the query ran longer than its time limit of ${timeoutMs} ms and was interrupted`);
  }
}

/** DuckDB messages repeat the query with a caret; the first line is the reason. */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 500);
}

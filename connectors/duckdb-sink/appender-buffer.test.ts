/**
 * What the sink's direct path relies on in DuckDB's Appender (sink.ts, APPENDER_AUTOFLUSH_ROWS):
 * appended rows stay in the Appender until it is flushed — a chunk of up to maxRowsPerTx rows
 * (capped at half the auto-flush size) reaches the table only at the flush inside the chunk's
 * transaction, and a rollback (or clear) leaves nothing behind. Pinned here so a DuckDB upgrade
 * that changes it fails a test instead of the exactly-once guarantee.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { APPENDER_AUTOFLUSH_ROWS } from './sink.ts';

test('rows appended but not flushed are invisible, and clear() or a rollback discards them', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const w = await db.connect();
  const r = await db.connect();
  await w.run('CREATE TABLE t (id VARCHAR, v DOUBLE)');
  const a = await w.createAppender('t');
  const count = async () => Number((await r.runAndReadAll('SELECT count(*) AS n FROM t')).getRowObjectsJS()[0].n);
  const rows = APPENDER_AUTOFLUSH_ROWS / 2;
  for (let i = 0; i < rows; i++) {
    a.appendVarchar(`id-${i}`);
    a.appendDouble(i);
    a.endRow();
  }
  expect(await count()).toBe(0);
  a.clear();
  a.flushSync();
  expect(await count()).toBe(0);

  for (let i = 0; i < 10; i++) {
    a.appendVarchar(`x-${i}`);
    a.appendDouble(i);
    a.endRow();
  }
  await w.run('BEGIN TRANSACTION');
  a.flushSync();
  expect(await count()).toBe(0); // not committed: another connection does not see it
  await w.run('ROLLBACK');
  expect(await count()).toBe(0);

  a.appendVarchar('kept');
  a.appendDouble(1);
  a.endRow();
  await w.run('BEGIN TRANSACTION');
  a.flushSync();
  await w.run('COMMIT');
  expect(await count()).toBe(1);
  a.closeSync();
  w.closeSync();
  r.closeSync();
  db.closeSync();
});

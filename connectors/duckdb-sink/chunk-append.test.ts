/**
 * The columnar write path against a real (in-memory) DuckDB: the self-test the sink runs before
 * trusting it passes, and generated telemetry events decoded into a ColumnBatch and appended by
 * data chunk read back exactly as the per-cell path stores them.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { avroType } from '../../schemas/index.ts';
import { ChunkAppender, CHUNK_ROWS, selfTest } from './chunk-append.ts';
import { ColumnBatch, compileColumnDecoder } from './columnar.ts';
import { createTableSql, TELEMETRY_EVENTS, type Cell } from './tables.ts';
import { telemetryEvent } from './fixtures.ts';

test('data chunks written by ChunkAppender read back as the per-cell rows (generated events)', async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    expect(await selfTest(conn)).toBe(true);
    await conn.run(createTableSql(TELEMETRY_EVENTS));
    const types = TELEMETRY_EVENTS.columns.map((c) => c.type);
    const type = avroType('telemetry-event');
    const dec = compileColumnDecoder(type, type, TELEMETRY_EVENTS.fields!, types)!;
    const batch = new ColumnBatch(types);
    const n = 2 * CHUNK_ROWS + 11; // several chunks, the last one partial
    const want: Cell[][] = [];
    for (let i = 0; i < n; i++) {
      const e = { ...telemetryEvent(i), id: i % 3 ? `ev-${i}` : `ëv-lönger-than-twelve-${i}`, controlOf: i % 5 ? null : 'checkout-v2' };
      const body = type.toBuffer(e);
      dec.decode(body, 0, body.length, batch);
      want.push([...TELEMETRY_EVENTS.rows(e, { topic: 't', partition: 0, offset: '0' })[0], 7]);
    }
    const appender = await conn.createAppender(TELEMETRY_EVENTS.name);
    new ChunkAppender(types, true).append(appender, batch, 7);
    appender.flushSync();
    appender.closeSync();
    const cols = TELEMETRY_EVENTS.columns.map((c) => (c.type === 'TIMESTAMP' ? `epoch_ms("${c.name}")::DOUBLE AS "${c.name}"` : c.type === 'BIGINT' ? `"${c.name}"::DOUBLE AS "${c.name}"` : `"${c.name}"`));
    const got = (await conn.runAndReadAll(`SELECT ${cols.join(', ')}, _sink_tx::INTEGER AS tx FROM ${TELEMETRY_EVENTS.name}`)).getRows();
    expect(got.length).toBe(n);
    const byId = new Map(got.map((r) => [r[0] as string, r]));
    for (const w of want) expect(byId.get(w[0] as string)).toEqual(w);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
});

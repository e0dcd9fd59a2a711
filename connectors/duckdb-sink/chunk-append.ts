/**
 * Hands a ColumnBatch (columnar.ts) to a DuckDB Appender as data chunks: one N-API call per
 * column per 2,048 rows instead of one per cell.
 *
 * Fixed-width columns are copied into the chunk's vectors whole (`copy_data_to_vector`). VARCHAR
 * vectors hold DuckDB's 16-byte `duckdb_string_t` per row (documented in duckdb.h: the length,
 * then either the bytes inline when they fit in 12, or a 4-byte prefix and a pointer to the
 * bytes). The bytes of every string of the batch are first placed into DuckDB's own memory in one
 * call — the arena as a single BLOB value of a scratch vector — and each row's `duckdb_string_t`
 * points into it; `append_data_chunk` copies the strings into the Appender's collection
 * (DuckDB's BaseAppender::AppendDataChunk → ColumnDataCollection::Append), after which the
 * scratch vector is reset and its memory freed. The pointers therefore only have to live for the
 * duration of `append()`, and they point into memory DuckDB allocated and owns.
 *
 * `selfTest()` writes and reads back strings of every shape through this path once per process
 * before the sink trusts it (the layout is the C API's, so a mismatch would mean a binding that
 * changed underneath); the sink falls back to per-cell appends if it fails.
 */
import duckdb from '@duckdb/node-bindings';
import {
  BIGINT, BLOB, BOOLEAN, DOUBLE, DuckDBDataChunk, INTEGER, TIMESTAMP, VARCHAR,
  type DuckDBAppender, type DuckDBConnection, type DuckDBType,
} from '@duckdb/node-api';
import type { ColumnBatch } from './columnar.ts';
import type { ColumnType } from './tables.ts';

/** Rows per DuckDB data chunk (DuckDB's STANDARD_VECTOR_SIZE). */
export const CHUNK_ROWS = 2048;
const TWO32 = 4294967296;

function duckType(t: ColumnType): DuckDBType {
  switch (t) {
    case 'VARCHAR': return VARCHAR;
    case 'BIGINT': return BIGINT;
    case 'INTEGER': return INTEGER;
    case 'DOUBLE': return DOUBLE;
    case 'BOOLEAN': return BOOLEAN;
    case 'TIMESTAMP': return TIMESTAMP;
    default: throw new Error(`no columnar append for ${t}`);
  }
}

export class ChunkAppender {
  private readonly chunk: DuckDBDataChunk;
  private readonly scratch: DuckDBDataChunk;
  private readonly strings = new Uint8Array(16 * CHUNK_ROWS);
  private readonly strings32 = new Uint32Array(this.strings.buffer);
  private readonly i64 = new Uint32Array(2 * CHUNK_ROWS);
  private readonly f64 = new Float64Array(CHUNK_ROWS);
  private readonly i32 = new Int32Array(CHUNK_ROWS);
  private readonly u8 = new Uint8Array(CHUNK_ROWS);
  private readonly validity = new Uint8Array(CHUNK_ROWS / 8);

  /**
   * `types`: the batch's columns; `withTx`: the table has one more BIGINT column at the end
   * (`_sink_tx`), filled with the transaction number.
   */
  constructor(private readonly types: readonly ColumnType[], private readonly withTx: boolean) {
    this.chunk = DuckDBDataChunk.create([...types.map(duckType), ...(withTx ? [BIGINT] : [])], CHUNK_ROWS);
    this.scratch = DuckDBDataChunk.create([BLOB], 1);
  }

  /** Append every row of `batch` (stamped with `tx`) to `appender`; buffered until it flushes. */
  append(appender: DuckDBAppender, batch: ColumnBatch, tx: number): void {
    if (batch.rows === 0) return;
    // The bytes of every string, in DuckDB memory: one BLOB value of the scratch vector.
    let baseLo = 0;
    let baseHi = 0;
    const sv = duckdb.data_chunk_get_vector(this.scratch.chunk, 0);
    if (batch.arenaLen > 12) {
      duckdb.vector_assign_string_element_len(sv, 0, batch.arena.subarray(0, batch.arenaLen));
      const head = duckdb.vector_get_data(sv, 16);
      const dv = new DataView(head.buffer, head.byteOffset, 16);
      if (dv.getUint32(0, true) !== batch.arenaLen) throw new Error('DuckDB string layout is not the documented duckdb_string_t');
      baseLo = dv.getUint32(8, true);
      baseHi = dv.getUint32(12, true);
    }
    const base = baseHi * TWO32 + baseLo;
    try {
      for (let from = 0; from < batch.rows; from += CHUNK_ROWS) {
        const n = Math.min(CHUNK_ROWS, batch.rows - from);
        this.chunk.reset();
        const c = this.chunk.chunk;
        for (let k = 0; k < this.types.length; k++) this.fill(duckdb.data_chunk_get_vector(c, k), batch, k, from, n, base);
        if (this.withTx) {
          const lo = tx >>> 0;
          const hi = Math.floor(tx / TWO32) >>> 0;
          for (let i = 0; i < n; i++) {
            this.i64[2 * i] = lo;
            this.i64[2 * i + 1] = hi;
          }
          duckdb.copy_data_to_vector(duckdb.data_chunk_get_vector(c, this.types.length), 0, this.i64.buffer, 0, 8 * n);
        }
        duckdb.data_chunk_set_size(c, n);
        appender.appendDataChunk(this.chunk);
      }
    } finally {
      // The Appender holds its own copy now; free the scratch bytes.
      this.scratch.reset();
    }
  }

  private fill(vec: duckdb.Vector, batch: ColumnBatch, k: number, from: number, n: number, base: number): void {
    const col = batch.cols[k];
    const nul = col.nul;
    let nulls = false;
    for (let i = 0; i < n; i++) {
      if (nul[from + i]) {
        nulls = true;
        break;
      }
    }
    switch (col.type) {
      case 'VARCHAR': {
        const s = this.strings;
        const s32 = this.strings32;
        const arena = batch.arena;
        const off = col.off!;
        const len = col.len!;
        for (let i = 0; i < n; i++) {
          const r = from + i;
          const o = 16 * i;
          if (nul[r]) {
            s32[o >> 2] = 0;
            continue;
          }
          const l = len[r];
          const a = off[r];
          s32[o >> 2] = l;
          if (l <= 12) {
            // Inline: the bytes, zero-padded (DuckDB compares inline strings as raw 16 bytes).
            s32[(o >> 2) + 1] = 0;
            s32[(o >> 2) + 2] = 0;
            s32[(o >> 2) + 3] = 0;
            for (let j = 0; j < l; j++) s[o + 4 + j] = arena[a + j];
          } else {
            s[o + 4] = arena[a];
            s[o + 5] = arena[a + 1];
            s[o + 6] = arena[a + 2];
            s[o + 7] = arena[a + 3];
            const p = base + a;
            s32[(o >> 2) + 2] = p >>> 0;
            s32[(o >> 2) + 3] = Math.floor(p / TWO32) >>> 0;
          }
        }
        duckdb.copy_data_to_vector(vec, 0, s.buffer, 0, 16 * n);
        break;
      }
      case 'BIGINT': case 'TIMESTAMP': {
        const num = col.num!;
        const scale = col.type === 'TIMESTAMP' ? 1000 : 1; // epoch ms → µs
        const out = this.i64;
        for (let i = 0; i < n; i++) {
          const v = nul[from + i] ? 0 : num[from + i] * scale;
          const hi = Math.floor(v / TWO32);
          out[2 * i] = (v - hi * TWO32) >>> 0;
          out[2 * i + 1] = hi >>> 0;
        }
        duckdb.copy_data_to_vector(vec, 0, out.buffer, 0, 8 * n);
        break;
      }
      case 'DOUBLE': {
        const num = col.num!;
        duckdb.copy_data_to_vector(vec, 0, num.buffer as ArrayBuffer, num.byteOffset + 8 * from, 8 * n);
        break;
      }
      case 'INTEGER': {
        const num = col.num!;
        const out = this.i32;
        for (let i = 0; i < n; i++) out[i] = num[from + i] | 0;
        duckdb.copy_data_to_vector(vec, 0, out.buffer, 0, 4 * n);
        break;
      }
      case 'BOOLEAN': {
        const num = col.num!;
        const out = this.u8;
        for (let i = 0; i < n; i++) out[i] = num[from + i] ? 1 : 0;
        duckdb.copy_data_to_vector(vec, 0, out.buffer, 0, n);
        break;
      }
      default:
        throw new Error(`no columnar append for ${col.type}`);
    }
    if (nulls) {
      const v = this.validity;
      const bytes = Math.ceil(n / 8);
      v.fill(0xff, 0, bytes);
      for (let i = 0; i < n; i++) if (nul[from + i]) v[i >> 3] &= ~(1 << (i & 7));
      duckdb.vector_ensure_validity_writable(vec);
      duckdb.copy_data_to_vector_validity(vec, 0, v.buffer, 0, bytes);
    }
  }

  close(): void {
    // Data chunks are freed with their JavaScript wrappers; nothing held across calls.
  }
}

/**
 * Write strings of every shape (empty, ≤ 12 bytes, longer, multi-byte UTF-8, NULL) and numbers
 * through ChunkAppender into a scratch table and read them back. The sink only uses the columnar
 * path when this passes.
 */
export async function selfTest(conn: DuckDBConnection): Promise<boolean> {
  const { ColumnBatch } = await import('./columnar.ts');
  const strs = ['', 'a', 'exactly12byt', 'thirteen byte', 'ünïcødé-strîng of some length', '日本語のテキスト', null, 'x'.repeat(3000)];
  const name = `_penumbra_chunk_selftest_${process.pid}`;
  await conn.run(`CREATE OR REPLACE TEMP TABLE ${name} (s VARCHAR, t TIMESTAMP, d DOUBLE, b BOOLEAN, _tx BIGINT)`);
  try {
    const types: ColumnType[] = ['VARCHAR', 'TIMESTAMP', 'DOUBLE', 'BOOLEAN'];
    const batch = new ColumnBatch(types, 8);
    const enc = new TextEncoder();
    const rows = 2 * CHUNK_ROWS + 7;
    for (let r = 0; r < rows; r++) {
      batch.reserveRow();
      const s = strs[r % strs.length];
      const c0 = batch.cols[0];
      if (s === null) c0.nul[r] = 1;
      else {
        const bytes = enc.encode(`${s}${r % 3 === 0 ? r : ''}`);
        batch.reserveBytes(bytes.length);
        batch.arena.set(bytes, batch.arenaLen);
        c0.nul[r] = 0;
        c0.off![r] = batch.arenaLen;
        c0.len![r] = bytes.length;
        batch.arenaLen += bytes.length;
      }
      batch.cols[1].nul[r] = r % 5 === 0 ? 1 : 0;
      batch.cols[1].num![r] = 1764200000000 + r;
      batch.cols[2].nul[r] = r % 7 === 0 ? 1 : 0;
      batch.cols[2].num![r] = r / 3;
      batch.cols[3].nul[r] = 0;
      batch.cols[3].num![r] = r % 2;
      batch.rows++;
    }
    const appender = await conn.createAppender(name);
    try {
      new ChunkAppender(types, true).append(appender, batch, 2 ** 33 + 5);
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    const got = (await conn.runAndReadAll(`SELECT s, epoch_ms(t) AS t, d, b, _tx FROM ${name}`)).getRowObjectsJS();
    if (got.length !== rows) return false;
    for (let r = 0; r < rows; r++) {
      const g = got[r];
      if (g.s !== batch.string(0, r)) return false;
      if ((r % 5 === 0 ? null : BigInt(1764200000000 + r)) !== (g.t === null ? null : BigInt(g.t as bigint))) return false;
      if ((r % 7 === 0 ? null : r / 3) !== g.d) return false;
      if ((r % 2 === 1) !== g.b) return false;
      if (g._tx !== BigInt(2 ** 33 + 5)) return false;
    }
    return true;
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${name}`);
  }
}

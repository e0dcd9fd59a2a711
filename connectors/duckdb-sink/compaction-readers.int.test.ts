/**
 * Readers of the Parquet export count every row once while a compaction swaps files.
 *
 * The real exporter (export.ts) on a real DuckDB file writes COMPACT_MIN_PARTS incremental parts
 * of `telemetry_events` into one day partition, then compacts them. Its test hook stops the
 * compaction at the one moment that used to double-count: the merged part renamed in, its inputs
 * not yet deleted. At that moment the folder demonstrably holds both, and
 *  - `queryParquet` (the API's and the segments' reader) and
 *  - the notebooks' helper (`penumbra_warehouse.connect()`, python3 + duckdb)
 * each return every event exactly once; so do they after the compaction finished. A listed file
 * deleted before DuckDB opens it is recognised as such (the readers list again).
 *
 * No Kafka: the exporter reads DuckDB only. Runs in about a second (plus the Python start).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { COMPACT_MIN_PARTS, createParquetExporter, liveParts } from './export.ts';
import { createViews, isVanishedFile, queryParquet } from './query.ts';
import { ALL_TABLES, SINK_OFFSETS, TELEMETRY_EVENTS, createTableSql, quoteIdent as q } from './tables.ts';
import { requires } from '../../test/requires.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROWS_PER_PART = 50;
const N = COMPACT_MIN_PARTS * ROWS_PER_PART;
const py = requires(['python:duckdb']);
/** The first export covers transactions 0…1 (from -1), the last ends at COMPACT_MIN_PARTS. */
const MERGED = `part-0-${COMPACT_MIN_PARTS}_c.parquet`;

/** Rows and distinct ids the notebook helper sees in `telemetry_events` (python3, real helper). */
function pythonCounts(dataDir: string): { rows: number; ids: number } {
  const r = spawnSync('python3', ['-c', [
    'import json, penumbra_warehouse as pw',
    `con = pw.connect(${JSON.stringify(dataDir)})`,
    'rows, ids = con.execute("select count(*), count(distinct id) from telemetry_events").fetchone()',
    'print(json.dumps({"rows": rows, "ids": ids}))',
  ].join('\n')], { cwd: path.join(REPO, 'notebooks'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`notebook helper failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as { rows: number; ids: number };
}

const counts = async (parquetDir: string) => {
  const [r] = await queryParquet(parquetDir, 'SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS ids FROM telemetry_events');
  return { rows: r.n as number, ids: r.ids as number };
};

describe('a compaction in progress', () => {
  let dir: string;
  let dataDir: string;
  let parquetDir: string;
  let instance: DuckDBInstance;
  /** What the readers saw while the merged part and its inputs were both in the folder. */
  let during: { listing: string[]; glob: number; ts: { rows: number; ids: number }; py: { rows: number; ids: number } | null } | null = null;
  let withPython = false;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'penumbra-compaction-'));
    dataDir = path.join(dir, 'data');
    parquetDir = path.join(dataDir, 'warehouse', 'parquet');
    withPython = spawnSync('python3', ['-c', 'import duckdb'], { encoding: 'utf8' }).status === 0;
    instance = await DuckDBInstance.create(path.join(dir, 'w.duckdb'));
    const writer = await instance.connect();
    for (const t of ALL_TABLES) await writer.run(createTableSql(t));
    const exporter = createParquetExporter({
      parquetDir,
      reader: await instance.connect(),
      state: await instance.connect(),
      mirror: null,
      log: () => {},
      afterCompactRename: async (partitionDir) => {
        // What a plain glob over the folder reads at this moment (the known limit this fixes).
        const [g] = await queryParquet(parquetDir, `SELECT count(*)::INTEGER AS n FROM read_parquet('${path.join(partitionDir, '*.parquet')}')`);
        during = { listing: readdirSync(partitionDir).sort(), glob: g.n as number, ts: await counts(parquetDir), py: withPython ? pythonCounts(dataDir) : null };
      },
    });
    await exporter.init();
    const cols = TELEMETRY_EVENTS.columns.map((c) => q(c.name)).join(', ');
    for (let tx = 1; tx <= COMPACT_MIN_PARTS; tx++) {
      // One sink transaction's rows (the same received_at day), then the offset that names it.
      await writer.run(`INSERT INTO ${q(TELEMETRY_EVENTS.name)} (${cols}, "_sink_tx")
        SELECT 'e-' || (${(tx - 1) * ROWS_PER_PART} + i), 'com.example.app', '1.0.0', 'original', 1, 's-' || i, 'u-' || i, 'usage', 'p', TIMESTAMP '2025-12-06 10:00:00',
               NULL, '{}', TIMESTAMP '2025-12-06 10:00:00', TIMESTAMP '2025-12-06 10:00:00', NULL, true, NULL, ${tx}
        FROM range(${ROWS_PER_PART}) r(i)`);
      await writer.run(`INSERT OR REPLACE INTO ${q(SINK_OFFSETS.name)} VALUES ('t', 0, ${tx * ROWS_PER_PART}, now()::TIMESTAMP, ${tx})`);
      exporter.touched(TELEMETRY_EVENTS.name, BigInt(tx));
      exporter.touched(SINK_OFFSETS.name, BigInt(tx));
      await exporter.exportChanged(5000);
    }
    expect(await exporter.compact()).toBe(COMPACT_MIN_PARTS);
  });

  afterAll(() => {
    instance?.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the listing taken between rename and delete holds the merged part and all its inputs', () => {
    expect(during).not.toBeNull();
    const parts = during!.listing.filter((f) => f.startsWith('part-'));
    expect(parts).toHaveLength(COMPACT_MIN_PARTS + 1);
    expect(parts).toContain(MERGED);
    expect(during!.glob).toBe(2 * N); // a reader of every file counts each row twice here
    // The rule the readers apply keeps the merged part only.
    expect(liveParts(during!.listing)).toEqual([MERGED]);
  });

  test('queryParquet reads every event once at that moment and after it', async () => {
    expect(during!.ts).toEqual({ rows: N, ids: N });
    expect(await counts(parquetDir)).toEqual({ rows: N, ids: N });
    const day = path.join(parquetDir, 'telemetry_events', 'date=2025-12-06');
    expect(readdirSync(day)).toEqual([MERGED]);
  });

  py('the notebook helper reads every event once at that moment and after it', () => {
    expect(during!.py).toEqual({ rows: N, ids: N });
    expect(pythonCounts(dataDir)).toEqual({ rows: N, ids: N });
  });

  test('a listed file deleted before DuckDB opens it is recognised (readers list again)', async () => {
    const mem = await DuckDBInstance.create(':memory:');
    const conn = await mem.connect();
    try {
      await createViews(conn, parquetDir);
      const day = path.join(parquetDir, 'telemetry_events', 'date=2025-12-06');
      const kept = path.join(dir, 'kept.parquet');
      // Move the only part away (as a compaction deletes its inputs), query the stale view.
      await conn.run(`COPY (SELECT * FROM read_parquet('${path.join(day, '*.parquet')}')) TO '${kept}' (FORMAT PARQUET)`);
      rmSync(path.join(day, MERGED));
      const err = await conn.run('SELECT count(*) FROM telemetry_events').then(() => null, (e: unknown) => e);
      expect(err).not.toBeNull();
      expect(isVanishedFile(err)).toBe(true);
      expect(isVanishedFile(new Error('Binder Error: column "x" not found'))).toBe(false);
    } finally {
      conn.closeSync();
      mem.closeSync();
    }
  });
});

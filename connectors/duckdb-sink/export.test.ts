/**
 * The pure parts of the incremental export: part names carry their transaction range, and
 * compaction merges a partition's small parts into one whose range covers them all.
 */
import { COMPACT_MIN_PARTS, liveParts, partRange, planCompaction, stale, tableLayout } from './export.ts';
import { ITEMS, TELEMETRY_EVENTS } from './tables.ts';

test('part names carry the transaction range they hold; other files are not parts', () => {
  expect(partRange('part-12-40_0.parquet')).toEqual([12, 40]);
  expect(partRange('part-1-400_c.parquet')).toEqual([1, 400]);
  expect(partRange('data_0.parquet')).toBeNull();
  expect(partRange('part-1-2_0.parquet.tmp')).toBeNull();
});

test('compaction waits for enough small parts, then merges them into one covering their ranges', () => {
  const parts = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `part-${i * 10 + 1}-${i * 10 + 10}_0.parquet`, bytes: 1000 }));
  expect(planCompaction(parts(COMPACT_MIN_PARTS - 1))).toBeNull();
  const plan = planCompaction([...parts(COMPACT_MIN_PARTS), { name: 'part-900-999_c.parquet', bytes: 10 ** 9 }, { name: 'data_0.parquet', bytes: 5 }]);
  expect(plan).toEqual({ inputs: parts(COMPACT_MIN_PARTS).map((p) => p.name), output: `part-1-${COMPACT_MIN_PARTS * 10}_c.parquet` });
});

test('layout: partitioned tables are read with a Hive glob, small ones as one folder', () => {
  expect(tableLayout(TELEMETRY_EVENTS)).toMatchObject({ glob: 'telemetry_events/*/*.parquet', hive: true });
  expect(tableLayout(ITEMS)).toMatchObject({ glob: 'items/*.parquet', hive: false });
  expect(tableLayout(TELEMETRY_EVENTS).columns.map(([n]) => n)).not.toContain('_sink_tx');
});

test('parts that must not be read: above the committed watermark, or inside a compacted part\'s range', () => {
  const files = ['part-1-10_0.parquet', 'part-11-20_0.parquet', 'part-1-20_c.parquet', 'part-21-30_0.parquet', 'part-31-40_0.parquet', 'data_0.parquet'];
  expect(stale(files, 30).sort()).toEqual(['part-1-10_0.parquet', 'part-11-20_0.parquet', 'part-31-40_0.parquet']);
  // Several files of one export share a range (one per partition folder, or _0/_1 in one folder): kept.
  expect(stale(['part-5-9_0.parquet', 'part-5-9_1.parquet'], 9)).toEqual([]);
});

test('compaction merges only consecutive small parts: a large part inside the range would pass for covered', () => {
  const small = (from: number) => ({ name: `part-${from}-${from}_0.parquet`, bytes: 1000 });
  const run = (from: number, n: number) => Array.from({ length: n }, (_, i) => small(from + i));
  // 5 small, one large, 12 small: the merged part must not claim the large part's range.
  const files = [...run(1, 5), { name: 'part-6-6_0.parquet', bytes: 10 ** 9 }, ...run(7, COMPACT_MIN_PARTS)];
  expect(planCompaction(files)).toEqual({ inputs: run(7, COMPACT_MIN_PARTS).map((f) => f.name), output: `part-7-${6 + COMPACT_MIN_PARTS}_c.parquet` });
  expect(planCompaction([...run(1, 6), { name: 'part-7-7_0.parquet', bytes: 10 ** 9 }, ...run(8, 6)])).toBeNull();
});

test('readers skip the parts a compacted part covers, whatever moment their listing was taken', () => {
  const inputs = ['part-0-1_0.parquet', 'part-2-2_0.parquet', 'part-3-5_0.parquet', 'part-3-5_1.parquet'];
  // Before the rename, between rename and delete, after the delete: the same rows each time.
  expect(liveParts(inputs)).toEqual(inputs);
  expect(liveParts([...inputs, 'part-0-5_c.parquet', 'part-6-7_0.parquet']).sort()).toEqual(['part-0-5_c.parquet', 'part-6-7_0.parquet']);
  expect(liveParts(['part-0-5_c.parquet', 'part-6-7_0.parquet'])).toEqual(['part-0-5_c.parquet', 'part-6-7_0.parquet']);
  // A later compaction swallowing an earlier one; staging leftovers and other files.
  expect(liveParts(['part-0-5_c.parquet', 'part-0-40_c.parquet', 'part-6-7_0.parquet', 'x.tmp', 'data_0.parquet']).sort()).toEqual(['data_0.parquet', 'part-0-40_c.parquet']);
});

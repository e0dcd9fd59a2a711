/**
 * Export soak (issue 15 item 5; a benchmark mode, not CI):
 * `npm run soak -- --mode export [--minutes 10] [--rate 10000]`.
 *
 * Does the cost of a Parquet export stay flat while the warehouse grows? A warehouse sink runs in
 * this process on a fresh topic prefix and data folder with its default 5 s export timer; a load
 * generator in its own process (bench/produce-load.ts) produces `--rate` telemetry events/s for
 * `--minutes`. After every export the soak records the export's duration, the rows it wrote, the
 * rows in the warehouse and this process's RSS. At the end it compares the median export time of
 * the last third with the first third (flat: ≤ 1.5×, while the warehouse grew several times), fits
 * export ms against warehouse rows (slope per million rows), and — for reference — times one full
 * rewrite of telemetry_events (what every export cost before exports were incremental). Writes
 * bench/soak-export-results.json. Data: generated events (fixtures shape), labelled as such.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { linearRegression } from 'simple-statistics';
import { loadConfig, topicNames, type PenumbraConfig } from '../pipeline/config/config.ts';
import { createKafka } from '../pipeline/kafka/client.ts';
import { provisionAll } from '../pipeline/kafka/setup.ts';
import { createWarehouseSink } from '../connectors/duckdb-sink/sink.ts';

const DIR = path.dirname(fileURLToPath(import.meta.url));

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

interface ExportSample {
  t: number;
  warehouseRows: number;
  exportMs: number;
  exportRows: number;
  rssMB: number;
}

/** Least squares y = b0 + b1·x1 + b2·x2 (normal equations, 3×3, Cramer's rule). */
function fit2(rows: [number, number, number][]): [number, number, number] {
  const m = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  const v = [0, 0, 0];
  for (const [x1, x2, y] of rows) {
    const x = [1, x1, x2];
    for (let i = 0; i < 3; i++) {
      v[i] += x[i] * y;
      for (let j = 0; j < 3; j++) m[i][j] += x[i] * x[j];
    }
  }
  const det = (a: number[][]) => a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const d = det(m);
  const col = (k: number) => det(m.map((r, i) => r.map((x, j) => (j === k ? v[i] : x))));
  return [col(0) / d, col(1) / d, col(2) / d];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function soakExport(): Promise<void> {
  const minutes = arg('--minutes', 10);
  const rate = arg('--rate', 10_000);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'penumbra-soak-export-'));
  const prefix = `soak-export-${randomBytes(3).toString('hex')}.`;
  const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
  const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 3, duckdbMemoryLimit: process.env.PENUMBRA_DUCKDB_MEMORY_LIMIT ?? '512MB' };
  const kafka = createKafka(cfg.kafkaBrokers, 'soak-export');
  const { codec } = await provisionAll(kafka, cfg);
  const sink = createWarehouseSink({ cfg, kafka, codec, dbPath: path.join(dataDir, 'w.duckdb'), parquetDir: path.join(dataDir, 'parquet') });
  await sink.start();
  await sink.ready;

  const load = spawn(process.execPath, ['--import', 'tsx', path.join(DIR, 'produce-load.ts'), '--prefix', prefix, '--rate', String(rate), '--seconds', String(minutes * 60)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let produced = 0;
  const loadDone = new Promise<void>((resolve, reject) => {
    createInterface({ input: load.stdout }).on('line', (l) => {
      try {
        produced = (JSON.parse(l) as { produced: number }).produced;
      } catch {
        /* not ours */
      }
    });
    load.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load generator exited ${code}`))));
  });

  const samples: ExportSample[] = [];
  const t0 = Date.now();
  let seen = sink.stats.snapshots;
  const poll = setInterval(() => {
    const st = sink.stats;
    if (st.snapshots === seen || st.lastExportMs === null) return;
    seen = st.snapshots;
    const s: ExportSample = { t: Math.round((Date.now() - t0) / 1000), warehouseRows: st.rows.telemetry_events, exportMs: st.lastExportMs, exportRows: st.lastExportRows ?? 0, rssMB: process.memoryUsage().rss / 2 ** 20 };
    samples.push(s);
    process.stderr.write(`[soak-export] t=${s.t}s warehouse=${s.warehouseRows} rows, export ${s.exportMs} ms for ${s.exportRows} rows, rss ${s.rssMB.toFixed(0)} MB, produced ${produced}\n`);
  }, 250);
  await loadDone;
  // Drain: everything produced is stored and exported once more.
  const drainEnd = Date.now() + 180_000;
  while (sink.stats.rows.telemetry_events < produced && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, 500));
  clearInterval(poll);
  const drained = sink.stats.rows.telemetry_events >= produced;

  // Reference: one full rewrite of the table, as every export did before (same data, same machine).
  const ref = path.join(dataDir, 'full-rewrite.parquet');
  const r0 = Date.now();
  await sink.query(`COPY (SELECT * EXCLUDE (_sink_tx) FROM telemetry_events) TO '${ref}' (FORMAT PARQUET)`);
  const fullRewriteMs = Date.now() - r0;
  await sink.stop();
  rmSync(dataDir, { recursive: true, force: true });

  const timed = samples.filter((s) => s.exportRows > 0);
  const third = Math.floor(timed.length / 3);
  const first = timed.slice(0, third);
  const last = timed.slice(timed.length - third);
  const firstMs = median(first.map((s) => s.exportMs));
  const lastMs = median(last.map((s) => s.exportMs));
  const rowsFirst = median(first.map((s) => s.warehouseRows));
  const rowsLast = median(last.map((s) => s.warehouseRows));
  const slope = timed.length >= 2 ? linearRegression(timed.map((s) => [s.warehouseRows / 1e6, s.exportMs])).m : 0;
  // Exports stretch their interval after a slow one (EXPORT_DUTY), so rows per export vary: the
  // cost per exported row is what must not grow with the warehouse.
  const perK = (xs: ExportSample[]) => median(xs.map((s) => (1000 * s.exportMs) / s.exportRows));
  const perKFirst = perK(first);
  const perKLast = perK(last);
  // The claim under test: an export costs what changed, not what is stored. Fit export ms on both
  // (rows exported, rows in the warehouse): the second coefficient, times how much the warehouse
  // grew, must stay small next to a typical export.
  const [, msPerKExported, msPerMWarehouse] = timed.length >= 4 ? fit2(timed.map((s) => [s.exportRows / 1000, s.warehouseRows / 1e6, s.exportMs])) : [0, 0, 0];
  const growthMs = msPerMWarehouse * ((timed.at(-1)?.warehouseRows ?? 0) - (timed[0]?.warehouseRows ?? 0)) / 1e6;
  const flat = third > 0 && lastMs <= firstMs * 1.5 && growthMs <= 0.25 * median(timed.map((s) => s.exportMs));
  const result = {
    data: 'generated telemetry events (connectors/duckdb-sink/fixtures.ts shape), produced by bench/produce-load.ts',
    minutes, rate, produced, stored: sink.stats.rows.telemetry_events, drained, exports: samples.length,
    exportMsFirstThirdMedian: firstMs, exportMsLastThirdMedian: lastMs, warehouseRowsFirstThird: rowsFirst, warehouseRowsLastThird: rowsLast,
    exportMsPerThousandRowsFirstThird: perKFirst, exportMsPerThousandRowsLastThird: perKLast,
    exportMsPerMillionRowsSlope: slope, fit: { msPerThousandExportedRows: msPerKExported, msPerMillionWarehouseRows: msPerMWarehouse, growthMsOverRun: growthMs }, fullRewriteMsAtEnd: fullRewriteMs, compactions: sink.stats.compactions, flat, samples,
  };
  writeFileSync(path.join(DIR, 'soak-export-results.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `soak export ${minutes} min at ${rate} events/s (generated): ${samples.length} exports; warehouse ${rowsFirst} → ${rowsLast} rows (medians of first/last third); ` +
      `export time ${firstMs} → ${lastMs} ms (medians); fit: ${msPerKExported.toFixed(1)} ms per 1,000 exported rows, ${msPerMWarehouse.toFixed(1)} ms per million rows in the warehouse → ${flat ? 'FLAT' : 'GROWING'}; ` +
      `one full rewrite of telemetry_events at the end: ${fullRewriteMs} ms; ${sink.stats.compactions} parts compacted; ${drained ? 'drained' : 'NOT drained'}`,
  );
  process.exitCode = flat && drained ? 0 : 1;
}

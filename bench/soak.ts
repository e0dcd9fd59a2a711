/**
 * Soak (issue 7; a benchmark mode, not CI): `npm run soak -- [--minutes 30] [--rate 20] [--users 5000]`.
 * `npm run soak -- --mode export …` runs the export soak instead (bench/soak-export.ts: export
 * time while the warehouse grows).
 *
 * Starts Penumbra in this process on its own topic prefix and data folder (against the local
 * stack or KAFKA_BROKERS/SCHEMA_REGISTRY_URL), ingests a sample item with a shadow, and runs
 * the simulator for the whole duration. Every 10 s it forces a GC and samples RSS, the live JS
 * heap, external memory and DuckDB's own accounting (duckdb_memory()) of this process, and the
 * consumer lag of the warehouse sink (from /api/v1/health). At the end it reports whether memory
 * stayed flat after warm-up (RSS and live heap of the last third vs the middle third, and least-
 * squares slopes in MB/hour) and whether lag came back to zero after the load stopped, and
 * writes the samples to bench/soak-results.json.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../pipeline/config/config.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { startSimulation } from '../pipeline/simulator/index.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../pipeline/shadowing/fixtures.ts';
import { linearRegression } from 'simple-statistics';

const DIR = path.dirname(fileURLToPath(import.meta.url));

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

interface Sample {
  t: number;
  rssMB: number;
  heapMB: number;
  /** Buffers and other memory V8 tracks outside its heap. */
  externalMB: number;
  /** DuckDB's own accounting (duckdb_memory()): its buffer pool is native memory inside RSS. */
  duckdbMB: number | null;
  lag: number | null;
}

async function main(): Promise<void> {
  const minutes = arg('--minutes', 30);
  const rate = arg('--rate', 20);
  // A population the run covers several times over: with more users than sessions in the run,
  // the per-user indexes (bounded, e.g. 1,000,000 assignments) are still filling at the end and
  // "growth" is warm-up. 5,000 users at 20 sessions/s are all seen within the first third.
  const users = arg('--users', 5000);
  // DuckDB caches table blocks up to its memory limit (default 512MB): a lower limit lets the
  // run reach that ceiling and show the steady state within 30 minutes.
  const duckdbLimit = process.env.PENUMBRA_DUCKDB_MEMORY_LIMIT ?? '128MB';
  const token = `soak-${randomBytes(12).toString('hex')}`;
  const cfg = loadConfig({
    ...process.env,
    PORT: '0',
    PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-soak-')),
    PENUMBRA_TOPIC_PREFIX: `soak-${randomBytes(3).toString('hex')}.`,
    PENUMBRA_TOKENS: `soak:admin:${token}`,
    PENUMBRA_LOG_LEVEL: 'warn',
    PENUMBRA_DUCKDB_MEMORY_LIMIT: duckdbLimit,
  });
  const p = await createPenumbra(cfg);
  p.ctx.ingest.publicUrl = p.url;
  const auth = { authorization: `Bearer ${token}` };
  const fd = new FormData();
  fd.append('shadowConfig', JSON.stringify({ ...goldenConfig('multi-page-web', fixtureTree('multi-page-web')), traffic: { percentage: 30, match: 'all', rules: [] } }));
  fd.append('item', new Blob([new Uint8Array(await fixtureArchive('multi-page-web', 'zip'))]), 'item.zip');
  const up = await fetch(`${p.url}/api/v1/items`, { method: 'POST', headers: auth, body: fd });
  if (up.status !== 201) throw new Error(`ingest failed: ${up.status} ${await up.text()}`);

  const samples: Sample[] = [];
  const t0 = Date.now();
  // A full GC before each reading (npm run soak passes --expose-gc): V8 grows its heap lazily
  // while memory is plentiful, so RSS without it rises with no leak at all. After a GC, heap is
  // the live set and RSS what the process really holds.
  const gc = (globalThis as { gc?: () => void }).gc;
  const sample = async () => {
    gc?.();
    const m = process.memoryUsage();
    let lag: number | null = null;
    let structures = '';
    try {
      const h = (await (await fetch(`${p.url}/api/v1/health`)).json()) as { checks: { duckdb?: { lag?: number }; streamProcessing?: { metricWindowsInMemory?: number; assignmentsIndexed?: number | null; metricsProcessor?: { openWindows?: number } } } };
      lag = h.checks.duckdb?.lag ?? null;
      const sp = h.checks.streamProcessing;
      structures = `windows=${sp?.metricWindowsInMemory} assignments=${sp?.assignmentsIndexed} open=${sp?.metricsProcessor?.openWindows}`;
    } catch {
      /* keep sampling */
    }
    let duckdbMB: number | null = null;
    try {
      const sink = (p.handles.find((h) => 'sink' in h) as { sink?: () => { query(sql: string): Promise<Record<string, unknown>[]> } | null } | undefined)?.sink?.();
      const rows = sink ? await sink.query('SELECT sum(memory_usage_bytes)::DOUBLE AS b FROM duckdb_memory()') : [];
      duckdbMB = rows.length ? Number(rows[0].b) / 2 ** 20 : null;
    } catch {
      /* keep sampling */
    }
    samples.push({ t: Math.round((Date.now() - t0) / 1000), rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20, externalMB: m.external / 2 ** 20, duckdbMB, lag });
    const s = samples[samples.length - 1];
    process.stderr.write(`[soak] t=${s.t}s rss=${s.rssMB.toFixed(0)}MB heap=${s.heapMB.toFixed(0)}MB external=${s.externalMB.toFixed(0)}MB duckdb=${s.duckdbMB?.toFixed(0) ?? '?'}MB sink lag=${s.lag} ${structures}\n`);
  };
  const timer = setInterval(() => void sample(), 10_000);
  const sim = startSimulation({ url: p.url, items: ['com.example.multipage'], token, users, rate, durationMs: minutes * 60_000, effects: [] });
  const report = await sim.done;
  // Load is over: lag must come back to zero.
  let drainedAfterS: number | null = null;
  const end = Date.now();
  while (Date.now() - end < 120_000) {
    await sample();
    if (samples[samples.length - 1].lag === 0) {
      drainedAfterS = Math.round((Date.now() - end) / 1000);
      break;
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
  clearInterval(timer);
  await p.stop();

  const loadSamples = samples.filter((s) => s.t <= minutes * 60);
  const third = Math.floor(loadSamples.length / 3);
  const avg = (xs: Sample[], f: (s: Sample) => number) => xs.reduce((a, s) => a + f(s), 0) / Math.max(1, xs.length);
  const middle = avg(loadSamples.slice(third, 2 * third), (s) => s.rssMB);
  const last = avg(loadSamples.slice(2 * third), (s) => s.rssMB);
  const heapMiddle = avg(loadSamples.slice(third, 2 * third), (s) => s.heapMB);
  const heapLast = avg(loadSamples.slice(2 * third), (s) => s.heapMB);
  const afterWarmup = loadSamples.slice(third);
  const slope = afterWarmup.length >= 2 ? linearRegression(afterWarmup.map((s) => [s.t / 3600, s.rssMB])).m : 0;
  const heapSlope = afterWarmup.length >= 2 ? linearRegression(afterWarmup.map((s) => [s.t / 3600, s.heapMB])).m : 0;
  const result = {
    minutes, rate, users, duckdbMemoryLimit: duckdbLimit, sessions: report.sessions, events: report.events, gcBeforeSamples: Boolean(gc),
    rssMiddleThirdMB: middle, rssLastThirdMB: last, rssSlopeMBPerHourAfterWarmup: slope,
    heapMiddleThirdMB: heapMiddle, heapLastThirdMB: heapLast, heapSlopeMBPerHourAfterWarmup: heapSlope,
    memoryFlat: last <= middle * 1.1 && heapLast <= heapMiddle * 1.1, lagDrainedAfterS: drainedAfterS, samples,
  };
  writeFileSync(path.join(DIR, 'soak-results.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`soak ${minutes} min at ${rate} sessions/s over ${users} users (DuckDB limit ${duckdbLimit}): RSS middle third ${middle.toFixed(0)} MB, last third ${last.toFixed(0)} MB (slope ${slope.toFixed(1)} MB/h); live heap ${heapMiddle.toFixed(0)} → ${heapLast.toFixed(0)} MB (slope ${heapSlope.toFixed(1)} MB/h) → ${result.memoryFlat ? 'flat' : 'GROWING'}; sink lag back to 0 ${drainedAfterS === null ? 'NOT within 120 s' : `after ${drainedAfterS} s`}`);
  process.exitCode = result.memoryFlat && drainedAfterS !== null ? 0 : 1;
}

const modeAt = process.argv.indexOf('--mode');
const mode = modeAt >= 0 ? process.argv[modeAt + 1] : 'memory';
if (mode === 'export') await (await import('./soak-export.ts')).soakExport();
else if (mode === 'memory') await main();
else throw new Error(`--mode must be memory (default) or export, not ${mode}`);

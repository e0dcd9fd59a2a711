/**
 * The analysts' notebooks agree with the pipeline.
 *
 * A real Penumbra (own topic prefix, temp data folder, DuckDB sink on) ingests the multi-page-web
 * sample with a 40 % mobile shadow (and its equally large control arm); the simulator drives it
 * for 24 s with a regression on the shadow (+50 % latency, +1 pp error sessions). Once every
 * accepted event and every closed window is in the Parquet snapshot, the pipeline's live
 * comparison is read from the API and Penumbra is stopped (its final snapshot freezes the files).
 * Then notebooks/run_notebooks.py executes both notebooks with nbclient against that snapshot,
 * and their numbers are checked:
 *
 * - rollout_health: every 10 s window equals the stream processor's `metric_windows` row, and the
 *   same window recomputed here from the verified `telemetry_events` in SQL (quantile_cont), to
 *   1e-9 — at least MIN_COMPARED_PER_VARIANT windows of each arm (the count compared is printed);
 * - experiment_readout: the per-arm cumulative sums (shadow, and its control cohort) equal a
 *   recomputation here; the always-valid sequential and the fixed-horizon comparisons, SRM and the
 *   verdict equal pipeline/stats on those sums, and the metrics processor's own live comparison
 *   (GET /api/v1/items/{id}/metrics), to 1e-9; the bucketing hash check passed.
 *
 * Needs python3 with notebooks/requirements.txt installed (npm test installs it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startTestPenumbra, TOKENS, uploadForm, type TestPenumbra } from './penumbra-helpers.ts';
import { fixtureArchive } from '../pipeline/shadowing/fixtures.ts';
import { runSimulation, type SimulationReport } from '../pipeline/simulator/runner.ts';
import { warehousePaths } from '../pipeline/warehouse/feature.ts';
import { queryParquet } from '../connectors/duckdb-sink/query.ts';
import { compareVariants, srmChiSquare } from '../pipeline/stats/index.ts';
import type { ShadowConfig } from '../pipeline/domain/types.ts';
import { requires } from './requires.ts';

// Every test reads what the notebooks computed (beforeAll runs them): skipped visibly without
// the Python packages of notebooks/requirements.txt, a failure under CI (test/requires.ts).
const test = requires(['python:duckdb', 'python:pandas', 'python:matplotlib', 'python:scipy', 'python:nbclient', 'python:nbformat', 'python:ipykernel']);

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOL = 1e-9;
const SHADOW = 'checkout-v2';
/**
 * Windows of each variant that must be recomputed exactly. 24 s of traffic touch at least three
 * 10 s windows per variant; a window with an event still in flight when the processor closed
 * it (late on a loaded machine) cannot be recomputed from the warehouse, so one per variant may
 * drop out — two may not: then the check would be comparing almost nothing.
 */
const MIN_COMPARED_PER_VARIANT = 2;
const SIM_MS = 24_000;
/** The shadow's share; its control cohort is as large, the original gets the rest. */
const PERCENTAGE = 40;
/**
 * N* of the sequential test, for pipeline and notebooks alike: the total observations a 24 s run
 * gathers (the default 5000 is tuned for real rollouts and would not call this short regression).
 */
const TUNING = 500;

const shadow: ShadowConfig = {
  name: SHADOW,
  instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
  endpoints: { api: 'https://shadow-api.example.com/v1' },
  traffic: { percentage: PERCENTAGE, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['android', 'ios'] }] },
};

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let t: TestPenumbra;
let stopped = false;
let itemId: string;
let sim: SimulationReport;
let live: { comparisons: Record<string, Json> };
let parquetDir: string;
let runs: Json[];
let readout: Json;
let health: Json;

/** JSON numbers back: null = NaN (JSON has none), "Infinity" strings = ±∞. */
function num(x: unknown): number {
  if (x === null || x === undefined) return NaN;
  if (x === 'Infinity') return Infinity;
  if (x === '-Infinity') return -Infinity;
  return typeof x === 'bigint' ? Number(x) : (x as number);
}

function expectClose(actual: unknown, expected: unknown, what: string): void {
  const a = num(actual);
  const e = num(expected);
  if (Number.isNaN(e) || !Number.isFinite(e)) {
    if (!Object.is(a, e) && !(Number.isNaN(a) && Number.isNaN(e))) throw new Error(`${what}: ${a} ≠ ${e}`);
    return;
  }
  if (!(Math.abs(a - e) <= TOL * Math.max(1, Math.abs(e)))) throw new Error(`${what}: notebook ${a} vs pipeline ${e} (|Δ| = ${Math.abs(a - e)})`);
}

function expectStats(actual: Json, expected: Json, what: string, keys: string[]): void {
  expect(actual.valid).toBe(expected.valid);
  for (const k of keys) expectClose(actual[k], expected[k], `${what}.${k}`);
  expectClose(actual.ci[0], expected.ci[0], `${what}.ci[0]`);
  expectClose(actual.ci[1], expected.ci[1], `${what}.ci[1]`);
}

async function waitUntil<T>(what: string, fn: () => Promise<T | false | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false && v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function runNotebooks(outDir: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // By name: notebooks of other features (risk_model: test/predictive.int.test.ts) need other data.
    const p = spawn('python3', [path.join(REPO, 'notebooks', 'run_notebooks.py'), 'experiment_readout', 'rollout_health', '--out-dir', outDir, '--timeout', '120'], {
      cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  t = await startTestPenumbra('notebooks', { PENUMBRA_SEQUENTIAL_TUNING: String(TUNING) }, { sink: true });
  parquetDir = warehousePaths(t.dataDir).parquetDir;
  const up = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('multi-page-web', 'zip'), shadow) });
  expect(up.status).toBe(201);
  const body = (await up.json()) as { item: { itemId: string }; profile: { profileVersion: number } };
  itemId = body.item.itemId;
  await t.p.ctx.profileStore.waitForVersion(itemId, body.profile.profileVersion);

  sim = await runSimulation({
    url: t.url, token: TOKENS.viewer, items: [itemId], users: 400, rate: 8, durationMs: SIM_MS, seed: 'notebooks-int',
    // +50 %: a regression the readout must find every time (+20 % is found most runs at this size).
    effects: ['shadow:latency=+50%', 'shadow:errors=+1pp'],
    // Flush every 500 ms: events reach the processor well inside its 5 s lateness even when this
    // shared 2-core machine stalls the event loop (late events make windows incomparable).
    flushIntervalMs: 500,
  });
  expect(sim.errors).toEqual([]);
  expect(sim.events.rejected).toBe(0);
  expect(sim.sessions.byVariant[SHADOW]).toBeGreaterThan(20);
  const lastEventTs = Date.now();

  // Everything accepted is in the snapshot, and every window up to the last event is closed and stored.
  await waitUntil('events and closed windows in the Parquet snapshot', async () => {
    const [ev] = await queryParquet(parquetDir, 'SELECT count(*) AS n, max(epoch_ms(ts)) AS last FROM telemetry_events WHERE item_id = $item', { item: itemId });
    if (num(ev.n) < sim.events.accepted) return false;
    const [w] = await queryParquet(parquetDir, 'SELECT max(epoch_ms(window_end)) AS e FROM metric_windows WHERE item_id = $item AND window_size_ms = 10000', { item: itemId });
    return num(w.e) >= Math.min(num(ev.last), lastEventTs) ? true : false;
  }, 60_000);
  expect(num((await queryParquet(parquetDir, 'SELECT count(*) AS n FROM telemetry_events WHERE item_id = $item', { item: itemId }))[0].n)).toBe(sim.events.accepted);

  const health0 = (await (await fetch(`${t.url}/api/v1/health`)).json()) as { checks: Record<string, Json> };
  expect(Object.keys(health0.checks)).toEqual(expect.arrayContaining(['kafka', 'registry', 'duckdb']));
  expect(health0.checks.duckdb.status).toBe('ok');
  expect(health0.checks.duckdb.lastSnapshotAt).toEqual(expect.any(String));

  live = (await (await fetch(`${t.url}/api/v1/items/${itemId}/metrics?window=10s`, { headers: t.auth('viewer') })).json()) as typeof live;
  stopped = true;
  await t.stop(); // final snapshot: the files the notebooks read no longer change

  const outDir = mkdtempSync(path.join(tmpdir(), 'penumbra-notebooks-out-'));
  const r = await runNotebooks(outDir, { PENUMBRA_DATA_DIR: t.dataDir, PENUMBRA_ITEM: itemId, PENUMBRA_SEQUENTIAL_TUNING: String(TUNING) });
  runs = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Json);
  if (r.code !== 0) throw new Error(`notebooks failed (exit ${r.code}):\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`);
  readout = JSON.parse(readFileSync(path.join(outDir, 'experiment_readout.json'), 'utf8')) as Json;
  health = JSON.parse(readFileSync(path.join(outDir, 'rollout_health.json'), 'utf8')) as Json;
}, 240_000);

afterAll(async () => {
  if (!stopped) await t?.stop().catch(() => {});
});

test('both notebooks ran without error', () => {
  expect(runs.map((r) => [r.notebook, r.ok])).toEqual([['experiment_readout', true], ['rollout_health', true]]);
});

test(`rollout health: every 10 s window equals metric_windows and the SQL recomputation from telemetry_events, ≥ ${MIN_COMPARED_PER_VARIANT} compared per variant`, async () => {
  expect(health.source).toBe('metric_windows');
  const stream = await queryParquet(parquetDir, `
    SELECT variant, epoch_ms(window_start) AS ws, events, sessions, error_sessions, error_rate, latency_count, latency_mean, latency_p50, latency_p95, latency_p99, late
    FROM metric_windows WHERE item_id = $item AND window_size_ms = 10000`, { item: itemId });
  // Each window recomputed twice: from all its events, and from those the collector received no
  // later than the window was emitted (the rest were necessarily late for the processor).
  const recompute = (onTimeOnly: boolean) => queryParquet(parquetDir, `
    WITH ev AS (
      SELECT e.*, (epoch_ms(e.ts) // 10000) * 10000 AS ws FROM telemetry_events e WHERE e.item_id = $item AND e.verified),
    mw AS (
      SELECT variant, epoch_ms(window_start) AS ws, emitted_at FROM metric_windows WHERE item_id = $item AND window_size_ms = 10000)
    SELECT ev.variant, ev.ws,
           count(*) AS events,
           count(DISTINCT session_id) AS sessions,
           count(DISTINCT session_id) FILTER (WHERE type = 'error') AS error_sessions,
           count(value) FILTER (WHERE type = 'request' AND isfinite(value)) AS latency_count,
           avg(value) FILTER (WHERE type = 'request' AND isfinite(value)) AS latency_mean,
           quantile_cont(value, 0.5) FILTER (WHERE type = 'request' AND isfinite(value)) AS latency_p50,
           quantile_cont(value, 0.95) FILTER (WHERE type = 'request' AND isfinite(value)) AS latency_p95,
           quantile_cont(value, 0.99) FILTER (WHERE type = 'request' AND isfinite(value)) AS latency_p99
    FROM ev LEFT JOIN mw ON mw.variant = ev.variant AND mw.ws = ev.ws
    ${onTimeOnly ? 'WHERE mw.emitted_at IS NULL OR ev.received_at <= mw.emitted_at' : ''}
    GROUP BY ALL`, { item: itemId });
  const key = (v: unknown, ws: unknown) => `${String(v)}@${num(ws)}`;
  const streamBy = new Map(stream.map((w) => [key(w.variant, w.ws), w]));
  const allBy = new Map((await recompute(false)).map((w) => [key(w.variant, w.ws), w]));
  const onTimeBy = new Map((await recompute(true)).map((w) => [key(w.variant, w.ws), w]));
  const lateByVariant: Record<string, number> = {};
  for (const w of stream) lateByVariant[w.variant as string] = (lateByVariant[w.variant as string] ?? 0) + num(w.late);

  expect(health.windows).toHaveLength(stream.length);
  let compared = 0;
  let withoutLate = 0;
  const skipped: string[] = [];
  const deficit: Record<string, number> = {};
  const perVariant: Record<string, number> = {};
  for (const nw of health.windows as Json[]) {
    const k = key(nw.variant, nw.window_start_ms);
    const sw = streamBy.get(k)!;
    expect(sw).toBeDefined();
    // The notebook shows the stream's numbers…
    for (const c of ['events', 'sessions', 'error_sessions', 'error_rate', 'latency_count', 'latency_mean', 'latency_p50', 'latency_p95', 'latency_p99']) expectClose(nw[c], sw[c], `notebook ${k} ${c}`);
    // …and they equal the raw events recomputed in SQL: all of them, or — when some arrived after
    // the window closed (late: counted in a later window's `late`, not in this one) — those that
    // arrived in time. A window is skipped only if an event was in flight at the close.
    const all = allBy.get(k)!;
    expect(all).toBeDefined();
    let q = all;
    deficit[nw.variant] = (deficit[nw.variant] ?? 0) + num(all.events) - num(sw.events);
    if (num(all.events) !== num(sw.events)) {
      q = onTimeBy.get(k)!;
      if (!q || num(q.events) !== num(sw.events)) {
        // The stream only ever leaves events out (late), never adds any.
        expect(num(sw.events)).toBeLessThan(num(all.events));
        skipped.push(`${k}: stream ${num(sw.events)}, SQL ${num(all.events)} (${q ? num(q.events) : 0} received before the close)`);
        continue;
      }
    } else {
      withoutLate++;
    }
    const errorRate = num(q.sessions) > 0 ? num(q.error_sessions) / num(q.sessions) : 0;
    expectClose(sw.events, q.events, `${k} events`);
    expectClose(sw.sessions, q.sessions, `${k} sessions`);
    expectClose(sw.error_rate, errorRate, `${k} error rate`);
    for (const c of ['latency_count', 'latency_mean', 'latency_p50', 'latency_p95', 'latency_p99']) expectClose(sw[c], q[c], `${k} ${c}`);
    compared++;
    perVariant[nw.variant] = (perVariant[nw.variant] ?? 0) + 1;
  }
  console.log(`notebooks: ${compared}/${stream.length} windows equal to 1e-9 (${withoutLate} with every event in time; per variant ${JSON.stringify(perVariant)}; late ${JSON.stringify(lateByVariant)}; skipped ${JSON.stringify(skipped)}); simulator ${sim.sessions.started} sessions, ${sim.events.accepted} events`);
  // On a loaded machine the processor can close a window while some of its events are still on
  // their way (they become late: counted, not added); such windows cannot be recomputed from the
  // warehouse, which does not record what was late. Every other window must be exact, and there
  // must be MIN_COMPARED_PER_VARIANT of each variant.
  const windowsPerVariant: Record<string, number> = {};
  for (const w of stream) windowsPerVariant[w.variant as string] = (windowsPerVariant[w.variant as string] ?? 0) + 1;
  process.stderr.write(`notebooks: compared windows per variant ${JSON.stringify(perVariant)} of ${JSON.stringify(windowsPerVariant)} (minimum ${MIN_COMPARED_PER_VARIANT} each)\n`);
  for (const v of ['control', SHADOW]) {
    const n = perVariant[v] ?? 0;
    if (n < MIN_COMPARED_PER_VARIANT) throw new Error(`only ${n} of ${windowsPerVariant[v] ?? 0} windows of ${v} compared, minimum ${MIN_COMPARED_PER_VARIANT}; skipped: ${skipped.join('; ') || 'none'}`);
  }
  // Late events are counted (in a later window's `late`) at most once each: never more than are missing.
  for (const [v, late] of Object.entries(lateByVariant)) expect(late).toBeLessThanOrEqual(deficit[v] ?? 0);
  // The notebook's own consistency check came to the same conclusion.
  for (const d of Object.values(health.check.maxAbsDiff as Record<string, number>)) expect(Math.abs(num(d))).toBeLessThanOrEqual(1e-6);
});

test('experiment readout: per-arm sums, the sequential and fixed-horizon comparisons vs the control, SRM and verdict equal pipeline/stats and the live pipeline', async () => {
  // Arms as the notebooks' comparison_events view defines them: verified events of the shadow and
  // of its control cohort, each from its newest profile version.
  const rows = await queryParquet(parquetDir, `
    WITH ev AS (
      SELECT *, CASE WHEN variant = 'control' THEN control_of ELSE variant END AS shadow, CASE WHEN variant = 'control' THEN 'control' ELSE 'shadow' END AS arm
      FROM telemetry_events WHERE item_id = $item AND verified AND variant <> 'original' AND (variant <> 'control' OR control_of IS NOT NULL)
      QUALIFY profile_version = max(profile_version) OVER (PARTITION BY shadow, arm))
    SELECT shadow, arm, max(profile_version) AS pv, count(DISTINCT session_id) AS sessions,
           count(DISTINCT session_id) FILTER (WHERE type = 'error') AS error_sessions,
           count(value) FILTER (WHERE type = 'request' AND isfinite(value)) AS n,
           sum(value) FILTER (WHERE type = 'request' AND isfinite(value)) AS s,
           sum(value * value) FILTER (WHERE type = 'request' AND isfinite(value)) AS ss,
           count(DISTINCT session_id) FILTER (WHERE type = 'usage' AND name = 'buy') AS buy
    FROM ev GROUP BY shadow, arm`, { item: itemId });
  expect(rows.map((r) => `${String(r.shadow)}/${String(r.arm)}`).sort()).toEqual([`${SHADOW}/control`, `${SHADOW}/shadow`]);
  const totals = readout.totals[SHADOW] as Record<'shadow' | 'control', Json>;
  for (const r of rows) {
    const nb = totals[r.arm as 'shadow' | 'control'];
    expect(nb.sessions).toBe(num(r.sessions));
    expect(nb.errorSessions).toBe(num(r.error_sessions));
    expect(nb.latency.count).toBe(num(r.n));
    expectClose(nb.latency.sum, r.s, `${r.arm} latency sum`);
    expectClose(nb.latency.sumSq, r.ss, `${r.arm} latency sumSq`);
    expect(nb.conversions.buy ?? 0).toBe(num(r.buy));
  }

  // pipeline/stats on the notebook's own sums: every number of every metric, sequential and fixed.
  const c = totals.control;
  const s = totals.shadow;
  const nbc = readout.comparisons[SHADOW] as Json;
  const toTotals = (x: Json) => ({ itemId, variant: x.variant, profileVersion: x.profileVersion, sessions: x.sessions, errorSessions: x.errorSessions, requests: 0, requestErrors: 0, latency: x.latency, perf: x.perf, conversions: x.conversions });
  const cmp = compareVariants(toTotals(c), toTotals(s), { tuning: TUNING });
  expect(nbc.method).toEqual({ kind: 'asymptotic-confidence-sequence', alpha: 0.05, tuning: TUNING });
  const sameTest = (nbm: Json, tsm: Json, what: string) => {
    expect(nbm.valid).toBe(tsm.valid);
    expect(nbm.verdict).toBe(tsm.verdict);
    expect(nbm.significant).toBe(tsm.significant);
    for (const k of ['diff', 'p', 'halfWidth', 'se']) expectClose(nbm.sequential[k], tsm.sequential[k], `${what}.sequential.${k}`);
    expectStats({ ...nbm, ci: nbm.ci }, { ...tsm, ci: tsm.ci }, `${what} (always-valid)`, ['diff', 'p']);
    expectStats(nbm.fixed, tsm.fixed, `${what}.fixed`, Object.hasOwn(tsm.fixed, 'z') ? ['z', 'p', 'diff', 'p1', 'p2'] : ['t', 'df', 'p', 'diff', 'se', 'relativeDiff']);
  };
  sameTest(nbc.latency, cmp.latency as unknown as Json, 'latency');
  sameTest(nbc.errorRate, cmp.errorRate as unknown as Json, 'errorRate');
  sameTest(nbc.conversions.buy, cmp.conversions.buy as unknown as Json, 'conversion buy');
  expect(Object.keys(nbc.perf).sort()).toEqual(Object.keys(cmp.perf).sort());
  for (const n of Object.keys(cmp.perf)) sameTest(nbc.perf[n], cmp.perf[n] as unknown as Json, `perf ${n}`);
  expect(nbc.verdict).toEqual(cmp.verdict);
  expect(nbc.sentence).toBe(cmp.sentence);
  // The simulated regression is what the readout finds — with the always-valid interval.
  expect(nbc.verdict.latency).toBe('worse');
  expect(num(nbc.latency.relativeDiff)).toBeGreaterThan(0.05);

  // SRM: the notebook's χ² equals pipeline/stats on its observed counts and the configured shares.
  const srm = readout.srm as Json;
  expect(srm.shares).toEqual({ [SHADOW]: PERCENTAGE, control: PERCENTAGE, original: 100 - 2 * PERCENTAGE });
  const srmTs = srmChiSquare(srm.observed, srm.shares);
  expectClose(srm.result.chiSquare, srmTs.chiSquare, 'srm chi2');
  expectClose(srm.result.p, srmTs.p, 'srm p');
  expect(srm.result.df).toBe(srmTs.df);

  // The metrics processor's live comparison (cumulative aggregates in memory) says the same.
  const lc = live.comparisons[SHADOW];
  expect(lc).toMatchObject({ baseline: 'control', hasBaseline: true, sessions: { shadow: s.sessions, control: c.sessions }, method: nbc.method });
  sameTest(nbc.latency, lc.latency, 'live latency');
  sameTest(nbc.errorRate, lc.errorRate, 'live errorRate');
  sameTest(nbc.conversions.buy, lc.conversions.buy, 'live conversion buy');
  expect(lc.verdicts.latency).toBe(nbc.verdict.latency);
  console.log(`notebooks: ${nbc.sentence} SRM p=${num(srm.result.p).toFixed(3)} (live SRM ${lc.srm ? 'compared' : 'not computed'})`);
  if (lc.srm) {
    expect(lc.srm.observed).toEqual(srm.observed);
    expectClose(srm.result.chiSquare, lc.srm.chi2, 'live srm chi2');
    expectClose(srm.result.p, lc.srm.p, 'live srm p');
  }
});

test('bucketing: golden cases and stored assignment buckets match the Python reference', () => {
  const b = readout.bucketing as Json;
  expect(b.cases).toBeGreaterThan(100);
  expect(b.decisions).toBeGreaterThan(100);
  expect(b.warehouseChecked).toBeGreaterThan(50);
  expect([b.bucketMismatches, b.decisionMismatches, b.warehouseMismatches]).toEqual([0, 0, 0]);
});

/**
 * Per-segment results on the real stack: one Penumbra (processors, DuckDB sink, segment
 * evaluator), real Kafka and registry, the simulator over HTTP.
 *
 * The simulated shadow hurts Android users (conversion −45 pp from 50 %) and helps everyone else
 * (+40 pp): with Android at 45 % of the users the two about cancel out over all users (+1.75 pp
 * expected), so the global comparison hides the regression. The per-segment results must find
 * it on deviceType=android and on a behavioural segment defined as SQL over the warehouse
 * ("users who used Android", from the assignments), name it in the sentence, and say the global
 * comparison does not show it. The console's "By segment" tab shows the same in a real headless
 * Chromium, and notebooks/segment_breakdown.ipynb computes the same numbers independently from the
 * Parquet snapshot (pandas, statsmodels' Holm) — all in this file to share the one pipeline and
 * the one simulation (CI time).
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium, type Browser } from 'playwright-core';
import { ensureConsoleBuilt } from '../../cli/start.ts';
import { requires } from '../../test/requires.ts';
import { createPenumbra, type Penumbra } from '../app/penumbra.ts';
import { ADMIN_TOKEN, VIEWER_TOKEN, configFrom, resolverEnv } from '../resolver/test-support.ts';
import { ingestDigitalItem } from '../ingest/ingest-service.ts';
import { fixtureArchive } from '../shadowing/fixtures.ts';
import { runSimulation } from '../simulator/index.ts';
import { queryParquet } from '../../connectors/duckdb-sink/query.ts';
import { warehousePaths } from '../warehouse/feature.ts';
import { waitFor } from '../../test/wait-for.ts';
import type { SegmentResults } from './results.ts';

const env = resolverEnv('segres', { PENUMBRA_SEGMENT_MIN_INTERVAL_SECONDS: '1' });
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const viewer = { authorization: `Bearer ${VIEWER_TOKEN}` };
const ITEM = 'com.example.multipage';
const SEED = `segres${randomUUID().slice(0, 6)}`;
let p: Penumbra;
let started = 0;
const browserTest = requires(['chromium']);
const notebookTest = requires(['python:duckdb', 'python:pandas', 'python:matplotlib', 'python:scipy', 'python:statsmodels', 'python:nbclient', 'python:nbformat', 'python:ipykernel']);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = path.join(REPO, 'test-results', 'console-segment-results');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const AXE_URL = '/__segment-results-test/axe.min.js';
let browser: Browser | undefined;

beforeAll(async () => {
  const consoleDir = ensureConsoleBuilt(() => {});
  if (!consoleDir) throw new Error('console build failed');
  p = await createPenumbra(configFrom(env), { consoleDir });
  started = Date.now() - 1000;
  const r = await ingestDigitalItem(p.ctx.ingest, {
    archive: await fixtureArchive('multi-page-web', 'zip'),
    shadowConfig: {
      name: 'checkout-v2', control: true,
      instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
      endpoints: {}, traffic: { percentage: 50, match: 'all', rules: [] },
    },
    actor: { name: 'test', role: 'admin' }, requestId: randomUUID(),
  });
  await p.ctx.profileStore.waitForVersion(r.entry.itemId, r.profile.profileVersion);
  const report = await runSimulation({
    url: p.url, items: [ITEM], users: 600, rate: 60, durationMs: 15_000, seed: SEED, flushIntervalMs: 500,
    // Baseline conversion 50 %: Android 5 %, the others 90 % in the shadow — margins wide enough
    // for always-valid p-values after Holm over every cell × metric (web vitals included: ~50 tests).
    behaviour: { conversion: { '*': 0.5 } },
    effects: ['shadow[deviceType=android]:conversion:buy=-45pp', 'shadow[deviceType=ios,windows,macos,linux]:conversion:buy=+40pp'],
  });
  expect(report.events.accepted).toBeGreaterThan(3000);
  const parquetDir = warehousePaths(p.cfg.dataDir).parquetDir;
  await waitFor('the simulated sessions in the Parquet snapshot', async () => {
    const evs = await queryParquet(parquetDir, `SELECT count(*) AS n FROM telemetry_events WHERE item_id = '${ITEM}'`);
    return Number(evs[0].n) >= report.events.accepted;
  }, 60_000, 500);
  // A behavioural segment from the warehouse: users the resolver saw on an Android device.
  const seg = await fetch(`${p.url}/api/v1/segments`, {
    method: 'POST', headers: admin,
    body: JSON.stringify({ id: 'android-users', name: 'Users seen on Android', sql: `SELECT DISTINCT user_id FROM assignments WHERE device_type = 'android'`, scheduleSeconds: 60 }),
  });
  expect(seg.status).toBe(201);
  await waitFor('the segment in the warehouse snapshot', async () => {
    const rows = await queryParquet(parquetDir, `SELECT count(*) AS n FROM segment_memberships WHERE list_contains(CAST(segments_json AS JSON)::VARCHAR[], 'android-users')`);
    return Number(rows[0].n) > 0;
  }, 30_000, 500);
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await p?.stop();
});

const results = async (query: string): Promise<{ status: number; body: SegmentResults & { errors?: { path: string }[] } }> => {
  const res = await fetch(`${p.url}/api/v1/items/${ITEM}/metrics/segments?${query}`, { headers: viewer });
  return { status: res.status, body: (await res.json()) as SegmentResults & { errors?: { path: string }[] } };
};

test('the per-segment comparison finds the Android regression that the comparison over all users hides', async () => {
  const r = await results(`from=${started}&by=deviceType,segments`);
  expect(r.status).toBe(200);
  expect(r.body.dimensions).toEqual(['deviceType', 'segment:android-users']);
  const [s] = r.body.shadows;
  expect(s.shadow).toBe('checkout-v2');
  expect(s.global.sessions.shadow).toBeGreaterThan(150);
  expect(s.global.sessions.control).toBeGreaterThan(150);
  // Over all users: no regression on conversion.
  expect(s.global.metrics['conversion:buy'].verdict).not.toBe('worse');
  // By segment: the regression lives on Android, in both the attribute and the SQL segment.
  const worse = s.breakdown.regressions.filter((f) => f.metric === 'conversion:buy').map((f) => `${f.dimension}=${f.value}`);
  // On failure, say what the cell looked like (sessions and the metric), not only that it was missing.
  const android = s.breakdown.cells.find((c) => c.dimension === 'deviceType' && c.value === 'android');
  expect({ worse, sentence: s.breakdown.sentence, android: android?.sessions, metric: android?.metrics['conversion:buy'] })
    .toMatchObject({ worse: expect.arrayContaining(['deviceType=android', 'segment:android-users=in']) });
  expect(s.breakdown.regressions.every((f) => f.adjustedP < 0.05)).toBe(true);
  expect(s.breakdown.correction.method).toBe('holm');
  expect(s.breakdown.correction.tests).toBeGreaterThanOrEqual(s.breakdown.cells.length);
  expect(s.breakdown.sentence).toMatch(/^Shadow checkout-v2 regresses for (deviceType=android|users in segment android-users): conversion:buy -\d/);
  expect(s.breakdown.sentence).toMatch(/The comparison over all users does not show it/);
  // And the others gain (+30 pp simulated).
  expect(s.breakdown.cells.find((c) => c.dimension === 'segment:android-users' && c.value === 'out')?.metrics['conversion:buy'].diff).toBeGreaterThan(0);
});

test('a bad breakdown names the field at fault; an unknown item is 404; no token is 401', async () => {
  const bad = await results('by=planet');
  expect(bad.status).toBe(422);
  expect(bad.body.errors?.[0].path).toBe('query/by');
  expect((await results('shadow=nope')).body.errors?.[0].path).toBe('query/shadow');
  expect((await results('to=1e20')).body.errors?.[0].path).toMatch(/^query/);
  expect((await results('from=2000&to=1000')).body.errors?.[0].path).toBe('query/from');
  expect((await fetch(`${p.url}/api/v1/items/com.example.none/metrics/segments`, { headers: viewer })).status).toBe(404);
  expect((await fetch(`${p.url}/api/v1/items/${ITEM}/metrics/segments`)).status).toBe(401);
});

browserTest('the console\'s By segment tab names the Android regression, marks its row and states the correction', async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  await page.route(`**${AXE_URL}`, (route) => route.fulfill({ path: AXE, contentType: 'text/javascript' }));
  await page.goto(p.url);
  await page.getByLabel('Access token').fill(VIEWER_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.goto(`${p.url}/#/items/${ITEM}`);
  await page.getByRole('link', { name: 'By segment' }).click();
  await page.locator('[data-shadow="checkout-v2"]').waitFor({ timeout: 20_000 });
  // Device types and segments only (the operator unticks countries): the family the API test uses.
  await page.getByLabel('Country').uncheck();
  await page.getByTestId('segment-results-refresh').click();
  await page.waitForResponse((r) => r.url().includes('/metrics/segments?by=deviceType%2Csegments'));
  const panel = page.locator('[data-shadow="checkout-v2"]');
  await panel.waitFor({ timeout: 20_000 });
  expect(await panel.getByTestId('segment-sentence').textContent()).toMatch(/regresses for (deviceType=android|users in segment android-users): conversion:buy .*The comparison over all users does not show it/);
  const android = panel.locator('tr[data-cell="deviceType=android"]');
  expect(await android.getAttribute('data-regression')).toBe('true');
  expect(await android.locator('td[data-metric="conversion:buy"]').getByTestId('verdict').textContent()).toBe('worse');
  expect(await panel.locator('tr[data-cell="all"] td[data-metric="conversion:buy"]').getByTestId('verdict').textContent()).not.toBe('worse');
  expect(await panel.locator('tr[data-cell="segment:android-users=in"]').getAttribute('data-regression')).toBe('true');
  expect(await panel.getByTestId('correction-note').textContent()).toMatch(/Holm's method over \d+ tests/);
  await page.screenshot({ path: path.join(SHOTS, '01-by-segment.png'), fullPage: true });
  await page.addScriptTag({ url: `${p.url}${AXE_URL}` });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help}`);
  });
  expect(violations).toEqual([]);
});

function runNotebook(outDir: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [path.join(REPO, 'notebooks', 'run_notebooks.py'), 'segment_breakdown', '--out-dir', outDir, '--timeout', '120'], {
      cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

notebookTest('the segment_breakdown notebook computes the same cells, p-values and Holm-adjusted verdicts from the snapshot', async () => {
  const to = Date.now();
  const api = await results(`from=${started}&to=${to}&by=deviceType,country,segments`);
  expect(api.status).toBe(200);
  const outDir = mkdtempSync(path.join(tmpdir(), 'penumbra-segnb-'));
  const run = await runNotebook(outDir, { PENUMBRA_DATA_DIR: p.cfg.dataDir, PENUMBRA_ITEM: ITEM, PENUMBRA_FROM_MS: String(started), PENUMBRA_TO_MS: String(to), PENUMBRA_BREAKDOWN: 'deviceType,country,segments', PENUMBRA_SEQUENTIAL_TUNING: String(p.cfg.sequentialTuning) });
  expect({ code: run.code, stderr: run.code === 0 ? '' : `${run.stdout}\n${run.stderr}` }).toEqual({ code: 0, stderr: '' });
  type NbCell = { dimension: string; value: string; metric: string; sessions: [number, number]; diff: number; p: number | null; adjustedP: number | null; correctedVerdict: string };
  const nb = JSON.parse(readFileSync(path.join(outDir, 'segment_breakdown.json'), 'utf8')) as { dimensions: string[]; shadows: Record<string, { cells: NbCell[]; global: Record<string, { diff: number; p: number | null }> }> };
  expect(nb.dimensions).toEqual(api.body.dimensions);
  const [s] = api.body.shadows;
  const mine = nb.shadows[s.shadow];
  const key = (d: string, v: string, m: string) => `${d}|${v}|${m}`;
  const theirs = new Map(mine.cells.map((c) => [key(c.dimension, c.value, c.metric), c]));
  let compared = 0;
  for (const cell of s.breakdown.cells) {
    for (const [metric, r] of Object.entries(cell.metrics)) {
      const n = theirs.get(key(cell.dimension, cell.value, metric));
      expect(n).toBeDefined();
      expect(n!.sessions).toEqual([cell.sessions.shadow, cell.sessions.control]);
      expect(Math.abs(n!.diff - r.diff)).toBeLessThan(1e-9);
      if (r.valid) {
        expect(Math.abs(n!.p! - r.p)).toBeLessThan(1e-9);
        expect(Math.abs(n!.adjustedP! - r.adjustedP)).toBeLessThan(1e-9);
      } else expect(n!.p).toBeNull();
      expect(n!.correctedVerdict).toBe(r.correctedVerdict);
      compared++;
    }
  }
  expect(compared).toBe(mine.cells.length);
  expect(compared).toBeGreaterThan(20);
  expect(Math.abs(mine.global['conversion:buy'].diff - s.global.metrics['conversion:buy'].diff)).toBeLessThan(1e-9);
});

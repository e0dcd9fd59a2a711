/**
 * Per-segment allocation in the console, real headless Chromium against a REAL Penumbra (Kafka,
 * registry, profile writer, analyzers; the built console served by the API): an item's bandit
 * with `segments` by device type shows each cell's weights on the Rollout tab; an operator fixes
 * the ios cell's weights in the console (the API then has the override, audited as bandit.control)
 * and releases it again; axe-core finds no violations. Screenshots: test-results/console-segalloc/.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { uniquePrefix } from '../../test/stack-helpers.ts';
import { fixtureArchive } from '../../pipeline/shadowing/fixtures.ts';
import { rolloutOptions } from '../../pipeline/rollout/feature.ts';
import { segmentAllocationOptions } from '../../pipeline/segment-allocation/feature.ts';
import { waitFor } from '../../test/wait-for.ts';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const dist = path.join(root, 'console', 'dist');
const shots = path.join(root, 'test-results', 'console-segalloc');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const ITEM = 'com.example.multipage';

let t: TestPenumbra;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function axe(name: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ url: '/__test/axe.min.js' });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help}`);
  });
  expect({ view: name, violations }).toEqual({ view: name, violations: [] });
}
const cellRow = (cell: string) => page.locator(`tr[data-cell="${cell}"]`);
const apiView = async () => (await (await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments`, { headers: t.auth('viewer') })).json()) as { cells: { cell: string; override: { actor: string } | null; weights: { arm: string; weight: number }[] }[] };

beforeAll(async () => {
  if (!(process.env.CONSOLE_SKIP_BUILD === '1' && fs.existsSync(path.join(dist, 'index.html')))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'console', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  }
  fs.mkdirSync(shots, { recursive: true });
  const prefix = uniquePrefix('console-segalloc');
  rolloutOptions(prefix, { tickMs: 250 });
  segmentAllocationOptions(prefix, { tickMs: 250 });
  t = await startTestPenumbra('console-segalloc', { PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS: '1' }, { sink: false, consoleDir: dist });
  const inst = { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 };
  const up = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('multi-page-web', 'zip'), [
    { name: 'a', instrumentation: inst, endpoints: {}, traffic: { percentage: 25 } },
    { name: 'b', instrumentation: inst, endpoints: {}, traffic: { percentage: 25 } },
  ]) });
  expect(up.status).toBe(201);
  const cur = (await (await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, { headers: t.auth('viewer') })).json()) as { profileVersion: number; shadows: unknown[] };
  const put = await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, {
    method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': `"${cur.profileVersion}"` },
    body: JSON.stringify({ shadows: cur.shadows, bandit: { arms: ['a', 'b'], metric: 'conversion:buy', reweightSeconds: 600, segments: { by: 'deviceType', cells: ['android', 'ios'] } } }),
  });
  expect(put.status).toBe(200);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  await ctx.route('**/__test/axe.min.js', (route) => route.fulfill({ path: require.resolve('axe-core/axe.min.js'), contentType: 'text/javascript' }));
  page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${t.url}/#/`);
  await page.getByLabel('Access token').fill(TOKENS.operator);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Catalog' }).waitFor();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

test('see each cell\'s weights, fix one cell\'s weights in the console, release it', async () => {
  await page.evaluate((h) => { location.hash = h; }, `#/items/${ITEM}/rollout`);
  await page.getByTestId('segment-allocation').waitFor();
  for (const c of ['android', 'ios', '*']) await cellRow(c).waitFor();
  await expect(cellRow('ios').getByTestId('cell-weights').textContent()).resolves.toMatch(/a 33\.3% · b 33\.3% · control 33\.3%/);
  await expect(cellRow('*').locator('th').textContent()).resolves.toBe('deviceType=other');
  await expect(cellRow('ios').getByTestId('cell-mode').textContent()).resolves.toBe('Automatic');
  await axe('segment-allocation');

  await cellRow('ios').getByRole('button', { name: /^Override/ }).click();
  const form = page.getByTestId('cell-override');
  await form.getByLabel('Share of a (%)').fill('0');
  await form.getByLabel('Share of b (%)').fill('75');
  await form.getByLabel('Share of control (%)').fill('-5');
  await form.getByTestId('save-override').click();
  await expect(form.locator('p.error').first().textContent()).resolves.toMatch(/≥ 0/);
  await form.getByLabel('Share of control (%)').fill('25');
  await form.getByLabel('Reason').fill('ios launch campaign');
  await axe('cell-override-form');
  await page.screenshot({ path: path.join(shots, '01-override-form.png'), fullPage: true });
  await form.getByTestId('save-override').click();
  await form.waitFor({ state: 'detached' });
  await waitFor('the console shows the override', async () => /^Fixed by /.test((await cellRow('ios').getByTestId('cell-mode').textContent()) ?? ''), 15_000, 100);
  await expect(cellRow('ios').getByTestId('cell-weights').textContent()).resolves.toMatch(/a 0% · b 75% · control 25%/);
  // The API agrees, and the override is audited with the operator's reason.
  const v = await apiView();
  expect(v.cells.find((c) => c.cell === 'ios')).toMatchObject({ override: { actor: expect.any(String) }, weights: [{ arm: 'a', weight: 0 }, { arm: 'b', weight: 0.75 }, { arm: 'control', weight: 0.25 }] });
  expect(v.cells.find((c) => c.cell === 'android')!.override).toBeNull();
  const audit = (await (await fetch(`${t.url}/api/v1/audit?itemId=${ITEM}&action=bandit.control`, { headers: t.auth('viewer') })).json()) as { entries: { reason: string | null }[] };
  expect(audit.entries.some((e) => e.reason === 'ios launch campaign')).toBe(true);
  await page.screenshot({ path: path.join(shots, '02-overridden.png'), fullPage: true });

  await cellRow('ios').getByRole('button', { name: /^Release/ }).click();
  await waitFor('released', async () => (await cellRow('ios').getByTestId('cell-mode').textContent()) === 'Automatic', 15_000, 100);
  expect((await apiView()).cells.find((c) => c.cell === 'ios')!.override).toBeNull();
  await axe('segment-allocation-after');
  expect(pageErrors).toEqual([]);
}, 120_000);

/**
 * The Rollout tab in a real headless Chromium against a REAL Penumbra (createPenumbra on its own
 * topic prefix: Kafka, registry, the profile writer and the rollout analyzer; the built console
 * served by the API): an operator edits a plan in the console (a timer plan: steps 10 → 20 → 30,
 * analyses every second, no guardrails, no sample), watches the analyzer advance a step on the
 * timeline, overrides it (pause, then skip), rolls the shadow back on its own, sets the
 * item-wide guardrail flag that only the API could set before, and reverts the shadow to its
 * configuration at ingest from the history; axe-core finds no violations.
 * Screenshots: test-results/console-rollout/*.png.
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
import { waitFor } from '../../test/wait-for.ts';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const dist = path.join(root, 'console', 'dist');
const shots = path.join(root, 'test-results', 'console-rollout');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const ITEM = 'com.example.multipage';

let t: TestPenumbra;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function axe(name: string): Promise<void> {
  // Same-origin URL (the console's CSP allows 'self' scripts only), answered by the browser context.
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ url: '/__test/axe.min.js' });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help}`);
  });
  expect({ view: name, violations }).toEqual({ view: name, violations: [] });
}

const planRow = (shadow: string) => page.locator(`tr[data-shadow="${shadow}"]`);

beforeAll(async () => {
  if (!(process.env.CONSOLE_SKIP_BUILD === '1' && fs.existsSync(path.join(dist, 'index.html')))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'console', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  }
  fs.mkdirSync(shots, { recursive: true });
  const prefix = uniquePrefix('console-rollout');
  rolloutOptions(prefix, { tickMs: 250 });
  t = await startTestPenumbra('console-rollout', { PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS: '1' }, { sink: false, consoleDir: dist });
  const shadow = { name: 'checkout-v2', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: 5 } };
  const up = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('multi-page-web', 'zip'), shadow) });
  expect(up.status).toBe(201);
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

test('edit a plan in the console, watch a step advance, override it, roll the shadow back, revert it', async () => {
  await page.evaluate((h) => { location.hash = h; }, `#/items/${ITEM}/rollout`);
  await planRow('checkout-v2').waitFor();
  await expect(planRow('checkout-v2').getByTestId('plan-status').textContent()).resolves.toBe('No plan');
  await axe('rollout-tab');

  // Edit: a timer plan (no guardrails, no sample requirement), analyses every second.
  await planRow('checkout-v2').getByRole('button', { name: /Add plan/ }).click();
  const editor = page.getByTestId('plan-editor');
  await editor.getByLabel(/^Steps/).fill('10, 20, 30@600s');
  await editor.getByLabel('Analysis every (s)').fill('1');
  await editor.getByLabel('Sessions per arm').fill('0');
  await editor.getByRole('button', { name: /Remove/ }).first().click(); // the default guardrail
  await shot('01-plan-edited');
  await axe('plan-editor');
  await editor.getByTestId('save-plan').click();
  await page.getByTestId('plan-editor').waitFor({ state: 'detached' });

  // The analyzer advances step 1 → 2 within seconds; the timeline shows it, automated.
  await page.locator('[data-testid="timeline"] li[data-kind="advance"]').first().waitFor({ timeout: 30_000 });
  await expect(planRow('checkout-v2').getByTestId('plan-status').textContent()).resolves.toMatch(/^Running · step 2 of 3 \(20%\)/);
  await expect(planRow('checkout-v2').getByTestId('shadow-share').textContent()).resolves.toBe('20%');
  await expect(page.locator('[data-testid="timeline"] li[data-kind="advance"]').first().textContent()).resolves.toMatch(/Advanced · checkout-v2 · automatic \(passed\)/);
  await shot('02-step-advanced');

  // Override: pause (step 3 holds 600 s anyway, so nothing races), then skip to the last step.
  await planRow('checkout-v2').getByRole('button', { name: /^Pause/ }).click();
  await page.locator('[data-testid="timeline"] li[data-kind="pause"]').first().waitFor();
  await expect(planRow('checkout-v2').getByTestId('plan-status').textContent()).resolves.toMatch(/^Paused/);
  await planRow('checkout-v2').getByRole('button', { name: /^Skip step/ }).click();
  await page.locator('[data-testid="timeline"] li[data-kind="skip"]').first().waitFor();
  await expect(page.locator('[data-testid="timeline"] li[data-kind="skip"]').first().textContent()).resolves.toContain('operator');
  await waitFor('share 30 %', async () => (await planRow('checkout-v2').getByTestId('shadow-share').textContent()) === '30%', 15_000, 100);
  await shot('03-overridden');

  // Per-shadow rollback, then the item-wide guardrail flag.
  await planRow('checkout-v2').getByRole('button', { name: /^Roll back/ }).click();
  await waitFor('shadow rolled back', async () => (await planRow('checkout-v2').getByTestId('shadow-state').textContent()) === 'Rolled back', 15_000, 100);
  await page.getByTestId('guardrail-flag').check();
  await waitFor('guardrail flag on', async () => ((await (await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, { headers: t.auth('viewer') })).json()) as { guardrail: boolean }).guardrail, 15_000, 100);
  // The API agrees with what the console shows.
  const v = (await (await fetch(`${t.url}/api/v1/items/${ITEM}/rollout`, { headers: t.auth('viewer') })).json()) as { shadows: { state: string; rolloutState: { status: string; step: number } }[]; timeline: { kind: string; automated: boolean }[] };
  expect(v.shadows[0]).toMatchObject({ state: 'rolled_back', rolloutState: { status: 'rolled_back', step: 2 } });
  expect(v.timeline.map((d) => d.kind)).toEqual(expect.arrayContaining(['start', 'advance', 'pause', 'skip', 'shadow_rollback']));
  await shot('04-rolled-back');

  // Revert the shadow to its configuration at ingest (v1: no plan, active, 5 %) from the history.
  await page.getByRole('button', { name: 'Show earlier versions' }).click();
  await page.locator('tr[data-version="1"]').getByRole('button', { name: /checkout-v2/ }).click();
  await waitFor('reverted', async () => (await planRow('checkout-v2').getByTestId('plan-status').textContent()) === 'No plan', 15_000, 100);
  await expect(planRow('checkout-v2').getByTestId('shadow-state').textContent()).resolves.toBe('Active');
  await expect(planRow('checkout-v2').getByTestId('shadow-share').textContent()).resolves.toBe('5%');
  await axe('rollout-after');
  expect(pageErrors).toEqual([]);
}, 120_000);

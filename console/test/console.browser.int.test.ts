/**
 * The built console in real headless Chromium against a fake API (console/test/fake-api.ts):
 * signs in as operator and as viewer, visits every view, runs axe-core on each (no
 * violations), checks a viewer sees no control that changes anything, exercises upload 422
 * field errors, config diff + save + 409 conflict, the dashboard's shadow-vs-control comparison
 * (baseline, arm sizes, always-valid verdicts, unverified counts, web-vital charts per arm), the
 * alert-rule editor's direction / metric / EWMA choices, rollback with resolver acknowledgement,
 * and saves screenshots to test-results/console/. Set CONSOLE_SKIP_BUILD=1 to reuse console/dist.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startFakeServer, type FakeServer } from './fake-api.ts';
import { requires } from '../../test/requires.ts';

// Every test here drives Chromium: skipped visibly without it, a failure under CI (test/requires.ts).
const test = requires(['chromium']);

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const dist = path.join(root, 'console', 'dist');
const shots = path.join(root, 'test-results', 'console');
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

let server: FakeServer;
let browser: Browser;

beforeAll(async () => {
  if (!(process.env.CONSOLE_SKIP_BUILD === '1' && fs.existsSync(path.join(dist, 'index.html')))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'console', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  }
  fs.mkdirSync(shots, { recursive: true });
  server = await startFakeServer(dist, { extraFiles: { '/__test/axe.min.js': require.resolve('axe-core/axe.min.js') } });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function axe(page: Page, name: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ url: '/__test/axe.min.js' });
  const result = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string; nodes: { target: unknown }[] }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help} @ ${v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 3).join(', ')}`);
  });
  expect({ view: name, violations: result }).toEqual({ view: name, violations: [] });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function signIn(token: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/favicon|Failed to load resource/.test(m.text())) errors.push(m.text()); });
  (page as unknown as { __errors: string[] }).__errors = errors;
  await page.goto(server.url + '/#/');
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Catalog' }).waitFor();
  return page;
}

async function visit(page: Page, hash: string, ready: string): Promise<void> {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.locator(ready).first().waitFor({ timeout: 15_000 });
}

const ITEM = 'com.example.notes';

test('sign-in page passes axe and rejects a bad token', async () => {
  const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
  await page.goto(server.url + '/');
  await page.getByLabel('Access token').waitFor();
  await axe(page, 'sign-in');
  await page.getByLabel('Access token').fill('nope');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That token was not accepted').waitFor();
  await axe(page, 'sign-in-error');
  await shot(page, '00-sign-in-error');
  await page.context().close();
}, 60_000);

test('operator: every view, upload errors, config diff/save/conflict, rollback acknowledgement', async () => {
  const page = await signIn('op-token');
  await page.getByRole('link', { name: 'Notes' }).waitFor();
  await axe(page, 'catalog');
  await shot(page, '01-catalog-operator');

  // Upload: server 422 with a field path shows next to the config textarea.
  await page.getByTestId('upload-toggle').click();
  await page.setInputFiles('#upload-file', { name: 'notes.zip', mimeType: 'application/zip', buffer: Buffer.from('PK\u0003\u0004') });
  await page.fill('#upload-config', '{"name":"x","traffic":{"percentage":400}}');
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await page.locator('#upload-config-err').getByText('0 › traffic › percentage: must be between 0 and 100').waitFor();
  expect(await page.getAttribute('#upload-config', 'aria-invalid')).toBe('true');
  await axe(page, 'catalog-upload-errors');
  await shot(page, '02-upload-errors');

  // Item overview: variants, download links, exposures next to configured share.
  await visit(page, `#/items/${ITEM}`, 'text=Exposure by variant');
  await page.getByText('6,012').waitFor();
  await page.locator('tr[data-variant="control"]').getByText('1,990').waitFor(); // the control arm, as large as its shadow
  expect(await page.locator('a[download]').count()).toBe(2);
  await axe(page, 'item');
  await shot(page, '03-item-operator');

  // Config editor: change share, review the diff, save; then a stale save gets the 409 story.
  await visit(page, `#/items/${ITEM}/config`, '#s0-pctn');
  await page.fill('#s0-pctn', '30');
  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.selectOption('#s0-r2-attr', 'country');
  await page.fill('#s0-r2-val', 'DE, FR');
  await page.locator('#s0-r2-val').blur();
  await page.getByTestId('review').click();
  const diff = page.getByTestId('diff');
  await diff.getByText('traffic › percentage: 20 → 30').waitFor();
  await diff.getByText('country').waitFor();
  await axe(page, 'config-diff');
  await shot(page, '04-config-diff');
  await page.getByTestId('save').click();
  await page.locator('.notice.ok', { hasText: 'Saved as profile v4.' }).waitFor();
  expect(server.state.profile.shadows[0].traffic.percentage).toBe(30);
  // Someone else saves meanwhile.
  server.state.profile.profileVersion = 9;
  server.state.profile.updatedBy = 'sam';
  await page.fill('#s0-pctn', '35');
  await page.getByTestId('review').click();
  await page.getByTestId('save').click();
  await page.getByTestId('conflict').getByText(/changed by sam at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/).waitFor();
  await axe(page, 'config-conflict');
  await shot(page, '05-config-conflict');
  await page.getByRole('button', { name: 'Reload latest' }).click();
  await page.getByTestId('conflict').waitFor({ state: 'detached' });

  // Dashboard: each shadow vs its control arm (baseline and arm sizes named, verdicts from the
  // always-valid interval), unverified counts, charts per arm incl. page timings and web vitals.
  await visit(page, `#/items/${ITEM}/dashboard`, '.chart canvas');
  await page.getByRole('heading', { name: 'Each shadow vs its control arm' }).waitFor();
  await page.getByText('Latency: Worse').waitFor();
  await page.getByText('LCP: Worse').waitFor();
  await page.getByText('“buy” conversion: Better').waitFor();
  await page.getByText('Split OK').waitFor();
  await page.getByTestId('arm-sizes').getByText('Baseline: control arm, 1,200 sessions · shadow 1,200 sessions').waitFor();
  await page.getByTestId('significance-note').getByText(/always-valid 95 % interval excludes zero/).waitFor();
  await page.getByTestId('unverified-total').getByText('37 events without a valid assignment token — stored, but kept out of every chart, comparison, alert and guardrail.').waitFor();
  expect(await page.getByRole('table', { name: 'Unverified events by variant and reason' }).locator('tbody tr').count()).toBe(3);
  expect(await page.locator('.chart canvas').count()).toBeGreaterThanOrEqual(10);
  for (const vital of ['LCP', 'INP', 'CLS', 'Time to first byte']) {
    const label = await page.locator(`.chart[aria-label^="${vital}"]`).getAttribute('aria-label');
    // One series per arm: the control (baseline) first, then the shadow.
    expect(label).toMatch(/control latest [\d.,]+; checkout-v2 latest [\d.,]+$/);
  }
  await axe(page, 'dashboard');
  await shot(page, '06-dashboard-live');
  await page.getByTestId('comparisons-source').getByText('Computed by this server (the metrics member that owns this item).').waitFor();
  expect(await page.getByTestId('comparisons-stale').count()).toBe(0);
  // An API-only server answering from the comparisons topic, whose last record from the owning
  // member is older than the bound: the source is named and a stale badge shown.
  const t = Date.now();
  server.state.comparisonsSource = 'topic';
  server.state.comparisonsFreshness = { computedAt: t - 95_000, publishedAt: t - 65_000, receivedAt: t - 64_990, ageMs: 95_000, transitMs: 10, member: 'proc-2:4711', stale: true, staleAfterMs: 30_000 };
  await page.getByRole('button', { name: 'Last 24 h' }).click();
  await page.getByText(/1m windows, fetched/).waitFor();
  await page.getByTestId('comparisons-source').getByText(/^From the comparisons topic: computed by proc-2:4711, 1 min ago\./).waitFor();
  await page.getByTestId('comparisons-stale').getByText('Stale').waitFor();
  expect(await page.getByTestId('comparisons-source').textContent()).toContain('No record from the owning member for more than 30 s (the last 1 min ago)');
  await axe(page, 'dashboard-24h');
  await shot(page, '06b-dashboard-stale-comparisons');
  server.state.comparisonsSource = 'this-process';
  server.state.comparisonsFreshness = null;

  // Alerts: feed + rule editor.
  await visit(page, '#/alerts', '[data-testid="alert-feed"]');
  await page.getByTestId('new-rule').click();
  await page.fill('#ar-name', 'p99 guard');
  await page.selectOption('#ar-metric', 'latencyP99');
  await page.selectOption('#ar-cmp', 'absolute');
  await page.fill('#ar-thr', '50');
  await axe(page, 'alerts-editor');
  await shot(page, '07-alerts-editor');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await page.getByText('p99 guard').first().waitFor();
  expect(server.state.rules.some((r) => r.name === 'p99 guard' && r.metric === 'latencyP99' && r.comparison === 'absolute' && r.direction === 'above')).toBe(true);
  // A conversion DROP against the control: metric choice, comparison and direction.
  await page.getByTestId('new-rule').click();
  await page.fill('#ar-name', 'buy drop');
  await page.selectOption('#ar-metric', 'conversion');
  await page.fill('#ar-point', 'buy');
  await page.selectOption('#ar-cmp', 'vs_control');
  await page.selectOption('#ar-dir', 'decrease');
  await page.fill('#ar-thr', '0.05');
  await page.getByText('Conversion “buy” drops below its control by more than 5 pp').waitFor();
  await page.getByRole('button', { name: 'Save rule' }).click();
  await page.getByText('buy drop').first().waitFor();
  expect(server.state.rules.find((r) => r.name === 'buy drop')).toMatchObject({ metric: 'conversion:buy', comparison: 'vs_control', direction: 'decrease', kind: 'threshold', threshold: 0.05 });
  // A web vital watched by the EWMA anomaly kind.
  await page.getByTestId('new-rule').click();
  await page.fill('#ar-name', 'lcp anomaly');
  await page.selectOption('#ar-metric', 'perfP95:lcp');
  await page.selectOption('#ar-cmp', 'absolute');
  await page.selectOption('#ar-kind', 'ewma');
  await page.selectOption('#ar-dir', 'above');
  await page.fill('#ar-alpha', '0.2');
  await page.fill('#ar-thr', '4');
  await axe(page, 'alerts-editor-ewma');
  await shot(page, '07b-alerts-editor-ewma');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await page.getByText('lcp anomaly').first().waitFor();
  expect(server.state.rules.find((r) => r.name === 'lcp anomaly')).toMatchObject({ metric: 'perfP95:lcp', comparison: 'absolute', direction: 'above', kind: 'ewma', threshold: 4, ewma: { alpha: 0.2, warmup: 10, minStd: 0 } });
  server.broadcast('alert', { id: 'al9', ruleId: 'ar1', itemId: ITEM, variant: 'checkout-v2', metric: 'errorRate', state: 'fired', value: 0.06, threshold: 0.02, baseline: 0.02, at: Date.now() });
  await page.getByTestId('alert-feed').getByText('Fired').waitFor();

  // Audit: before/after diff, filter by person.
  await visit(page, '#/audit', 'table');
  await page.getByText('1 change').first().click();
  await page.getByText('traffic › percentage: 10 → 20').waitFor();
  await axe(page, 'audit');
  await shot(page, '08-audit');
  await page.fill('#au-actor', 'sam');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);

  // Rollback: confirm step, then each resolver acknowledges the new version.
  await visit(page, `#/items/${ITEM}`, '[data-testid="rollback"]');
  await page.getByTestId('rollback').click();
  await page.fill('#rb-reason', 'error spike');
  await axe(page, 'rollback-confirm');
  await page.getByTestId('rollback-confirm').click();
  await page.getByTestId('item-state').getByText('Rolled back').waitFor();
  await page.getByText(/All 2 acknowledged/).waitFor({ timeout: 10_000 });
  await shot(page, '09-rolled-back');
  await axe(page, 'rolled-back');
  await page.getByTestId('activate').click();
  await page.getByTestId('activate-confirm').click();
  await page.getByTestId('item-state').getByText('Active').waitFor();

  expect((page as unknown as { __errors: string[] }).__errors).toEqual([]);
  await page.context().close();
}, 180_000);

test('mobile items: platform and runtime-version columns; the rollback panel says apps revert to their embedded update', async () => {
  const page = await signIn('op-token');
  await visit(page, '#/', 'text=Ledger (iOS/Android update)');
  const row = (name: string) => page.locator('tbody tr', { hasText: name });
  await expect(row('Ledger (iOS/Android update)').getByTestId('platforms').innerText()).resolves.toBe('ios, android');
  await expect(row('Ledger (iOS/Android update)').getByTestId('runtime-version').innerText()).resolves.toBe('1.0.0');
  await expect(row('com.example.notes').first().getByTestId('platforms').innerText()).resolves.toBe('web');
  await expect(row('com.example.shop').getByTestId('runtime-version').innerText()).resolves.toBe('—');
  await axe(page, 'catalog-mobile');
  await visit(page, '#/items/com.example.ledger.app', '[data-testid="mobile-item"]');
  await page.getByRole('heading', { name: 'Rolled back — apps revert to their embedded update' }).waitFor();
  expect(await page.getByTestId('rollback-explainer').innerText()).toMatch(/revert to the update embedded in their binary on their next launch/);
  expect(await page.getByTestId('mobile-item').innerText()).toContain('/api/v1/expo/com.example.ledger.app/manifest');
  await axe(page, 'item-mobile');
  await shot(page, '10-mobile-item');
  expect((page as unknown as { __errors: string[] }).__errors).toEqual([]);
  await page.context().close();
}, 60_000);

test('viewer: every view read-only, no mutating control, axe clean', async () => {
  const page = await signIn('view-token');
  const views: [string, string, string][] = [
    ['#/', 'text=Notes', 'catalog'],
    [`#/items/${ITEM}`, 'text=Exposure by variant', 'item'],
    [`#/items/${ITEM}/config`, 'text=Read-only', 'config'],
    [`#/items/${ITEM}/dashboard`, '.chart canvas', 'dashboard'],
    ['#/alerts', '[data-testid="alert-feed"]', 'alerts'],
    ['#/audit', 'table', 'audit'],
  ];
  const mutating = /upload|save|roll ?back|re-enable|new rule|add |remove|delete|edit|review/i;
  for (const [hash, ready, name] of views) {
    await visit(page, hash, ready);
    await axe(page, `viewer-${name}`);
    await shot(page, `viewer-${name}`);
    const buttons = await page.locator('button:visible').allInnerTexts();
    expect({ view: name, mutating: buttons.filter((b) => mutating.test(b)) }).toEqual({ view: name, mutating: [] });
    // Filters/search/time range are fine; no form field edits server state in a viewer's console.
    const fields = await page.locator('main input:visible, main textarea:visible, main select:visible').evaluateAll((els) => els.map((e) => e.id));
    expect({ view: name, fields: fields.filter((id) => !['catalog-search', 'au-item', 'au-actor'].includes(id)) }).toEqual({ view: name, fields: [] });
  }
  await page.context().close();
}, 120_000);

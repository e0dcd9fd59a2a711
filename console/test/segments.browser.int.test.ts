/**
 * The Segments page in a real headless Chromium against a real Penumbra (processors, DuckDB sink,
 * segment evaluator) on the test stack: define a segment over the warehouse (users who were
 * shown a shadow), preview its size, save it, and see the size the evaluator computed — equal to
 * what the warehouse snapshot says. Then an invalid SQL shows DuckDB's reason next to the field.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createPenumbra, type Penumbra } from '../../pipeline/app/penumbra.ts';
import { ADMIN_TOKEN, configFrom, resolverEnv } from '../../pipeline/resolver/test-support.ts';
import { ingestDigitalItem } from '../../pipeline/ingest/ingest-service.ts';
import { fixtureArchive } from '../../pipeline/shadowing/fixtures.ts';
import { queryParquet } from '../../connectors/duckdb-sink/query.ts';
import { warehousePaths } from '../../pipeline/warehouse/feature.ts';
import { ensureConsoleBuilt } from '../../cli/start.ts';
import { waitFor } from '../../test/wait-for.ts';
import { requires } from '../../test/requires.ts';

const test = requires(['chromium']);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = path.join(root, 'test-results', 'console-segments');
const ITEM = 'com.example.multipage';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const AXE_URL = '/__segments-test/axe.min.js';
const SQL = `SELECT DISTINCT user_id FROM assignments WHERE item_id = '${ITEM}' AND variant = 'checkout-v2'`;

let p: Penumbra;
let browser: Browser;
let page: Page;
let expected = 0;

beforeAll(async () => {
  const consoleDir = ensureConsoleBuilt(() => {});
  if (!consoleDir) throw new Error('console build failed');
  p = await createPenumbra(configFrom(resolverEnv('console-seg', { PENUMBRA_SEGMENT_MIN_INTERVAL_SECONDS: '1' })), { consoleDir });
  const r = await ingestDigitalItem(p.ctx.ingest, {
    archive: await fixtureArchive('multi-page-web', 'zip'), actor: { name: 'test', role: 'admin' }, requestId: randomUUID(),
    shadowConfig: { name: 'checkout-v2', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: 30, match: 'all', rules: [] } },
  });
  await p.ctx.profileStore.waitForVersion(ITEM, r.profile.profileVersion);
  // 60 users resolve; about 30 % are shown the shadow. Wait until the snapshot has them all.
  for (let i = 0; i < 60; i++) await fetch(`${p.url}/api/v1/resolve?itemId=${ITEM}&userId=console-u-${i}`);
  const dir = warehousePaths(p.cfg.dataDir).parquetDir;
  expected = await waitFor('assignments in the snapshot', async () => {
    const all = await queryParquet(dir, `SELECT count(*) AS n FROM assignments WHERE item_id = '${ITEM}'`);
    if (Number(all[0].n) < 60) return undefined;
    return (await queryParquet(dir, `SELECT count(*) AS n FROM (${SQL})`)).map((x) => Number(x.n))[0];
  }, 60_000, 500);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await (await browser.newContext()).newPage();
  // axe from a same-origin URL served by the test, so the console's CSP stays enforced.
  await page.route(`**${AXE_URL}`, (route) => route.fulfill({ path: AXE, contentType: 'text/javascript' }));
  await page.goto(p.url);
  await page.getByLabel('Access token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Segments' }).click();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await p?.stop();
});

test('define a segment, preview and see its size', async () => {
  expect(expected).toBeGreaterThan(0);
  await page.getByTestId('new-segment').click();
  await page.getByLabel('Id (used in rules)').fill('saw-checkout');
  await page.getByLabel('Name', { exact: true }).fill('Users shown checkout-v2');
  await page.getByLabel('SQL (one SELECT returning user_id)').fill(SQL);
  await page.getByLabel('Evaluate every (s)').fill('5');
  await page.getByTestId('preview-segment').click();
  await page.getByTestId('segment-preview').waitFor();
  expect(await page.getByTestId('segment-preview').textContent()).toContain(`${expected} users`);
  await page.getByRole('button', { name: 'Save segment' }).click();
  const row = page.locator('[data-segment="saw-checkout"]');
  await waitFor('the evaluated size in the table', async () => (await row.getByTestId('segment-state').textContent()) === 'Up to date', 20_000, 250);
  expect(await row.getByTestId('segment-size').textContent()).toBe(String(expected));
  await page.screenshot({ path: path.join(SHOTS, '01-segment-size.png'), fullPage: true });
  await page.addScriptTag({ url: `${p.url}${AXE_URL}` });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help}`);
  });
  expect(violations).toEqual([]);
  // The API says the same, and the resolver of this process holds exactly that many members.
  const api = (await (await fetch(`${p.url}/api/v1/segments/saw-checkout`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { status: { members: number }; loadedMembers: number };
  expect(api.status.members).toBe(expected);
  expect(api.loadedMembers).toBe(expected);
});

test('an invalid query is refused with the reason next to the SQL field', async () => {
  await page.getByTestId('new-segment').click();
  await page.getByLabel('Id (used in rules)').fill('broken');
  await page.getByLabel('Name', { exact: true }).fill('Broken');
  await page.getByLabel('SQL (one SELECT returning user_id)').fill('SELECT session_id FROM telemetry_events');
  await page.getByRole('button', { name: 'Save segment' }).click();
  await page.getByTestId('sql-error').waitFor();
  expect(await page.getByTestId('sql-error').textContent()).toMatch(/user_id/);
  await page.screenshot({ path: path.join(SHOTS, '02-sql-refused.png'), fullPage: true });
});

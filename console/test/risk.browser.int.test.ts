/**
 * The risk panel (#13 item 4) in a real headless Chromium against a real Penumbra (processors,
 * risk feature) on the test stack, one pipeline for the file:
 *
 * a GENERATED item's next version goes out proactively as a version shadow (its score is the
 * prior: no history), the simulator sends its users, the shadow failing 60 pp more sessions than
 * its control; the live update raises the risk past the hold threshold and the step is held
 * early. The panel next to the comparisons shows prior → now with the prior's wording, the plan
 * the score chose, the hold with its reason; a viewer gets no Release, an operator releases it
 * from the panel; after a rollback the hold shows its lead time. axe finds nothing.
 *
 * Then a second GENERATED item whose version shadow's plan has a guardrail (error sessions ≤ +2 pp):
 * the panel shows the guardrail's forecast at the step's analysis (the comparison now, the
 * projected sessions, the probability), the forecast hold with its reason, and after the
 * guardrail's own rollback its lead time; the structured plan of the route reads the same.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ensureConsoleBuilt } from '../../cli/start.ts';
import { startTestPenumbra, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { firstVersion, nextVersion } from '../../pipeline/history-generator/generate.ts';
import { ingestVersion } from '../../pipeline/history-generator/run.ts';
import { startSimulation, type SimulationHandle } from '../../pipeline/simulator/runner.ts';
import { riskHandles } from '../../pipeline/risk-model/feature.ts';
import { waitFor } from '../../test/wait-for.ts';
import { requires } from '../../test/requires.ts';
import { pct } from '../src/lib/risk.ts';

const test = requires(['chromium']);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = path.join(root, 'test-results', 'console-risk');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const AXE_URL = '/__risk-test/axe.min.js';

let t: TestPenumbra;
let browser: Browser;
let sim: SimulationHandle | null = null;
const v0 = firstVersion('console-risk', 0, 'risk');
const v1 = nextVersion('console-risk', 0, 1, v0.tree);
// The forecast's item (second test): its version shadow's plan has a guardrail.
const f0 = firstVersion('console-risk', 1, 'risk');
const f1 = nextVersion('console-risk', 1, 1, f0.tree);
const dashboard = (itemId = v0.itemId) => `${t.url}/#/items/${encodeURIComponent(itemId)}/dashboard`;

async function signedIn(token: string, itemId = v0.itemId): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  // axe from a same-origin URL served by the test, so the console's CSP stays enforced.
  await page.route(`**${AXE_URL}`, (route) => route.fulfill({ path: AXE, contentType: 'text/javascript' }));
  await page.goto(t.url);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Catalog' }).first().waitFor();
  await page.goto(dashboard(itemId));
  await page.getByTestId('risk').waitFor();
  return page;
}

beforeAll(async () => {
  const consoleDir = ensureConsoleBuilt(() => {});
  if (!consoleDir) throw new Error('console build failed');
  // Forecast holds at 80 % here (default 90): the second test's guardrail forecast must hold its
  // step before the live risk (10 s windows) does — either pause stops the other.
  t = await startTestPenumbra('console-risk', { PENUMBRA_FORECAST_HOLD_PERCENT: '80' }, { consoleDir });
  await ingestVersion(t.url, TOKENS.operator, v0);
  // Proactive, at 50 % from the start (the operator's steps), so both arms fill a window fast;
  // no guardrails of the plan's own (where plans judge, they would roll the shadow back before
  // its risk holds it) and no promotion; the mapping fills the rest from the prior's tier.
  const res = await ingestVersion(t.url, TOKENS.operator, v1, undefined, { proactive: 'true', rollout: JSON.stringify({ steps: [50], guardrails: [], onComplete: 'hold' }) });
  expect(res.versionShadow).toBe(v1.shadow);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  await browser?.close();
  await t?.stop();
});

test('prior → live risk, the plan it chose, an early hold released by an operator (not a viewer), its lead time after the rollback', async () => {
  const page = await signedIn(TOKENS.operator);
  const panel = page.getByTestId('risk');
  // Before any telemetry: the prior, said as such, and the plan it chose.
  expect(await panel.getByTestId('risk-ingest').textContent()).toBe('20.0 %');
  expect(await panel.getByTestId('risk-source').textContent()).toBe('prior (too little history for a model)');
  expect(await panel.getByTestId('risk-now-none').textContent()).toBe('no live update yet');
  expect(await panel.getByTestId('risk-pushed-up').textContent()).toMatch(/too little history for a model/);
  expect(await panel.getByTestId('risk-plan').textContent()).toMatch(/Plan chosen by the score \(medium tier\): start 50 %, steps 50 %, 120 s analyses, 300 sessions per arm, onComplete hold; operator set steps, guardrails, onComplete\./);
  expect(await panel.getByTestId('risk-hold').count()).toBe(0);

  // Telemetry: the version shadow fails far more sessions than its control → held early.
  sim = startSimulation({ url: t.url, token: TOKENS.operator, items: [v0.itemId], users: 300, rate: 20, durationMs: 60_000, seed: 'console-risk', flushIntervalMs: 500, effects: [`${v1.shadow}:errors=+60pp`] });
  const handle = riskHandles.get(t.p.ctx)!;
  const hold = await waitFor('an early risk hold', async () => handle.holds(v0.itemId).find((h) => h.profileVersion !== null), 45_000, 250);
  await sim.stop();
  sim = null;
  // The panel follows without a reload (the stream's profile change, or its poll).
  const row = panel.getByTestId('risk-hold');
  await row.waitFor({ timeout: 10_000 });
  expect(await row.getAttribute('data-active')).toBe('true');
  expect(await row.getByTestId('risk-hold-reason').textContent()).toBe(`risk ${pct(hold.probability)} after ${hold.evidence.shadowErrorSessions} of ${hold.evidence.shadowSessions} shadow sessions with errors vs ${hold.evidence.baselineErrorSessions} of ${hold.evidence.baselineSessions} on control`);
  expect(await row.getByTestId('risk-hold-status').textContent()).toBe('holding the step');
  await waitFor('the live update in the panel', async () => (await panel.getByTestId('risk-now').count()) > 0 || undefined, 10_000, 200);
  const now = (await panel.getByTestId('risk-now').textContent())!;
  expect(now === '> 99.9 %' || Number(now.replace(' %', '')) >= 90).toBe(true);
  expect(await panel.getByTestId('risk-evidence').textContent()).toMatch(/shadow sessions with errors vs .* on control/);
  // Next to the comparisons of the version shadow.
  expect(await page.getByTestId('comparison').filter({ hasText: v1.shadow }).count()).toBe(1);

  // A viewer sees the hold but is not offered the release.
  const viewer = await signedIn(TOKENS.viewer);
  await viewer.getByTestId('risk-hold').waitFor();
  expect(await viewer.getByTestId('risk-release').count()).toBe(0);
  expect(await viewer.getByTestId('risk-release-viewer').textContent()).toBe('An operator can release this hold.');
  await viewer.context().close();

  await page.screenshot({ path: path.join(SHOTS, '01-held.png'), fullPage: true });
  await page.addScriptTag({ url: `${t.url}${AXE_URL}` });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help}`);
  });
  expect(violations).toEqual([]);

  // The operator releases it from the panel: the route resumes the step, audited as theirs.
  await page.getByLabel('Reason (optional)').fill('checked by hand in the console');
  await page.getByTestId('risk-release').click();
  await waitFor('released in the panel', async () => ((await row.getByTestId('risk-hold-status').textContent()) === 'released by operator' ? true : undefined), 10_000, 200);
  expect(await page.getByTestId('risk-release').count()).toBe(0);
  expect(handle.holds(v0.itemId)[0].releasedBy).toBe('operator');
  const audit = await (await fetch(`${t.url}/api/v1/audit?itemId=${encodeURIComponent(v0.itemId)}`, { headers: t.auth('viewer') })).json() as { entries: { actor: string; reason: string }[] };
  expect(audit.entries.some((e) => e.actor === 'operator' && e.reason === 'checked by hand in the console')).toBe(true);

  // The version is rolled back: the hold's lead time (hold → rollback) appears in the panel.
  const rb = await fetch(`${t.url}/api/v1/items/${encodeURIComponent(v0.itemId)}/rollback`, { method: 'POST', headers: { ...t.auth('operator'), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'bad version' }) });
  expect(rb.status).toBe(200);
  await waitFor('the lead time in the panel', async () => (/^held \d+ (s|ms|min.*) before the rollback$/.test((await row.getByTestId('risk-hold-lead').textContent()) ?? '') ? true : undefined), 10_000, 200);
  expect(await row.getByTestId('risk-hold-status').textContent()).toBe('rolled back (released by operator before)');
  await page.screenshot({ path: path.join(SHOTS, '02-lead-time.png'), fullPage: true });
}, 90_000);

test('the guardrail forecast of a planned shadow, its forecast hold and the hold\'s lead time before the guardrail\'s rollback', async () => {
  const { forecastHandles } = await import('../../pipeline/app/forecast-hold.ts');
  await ingestVersion(t.url, TOKENS.operator, f0);
  const res = await ingestVersion(t.url, TOKENS.operator, f1, undefined, { proactive: 'true', rollout: JSON.stringify({ steps: [50], analysisSeconds: 120, minSessionsPerArm: 1000, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], onComplete: 'hold' }) });
  expect(res.versionShadow).toBe(f1.shadow);
  const page = await signedIn(TOKENS.operator, f0.itemId);
  const panel = page.getByTestId('risk');
  // The structured plan (GET …/risk `plan`): the operator's fields over the prior's medium tier.
  expect(await panel.getByTestId('risk-plan').textContent()).toMatch(/Plan chosen by the score \(medium tier\): start 50 %, steps 50 %, 120 s analyses, 1000 sessions per arm, onComplete hold; operator set steps, analysisSeconds, minSessionsPerArm, guardrails, onComplete\./);

  sim = startSimulation({ url: t.url, token: TOKENS.operator, items: [f0.itemId], users: 3000, rate: 20, durationMs: 90_000, seed: 'console-forecast', flushIntervalMs: 500, effects: [`${f1.shadow}:errors=+20pp`] });
  const handle = forecastHandles.get(t.p.ctx)!;
  const hold = await waitFor('a forecast hold', async () => handle.holds(f0.itemId).find((h) => h.profileVersion !== null), 60_000, 250);
  // The forecast table: the plan's guardrail, compared now, projected, with its probability.
  const row = panel.getByTestId('forecast-row');
  await row.first().waitFor({ timeout: 10_000 });
  expect(await row.count()).toBe(1);
  expect(await row.getByTestId('forecast-guardrail').textContent()).toBe('errorRate may rise by at most +2 pp');
  expect(await row.getByTestId('forecast-now').textContent()).toMatch(/^\+[\d.]+ pp \[[−+][\d.]+ pp, \+[\d.]+ pp\] on \d+ vs \d+$/);
  expect(await row.getByTestId('forecast-probability').textContent()).toMatch(/^(> 99\.9|\d+\.\d) %$|^failing now|^analysis due/);
  // The hold: its reason in words, holding the step; an operator may release it.
  const fh = panel.getByTestId('forecast-hold');
  await fh.waitFor({ timeout: 10_000 });
  expect(await fh.getByTestId('forecast-hold-reason').textContent()).toBe(`forecast ${pct(hold.probability)} that errorRate fails by the step's analysis (≥ 80.0 %)`);
  expect(await fh.getByTestId('forecast-hold-status').textContent()).toBe('holding the step');
  expect(await page.getByTestId('risk-release').textContent()).toBe(`Release hold of ${f1.shadow}`);
  await page.screenshot({ path: path.join(SHOTS, '03-forecast-hold.png'), fullPage: true });
  await page.addScriptTag({ url: `${t.url}${AXE_URL}` });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; help: string }[] }> } }).axe.run();
    return r.violations.map((v) => `${v.id}: ${v.help}`);
  });
  expect(violations).toEqual([]);

  // The paused step keeps its guardrail: the bad version is rolled back by it, and the panel shows the lead.
  await waitFor('the lead time in the panel', async () => (/^held \d+ (s|ms|min.*) before the rollback$/.test((await fh.getByTestId('forecast-hold-lead').textContent()) ?? '') ? true : undefined), 60_000, 250);
  await sim.stop();
  sim = null;
  expect(await fh.getByTestId('forecast-hold-status').textContent()).toBe('rolled back');
  expect(handle.holds(f0.itemId)[0]).toMatchObject({ outcome: 'rolled_back', outcomeReason: expect.stringMatching(/beyond the tolerated \+2 pp/) });
  await page.screenshot({ path: path.join(SHOTS, '04-forecast-lead.png'), fullPage: true });
}, 120_000);

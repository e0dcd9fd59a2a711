/**
 * The simulator against a real Penumbra (own topic prefix and data folder, sink on): HTTP
 * sessions with consistent counts, a stop() that still ends every started session in the
 * warehouse, and real headless-Chromium sessions whose injected library sends telemetry. Only the
 * instrumented arms (the shadow and its control) send, with the token from resolve: verified.
 */
import { createServer } from 'node:net';
import { jest } from '@jest/globals';
import { startTestPenumbra, TOKENS, uploadForm, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { fixtureArchive } from '../shadowing/fixtures.ts';
import { warehousePaths } from '../warehouse/feature.ts';
import { queryParquet } from '../../connectors/duckdb-sink/query.ts';
import type { ShadowConfig } from '../domain/types.ts';
import { simulateCli } from '../../cli/simulate.ts';
import { runSimulation, startSimulation } from './runner.ts';
import { requires } from '../../test/requires.ts';

let t: TestPenumbra;
let itemId: string;
let parquetDir: string;

// Every user gets the shadow (50 %) or its control cohort (50 %), so each session is instrumented.
const shadow: ShadowConfig = {
  name: 'checkout-v2',
  instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
  endpoints: { api: 'https://shadow-api.example.com/v1' },
  traffic: { percentage: 50, match: 'all', rules: [] },
};

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor<T>(what: string, fn: () => Promise<T | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => false as const);
    if (v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const n = (x: unknown): number => Number(x);

beforeAll(async () => {
  // The shadow's injected library posts to PENUMBRA_PUBLIC_URL: pin it to the port we will bind.
  const port = await freePort();
  t = await startTestPenumbra('simulator', { PORT: String(port), PENUMBRA_PUBLIC_URL: `http://127.0.0.1:${port}` }, { sink: true });
  parquetDir = warehousePaths(t.dataDir).parquetDir;
  const up = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('multi-page-web', 'zip'), shadow) });
  expect(up.status).toBe(201);
  const body = (await up.json()) as { item: { itemId: string }; profile: { profileVersion: number } };
  itemId = body.item.itemId;
  await t.p.ctx.profileStore.waitForVersion(itemId, body.profile.profileVersion);
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

test('CLI: --help, and a bad effect is refused with the grammar', async () => {
  const log = jest.spyOn(console, 'log').mockImplementation(() => {});
  try {
    expect(await simulateCli(['--help'])).toBe(0);
    expect(String(log.mock.calls[0][0])).toMatch(/--effect EFFECT/);
  } finally {
    log.mockRestore();
  }
  await expect(simulateCli(['--items', 'x', '--url', t.url, '--effect', 'original:latency=+20%'])).rejects.toThrow(/shadows only/);
});

test('HTTP sessions: counts add up, artifacts are fetched once, stop() ends every started session', async () => {
  const h = startSimulation({ url: t.url, token: TOKENS.viewer, items: [itemId], users: 50, rate: 6, durationMs: 60_000, seed: 'sim-int', effects: ['shadow:latency=+20%'] });
  await new Promise((r) => setTimeout(r, 6000));
  const r = await h.stop();
  expect(r.durationMs).toBeLessThan(15_000); // stopped, not run for the full minute
  expect(r.errors).toEqual([]);
  expect(r.sessions.started).toBeGreaterThan(10);
  expect(Object.keys(r.sessions.byVariant).sort()).toEqual(['checkout-v2', 'control']);
  expect(r.sessions.byVariant['checkout-v2'] + r.sessions.byVariant.control).toBe(r.sessions.started);
  expect(r.sessions.original).toBe(0);
  expect(r.sessions.completed + r.sessions.sampledOut + r.sessions.original + r.sessions.unsent + r.sessions.failed).toBe(r.sessions.started);
  expect(r.artifacts.downloads).toBe(2); // the shadow's and the control's archive, once each
  expect(r.artifacts.cached).toBe(r.sessions.started - 2);
  expect(r.batches.accepted).toBe(r.batches.sent);
  expect(r.events.accepted).toBe(r.events.sent);
  expect(r.events.rejected).toBe(0);

  const prefix = `sim-${r.runId}-`;
  const sessions = await waitFor('the run in the Parquet snapshot', async () => {
    const [c] = await queryParquet(parquetDir, 'SELECT count(*) AS n FROM telemetry_events WHERE starts_with(session_id, $p)', { p: prefix });
    if (n(c.n) < r.events.accepted) return false;
    return queryParquet(parquetDir, `
      SELECT session_id, count(*) FILTER (WHERE type = 'session' AND name = 'start') AS starts,
             count(*) FILTER (WHERE type = 'session' AND name = 'end') AS ends, max(epoch_ms(ts)) AS last,
             max(epoch_ms(ts)) FILTER (WHERE type = 'session' AND name = 'end') AS end_ts
      FROM telemetry_events WHERE starts_with(session_id, $p) GROUP BY session_id`, { p: prefix });
  });
  expect(sessions).toHaveLength(r.sessions.completed);
  for (const s of sessions) {
    expect([n(s.starts), n(s.ends)]).toEqual([1, 1]);
    expect(n(s.end_ts)).toBe(n(s.last)); // the end is the session's last event
  }
  // Every simulated event carries the token from resolve: attributable, and the control says whose.
  const arms = await queryParquet(parquetDir, `
    SELECT variant, control_of, verified, count(*) AS events FROM telemetry_events
    WHERE starts_with(session_id, $p) GROUP BY ALL ORDER BY variant`, { p: prefix });
  expect(arms.map((a) => [a.variant, a.control_of, a.verified])).toEqual([['checkout-v2', null, true], ['control', 'checkout-v2', true]]);
}, 90_000);

requires(['chromium'])('browser sessions: the injected library sends real telemetry, clicks included', async () => {
  const r = await runSimulation({ url: t.url, items: [itemId], users: 20, rate: 0.5, durationMs: 16_000, browser: 3, seed: 'browser-int' });
  expect(r.errors).toEqual([]);
  expect(r.browser).toMatchObject({ sessions: 3, clicks: 3, failed: 0, avgSessionMs: expect.any(Number) });
  expect(Object.entries(r.browser!.byVariant).every(([v]) => v === 'checkout-v2' || v === 'control')).toBe(true);
  console.log(`simulator: browser sessions took ${r.browser!.avgSessionMs} ms each`);
  // Browser users are `<pool user>-b<runId>`; their events come from the library, not the simulator.
  const rows = await waitFor('library telemetry in the warehouse', async () => {
    const x = await queryParquet(parquetDir, `
      SELECT type, name, count(DISTINCT session_id) AS sessions, any_value(json_extract_string(attrs_json, '$.lib')) AS lib
      FROM telemetry_events WHERE ends_with(user_id, $suffix) GROUP BY ALL`, { suffix: `-b${r.runId}` });
    const get = (type: string, name: string) => n(x.find((e) => e.type === type && e.name === name)?.sessions ?? 0);
    return get('session', 'start') >= 3 && get('usage', 'buy') >= 3 && get('session', 'end') >= 3 ? x : false;
  });
  const start = rows.find((e) => e.type === 'session' && e.name === 'start')!;
  expect(start.lib).not.toBe('simulator');
  expect(rows.some((e) => e.type === 'perf')).toBe(true);
  // /launch handed each page its token: the library's telemetry is verified too.
  const [v] = await queryParquet(parquetDir, 'SELECT count(*) FILTER (WHERE NOT verified) AS unverified, count(*) AS n FROM telemetry_events WHERE ends_with(user_id, $suffix)', { suffix: `-b${r.runId}` });
  expect([n(v.unverified), n(v.n) > 0]).toEqual([0, true]);
}, 90_000);

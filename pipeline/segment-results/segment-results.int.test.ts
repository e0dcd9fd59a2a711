/**
 * Per-segment results on the real stack: one Penumbra (processors, DuckDB sink, segment
 * evaluator), real Kafka and registry, the simulator over HTTP.
 *
 * The simulated shadow hurts Android users (conversion −25 pp) and helps everyone else
 * (+20 pp): with Android at 45 % of the users the two cancel out over all users (−0.25 pp
 * expected), so the global comparison hides the regression. The per-segment results must find
 * it on deviceType=android and on a behavioural segment defined as SQL over the warehouse
 * ("users who used Android", from the assignments), name it in the sentence, and say the global
 * comparison does not show it.
 */
import { randomUUID } from 'node:crypto';
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

beforeAll(async () => {
  p = await createPenumbra(configFrom(env));
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
    url: p.url, items: [ITEM], users: 600, rate: 60, durationMs: 12_000, seed: SEED, flushIntervalMs: 500,
    effects: ['shadow[deviceType=android]:conversion:buy=-25pp', 'shadow[deviceType=ios,windows,macos,linux]:conversion:buy=+20pp'],
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
  expect(worse).toEqual(expect.arrayContaining(['deviceType=android', 'segment:android-users=in']));
  expect(s.breakdown.regressions.every((f) => f.adjustedP < 0.05)).toBe(true);
  expect(s.breakdown.correction.method).toBe('holm');
  expect(s.breakdown.correction.tests).toBeGreaterThanOrEqual(s.breakdown.cells.length);
  expect(s.breakdown.sentence).toMatch(/^Shadow checkout-v2 regresses for (deviceType=android|users in segment android-users): conversion:buy -\d/);
  expect(s.breakdown.sentence).toMatch(/The comparison over all users does not show it/);
  // And the others gain: an improvement outside the segment.
  expect(s.breakdown.improvements.map((f) => `${f.dimension}=${f.value}`)).toContain('segment:android-users=out');
});

test('a bad breakdown names the field at fault; an unknown item is 404; no token is 401', async () => {
  const bad = await results('by=planet');
  expect(bad.status).toBe(422);
  expect(bad.body.errors?.[0].path).toBe('query/by');
  expect((await results('shadow=nope')).body.errors?.[0].path).toBe('query/shadow');
  expect((await fetch(`${p.url}/api/v1/items/com.example.none/metrics/segments`, { headers: viewer })).status).toBe(404);
  expect((await fetch(`${p.url}/api/v1/items/${ITEM}/metrics/segments`)).status).toBe(401);
});

/**
 * Per-segment allocation on the real stack (one Penumbra on its own topic prefix: real Kafka,
 * registry, profile writer, analyzers; the simulator's devices with verified telemetry through
 * the collector; GENERATED data):
 *  - two cells (deviceType android / ios) whose simulated users prefer different shadows: after
 *    the automated mode runs, each cell's weights favour its own best arm; the decisions are on
 *    the command path (timeline, actor system:bandit) and audited with their evidence;
 *  - b also regresses (errors) on android only: the per-cell guardrail cuts b in android, never
 *    in ios, and the bandit-wide state keeps b;
 *  - a second resolver process applies the per-cell weights; an operator override of one cell
 *    (route) wins over the automated mode and is audited; a release hands it back.
 * Short periods come from configuration (PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS=1) and 250 ms ticks.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { uniquePrefix } from '../../test/stack-helpers.ts';
import type { ItemManifest } from '../domain/types.ts';
import { waitFor } from '../../test/wait-for.ts';
import { fixtureFiles } from '../shadowing/fixtures.ts';
import { writeArchive } from '../shadowing/archive.ts';
import { streamOptions } from '../telemetry/feature.ts';
import { startSimulation, type SimulationHandle } from '../simulator/runner.ts';
import { spawnResolver, type ChildResolver } from '../resolver/test-support.ts';
import { rolloutOptions } from '../rollout/feature.ts';
import { segmentAllocationOptions } from './feature.ts';

let t: TestPenumbra;
let sim: SimulationHandle | null = null;
let child: ChildResolver | null = null;
const ITEM = 'com.example.segalloc';
const extraEnv = {
  PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS: '1',
  PENUMBRA_RATE_RESOLVE: '0', PENUMBRA_RATE_TELEMETRY: '0', PENUMBRA_RATE_RUNTIME_CONFIG: '0', PENUMBRA_RATE_ARTIFACTS: '0',
};

interface CellView { cell: string; label: string; epoch: number; weights: { arm: string; weight: number }[]; dropped: { arm: string; reason: string }[]; override: { actor: string } | null; evidence: { arms: { arm: string; sessions: number; pBest: number }[] } | null }
interface SegView { profileVersion: number; by: string; global: { weights: { arm: string; weight: number }[]; dropped: unknown[] }; cells: CellView[]; history: { rule: string | null; automated: boolean; actor: string; cells: string[] }[] }

const json = (role: keyof typeof TOKENS, body: unknown) => ({ headers: { authorization: `Bearer ${TOKENS[role]}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
async function get<T>(p: string): Promise<T> {
  const res = await fetch(`${t.url}${p}`, { headers: t.auth('viewer') });
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
const segView = () => get<SegView>(`/api/v1/items/${ITEM}/bandit/segments`);
const weightOf = (c: CellView | undefined, arm: string) => c?.weights.find((w) => w.arm === arm)?.weight ?? NaN;
const cellOf = (v: SegView, cell: string) => v.cells.find((c) => c.cell === cell);

async function archive(): Promise<Buffer> {
  const files = fixtureFiles('multi-page-web');
  const m = JSON.parse(files.get('manifest.json')!.toString()) as ItemManifest;
  const manifest = { ...m, id: ITEM };
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  return writeArchive({ manifest, files }, 'zip');
}
const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 };

/** Variants a resolver gives `n` new users of one device type. */
async function tally(base: string, deviceType: string, n: number, tag: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const a = (await (await fetch(`${base}/api/v1/resolve?itemId=${ITEM}&userId=${tag}-${deviceType}-${i}&deviceType=${deviceType}`)).json()) as { variant: string };
    out[a.variant] = (out[a.variant] ?? 0) + 1;
  }
  return out;
}

beforeAll(async () => {
  const prefix = uniquePrefix('segalloc');
  streamOptions(prefix, { metrics: { allowedLatenessMs: 1000 } });
  rolloutOptions(prefix, { tickMs: 250 });
  segmentAllocationOptions(prefix, { tickMs: 250 });
  t = await startTestPenumbra('segalloc', { ...extraEnv, PENUMBRA_TOPIC_PREFIX: prefix });
}, 60_000);

afterAll(async () => {
  await sim?.stop().catch(() => undefined);
  await child?.stop();
  await t?.stop();
});

test('each cell learns its own best arm, a per-cell guardrail cuts a shadow in one cell only, resolvers apply cell weights, an override wins and is audited', async () => {
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await archive(), [
    { name: 'a', instrumentation, endpoints: {}, traffic: { percentage: 25 } },
    { name: 'b', instrumentation, endpoints: {}, traffic: { percentage: 25 } },
  ]) });
  expect(res.status).toBe(201);
  await t.p.ctx.profileStore.waitForVersion(ITEM, ((await res.json()) as { profile: { profileVersion: number } }).profile.profileVersion);
  const cur = await get<{ profileVersion: number; shadows: unknown[] }>(`/api/v1/items/${ITEM}/shadow-config`);
  const bandit = {
    arms: ['a', 'b'], metric: 'conversion:buy', burnInSessions: 15, reweightSeconds: 2, floorShare: 0.05,
    guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.05 }],
    segments: { by: 'deviceType', cells: ['android', 'ios'] },
  };
  const put = await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, { method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': `"${cur.profileVersion}"` }, body: JSON.stringify({ shadows: cur.shadows, bandit }) });
  expect(put.status).toBe(200);
  expect((await segView()).cells.map((c) => c.cell)).toEqual(['android', 'ios', '*']);

  // GENERATED data: android users convert +40 pp on a, ios users +40 pp on b; b also errors +60 pp on android.
  sim = startSimulation({ url: t.url, items: [ITEM], users: 6000, rate: 40, durationMs: 120_000, seed: 'segalloc-int', flushIntervalMs: 500,
    effects: ['a[deviceType=android]:conversion:buy=+40pp', 'b[deviceType=ios]:conversion:buy=+40pp', 'b[deviceType=android]:errors=+60pp'] });
  const learned = await waitFor('each cell favours its own best arm', async () => {
    const v = await segView();
    const android = cellOf(v, 'android');
    const ios = cellOf(v, 'ios');
    return weightOf(android, 'a') > 0.6 && weightOf(ios, 'b') > 0.6 && (android?.dropped.length ?? 0) > 0 ? v : undefined;
  }, 75_000, 500);
  await sim.stop();
  sim = null;

  const android = cellOf(learned, 'android')!;
  const ios = cellOf(learned, 'ios')!;
  // The guardrail cut b in android only; ios keeps b (its best), and the bandit-wide state keeps it.
  expect(android.dropped.map((d) => d.arm)).toEqual(['b']);
  expect(android.dropped[0].reason).toMatch(/errorRate increase .* in deviceType=android/);
  expect(weightOf(android, 'b')).toBe(0);
  expect(ios.dropped).toEqual([]);
  expect(learned.global.dropped).toEqual([]);
  // Evidence per cell: arm sizes and posteriors of the cell's own users.
  expect(ios.evidence!.arms.find((a) => a.arm === 'b')!.sessions).toBeGreaterThanOrEqual(15);
  // Decisions went through the command path: on the timeline as system:bandit, and audited with their evidence.
  expect(learned.history.some((h) => h.rule === 'segment_thompson' && h.automated && h.actor === 'system:bandit')).toBe(true);
  expect(learned.history.some((h) => h.rule === 'segment_guardrail' && h.cells.includes('android'))).toBe(true);
  const audit = await get<{ entries: { action: string; actor: string; evidence: { scope?: string; record?: { cells: { cell: string; arms: { posterior: unknown }[] }[] } } | null }[] }>(`/api/v1/audit?itemId=${ITEM}&actor=system:bandit`);
  const seg = audit.entries.filter((e) => e.action === 'bandit.reweight' && e.evidence?.record?.cells);
  expect(seg.length).toBeGreaterThan(0);
  expect(seg[0].evidence!.record!.cells[0].arms[0].posterior).toBeDefined();

  // Resolvers apply the cell weights: this process, and a second resolver process.
  child = await spawnResolver({
    KAFKA_BROKERS: t.cfg.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: t.cfg.schemaRegistryUrl, PORT: '0', PENUMBRA_CONTENT_PORT: '0',
    PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-segalloc-r-')), PENUMBRA_TOPIC_PREFIX: t.prefix, PENUMBRA_LOG_LEVEL: 'error', PENUMBRA_RATE_RESOLVE: '0',
  });
  const pv = (await segView()).profileVersion;
  await waitFor('child serves the current profile', async () => ((await (await fetch(`${child!.url}/api/v1/resolve?itemId=${ITEM}&userId=probe`)).json()) as { profileVersion: number }).profileVersion >= pv, 30_000, 250);
  for (const base of [t.url, child.url]) {
    const onAndroid = await tally(base, 'android', 60, `n${base.length}`);
    const onIos = await tally(base, 'ios', 60, `n${base.length}`);
    expect({ base, b: onAndroid.b ?? 0 }).toEqual({ base, b: 0 });
    expect(onAndroid.a ?? 0).toBeGreaterThan(onAndroid.control ?? 0);
    expect(onIos.b ?? 0).toBeGreaterThan((onIos.a ?? 0) + (onIos.control ?? 0));
  }

  // An operator override of ios: only the control for new ios users; the automated mode leaves the cell alone.
  const bad = await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments/ios`, { method: 'PUT', ...json('operator', { weights: { zz: 1 } }) });
  expect(bad.status).toBe(422);
  expect(await bad.text()).toMatch(/weights\/zz/);
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments/web`, { method: 'PUT', ...json('operator', { weights: { a: 1 } }) })).status).toBe(404);
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments/ios`, { method: 'PUT', ...json('viewer', { weights: { control: 1 } }) })).status).toBe(403);
  const ov = await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments/ios`, { method: 'PUT', ...json('operator', { weights: { control: 1 }, reason: 'hold ios on the original while support investigates' }) });
  expect(ov.status).toBe(200);
  const ovView = (await ov.json()) as SegView;
  expect(cellOf(ovView, 'ios')!.override).toMatchObject({ actor: expect.any(String) });
  expect(weightOf(cellOf(ovView, 'ios'), 'control')).toBe(1);
  await waitFor('child applies the override', async () => ((await (await fetch(`${child!.url}/api/v1/resolve?itemId=${ITEM}&userId=probe2`)).json()) as { profileVersion: number }).profileVersion >= ovView.profileVersion, 30_000, 250);
  expect(await tally(child.url, 'ios', 30, 'ov')).toEqual({ control: 30 });
  const opAudit = await get<{ entries: { action: string; reason: string | null }[] }>(`/api/v1/audit?itemId=${ITEM}&action=bandit.control`);
  expect(opAudit.entries.some((e) => /support investigates/.test(e.reason ?? ''))).toBe(true);
  const rel = await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments/ios`, { method: 'DELETE', ...json('operator', {}) });
  expect(rel.status).toBe(200);
  expect(cellOf((await rel.json()) as SegView, 'ios')!.override).toBeNull();
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/bandit/segments/ios`, { method: 'DELETE', ...json('operator', {}) })).status).toBe(409);
}, 170_000);

/**
 * Automated A/B on the real stack (one Penumbra on its own topic prefix: real Kafka, registry,
 * the simulator's devices with its effects, verified telemetry through the collector):
 *  - a regressing shadow is rolled back automatically while its healthy sibling advances a step,
 *    each decision on the timeline and in the audit log with its evidence; operator overrides;
 *  - a shadow that sends nothing is rolled back after its inconclusive limit; per-shadow
 *    rollback, activate and a revert from the history;
 *  - a bandit moves share toward the better arm, and a user keeps their arm across two resolver
 *    processes (a child resolver started after the weights moved reads the sticky topic);
 *  - a plan with onComplete: promote promotes its shadow (a new item version through the ingest
 *    path, no instrumentation), the promotion is rolled back, and promoted again by hand.
 * Short periods come from configuration (PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS=1,
 * PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS=1) and a 250 ms analyzer tick.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { uniquePrefix } from '../../test/stack-helpers.ts';
import type { ItemManifest } from '../domain/types.ts';
import { waitFor } from '../../test/wait-for.ts';
import { fixtureFiles } from '../shadowing/fixtures.ts';
import { readArchiveBuffer, writeArchive } from '../shadowing/archive.ts';
import { streamOptions } from '../telemetry/feature.ts';
import { startSimulation, type SimulationHandle } from '../simulator/runner.ts';
import { spawnResolver, type ChildResolver } from '../resolver/test-support.ts';
import { banditUnit, pickArm } from '../bandit/assign.ts';
import { rolloutOptions } from './feature.ts';
import { warehousePaths } from '../warehouse/feature.ts';
import { queryParquet } from '../../connectors/duckdb-sink/query.ts';

let t: TestPenumbra;
const sims: SimulationHandle[] = [];
const children: ChildResolver[] = [];
// The simulator's thousands of devices all come from 127.0.0.1: per-client device limits off.
const extraEnv = {
  PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS: '1', PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS: '1',
  PENUMBRA_RATE_RESOLVE: '0', PENUMBRA_RATE_TELEMETRY: '0', PENUMBRA_RATE_RUNTIME_CONFIG: '0', PENUMBRA_RATE_ARTIFACTS: '0',
};

interface PlanState { status: string; step: number; inconclusive: number; reason: string | null }
interface ShadowView { name: string; state: string; percentage: number; rolloutState: PlanState | null; rollout: unknown }
interface Decision { kind: string; rule: string | null; shadow: string | null; automated: boolean; actor: string; reason: string; evidence: Record<string, unknown>; percentage: number | null }
interface RolloutView { profileVersion: number; itemVersion: string; shadows: ShadowView[]; timeline: Decision[]; banditState: { epoch: number; weights: { arm: string; weight: number }[]; startedAt: number } | null; promotion: { shadow: string; fromItemVersion: string; toItemVersion: string } | null }

const json = (role: keyof typeof TOKENS, body: unknown) => ({ headers: { authorization: `Bearer ${TOKENS[role]}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
async function get<T>(p: string): Promise<T> {
  const res = await fetch(`${t.url}${p}`, { headers: t.auth('viewer') });
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
async function post(p: string, body: unknown = {}): Promise<Response> {
  return fetch(`${t.url}${p}`, { method: 'POST', ...json('operator', body) });
}
const view = (itemId: string) => get<RolloutView>(`/api/v1/items/${itemId}/rollout`);
const shadowOf = (v: RolloutView, name: string) => v.shadows.find((s) => s.name === name)!;

/** The multi-page fixture under another item id (one item per test). */
async function archiveFor(itemId: string, version?: string): Promise<Buffer> {
  const files = fixtureFiles('multi-page-web');
  const m = JSON.parse(files.get('manifest.json')!.toString()) as ItemManifest;
  const manifest = { ...m, id: itemId, ...(version ? { version } : {}) };
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  return writeArchive({ manifest, files }, 'zip');
}

async function ingest(itemId: string, shadows: unknown[]): Promise<number> {
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await archiveFor(itemId), shadows) });
  if (res.status !== 201) throw new Error(`ingest ${itemId}: ${res.status} ${await res.text()}`);
  const v = ((await res.json()) as { profile: { profileVersion: number } }).profile.profileVersion;
  await t.p.ctx.profileStore.waitForVersion(itemId, v);
  return v;
}

const instrumentation = (sampleRate = 1) => ({ capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate });

function simulate(items: string[], effects: string[], rate = 30): SimulationHandle {
  const h = startSimulation({ url: t.url, items, users: 4000, rate, durationMs: 120_000, effects, seed: `rollout-${items.join(',')}`, flushIntervalMs: 500 });
  sims.push(h);
  return h;
}

beforeAll(async () => {
  const prefix = uniquePrefix('rollout');
  // Options are per topic prefix and must be in place before createPenumbra.
  streamOptions(prefix, { metrics: { allowedLatenessMs: 1000 } });
  rolloutOptions(prefix, { tickMs: 250 });
  t = await startTestPenumbra('rollout', { ...extraEnv, PENUMBRA_TOPIC_PREFIX: prefix }, { sink: true });
}, 60_000);

afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop().catch(() => undefined)));
  await Promise.all(children.map((c) => c.stop()));
  await t?.stop();
});

test('a regressing shadow is rolled back on evidence while its healthy sibling advances; both on the timeline with evidence; overrides', async () => {
  const item = 'com.example.rollout-a';
  // Steps long enough for the continuous check to see a +40 pp regression (≈ 6 sessions/s per arm)
  // before the first analysis, even on a loaded machine.
  const plan = { steps: [20, 25], analysisSeconds: 8, minSessionsPerArm: 40, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], maxInconclusive: 8 };
  await ingest(item, [
    { name: 'bad', instrumentation: instrumentation(), endpoints: { api: 'https://bad.example.com/v1' }, traffic: { percentage: 20 }, rollout: plan },
    { name: 'good', instrumentation: instrumentation(), endpoints: { api: 'https://good.example.com/v1' }, traffic: { percentage: 20 }, rollout: plan },
  ]);
  const start = await view(item);
  expect(start.shadows.map((s) => [s.name, s.rolloutState?.status, s.percentage])).toEqual([['bad', 'running', 20], ['good', 'running', 20]]);
  expect(start.timeline.filter((d) => d.kind === 'start').map((d) => d.shadow).sort()).toEqual(['bad', 'good']);
  // Users the resolver puts in `bad` now.
  const badUsers: string[] = [];
  for (let i = 0; badUsers.length < 5 && i < 300; i++) {
    const r = (await (await fetch(`${t.url}/api/v1/resolve?itemId=${item}&userId=probe-${i}`)).json()) as { variant: string };
    if (r.variant === 'bad') badUsers.push(`probe-${i}`);
  }
  expect(badUsers).toHaveLength(5);

  const sim = simulate([item], ['bad:errors=+40pp']);
  const rolled = await waitFor('bad rolled back', async () => {
    const v = await view(item);
    return shadowOf(v, 'bad').rolloutState?.status === 'rolled_back' ? v : undefined;
  }, 60_000, 250).catch(async (err) => {
    const h = await get<Record<string, unknown>>('/api/v1/health');
    console.log(JSON.stringify({ view: await view(item), rollout: (h.checks as Record<string, unknown>)?.rollout ?? h, sim: sim.report }, null, 1).slice(0, 8000));
    throw err;
  });
  expect(shadowOf(rolled, 'bad').state).toBe('rolled_back');
  const rb = rolled.timeline.find((d) => d.kind === 'rollback' && d.shadow === 'bad')!;
  expect(rb).toMatchObject({ rule: 'guardrail', automated: true, actor: 'system:rollout' });
  expect(rb.reason).toMatch(/^bad step 1\/2 \(20%\): errorRate \+\d+(\.\d)? pp \[.+\] vs control is beyond the tolerated \+2 pp/);
  const g = (rb.evidence.guardrails as { verdict: string; ciLow: number; shadowN: number; controlN: number }[])[0];
  expect(g.verdict).toBe('regressed');
  expect(g.ciLow).toBeGreaterThan(0.02);
  expect(g.shadowN).toBeGreaterThanOrEqual(30);
  // Its users get the original now, the item stays active.
  expect(rolled.shadows.find((s) => s.name === 'good')!.state).toBe('active');
  for (const u of badUsers) expect(((await (await fetch(`${t.url}/api/v1/resolve?itemId=${item}&userId=${u}`)).json()) as { variant: string }).variant).toBe('original');

  const advanced = await waitFor('good advanced', async () => {
    const v = await view(item);
    return shadowOf(v, 'good').rolloutState?.step === 1 ? v : undefined;
  }, 60_000, 250);
  expect(shadowOf(advanced, 'good')).toMatchObject({ state: 'active', percentage: 25, rolloutState: { status: 'running' } });
  const adv = advanced.timeline.find((d) => d.kind === 'advance' && d.shadow === 'good')!;
  expect(adv).toMatchObject({ rule: 'passed', automated: true, percentage: 25 });
  expect((adv.evidence.sessions as { shadow: number; control: number }).control).toBeGreaterThanOrEqual(40);
  await sim.stop();

  // The audit log carries the evidence of automated decisions.
  const audit = await get<{ entries: { action: string; evidence: { decision?: { rule: string } } | null }[] }>(`/api/v1/audit?itemId=${item}&actor=system:rollout`);
  expect(audit.entries.find((e) => e.action === 'rollout.decision' && e.evidence?.decision?.rule === 'guardrail')).toBeDefined();

  // Overrides: pause (twice is a 409), resume, skip past the last step.
  const paused = await post(`/api/v1/items/${item}/shadows/good/rollout/pause`, { reason: 'lunch' });
  expect(paused.status).toBe(200);
  expect(shadowOf((await paused.json()) as RolloutView, 'good').rolloutState).toMatchObject({ status: 'paused', reason: expect.stringContaining('lunch') });
  expect((await post(`/api/v1/items/${item}/shadows/good/rollout/pause`)).status).toBe(409);
  expect((await post(`/api/v1/items/${item}/shadows/good/rollout/resume`)).status).toBe(200);
  const skipped = (await (await post(`/api/v1/items/${item}/shadows/good/rollout/skip`)).json()) as RolloutView;
  expect(shadowOf(skipped, 'good').rolloutState?.status).toBe('completed');
  expect(skipped.timeline[0]).toMatchObject({ kind: 'skip', automated: false, shadow: 'good' });
  expect((await post(`/api/v1/items/${item}/shadows/good/rollout/jump`)).status).toBe(422);
  expect((await post(`/api/v1/items/${item}/shadows/nope/rollout/pause`)).status).toBe(404);
  expect((await fetch(`${t.url}/api/v1/items/${item}/shadows/good/rollout/pause`, { method: 'POST', ...json('viewer', {}) })).status).toBe(403);
}, 150_000);

test('a shadow that sends nothing is rolled back after its inconclusive limit; per-shadow rollback, activate, revert', async () => {
  const item = 'com.example.rollout-b';
  const v0 = await ingest(item, [{ name: 'quiet', instrumentation: instrumentation(0), endpoints: {}, traffic: { percentage: 10 } }]);
  const cur = await get<{ profileVersion: number; shadows: unknown[] }>(`/api/v1/items/${item}/shadow-config`);
  const put = await fetch(`${t.url}/api/v1/items/${item}/shadow-config`, {
    method: 'PUT',
    headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': `"${cur.profileVersion}"` },
    body: JSON.stringify({ shadows: [{ ...(cur.shadows[0] as object), rollout: { steps: [10, 20], analysisSeconds: 2, minSessionsPerArm: 10, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], maxInconclusive: 2 } }] }),
  });
  expect(put.status).toBe(200);
  const sim = simulate([item], [], 10);
  const rolled = await waitFor('quiet rolled back', async () => {
    const v = await view(item);
    return shadowOf(v, 'quiet').rolloutState?.status === 'rolled_back' ? v : undefined;
  }, 30_000, 250);
  await sim.stop();
  const holds = rolled.timeline.filter((d) => d.shadow === 'quiet' && d.kind === 'hold');
  expect(holds).toHaveLength(1);
  expect(holds[0]).toMatchObject({ rule: 'insufficient_data' });
  expect(rolled.timeline.find((d) => d.kind === 'rollback')).toMatchObject({ rule: 'inconclusive_limit', shadow: 'quiet' });
  expect(shadowOf(rolled, 'quiet').rolloutState?.inconclusive).toBe(2);

  // By hand: activate, roll back again (twice is a 409), then revert to the configuration before the plan.
  expect((await post(`/api/v1/items/${item}/shadows/quiet/activate`)).status).toBe(200);
  expect((await post(`/api/v1/items/${item}/shadows/quiet/rollback`, { reason: 'by hand' })).status).toBe(200);
  expect((await post(`/api/v1/items/${item}/shadows/quiet/rollback`)).status).toBe(409);
  const history = await get<{ versions: { profileVersion: number; shadows: { name: string; rollout?: unknown }[] }[] }>(`/api/v1/items/${item}/history`);
  expect(history.versions.find((h) => h.profileVersion === v0)?.shadows[0].rollout ?? null).toBeNull();
  const reverted = await post(`/api/v1/items/${item}/shadows/quiet/revert`, { profileVersion: v0 });
  expect(reverted.status).toBe(200);
  expect(shadowOf((await reverted.json()) as RolloutView, 'quiet')).toMatchObject({ rollout: null, rolloutState: null });
  expect((await post(`/api/v1/items/${item}/shadows/quiet/revert`, { profileVersion: 99_999 })).status).toBe(404);
}, 90_000);

test('a bandit moves share toward the better arm and keeps users sticky across two resolver processes', async () => {
  const item = 'com.example.rollout-c';
  await ingest(item, [
    { name: 'a', instrumentation: instrumentation(), endpoints: {}, traffic: { percentage: 25 } },
    { name: 'b', instrumentation: instrumentation(), endpoints: {}, traffic: { percentage: 25 } },
  ]);
  const cur = await get<{ profileVersion: number; shadows: unknown[] }>(`/api/v1/items/${item}/shadow-config`);
  const put = await fetch(`${t.url}/api/v1/items/${item}/shadow-config`, {
    method: 'PUT',
    headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': `"${cur.profileVersion}"` },
    body: JSON.stringify({ shadows: cur.shadows, bandit: { arms: ['a', 'b'], metric: 'conversion:buy', burnInSessions: 15, reweightSeconds: 2, floorShare: 0.05 } }),
  });
  expect(put.status).toBe(200);
  const run = ((await view(item)).banditState!).startedAt;
  const resolveOn = async (base: string, userId: string) => ((await (await fetch(`${base}/api/v1/resolve?itemId=${item}&userId=${userId}`)).json()) as { variant: string; controlOf?: string }).variant;
  // Users exposed at equal weights, on the main process.
  const users = Array.from({ length: 150 }, (_, i) => `sticky-${i}`);
  const first = new Map<string, string>();
  for (const u of users) first.set(u, await resolveOn(t.url, u));
  expect(new Set(first.values())).toEqual(new Set(['a', 'b', 'control']));

  const sim = simulate([item], ['b:conversion:buy=+40pp']);
  const moved = await waitFor('share moved to b', async () => {
    const v = await view(item);
    const w = Object.fromEntries(v.banditState!.weights.map((x) => [x.arm, x.weight]));
    return v.banditState!.epoch >= 2 && w.b > 0.6 ? v : undefined;
  }, 90_000, 500);
  await sim.stop();
  const weights = moved.banditState!.weights;
  expect(moved.timeline.some((d) => d.kind === 'reweight' && d.rule === 'thompson' && d.actor === 'system:bandit')).toBe(true);
  const b = await get<{ history: { epoch: number | null; weights: { arm: string; weight: number }[] }[]; sticky: Record<string, number> | null }>(`/api/v1/items/${item}/bandit`);
  expect(b.history.filter((h) => h.epoch !== null).length).toBeGreaterThanOrEqual(2);
  expect(b.sticky!.b).toBeGreaterThan(0);

  // A second resolver process, started now: it learns who is sticky from the topic.
  const child = await spawnResolver({
    KAFKA_BROKERS: t.cfg.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: t.cfg.schemaRegistryUrl, PORT: '0', PENUMBRA_CONTENT_PORT: '0',
    PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-rollout-r-')), PENUMBRA_TOPIC_PREFIX: t.prefix, PENUMBRA_LOG_LEVEL: 'error', PENUMBRA_RATE_RESOLVE: '0',
  });
  children.push(child);
  // A resolver answers bandit users from the sticky topic once it has read it (health says so).
  await waitFor('child read the sticky topic', async () => /"banditSticky":\{"status":"ok"/.test(await (await fetch(`${child.url}/api/v1/health`)).text()), 30_000, 250);
  await waitFor('child serves the current weights', async () => (await fetch(`${child.url}/api/v1/resolve?itemId=${item}&userId=x`)).ok && ((await (await fetch(`${child.url}/api/v1/resolve?itemId=${item}&userId=x`)).json()) as { profileVersion: number }).profileVersion >= moved.profileVersion, 30_000, 250);
  const seed = item;
  const withoutSticky = users.filter((u) => pickArm(banditUnit(seed, u), weights) !== first.get(u)).length;
  // The weights moved enough that a plain pick would move many of them ...
  expect(withoutSticky).toBeGreaterThan(20);
  // ... yet every one keeps their arm on the other process.
  for (const u of users) expect({ u, arm: await resolveOn(child.url, u) }).toEqual({ u, arm: first.get(u) });
  // New users follow the weights.
  const fresh: Record<string, number> = {};
  for (let i = 0; i < 200; i++) {
    const v = await resolveOn(child.url, `fresh-${i}`);
    fresh[v] = (fresh[v] ?? 0) + 1;
  }
  expect(fresh.b).toBeGreaterThan(100);
  expect(run).toBe((await view(item)).banditState!.startedAt);
}, 180_000);

test('onComplete: promote makes the shadow the new original; the promotion is rolled back and redone by hand', async () => {
  const item = 'com.example.rollout-d';
  await ingest(item, [{ name: 'p', instrumentation: instrumentation(), endpoints: { api: 'https://promoted.example.com/v2' }, traffic: { percentage: 10 }, rollout: { steps: [10], analysisSeconds: 1, minSessionsPerArm: 0, onComplete: 'promote' } }]);
  const promoted = await waitFor('promoted', async () => {
    const v = await view(item);
    return v.promotion ? v : undefined;
  }, 30_000, 250);
  expect(promoted.promotion).toMatchObject({ shadow: 'p', fromItemVersion: '1.0.0', toItemVersion: expect.stringMatching(/^1\.0\.0\+p\.p\d+$/) });
  expect(promoted.itemVersion).toBe(promoted.promotion!.toItemVersion);
  expect(promoted.shadows.map((s) => s.name)).toEqual([]);
  expect(promoted.timeline.map((d) => d.kind)).toEqual(expect.arrayContaining(['complete', 'promote']));
  // The plan's promotion is automated and carries the completing decision as its evidence.
  expect(promoted.timeline.find((d) => d.kind === 'promote')).toMatchObject({ automated: true, actor: 'system:rollout', rule: 'plan_complete', evidence: { from: 'shadow', decidedOn: { trigger: 'plan', decision: { kind: 'complete' } } } });
  // The new original: the shadow's endpoints, no instrumentation; served to everyone.
  const r = (await (await fetch(`${t.url}/api/v1/resolve?itemId=${item}&userId=u1`)).json()) as { variant: string; artifactUrl: string };
  expect(r.variant).toBe('original');
  expect(r.artifactUrl).toContain(encodeURIComponent(promoted.itemVersion));
  const tree = await readArchiveBuffer(Buffer.from(await (await fetch(`${t.url}${r.artifactUrl}`)).arrayBuffer()));
  expect(tree.manifest.endpoints).toEqual({ api: 'https://promoted.example.com/v2' });
  expect([...tree.files.keys()].some((f) => f.startsWith('__penumbra'))).toBe(false);
  const catalog = await get<{ versions: { version: string }[] }>(`/api/v1/items/${item}`);
  expect(catalog.versions.map((v) => v.version)).toEqual(['1.0.0', promoted.itemVersion]);

  const back = await post(`/api/v1/items/${item}/promotion/rollback`, { reason: 'checkout broke' });
  expect(back.status).toBe(200);
  const bv = (await back.json()) as RolloutView;
  expect(bv).toMatchObject({ itemVersion: '1.0.0', promotion: null });
  expect(shadowOf(bv, 'p').state).toBe('rolled_back');
  const r2 = (await (await fetch(`${t.url}/api/v1/resolve?itemId=${item}&userId=u1`)).json()) as { variant: string; artifactUrl: string };
  expect(r2.artifactUrl).toContain('version=1.0.0');
  expect((await post(`/api/v1/items/${item}/promotion/rollback`)).status).toBe(409);

  const byHand = await post(`/api/v1/items/${item}/shadows/p/promote`);
  expect(byHand.status).toBe(201);
  const hv = (await byHand.json()) as RolloutView & { promoted: { itemVersion: string; replacements: number } };
  expect(hv.promoted.replacements).toBeGreaterThan(0);
  expect(hv.promotion).toMatchObject({ shadow: 'p', fromItemVersion: '1.0.0' });
  expect(hv.timeline[0]).toMatchObject({ kind: 'promote', automated: false });

  // A version shadow (predictive shadowing, #13) is promoted by the same path: its version
  // becomes the original, one promote command, rolled back the same way.
  expect((await post(`/api/v1/items/${item}/promotion/rollback`)).status).toBe(200);
  const fd = new FormData();
  fd.append('proactive', 'true');
  fd.append('rollout', JSON.stringify({ steps: [5, 10], analysisSeconds: 60, minSessionsPerArm: 50 }));
  fd.append('item', new Blob([new Uint8Array(await archiveFor(item, '1.1.0'))]), 'item.zip');
  const pro = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: fd });
  expect(pro.status).toBe(201);
  const pj = (await pro.json()) as { versionShadow: string; profile: { profileVersion: number; shadows: ShadowView[] } };
  expect(pj.versionShadow).toBe('v-1-1-0');
  // Its risk-sized plan is its rollout plan in the profile (not a schedule held by one process).
  expect(pj.profile.shadows.find((x) => x.name === 'v-1-1-0')).toMatchObject({ rollout: { steps: [{ percentage: 5 }, { percentage: 10 }], minSessionsPerArm: 50 }, rolloutState: { status: 'running', step: 0 } });
  await t.p.ctx.profileStore.waitForVersion(item, pj.profile.profileVersion);
  expect((await post(`/api/v1/items/${item}/versions/9.9.9/promote`)).status).toBe(404);
  const vp = await post(`/api/v1/items/${item}/shadows/v-1-1-0/promote`, { reason: 'looks good' });
  expect(vp.status).toBe(201);
  const vv = (await vp.json()) as RolloutView & { promoted: { from: string; itemVersion: string } };
  expect(vv.promoted).toMatchObject({ from: 'version', itemVersion: '1.1.0' });
  expect(vv).toMatchObject({ itemVersion: '1.1.0', promotion: { shadow: 'v-1-1-0', fromItemVersion: '1.0.0', toItemVersion: '1.1.0' } });
  expect(vv.timeline[0]).toMatchObject({ kind: 'promote', shadow: 'v-1-1-0', automated: false, evidence: { from: 'version', fromItemVersion: '1.0.0', toItemVersion: '1.1.0' } });
  expect((await post(`/api/v1/items/${item}/versions/1.1.0/promote`)).status).toBe(409);
  // Audited like every promotion, with its evidence.
  const audit = await waitFor('promote audited', async () => {
    const a = await get<{ entries: { action: string; reason: string | null; evidence: Record<string, unknown> | null }[] }>(`/api/v1/audit?itemId=${item}`);
    const e = a.entries.filter((x) => x.action === 'promote');
    return e.length >= 3 ? e : undefined;
  }, 15_000, 250);
  expect(audit.find((e) => e.reason?.includes('version 1.1.0'))).toMatchObject({ reason: expect.stringContaining('looks good'), evidence: { from: 'version', toItemVersion: '1.1.0' } });
  // The version route is the same path: back to 1.0.0, then promoted by version number.
  expect((await post(`/api/v1/items/${item}/promotion/rollback`)).status).toBe(200);
  const byVersion = await post(`/api/v1/items/${item}/versions/1.1.0/promote`);
  expect(byVersion.status).toBe(200);
  expect(((await byVersion.json()) as { promoted: { from: string } }).promoted.from).toBe('version');
}, 90_000);

test('the warehouse holds the timeline with its evidence and the bandit\'s weight history (rollout_decisions, bandit_weights, audit.evidence_json)', async () => {
  const { parquetDir } = warehousePaths(t.dataDir);
  type Row = Record<string, unknown>;
  const rows = await waitFor('decisions in the warehouse', async () => {
    const r = await queryParquet(parquetDir, "SELECT item_id, kind, rule, automated, evidence_json FROM rollout_decisions WHERE item_id LIKE 'com.example.rollout-%'") as Row[];
    return r.some((x) => x.kind === 'promote') && r.some((x) => x.rule === 'guardrail') && r.some((x) => x.kind === 'reweight') ? r : undefined;
  }, 30_000, 500);
  const rb = rows.find((x) => x.item_id === 'com.example.rollout-a' && x.kind === 'rollback')!;
  expect(rb).toMatchObject({ rule: 'guardrail', automated: true });
  expect(JSON.parse(rb.evidence_json as string)).toMatchObject({ rule: 'guardrail', shadow: 'bad' });
  const w = await waitFor('bandit weights in the warehouse', async () => {
    const r = await queryParquet(parquetDir, "SELECT arm, weight, epoch FROM bandit_weights WHERE item_id = 'com.example.rollout-c'") as Row[];
    return r.some((x) => Number(x.epoch) >= 1) ? r : undefined;
  }, 30_000, 500);
  for (const x of w) expect(Number(x.weight)).toBeGreaterThanOrEqual(0);
  const audit = await queryParquet(parquetDir, "SELECT evidence_json FROM audit WHERE item_id = 'com.example.rollout-a' AND action = 'rollout.decision' AND evidence_json IS NOT NULL") as Row[];
  expect(audit.map((x) => (JSON.parse(x.evidence_json as string) as { decision: { rule: string } }).decision.rule)).toContain('guardrail');
}, 60_000);

/**
 * Live shadow configuration on the real stack (issue 4): If-Match serialised by the single
 * profile writer (two concurrent PUTs → one 200, one 409, both audited, no lost update),
 * validation with field paths, rollback and explicit re-activation, and runtime config that
 * changes running shadows without re-ingest.
 */
import { startTestPenumbra, uploadForm, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../shadowing/fixtures.ts';

let t: TestPenumbra;
const ITEM = 'com.example.apirefs';

beforeAll(async () => {
  t = await startTestPenumbra('config');
  const cfg = goldenConfig('api-refs', fixtureTree('api-refs'));
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('api-refs', 'zip'), cfg) });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await t?.stop();
});

interface ConfigView {
  profileVersion: number;
  state: string;
  shadows: { name: string; traffic: { percentage: number }; instrumentation: { points: { id: string }[] } }[];
}

async function getConfig(): Promise<{ etag: string; body: ConfigView }> {
  const res = await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, { headers: t.auth('viewer') });
  expect(res.status).toBe(200);
  return { etag: res.headers.get('etag')!, body: (await res.json()) as ConfigView };
}

function put(etag: string | null, body: unknown, role: 'operator' | 'viewer' = 'operator') {
  return fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, {
    method: 'PUT',
    headers: { ...t.auth(role), 'content-type': 'application/json', ...(etag ? { 'if-match': etag } : {}) },
    body: JSON.stringify(body),
  });
}

async function audit(): Promise<{ action: string; outcome: string; actor: string; reason: string | null; before: ConfigView | null; after: unknown }[]> {
  const res = await fetch(`${t.url}/api/v1/audit?itemId=${ITEM}&limit=100`, { headers: t.auth('viewer') });
  return ((await res.json()) as { entries: never[] }).entries;
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  let v = await fn();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    v = await fn();
  }
  return v;
}

test('two concurrent PUTs with the same If-Match: one 200, one 409, both audited, no lost update', async () => {
  const { etag, body } = await getConfig();
  const shadows = (pct: number) => body.shadows.map((s) => ({ ...s, artifact: undefined, traffic: { ...s.traffic, percentage: pct } }));
  const [a, b] = await Promise.all([put(etag, { shadows: shadows(30) }), put(etag, { shadows: shadows(40) })]);
  const statuses = [a.status, b.status].sort();
  expect(statuses).toEqual([200, 409]);
  const loser = a.status === 409 ? a : b;
  const problem = (await loser.json()) as { type: string; detail: string; current: { profileVersion: number; updatedBy: string } };
  expect(problem.type).toMatch(/conflict$/);
  expect(problem.detail).toMatch(/changed by operator/);
  expect(problem.current.profileVersion).toBe(body.profileVersion + 1);
  const winnerPct = (a.status === 200 ? 30 : 40);
  const after = await getConfig();
  expect(after.body.profileVersion).toBe(body.profileVersion + 1);
  expect(after.body.shadows[0].traffic.percentage).toBe(winnerPct);
  const entries = await eventually(audit, (e) => e.some((x) => x.outcome === 'rejected'));
  expect(entries.filter((e) => e.action === 'shadow-config.put' && e.outcome === 'accepted')).toHaveLength(1);
  const rejected = entries.filter((e) => e.action === 'shadow-config.put.rejected');
  expect(rejected).toHaveLength(1);
  expect(rejected[0].reason).toMatch(/^conflict/);
  const accepted = entries.find((e) => e.action === 'shadow-config.put')!;
  expect(accepted.actor).toBe('operator');
  expect(accepted.before!.shadows[0].traffic.percentage).toBe(body.shadows[0].traffic.percentage);
});

test('PUT needs If-Match (428), validates with field paths (422) and a viewer may not (403)', async () => {
  const { etag, body } = await getConfig();
  expect((await put(null, { shadows: body.shadows })).status).toBe(428);
  expect((await put(etag, { shadows: body.shadows }, 'viewer')).status).toBe(403);
  const bad = await put(etag, { shadows: [{ ...body.shadows[0], traffic: { percentage: 120, match: 'all', rules: [{ attribute: 'appVersion', op: 'semver', range: 'not a range' }] } }] });
  expect(bad.status).toBe(422);
  expect(bad.headers.get('content-type')).toMatch(/problem\+json/);
  const paths = ((await bad.json()) as { errors: { path: string }[] }).errors.map((e) => e.path);
  expect(paths).toEqual(expect.arrayContaining(['shadows/0/traffic/percentage', 'shadows/0/traffic/rules/0/range']));
  expect((await getConfig()).body.profileVersion).toBe(body.profileVersion);
});

test('runtime config follows a PUT without re-ingest (points, sampling)', async () => {
  const { etag, body } = await getConfig();
  const s = body.shadows[0];
  const res = await put(etag, { shadows: [{ ...s, artifact: undefined, instrumentation: { ...s.instrumentation, sampleRate: 0.25, points: [{ id: 'signup', selector: '#signup', event: 'submit' }] } }] });
  expect(res.status).toBe(200);
  const rc = (await (await fetch(`${t.url}/api/v1/items/${ITEM}/runtime-config?variant=${s.name}`)).json()) as { sampleRate: number; points: { id: string }[]; enabled: boolean; profileVersion: number };
  expect(rc).toMatchObject({ sampleRate: 0.25, enabled: true, profileVersion: body.profileVersion + 1 });
  expect(rc.points.map((p) => p.id)).toEqual(['signup']);
});

test('rollback sends everyone to the original at once, is audited, and re-activation is explicit', async () => {
  const { body } = await getConfig();
  const s = body.shadows[0];
  // Everyone eligible at 100 % first (no control cohort, so it fits), so the switch is visible for every user.
  const full = await put(`"${body.profileVersion}"`, { shadows: [{ ...s, artifact: undefined, control: false, traffic: { percentage: 100, match: 'all', rules: [] } }] });
  expect(full.status).toBe(200);
  const resolve = async (u: string) => ((await (await fetch(`${t.url}/api/v1/resolve?itemId=${ITEM}&userId=${u}`)).json()) as { variant: string; profileVersion: number });
  expect((await resolve('u-1')).variant).toBe(s.name);
  const rb = await fetch(`${t.url}/api/v1/items/${ITEM}/rollback`, { method: 'POST', headers: { ...t.auth('operator'), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'p95 regression' }) });
  expect(rb.status).toBe(200);
  const rolled = (await rb.json()) as ConfigView;
  expect(rolled.state).toBe('rolled_back');
  for (const u of ['u-1', 'u-2', 'u-3', 'u-4']) {
    const r = await resolve(u);
    expect(r).toMatchObject({ variant: 'original', profileVersion: rolled.profileVersion });
  }
  const rc = (await (await fetch(`${t.url}/api/v1/items/${ITEM}/runtime-config?variant=${s.name}`)).json()) as { enabled: boolean };
  expect(rc.enabled).toBe(false);
  // The configuration survived: activation restores the same shadows.
  const act = await fetch(`${t.url}/api/v1/items/${ITEM}/activate`, { method: 'POST', headers: { ...t.auth('operator'), 'content-type': 'application/json' }, body: '{}' });
  expect(act.status).toBe(200);
  expect((await resolve('u-1')).variant).toBe(s.name);
  const entries = await eventually(audit, (e) => e.some((x) => x.action === 'activate'));
  const rbEntry = entries.find((e) => e.action === 'rollback')!;
  expect(rbEntry).toMatchObject({ actor: 'operator', reason: 'p95 regression' });
  expect((rbEntry.after as ConfigView).state).toBe('rolled_back');
  // Rollback needs a token and the operator role.
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/rollback`, { method: 'POST' })).status).toBe(401);
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/rollback`, { method: 'POST', headers: t.auth('viewer') })).status).toBe(403);
});

test('a legacy rollout schedule still ramps the share by itself: it becomes the shadow\'s timer plan (pipeline/rollout)', async () => {
  const { etag, body } = await getConfig();
  const s = body.shadows[0];
  const res = await put(etag, { shadows: [{ ...s, artifact: undefined, traffic: { percentage: 0, match: 'all', rules: [] } }], schedule: { shadow: s.name, steps: [{ percentage: 5, holdSeconds: 1 }, { percentage: 15, holdSeconds: 1 }] } });
  expect(res.status).toBe(200);
  const first = (await res.json()) as ConfigView & { shadows: { rollout: { steps: { percentage: number }[]; minSessionsPerArm: number; guardrails: unknown[] }; rolloutState: { status: string; step: number } }[] };
  expect(first.shadows[0].traffic.percentage).toBe(5);
  expect(first.shadows[0].rollout).toMatchObject({ steps: [{ percentage: 5 }, { percentage: 15 }], minSessionsPerArm: 0, guardrails: [] });
  expect(first.shadows[0].rolloutState).toMatchObject({ status: 'running', step: 0 });
});

test('switching a control on builds the control artifact; switching it off sends its users back to the original', async () => {
  const item = 'com.example.jsentry';
  const cfg = { ...goldenConfig('js-entry', fixtureTree('js-entry')), control: false, traffic: { percentage: 30, match: 'all', rules: [] } };
  const up = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('js-entry', 'zip'), cfg) });
  expect(up.status).toBe(201);
  expect(((await up.json()) as { item: { versions: { variants: { name: string }[] }[] } }).item.versions[0].variants.map((v) => v.name)).toEqual(['original', 'checkout-v2']);
  expect((await fetch(`${t.url}/api/v1/items/${item}/artifacts/control`)).status).toBe(404);
  const cur = await fetch(`${t.url}/api/v1/items/${item}/shadow-config`, { headers: t.auth('viewer') });
  const body = (await cur.json()) as ConfigView & { shadows: { control: boolean }[] };
  expect(body.shadows[0].control).toBe(false);
  const on = await fetch(`${t.url}/api/v1/items/${item}/shadow-config`, {
    method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': cur.headers.get('etag')! },
    body: JSON.stringify({ shadows: [{ ...body.shadows[0], artifact: undefined, control: true }] }),
  });
  expect(on.status).toBe(200);
  const next = (await on.json()) as { profileVersion: number; controlArtifact: { sha256: string } | null; shadows: { control: boolean }[] };
  expect(next.shadows[0].control).toBe(true);
  expect(next.controlArtifact).not.toBeNull();
  const dl = await fetch(`${t.url}/api/v1/items/${item}/artifacts/control`);
  expect(dl.status).toBe(200);
  expect(dl.headers.get('etag')).toBe(`"${next.controlArtifact!.sha256}"`);
  const resolve = async (u: string) => ((await (await fetch(`${t.url}/api/v1/resolve?itemId=${item}&userId=${u}`)).json()) as { variant: string; controlOf?: string; launchUrl: string });
  const users = await Promise.all(Array.from({ length: 60 }, (_, i) => resolve(`c-${i}`)));
  const control = users.find((u) => u.variant === 'control')!;
  expect(control).toMatchObject({ controlOf: 'checkout-v2' });
  expect((await fetch(`${t.url}${control.launchUrl}`, { redirect: 'follow' })).status).toBe(200);
  // Off again: no more control users (the artifact stays for the version; nobody is sent there).
  const off = await fetch(`${t.url}/api/v1/items/${item}/shadow-config`, {
    method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': `"${next.profileVersion}"` },
    body: JSON.stringify({ shadows: [{ ...next.shadows[0], artifact: undefined, control: false }] }),
  });
  expect(off.status).toBe(200);
  expect((await Promise.all(Array.from({ length: 60 }, (_, i) => resolve(`c-${i}`)))).some((u) => u.variant === 'control')).toBe(false);
});

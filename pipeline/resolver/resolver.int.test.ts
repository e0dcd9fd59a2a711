/**
 * The resolver against a real Penumbra (createPenumbra, own topic prefix, temp data folder,
 * real Kafka and registry): answers equal trafficSplit, headers fill attributes, launch
 * redirects and keeps a browser's bucket, assignments reach Kafka (seen through /exposures),
 * heartbeats reach /resolvers, a resolver-only process with Kafka DOWN answers from the
 * on-disk snapshot, and a rollback turns every answer to the original. Every answer carries a
 * signed assignment token for exactly that decision (control cohorts with their controlOf).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createPenumbra, type Penumbra } from '../app/penumbra.ts';
import { trafficSplit } from '../traffic-split/traffic-split.ts';
import { verifyAssignment } from '../assignment-token/token.ts';
import { snapshotPaths } from './catalog-snapshot.ts';
import { ADMIN_TOKEN, VIEWER_TOKEN, configFrom, ingestFixture, mobileShadow, resolverEnv, spawnResolver, waitFor, type ChildResolver } from './test-support.ts';

const env = resolverEnv('resolver');
let p: Penumbra;
let itemId: string;
let version: number;
const children: ChildResolver[] = [];
const users = Array.from({ length: 120 }, (_, i) => `user-${i}`);

interface Answer {
  itemId: string;
  variant: string;
  controlOf?: string;
  artifactUrl: string | null;
  launchUrl: string | null;
  profileVersion: number;
  reason: string;
  bucket: number;
  derived: Record<string, string>;
  token: string;
  tokenExpiresAt: number;
}

async function resolve(base: string, q: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Answer; headers: Headers }> {
  const res = await fetch(`${base}/api/v1/resolve?${new URLSearchParams(q)}`, { headers });
  return { status: res.status, body: (await res.json()) as Answer, headers: res.headers };
}

beforeAll(async () => {
  p = await createPenumbra(configFrom(env), { sink: false });
  // 25 % of mobile users get the shadow, 25 % its control cohort, the rest the original.
  ({ itemId, profileVersion: version } = await ingestFixture(p.ctx, mobileShadow(25)));
  await p.ctx.profileStore.waitForVersion(itemId, version);
  await waitFor('catalog entry', () => p.ctx.catalog.find(itemId));
  // Start the (lazy) exposure counter now, so it has caught up when the exposures test reads it.
  expect((await fetch(`${p.url}/api/v1/exposures?itemId=${itemId}`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } })).status).toBe(200);
});

afterAll(async () => {
  for (const c of children) await c.stop();
  await p?.stop();
});

test('answers equal trafficSplit for a sample of users, with artifact and launch URLs', async () => {
  const compiled = p.ctx.profileStore.compiledFor(itemId);
  const entry = p.ctx.catalog.version(itemId);
  const seen = new Set<string>();
  for (const userId of users) {
    const { status, body, headers } = await resolve(p.url, { itemId, userId, deviceType: 'android', country: 'DE' });
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(headers.get('access-control-allow-origin')).toBe('*');
    const want = trafficSplit({ userId, deviceType: 'android', country: 'DE' }, compiled);
    expect({ variant: body.variant, bucket: body.bucket, reason: body.reason, ...(body.controlOf ? { controlOf: body.controlOf } : {}) }).toEqual(want);
    // The token signs exactly this decision, for a day.
    const v = verifyAssignment(body.token, p.ctx.assignmentKeys, Date.now());
    expect(v.ok && v.claims).toMatchObject({ itemId, userId, variant: body.variant, profileVersion: version });
    expect(v.ok && v.claims.controlOf).toBe(body.controlOf);
    expect(Math.abs(body.tokenExpiresAt - (Date.now() + 86_400_000))).toBeLessThan(60_000);
    expect(body.profileVersion).toBe(version);
    expect(body.artifactUrl).toBe(`/api/v1/items/${itemId}/artifacts/${body.variant}?version=${entry.version}`);
    expect(body.launchUrl).toBe(`/d/${itemId}/${entry.version}/${body.variant}/${entry.entry}`);
    expect(body.derived).toEqual({});
    seen.add(body.variant);
  }
  // 25 % shadow + 25 % control of mobile users: all three arms show up in 120 users.
  expect([...seen].sort()).toEqual(['checkout-v2', 'control', 'original']);
  // Rules apply: a desktop user never gets the shadow.
  const desk = await resolve(p.url, { itemId, userId: users[0], deviceType: 'windows' });
  expect(desk.body).toMatchObject({ variant: 'original', reason: 'no_match' });
  // Custom attributes pass through validation.
  expect((await resolve(p.url, { itemId, userId: 'u', 'attr.plan': 'pro' })).status).toBe(200);
});

test('derives deviceType and country from headers when the query omits them', async () => {
  const compiled = p.ctx.profileStore.compiledFor(itemId);
  const ua = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36';
  for (const userId of users.slice(0, 30)) {
    const { body } = await resolve(p.url, { itemId, userId }, { 'user-agent': ua, 'cf-ipcountry': 'XX', 'x-vercel-ip-country': 'nl' });
    expect(body.derived).toEqual({ deviceType: 'user-agent', country: 'x-vercel-ip-country' });
    expect(body.variant).toBe(trafficSplit({ userId, deviceType: 'android', country: 'NL' }, compiled).variant);
  }
  // Client hints win over the User-Agent: a Windows hint with an Android UA is desktop.
  const hinted = await resolve(p.url, { itemId, userId: users[0] }, { 'user-agent': ua, 'sec-ch-ua-platform': '"Windows"' });
  expect(hinted.body).toMatchObject({ variant: 'original', reason: 'no_match', derived: { deviceType: 'sec-ch-ua-platform' } });
  // The query wins over headers and is not reported as derived.
  const given = await resolve(p.url, { itemId, userId: users[0], deviceType: 'windows', country: 'FR' }, { 'user-agent': ua, 'cf-ipcountry': 'DE' });
  expect(given.body.derived).toEqual({});
});

test('unknown items get the original, never an error; bad queries get 422 with field paths', async () => {
  const unknown = await resolve(p.url, { itemId: 'com.nobody.here', userId: 'u1', deviceType: 'android' });
  expect(unknown.status).toBe(200);
  expect(unknown.body).toEqual({ itemId: 'com.nobody.here', variant: 'original', artifactUrl: null, launchUrl: null, profileVersion: 0, reason: 'no_profile', bucket: -1, derived: {}, token: expect.any(String), tokenExpiresAt: expect.any(Number) });
  const bad = await fetch(`${p.url}/api/v1/resolve?itemId=${itemId}&userId=${'x'.repeat(300)}&attr.b%40d=1`);
  expect(bad.status).toBe(422);
  expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
  const problem = (await bad.json()) as { errors: { path: string }[] };
  expect(problem.errors.map((e) => e.path).sort()).toEqual(['query/attr.b@d', 'query/userId']);
});

test('launch redirects to the resolved variant and keeps a browser in its bucket by cookie', async () => {
  for (const userId of users.slice(0, 10)) {
    const { body } = await resolve(p.url, { itemId, userId, deviceType: 'ios' });
    const res = await fetch(`${p.url}/launch/${itemId}?userId=${userId}&deviceType=ios`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    // The user id rides along so the injected library reports telemetry under it.
    // …on the item pages' own origin, never the console's (connectors/http/content-origin.ts).
    // So does the assignment token, which the library sends with every batch.
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(`${p.contentUrl}${body.launchUrl}`);
    expect([...location.searchParams.keys()]).toEqual(['penumbra_uid', 'penumbra_token']);
    expect(location.searchParams.get('penumbra_uid')).toBe(userId);
    const claims = verifyAssignment(location.searchParams.get('penumbra_token'), p.ctx.assignmentKeys, Date.now(), { userId, variant: body.variant, itemId });
    expect(claims.ok).toBe(true);
    expect(new URL(p.contentUrl).origin).not.toBe(new URL(p.url).origin);
    expect(res.headers.get('set-cookie')).toBeNull();
  }
  const ua = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148';
  const first = await fetch(`${p.url}/launch/${itemId}`, { redirect: 'manual', headers: { 'user-agent': ua } });
  expect(first.status).toBe(302);
  const cookie = first.headers.get('set-cookie')!;
  expect(cookie).toMatch(/^penumbra_uid=[A-Za-z0-9-]{8,}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
  const uid = /penumbra_uid=([^;]+)/.exec(cookie)![1];
  const want = trafficSplit({ userId: uid, deviceType: 'ios' }, p.ctx.profileStore.compiledFor(itemId));
  expect(first.headers.get('location')).toContain(`/${want.variant}/`);
  // Same target for the same browser: the URL without its token, and a token valid for the same
  // user and variant (the token itself carries `iat` in seconds, so two launches either side of
  // a second boundary differ in it — that once failed this test on a loaded machine).
  const target = (location: string | null) => {
    const u = new URL(location!);
    const token = u.searchParams.get('penumbra_token');
    u.searchParams.delete('penumbra_token');
    return { url: u.toString(), tokenOk: verifyAssignment(token, p.ctx.assignmentKeys, Date.now(), { userId: uid, variant: want.variant, itemId }).ok };
  };
  expect(target(first.headers.get('location')).tokenOk).toBe(true);
  for (let i = 0; i < 3; i++) {
    const again = await fetch(`${p.url}/launch/${itemId}`, { redirect: 'manual', headers: { 'user-agent': ua, cookie: `other=1; penumbra_uid=${uid}` } });
    expect(target(again.headers.get('location'))).toEqual(target(first.headers.get('location')));
    expect(again.headers.get('set-cookie')).toBeNull();
  }
  // The redirect target is served (the variant's entry page).
  const page = await fetch(first.headers.get('location')!);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect((await fetch(`${p.url}/launch/com.nobody.here?userId=u`, { redirect: 'manual' })).status).toBe(404);
});

test('assignments reach Kafka: exposures count every decision of the current version', async () => {
  const before = p.ctx.healthChecks.length;
  expect(before).toBeGreaterThan(0);
  const viewer = { authorization: `Bearer ${VIEWER_TOKEN}` };
  expect((await fetch(`${p.url}/api/v1/exposures?itemId=${itemId}`)).status).toBe(401);
  // Fresh users, so the expected counts are exactly these decisions plus earlier tests' ones.
  const res0 = (await (await fetch(`${p.url}/api/v1/exposures?itemId=${itemId}`, { headers: viewer })).json()) as { total: number };
  const extra: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const { body } = await resolve(p.url, { itemId, userId: `exp-${i}`, deviceType: 'android' });
    extra[body.variant] = (extra[body.variant] ?? 0) + 1;
  }
  const view = await waitFor('exposures', async () => {
    const v = (await (await fetch(`${p.url}/api/v1/exposures?itemId=${itemId}`, { headers: viewer })).json()) as { itemId: string; profileVersion: number; counts: Record<string, number>; total: number; since: number };
    return v.total >= res0.total + 40 ? v : undefined;
  });
  expect(view.profileVersion).toBe(version);
  expect(view.since).toBeGreaterThan(0);
  expect(view.total).toBe(Object.values(view.counts).reduce((a, b) => a + b, 0));
  for (const [variant, n] of Object.entries(extra)) expect(view.counts[variant]).toBeGreaterThanOrEqual(n);
  const health = (await (await fetch(`${p.url}/api/v1/health`)).json()) as { checks: Record<string, Record<string, unknown>> };
  expect(health.checks.assignments).toMatchObject({ status: 'ok', dropped: 0 });
  expect(health.checks.resolver).toMatchObject({ status: 'ok', profileSource: 'kafka' });
  // Which kafkajs load-time patches took effect (under jest's module registry they may not: ok either way).
  const bool = expect.any(Boolean) as boolean;
  expect(health.checks.kafkajs).toMatchObject({ status: 'ok', stock: bool, groupingLinear: bool, idleTimerGuard: bool, timeoutSweep: bool, encoding: { methods: bool, constructor: bool, crc32c: bool, produce: bool, recordDecoder: bool, batch: bool } });
});

test('heartbeats: /api/v1/resolvers lists this process with the versions it serves', async () => {
  const viewer = { authorization: `Bearer ${VIEWER_TOKEN}` };
  const list = await waitFor('own heartbeat on the topic', async () => {
    const r = (await (await fetch(`${p.url}/api/v1/resolvers`, { headers: viewer })).json()) as { resolvers: { resolverId: string; versions: Record<string, number>; stale: boolean; pid: number }[] };
    const me = r.resolvers.find((x) => x.resolverId === p.ctx.resolverId);
    return me && me.versions[itemId] === version ? me : undefined;
  });
  expect(list).toMatchObject({ pid: process.pid, stale: false });
});

test('a resolver-only process started while Kafka is DOWN answers from the snapshot', async () => {
  const files = snapshotPaths(env.PENUMBRA_DATA_DIR, env.PENUMBRA_TOPIC_PREFIX);
  await waitFor('profile snapshot', () => existsSync(files.profiles) && (JSON.parse(readFileSync(files.profiles, 'utf8')) as { profiles: { itemId: string; profileVersion: number }[] }).profiles.some((x) => x.itemId === itemId && x.profileVersion === version));
  await waitFor('catalog snapshot', () => existsSync(files.catalog) && readFileSync(files.catalog, 'utf8').includes(itemId));
  const t0 = Date.now();
  const child = await spawnResolver({ ...env, KAFKA_BROKERS: '127.0.0.1:1' });
  // Serving must not wait for Kafka (a start is a few seconds of TypeScript loading, at most).
  expect(Date.now() - t0).toBeLessThan(10_000);
  children.push(child);
  for (const userId of users.slice(0, 60)) {
    const q = { itemId, userId, deviceType: 'android' };
    const [live, offline] = await Promise.all([resolve(p.url, q), resolve(child.url, q)]);
    expect(offline.status).toBe(200);
    // Same decision; the token differs at most in its issue time, and is signed with the key the
    // data folder's processes share, so the main process verifies what the child signed.
    const strip = ({ token: _t, tokenExpiresAt: _e, ...rest }: Answer) => rest;
    expect(strip(offline.body)).toEqual(strip(live.body));
    expect(verifyAssignment(offline.body.token, p.ctx.assignmentKeys, Date.now(), { userId, variant: live.body.variant }).ok).toBe(true);
  }
  const health = (await (await fetch(`${child.url}/api/v1/health`)).json()) as { status: string; checks: Record<string, Record<string, unknown>> };
  expect(health.status).toBe('degraded');
  expect(health.checks.kafka.status).toBe('degraded');
  expect(health.checks.resolver).toMatchObject({ profileSource: 'snapshot' });
  // A plain node process loads the patches before kafkajs (run-resolver.ts → client.ts): all of them.
  expect(health.checks.kafkajs).toMatchObject({ status: 'ok', detail: 'patched', stock: false, groupingLinear: true });
  const t1 = Date.now();
  await child.stop();
  expect(Date.now() - t1).toBeLessThan(5000);
});

test('rollback: every answer turns to the original at once', async () => {
  const shadowUsers: string[] = [];
  for (const userId of users) {
    const { body } = await resolve(p.url, { itemId, userId, deviceType: 'android' });
    if (body.variant !== 'original') shadowUsers.push(userId);
  }
  expect(shadowUsers.length).toBeGreaterThan(10);
  const rb = await fetch(`${p.url}/api/v1/items/${itemId}/rollback`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  expect(rb.status).toBe(200);
  const newVersion = ((await rb.json()) as { profileVersion: number }).profileVersion;
  expect(newVersion).toBeGreaterThan(version);
  for (const userId of shadowUsers) {
    const { body } = await resolve(p.url, { itemId, userId, deviceType: 'android' });
    expect(body).toMatchObject({ variant: 'original', reason: 'rolled_back', profileVersion: newVersion, bucket: -1 });
    expect(body.launchUrl).toContain('/original/');
  }
});

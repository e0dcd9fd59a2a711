/**
 * Several processes: one main Penumbra (in-process) and three resolver-only child processes on
 * the same topic prefix, each with its own data folder and port. A rollback through the API
 * must reach all three (each serves the original) and /api/v1/resolvers must show all three
 * on the new profile version, from their heartbeats.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPenumbra, type Penumbra } from '../app/penumbra.ts';
import { ADMIN_TOKEN, VIEWER_TOKEN, configFrom, ingestFixture, resolverEnv, spawnResolver, waitFor, type ChildResolver } from './test-support.ts';

const env = resolverEnv('multi');
let p: Penumbra;
let itemId: string;
let version: number;
let children: ChildResolver[] = [];

interface Answer {
  variant: string;
  profileVersion: number;
  reason: string;
}

async function resolve(base: string, userId: string): Promise<Answer> {
  const res = await fetch(`${base}/api/v1/resolve?itemId=${itemId}&userId=${userId}&deviceType=android`);
  return (await res.json()) as Answer;
}

beforeAll(async () => {
  p = await createPenumbra(configFrom(env), { sink: false });
  ({ itemId, profileVersion: version } = await ingestFixture(p.ctx, undefined));
  await p.ctx.profileStore.waitForVersion(itemId, version);
  children = await Promise.all([1, 2, 3].map(() => spawnResolver({ ...env, PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-multi-r-')) })));
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop()));
  await p?.stop();
});

test('a rollback through the API reaches all three resolvers, and /resolvers shows it', async () => {
  // Users that get the shadow on the main process.
  const shadowUsers: string[] = [];
  for (let i = 0; shadowUsers.length < 5 && i < 200; i++) if ((await resolve(p.url, `m-${i}`)).variant === 'checkout-v2') shadowUsers.push(`m-${i}`);
  expect(shadowUsers).toHaveLength(5);
  // Every resolver has caught up with the profile (from Kafka: their data folders are empty).
  for (const c of children) {
    await waitFor(`${c.resolverId} serving v${version}`, async () => (await resolve(c.url, shadowUsers[0])).profileVersion === version, 30_000);
    for (const u of shadowUsers) expect((await resolve(c.url, u)).variant).toBe('checkout-v2');
  }

  const rb = await fetch(`${p.url}/api/v1/items/${itemId}/rollback`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'multi test' }) });
  expect(rb.status).toBe(200);
  const newVersion = ((await rb.json()) as { profileVersion: number }).profileVersion;
  expect(newVersion).toBeGreaterThan(version);

  await Promise.all(children.map((c) => waitFor(`${c.resolverId} serving the original`, async () => {
    const answers = await Promise.all(shadowUsers.map((u) => resolve(c.url, u)));
    return answers.every((a) => a.variant === 'original' && a.reason === 'rolled_back' && a.profileVersion === newVersion);
  }, 10_000, 10)));

  const seen = await waitFor('all three resolvers on the new version in /resolvers', async () => {
    const r = (await (await fetch(`${p.url}/api/v1/resolvers`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } })).json()) as { resolvers: { resolverId: string; pid: number; versions: Record<string, number>; stale: boolean; at: number; host: string }[] };
    const mine = r.resolvers.filter((x) => children.some((c) => c.resolverId === x.resolverId));
    return mine.length === 3 && mine.every((x) => x.versions[itemId] === newVersion) ? mine : undefined;
    // Well under the 5 s periodic heartbeat: the change itself must trigger one.
  }, 2000, 20);
  for (const s of seen) {
    const child = children.find((c) => c.resolverId === s.resolverId)!;
    expect(s).toMatchObject({ pid: child.pid, stale: false });
    expect(typeof s.host).toBe('string');
  }
  // Each child also knows the others (every process follows penumbra.resolvers) — and on the new
  // version: a resolver-only process reads the others' heartbeats in one poll a second
  // (registryPollMs, pipeline/resolver/feature.ts), so its list may trail the main API's by that.
  const fromChild = await waitFor('the first child lists all three on the new version', async () => {
    const r = (await (await fetch(`${children[0].url}/api/v1/resolvers`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } })).json()) as { resolvers: { resolverId: string; versions: Record<string, number> }[] };
    return children.every((c) => (r.resolvers.find((x) => x.resolverId === c.resolverId)?.versions[itemId] ?? 0) >= newVersion) ? r : undefined;
  }, 10_000);
  for (const c of children) expect(fromChild.resolvers.map((x) => x.resolverId)).toContain(c.resolverId);
});

test('every resolver process exposes /metrics: the profile version it serves, resolve latency, health', async () => {
  const { parseExposition } = await import('../app/metrics.ts');
  for (const c of children) {
    await resolve(c.url, 'metrics-user');
    const res = await fetch(`${c.url}/metrics`);
    expect(res.status).toBe(200);
    const s = parseExposition(await res.text());
    expect({ c: c.resolverId, v: s.get(`penumbra_resolver_profile_version{item="${itemId}"}`) }).toEqual({ c: c.resolverId, v: p.ctx.profileStore.get(itemId)!.profileVersion });
    expect(s.get('penumbra_http_request_duration_seconds_count{method="GET",route="/api/v1/resolve",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(s.get('penumbra_health_status{check="resolver"}')).toBe(1);
  }
});

/**
 * Issue 15 item 7: a multi-process deployment gives the numbers of a one-process deployment.
 *
 * Deployment M (topic prefix M), every part a child process `penumbra start --role …` with a data
 * folder of its own (as separate hosts would have), on the one Kafka, the one registry and ONE
 * S3 bucket (PENUMBRA_BLOB_STORE=s3, the S3Proxy the global setup starts):
 *   - api-1, api-2        `--role api`           (API, collector, resolver)
 *   - proc-1, proc-2      `--role processors`    (two members of every processor group)
 *   - sink                `--role sink`          (the one warehouse)
 * Deployment R (prefix R): ONE child `penumbra start` with every role, on the same input.
 *
 * Input, identical for both (same item, same shadow config, same users, same event ids and
 * timestamps — each batch is posted to M and R back to back): the item is ingested through api-1;
 * 40 users are resolved through api-2 (their variants and tokens must equal R's: bucketing is
 * seeded by the item id); each user's telemetry batch, signed with the assignment token from
 * resolve, goes through api-1 or api-2 alternately. Then the item is rolled back through api-2,
 * api-1 must serve the original too, and a second round of telemetry (the original, new tokens)
 * goes through both.
 *
 * Compared, M against R (what is deterministic for the same input):
 *   1. the resolve answers (variant, controlOf, profile version), before and after the rollback;
 *   2. the warehouse: telemetry_events per item × variant × verified (exact counts, and the
 *      number of accepted events), read from each sink's Parquet export;
 *   3. every closed 10 s metric window (events, sessions, users, errors, error sessions,
 *      requests, request errors, latency count and mean, conversions) per variant × window
 *      start — from GET …/metrics on an API process (the `telemetry.metrics` topic) and from the
 *      warehouse's metric_windows; the sum of `late` must be 0 in both runs (else the runs did
 *      not see the same input in time and the comparison would prove nothing);
 *   4. each shadow's comparison with its control (arm sessions, latency and error-rate
 *      estimates, conversions), from the processors member that owns the item.
 * Also: api-2 serves the shadow artifact api-1 built into the bucket, and the ingest's risk score
 * (made by api-1) reaches api-2 and both processors members (live risk updates run there).
 *   5. a second `--role sink` on M is refused (health `degraded`, the other member named) and the
 *      first sink's warehouse stays exact.
 *   6. [gaps] both API-only processes answer the owner's comparisons from the compacted
 *      comparisons topic (`comparisonsSource: "topic"`, `comparisonsFreshness`), and api-1's live
 *      stream carries the next recomputation as a `comparison` event (equal to the route's answer).
 *      [gaps16] They also answer the owner's unverified counts (a batch without a token, sent
 *      through api-2 after round 3) and join counters, carried by the v2 comparisons record.
 *   7. issue 15 item 8 across processes: api-2's own PENUMBRA_RATE_ARTIFACTS throttles an
 *      anonymous address there (429), not a caller with the operator token, and not on api-1.
 *   8. the live view across processes: api-2's stream (no metrics processor there) carries the
 *      owner's provisional open windows while round 1 flows (telemetry.live,
 *      PENUMBRA_LIVE_WINDOWS=auto on the processors-only members).
 * Lean by design: ~40 sessions, one file-wide deployment. Most of its time is starting seven
 * child processes (≈ 1.5 min under the shared machine's load of ~15; the checks ≈ 1 min).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { spawnPenumbra, type ChildPenumbra } from './spawn.ts';
import { fixtureArchive } from '../shadowing/fixtures.ts';
import { queryParquet } from '../../connectors/duckdb-sink/query.ts';
import { warehousePaths } from '../warehouse/feature.ts';
import { openSse, type SseStream } from '../../test/sse.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MANIFEST = JSON.parse(readFileSync(path.join(HERE, '../shadowing/fixtures/multi-page-web/manifest.json'), 'utf8')) as { id: string; version: string };
const ITEM = MANIFEST.id;
const ADMIN = `admin-${randomUUID()}`;
const USERS = 40;
const run = randomUUID().slice(0, 8);
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const bucket = `t-multi-${run}`;

function envFor(prefix: string, name: string): Record<string, string> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `penumbra-mp-${name}-`));
  return {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0',
    PENUMBRA_CONTENT_PORT: '0',
    PENUMBRA_DATA_DIR: dataDir,
    PENUMBRA_TOPIC_PREFIX: prefix,
    PENUMBRA_PARTITIONS: '3',
    PENUMBRA_LOG_LEVEL: 'warn',
    PENUMBRA_TOKENS: `admin:admin:${ADMIN}`,
    // Resolve signs, the collector verifies: one ring for every process of a deployment.
    PENUMBRA_ASSIGNMENT_KEYS: KEYS,
    PENUMBRA_BLOB_STORE: 's3',
    PENUMBRA_S3_ENDPOINT: process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:8333',
    PENUMBRA_S3_BUCKET: bucket,
    PENUMBRA_S3_PREFIX: prefix,
    // The test S3Proxy authenticates nobody; the SDK still wants a key pair (any).
    PENUMBRA_S3_ACCESS_KEY_ID: 'penumbra-test',
    PENUMBRA_S3_SECRET_ACCESS_KEY: 'penumbra-test-secret',
  };
}

const M = `t-mp-${run}.`;
const R = `t-mp1-${run}.`;
let api1: ChildPenumbra, api2: ChildPenumbra, proc1: ChildPenumbra, proc2: ChildPenumbra, sink: ChildPenumbra, one: ChildPenumbra;
let sinkDir: string, oneDir: string;
const children: ChildPenumbra[] = [];

const auth = { authorization: `Bearer ${ADMIN}` };
async function json<T>(res: Response, what: string): Promise<T> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface Resolved {
  variant: string;
  controlOf?: string;
  profileVersion: number;
  token: string;
}
const resolve = (c: ChildPenumbra, userId: string) => fetch(`${c.url}/api/v1/resolve?${new URLSearchParams({ itemId: ITEM, userId })}`).then((r) => json<Resolved>(r, `resolve ${userId} on ${c.roles}`));
const versionOn = async (c: ChildPenumbra) => (await json<{ profileVersions: Record<string, number> }>(await fetch(`${c.url}/api/v1/health`), 'health')).profileVersions[ITEM] ?? 0;

/** The batch user `i` sends in round `round` (deterministic: ids, values and offsets from i). */
function batch(i: number, round: number, r: Resolved, t0: number) {
  const events: { id: string; type: 'request' | 'usage' | 'error'; name: string; ts: number; value?: number; attrs?: Record<string, string> }[] = [];
  const lat = 80 + ((i * 37) % 60) + (r.variant !== 'original' && r.variant !== 'control' ? 25 : 0);
  events.push({ id: `${run}-${round}-${i}-0`, type: 'request', name: 'api', ts: t0, value: lat, attrs: { status: i % 7 === 0 ? '500' : '200', path: '/v1/items' } });
  events.push({ id: `${run}-${round}-${i}-1`, type: 'request', name: 'api', ts: t0 + 5, value: lat + 10, attrs: { status: '200', path: '/v1/items' } });
  if (i % 3 === 0) events.push({ id: `${run}-${round}-${i}-2`, type: 'usage', name: 'buy', ts: t0 + 10, attrs: { selector: '#buy' } });
  if (i % 5 === 0) events.push({ id: `${run}-${round}-${i}-3`, type: 'error', name: 'TypeError: x is undefined', ts: t0 + 15 });
  return {
    itemId: ITEM, version: MANIFEST.version, variant: r.variant, ...(r.controlOf ? { controlOf: r.controlOf } : {}), profileVersion: r.profileVersion,
    sessionId: `s-${run}-${round}-${i}`, userId: `u-${i}`, sentAt: t0 + 20, token: r.token, events,
  };
}

async function post(c: ChildPenumbra, body: unknown): Promise<number> {
  const res = await fetch(`${c.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const out = await json<{ accepted: number }>(res, `telemetry via ${c.roles}`);
  return out.accepted;
}

interface Window {
  variant: string;
  windowSize: number;
  windowStart: number;
  events: number;
  sessions: number;
  users: number;
  errors: number;
  errorSessions: number;
  requests: number;
  requestErrors: number;
  latency: { count: number; mean: number | null } | null;
  conversions: Record<string, number> | null;
  late: number;
}
/** What is compared of a window: everything the input decides (not emittedAt; `late` checked apart). */
const windowKey = (w: Window) =>
  JSON.stringify([w.variant, w.windowStart, w.events, w.sessions, w.users, w.errors, w.errorSessions, w.requests, w.requestErrors, w.latency?.count ?? 0, w.latency?.mean === null || w.latency?.mean === undefined ? null : Number(w.latency.mean.toFixed(6)), w.conversions ?? {}]);

const metricsOf = (c: ChildPenumbra) =>
  fetch(`${c.url}/api/v1/items/${ITEM}/metrics?window=10s`, { headers: auth }).then((r) => json<{ windows: Window[]; comparisons: Record<string, Comparison>; comparisonsSource?: string; comparisonsFreshness?: { computedAt: number; receivedAt: number; ageMs: number; transitMs: number; member: string; stale: boolean } | null; unverified: { total: number; byVariant: Record<string, Record<string, number>> } | null; join: { matched: number; mismatched: number; unassigned: number } | null }>(r, `metrics on ${c.roles}`));

/** Reads GET /api/v1/stream of a process (the Authorization header: fetch can send it). */
async function openStream(c: ChildPenumbra): Promise<SseStream<{ variant?: string; comparison?: unknown }>> {
  const s = openSse<{ variant?: string; comparison?: unknown }>(`${c.url}/api/v1/stream?itemId=${encodeURIComponent(ITEM)}`, auth);
  await s.opened.catch((err: Error) => {
    throw new Error(`stream on ${c.roles}: ${err.message}`);
  });
  return s;
}

interface Comparison {
  sessions: { shadow: number; control: number };
  latency?: { a?: { mean?: number; n?: number }; b?: { mean?: number; n?: number }; [k: string]: unknown };
  errorRate?: Record<string, unknown>;
  conversions: Record<string, Record<string, unknown>>;
  hasBaseline: boolean;
}

beforeAll(async () => {
  // api-2 has its own (tight) artifact limit: rate limits are per-process configuration (check 7).
  const envs = { api1: envFor(M, 'api1'), api2: { ...envFor(M, 'api2'), PENUMBRA_RATE_ARTIFACTS: '1:3' }, proc1: envFor(M, 'proc1'), proc2: envFor(M, 'proc2'), sink: envFor(M, 'sink'), one: envFor(R, 'one') };
  sinkDir = envs.sink.PENUMBRA_DATA_DIR;
  oneDir = envs.one.PENUMBRA_DATA_DIR;
  // All at once, as a compose file starts them: provisioning one prefix concurrently must work.
  const started = await Promise.allSettled([
    // Six processes starting at once on a shared 2-core machine: a generous start deadline.
    spawnPenumbra(envs.api1, 'api', 150_000), spawnPenumbra(envs.api2, 'api', 150_000),
    spawnPenumbra(envs.proc1, 'processors', 150_000), spawnPenumbra(envs.proc2, 'processors', 150_000),
    spawnPenumbra(envs.sink, 'sink', 150_000), spawnPenumbra(envs.one, 'all', 150_000),
  ]);
  for (const s of started) if (s.status === 'fulfilled') children.push(s.value);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  [api1, api2, proc1, proc2, sink, one] = children;
}, 180_000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop()));
});

test('two API processes, two processors members and a sink give the numbers of one process', async () => {
  expect([api1, api2, proc1, proc2, sink, one].map((c) => c.roles)).toEqual(['api', 'api', 'processors', 'processors', 'sink', 'api,processors,sink']);
  // A second sink on M (another "host": its own data folder) must not take partitions from the
  // first: it waits, then refuses (connectors/duckdb-sink/singleton.ts). Started now, checked
  // at the end, so its start overlaps the rest.
  const secondSink = spawnPenumbra(envFor(M, 'sink2'), 'sink', 150_000).then((c) => (children.push(c), c));
  // Processes without the api role serve no devices.
  expect((await fetch(`${proc1.url}/api/v1/resolve?itemId=${ITEM}&userId=u-0`)).status).toBe(404);
  expect((await fetch(`${sink.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(404);

  // ---- ingest through api-1 (and the one-process deployment) ----
  const shadow = {
    name: 'checkout-v2',
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints: { api: 'https://shadow-api.example.com/v1' },
    traffic: { percentage: 25, match: 'all', rules: [] },
  };
  const archive = await fixtureArchive('multi-page-web', 'zip');
  const form = () => {
    const fd = new FormData();
    fd.append('shadowConfig', JSON.stringify(shadow));
    fd.append('item', new Blob([new Uint8Array(archive)]), 'item.zip');
    return fd;
  };
  const [ingM, ingR] = await Promise.all([
    fetch(`${api1.url}/api/v1/items`, { method: 'POST', headers: auth, body: form() }).then((r) => json<{ profile: { profileVersion: number } }>(r, 'ingest M')),
    fetch(`${one.url}/api/v1/items`, { method: 'POST', headers: auth, body: form() }).then((r) => json<{ profile: { profileVersion: number } }>(r, 'ingest R')),
  ]);
  const v1 = ingM.profile.profileVersion;
  expect(ingR.profile.profileVersion).toBe(v1);
  // Every process of M follows the profile (processors refuse telemetry of unknown versions).
  for (const c of [api2, proc1, proc2]) await waitFor(`${c.roles} on v${v1}`, async () => (await versionOn(c)) >= v1);
  // The shadow's artifact was built by api-1 into the shared bucket: api-2 serves it.
  // (api-2 learns the catalog entry from Kafka a moment after the 201: poll, and say why if not.)
  let lastArt = '';
  const artBytes = await waitFor('api-2 serving the shadow artifact from the bucket', async () => {
    const art = await fetch(`${api2.url}/api/v1/items/${ITEM}/artifacts/checkout-v2`, { headers: auth });
    if (art.status !== 200) {
      lastArt = `HTTP ${art.status} ${await art.text()}`;
      return undefined;
    }
    return (await art.arrayBuffer()).byteLength;
  }, 20_000).catch((err: Error) => {
    throw new Error(`${err.message}; last answer ${lastArt}`);
  });
  expect(artBytes).toBeGreaterThan(0);

  // ---- item 8 in a split deployment: per-process limits, services not throttled per address ----
  // One device address (X-Forwarded-For from loopback is trusted by default): anonymous downloads
  // from api-2 (PENUMBRA_RATE_ARTIFACTS=1:3) get 429 once its burst is spent; the same address
  // with the operator token (a backend caller) is never limited; api-1 (default 5:20) keeps
  // buckets of its own, so the address is not limited there.
  const download = async (c: ChildPenumbra, headers: Record<string, string>) => {
    const r = await fetch(`${c.url}/api/v1/items/${ITEM}/artifacts/checkout-v2`, { headers });
    await r.arrayBuffer();
    return r.status;
  };
  const device = { 'x-forwarded-for': '203.0.113.9' };
  // Twelve requests at once per case (a burst: a sequence on a loaded machine would refill the
  // 1/s bucket between requests); the three cases side by side, since the service's and api-1's
  // requests take no token of api-2's bucket for that address.
  const statuses = (c: ChildPenumbra, headers: Record<string, string>) => Promise.all(Array.from({ length: 12 }, () => download(c, headers)));
  const [anonApi2, serviceApi2, anonApi1] = await Promise.all([statuses(api2, device), statuses(api2, { ...device, ...auth }), statuses(api1, device)]);
  expect(anonApi2.every((s) => s === 200 || s === 429)).toBe(true);
  expect(anonApi2.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
  expect(anonApi2.filter((s) => s === 429).length).toBeGreaterThan(0);
  expect(serviceApi2).toEqual(Array(12).fill(200));
  expect(anonApi1).toEqual(Array(12).fill(200));

  // The ingest's risk score (made by api-1) reaches the processes that did not ingest: api-2
  // answers GET …/risk, and the processors members (which run live updates and holds) have it.
  for (const c of [api2, proc1, proc2]) {
    await waitFor(`${c.roles} knowing the ingest risk score`, async () => {
      const r = await fetch(`${c.url}/api/v1/items/${ITEM}/risk`, { headers: auth });
      return r.status === 200 && ((await r.json()) as { scores: { phase: string }[] }).scores.some((x) => x.phase === 'ingest');
    }, 20_000);
  }

  // ---- resolve through api-2: same variants as the one-process run ----
  const resM: Resolved[] = [];
  const resR: Resolved[] = [];
  for (let i = 0; i < USERS; i++) {
    const [a, b] = await Promise.all([resolve(api2, `u-${i}`), resolve(one, `u-${i}`)]);
    resM.push(a);
    resR.push(b);
  }
  expect(resM.map((r) => [r.variant, r.controlOf ?? null, r.profileVersion])).toEqual(resR.map((r) => [r.variant, r.controlOf ?? null, r.profileVersion]));
  const variants = new Set(resM.map((r) => r.variant));
  expect([...variants].sort()).toEqual(['checkout-v2', 'control', 'original']);

  // ---- round 1: telemetry through both API processes, tokens from resolve ----
  // Check 8: api-2 computes no windows; its live stream must still show the owner's open
  // windows as they fill (provisional, through telemetry.live), not only closed ones ≥ 5 s late.
  const live2 = openSse<{ provisional?: boolean; events?: number }>(`${api2.url}/api/v1/stream?itemId=${encodeURIComponent(ITEM)}`, auth);
  await live2.opened;
  let accepted = 0;
  for (let i = 0; i < USERS; i++) {
    const t0 = Date.now() - 50;
    const [a, b] = await Promise.all([post(i % 2 === 0 ? api1 : api2, batch(i, 1, resM[i], t0)), post(one, batch(i, 1, resR[i], t0))]);
    expect(a).toBe(b);
    accepted += a;
  }
  await waitFor('api-2 (API only) relaying the owner\'s provisional windows from telemetry.live', async () => live2.events.some((e) => e.event === 'metrics' && e.data.provisional === true && (e.data.events ?? 0) > 0), 30_000);
  live2.close();

  // ---- rollback through api-2; api-1 and api-2 serve the original ----
  const [rbM, rbR] = await Promise.all([
    fetch(`${api2.url}/api/v1/items/${ITEM}/rollback`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"reason":"multi-process test"}' }).then((r) => json<{ profileVersion: number }>(r, 'rollback M')),
    fetch(`${one.url}/api/v1/items/${ITEM}/rollback`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"reason":"multi-process test"}' }).then((r) => json<{ profileVersion: number }>(r, 'rollback R')),
  ]);
  expect(rbM.profileVersion).toBeGreaterThan(v1);
  expect(rbR.profileVersion).toBe(rbM.profileVersion);
  const v2 = rbM.profileVersion;
  const shadowUsers = resM.map((r, i) => (r.variant === 'original' ? -1 : i)).filter((i) => i >= 0);
  for (const c of [api1, api2]) {
    await waitFor(`${c.roles} serving the original after the rollback`, async () => {
      const answers = await Promise.all(shadowUsers.map((i) => resolve(c, `u-${i}`)));
      return answers.every((a) => a.variant === 'original' && a.profileVersion === v2);
    }, 15_000, 50);
  }
  for (const c of [proc1, proc2]) await waitFor(`${c.roles} on v${v2}`, async () => (await versionOn(c)) >= v2);

  // ---- round 2: the original, new tokens, through both API processes ----
  const res2M: Resolved[] = [];
  const res2R: Resolved[] = [];
  for (let i = 0; i < USERS; i += 2) {
    const [a, b] = await Promise.all([resolve(i % 4 === 0 ? api1 : api2, `u-${i}`), resolve(one, `u-${i}`)]);
    expect([a.variant, a.profileVersion]).toEqual(['original', v2]);
    expect([b.variant, b.profileVersion]).toEqual(['original', v2]);
    res2M.push(a);
    res2R.push(b);
  }
  for (let k = 0; k < res2M.length; k++) {
    const i = k * 2;
    const t0 = Date.now() - 50;
    const [a, b] = await Promise.all([post(k % 2 === 0 ? api1 : api2, batch(i, 2, res2M[k], t0)), post(one, batch(i, 2, res2R[k], t0))]);
    expect(a).toBe(b);
    accepted += a;
  }

  // ---- warehouse: exact event counts per variant × verified, same in both ----
  const countsSql = `SELECT variant, verified, count(*)::BIGINT AS n FROM telemetry_events WHERE item_id = $item GROUP BY ALL ORDER BY variant, verified`;
  const counts = async (dir: string) => (await queryParquet(warehousePaths(dir).parquetDir, countsSql, { item: ITEM })).map((r) => ({ variant: r.variant as string, verified: r.verified as boolean, n: Number(r.n) }));
  const total = (rows: { n: number }[]) => rows.reduce((s, r) => s + r.n, 0);
  // Exactly the accepted events (not "at least": a read during a compaction can count a part twice).
  const whM = await waitFor('M warehouse holds every accepted event', async () => {
    const c = await counts(sinkDir);
    return total(c) === accepted ? c : undefined;
  }, 60_000, 500);
  const whR = await waitFor('R warehouse holds every accepted event', async () => {
    const c = await counts(oneDir);
    return total(c) === accepted ? c : undefined;
  }, 60_000, 500);
  expect(whM).toEqual(whR);
  expect(whM.every((r) => r.verified)).toBe(true);

  // ---- metric windows (10 s): every event in a closed window, same windows in both ----
  const closed = async (c: ChildPenumbra) => {
    const m = await metricsOf(c);
    const ws = m.windows.filter((w) => w.windowSize === 10_000);
    return ws.reduce((s, w) => s + w.events, 0) === accepted ? ws : undefined;
  };
  const winR = await waitFor('R: every event in a closed 10 s window', () => closed(one), 60_000, 500);
  const winM = await waitFor('M (api-1): every event in a closed 10 s window', () => closed(api1), 30_000, 500);
  expect(winR.reduce((s, w) => s + w.late, 0)).toBe(0);
  expect(winM.reduce((s, w) => s + w.late, 0)).toBe(0);
  expect(winM.map(windowKey).sort()).toEqual(winR.map(windowKey).sort());
  // api-2 follows the same topic: the same windows.
  expect((await metricsOf(api2)).windows.filter((w) => w.windowSize === 10_000).map(windowKey).sort()).toEqual(winR.map(windowKey).sort());
  // The warehouse's metric_windows of both runs agree as well.
  const whWindowsSql = `SELECT variant, epoch_ms(window_start) AS ws, events, sessions, users, errors, error_sessions, requests, request_errors, latency_count, round(latency_mean, 6) AS lm
    FROM metric_windows WHERE item_id = $item AND window_size_ms = 10000 ORDER BY variant, ws`;
  const whWindows = async (dir: string) => JSON.stringify(await queryParquet(warehousePaths(dir).parquetDir, whWindowsSql, { item: ITEM }), (_k, v) => (typeof v === 'bigint' ? Number(v) : v));
  const wwR = await waitFor('R warehouse: metric windows of every event', async () => {
    const rows = JSON.parse(await whWindows(oneDir)) as { events: number }[];
    return rows.reduce((s, r) => s + r.events, 0) === accepted ? JSON.stringify(rows) : undefined;
  }, 30_000, 500);
  const wwM = await waitFor('M warehouse: metric windows of every event', async () => {
    const rows = JSON.parse(await whWindows(sinkDir)) as { events: number }[];
    return rows.reduce((s, r) => s + r.events, 0) === accepted ? JSON.stringify(rows) : undefined;
  }, 30_000, 500);
  expect(wwM).toBe(wwR);

  // ---- comparisons: the processors member that owns the item has them; equal to R's ----
  const compR = (await metricsOf(one)).comparisons['checkout-v2'];
  expect(compR?.hasBaseline).toBe(true);
  const fromMembers = await Promise.all([metricsOf(proc1), metricsOf(proc2)]);
  const owner = fromMembers.filter((m) => m.comparisonsSource === 'this-process');
  expect(owner).toHaveLength(1);
  const ownerProc = fromMembers[0].comparisonsSource === 'this-process' ? proc1 : proc2;
  const compM = owner[0].comparisons['checkout-v2'];
  const essentials = (c: Comparison) => JSON.stringify({ sessions: c.sessions, latency: c.latency, errorRate: c.errorRate, conversions: c.conversions }, (k, v) => (k === 'at' ? undefined : typeof v === 'number' ? Number(v.toPrecision(10)) : v));
  expect(essentials(compM)).toBe(essentials(compR));

  // ---- the second sink stayed out: degraded with the reason, and M's warehouse is still exact ----
  const sink2 = await secondSink;
  const refused = await waitFor('the second sink refusing to join', async () => {
    const h = await json<{ checks: { duckdb?: { status: string; detail?: string } } }>(await fetch(`${sink2.url}/api/v1/health`), 'health of sink 2');
    return h.checks.duckdb?.status === 'degraded' && /another warehouse sink is running/.test(h.checks.duckdb.detail ?? '') ? h.checks.duckdb : undefined;
  }, 40_000, 500);
  expect(refused.detail).toContain(`${M}warehouse-sink`);
  expect(await counts(sinkDir)).toEqual(whR);

  // ---- comparisons on the API-only processes: followed from the comparisons topic ----
  // Both API processes answer the owner's latest comparison (source `topic`, with its age), and
  // api-1's live stream — opened before the next recomputation — carries it as a `comparison`
  // event. The owner recomputes after each emitted batch of the item's windows: a few more
  // batches (round 3, after the warehouse checks; the original, since the rollback) make it
  // recompute now — same arms, a newer `at`.
  const owned = owner[0];
  const stream = await openStream(api1);
  try {
    for (const c of [api1, api2]) {
      const m = await waitFor(`${c.roles}: the owner's comparisons from the topic`, async () => {
        const got = await metricsOf(c);
        return got.comparisonsSource === 'topic' && essentials(got.comparisons['checkout-v2']) === essentials(owned.comparisons['checkout-v2']) ? got : undefined;
      }, 30_000, 250);
      expect(m.comparisonsFreshness).toMatchObject({ computedAt: expect.any(Number), receivedAt: expect.any(Number), ageMs: expect.any(Number), member: expect.any(String) });
      expect(m.comparisonsFreshness!.transitMs).toBeLessThan(10_000);
    }
    const before = (await metricsOf(api1)).comparisonsFreshness!.computedAt;
    for (let i = 1; i < 8; i += 2) {
      const r3 = await resolve(api1, `u-${i}`);
      expect(await post(api1, batch(i, 3, r3, Date.now() - 50))).toBeGreaterThan(0);
    }
    // Unverified events (no assignment token: reason `missing`) never cause a recomputation; the
    // owner publishes its changed counts (throttled, pipeline/comparisons-topic) and every API
    // process answers the owner's counts and join counters, from the topic.
    const { token: _t, ...unsigned } = batch(3, 4, await resolve(api2, 'u-3'), Date.now() - 50);
    const nUnverified = await post(api2, unsigned);
    expect(nUnverified).toBeGreaterThan(0);
    const ownerCounts = await waitFor('the owner counting the unverified events', async () => {
      const m = await metricsOf(ownerProc);
      return m.unverified && m.unverified.total === nUnverified ? m : undefined;
    }, 30_000, 250);
    expect(ownerCounts.unverified!.byVariant[unsigned.variant]).toEqual({ missing: nUnverified });
    for (const c of [api1, api2]) {
      await waitFor(`${c.roles}: the owner's unverified counts and join counters from the topic`, async () => {
        const [m, o] = await Promise.all([metricsOf(c), metricsOf(ownerProc)]);
        return m.comparisonsSource === 'topic' && JSON.stringify(m.unverified) === JSON.stringify(o.unverified) && JSON.stringify(m.join) === JSON.stringify(o.join) && o.join!.matched > 0;
      }, 30_000, 250);
    }
    expect((await metricsOf(api1)).comparisonsFreshness!.stale).toBe(false);
    const liveAt = (e: (typeof stream.events)[number]) => (e.event === 'comparison' && e.data.variant === 'checkout-v2' ? (e.data.comparison as { at: number }).at : -1);
    await waitFor('a comparison event on the API-only process’s live stream', async () => stream.events.some((e) => liveAt(e) > before), 45_000, 250);
    // The live event carries the comparison the route answers (the one computed at the same instant).
    const after = await waitFor('api-1 answering the recomputed comparison', async () => {
      const m = await metricsOf(api1);
      return m.comparisonsFreshness && m.comparisonsFreshness.computedAt > before ? m : undefined;
    }, 15_000, 250);
    const live = await waitFor('the live event of that computation', async () => stream.events.find((e) => liveAt(e) === after.comparisonsFreshness!.computedAt), 5_000, 100);
    expect(JSON.stringify(after.comparisons['checkout-v2'])).toBe(JSON.stringify(live.data.comparison));
    expect(after.comparisonsSource).toBe('topic');
  } finally {
    stream.close();
  }
}, 360_000);

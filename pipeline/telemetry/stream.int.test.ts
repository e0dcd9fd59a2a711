/**
 * Stream processing against the real stack (createPenumbra on its own topic prefix, real Kafka,
 * registry): verified telemetry of a shadow and of its control arm becomes windows on the metrics
 * route and the SSE stream within seconds (provisional first, then the closed window), with
 * shadow-vs-control comparisons (baseline named, both arms' sessions); alert rules are managed
 * and audited over HTTP (vs_original accepted as the deprecated name of vs_control); a forged
 * burst of errors POSTed to the collector without an assignment token is stored and counted as
 * unverified (metrics route, Prometheus) but moves no comparison and fires no alert; a real error
 * regression on the shadow fires an alert within one window (SSE, /alerts, webhook), pauses a
 * running rollout plan, resolves after the regression ends and resumes the plan; with the
 * guardrail on the item is rolled back and the audit says why. A 2-step legacy schedule with short
 * holds (now a timer plan, pipeline/rollout) advances by itself; exposures that do not match the
 * split raise an SRM alert, and a running plan rolls its shadow back on them; events whose variant
 * disagrees with the user's assignment are counted. A tombstone on the comparisons topic makes
 * the followers forget the item.
 *
 * Telemetry goes through the real collector: batches carry an assignment token (minted with the
 * deployment's key ring, as resolve would hand it out) and, for the control arm, `controlOf`; the
 * forged burst carries none.
 *
 * Windows close quickly because this instance runs with allowedLatenessMs = 1000 (an option,
 * set through streamOptions for this topic prefix).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { startTestPenumbra, uploadForm, withToken, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { uniquePrefix } from '../../test/stack-helpers.ts';
import { waitFor } from '../../test/wait-for.ts';
import { fixtureArchive } from '../shadowing/fixtures.ts';
import { CONTROL, type ShadowConfig } from '../domain/types.ts';
import { streamHandles, streamOptions } from './feature.ts';
import { comparisonsRecord } from '../comparisons-topic/record.ts';
import { verifyWebhookSignature } from '../alerts/webhook.ts';
import { rolloutOptions } from '../rollout/feature.ts';
import { openSse } from '../../test/sse.ts';

const ITEM = 'com.example.multipage';
const SRM_ITEM = 'com.example.jsentry';
const SHADOW = 's1';
const LATENESS = 1000;

function shadowConfig(endpoints: Record<string, string>, percentage = 50): ShadowConfig {
  return {
    name: SHADOW,
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints,
    traffic: { percentage, match: 'all', rules: [] },
  };
}
const MAIN_SHADOW = shadowConfig({ api: 'https://shadow-api.example.com/v1' });
const SRM_SHADOW = shadowConfig({ api: 'https://shadow-api.example.com/v2/' });

const openStream = (url: string, headers: Record<string, string> = {}) => openSse(url, headers);

let t: TestPenumbra;
let stream: ReturnType<typeof openStream>;
let hookServer: http.Server;
const HOOK_SECRET = 'stream-test-webhook-secret';
const hooks: Record<string, unknown>[] = [];
let sender: NodeJS.Timeout | null = null;
let mode: 'normal' | 'regression' = 'normal';
let sent = 0;
const firstPostAt: { at: number } = { at: 0 };

const json = (role: keyof typeof TOKENS, body?: unknown, extra: Record<string, string> = {}) => ({
  headers: { ...t.auth(role), 'content-type': 'application/json', ...extra },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});
const get = async <T>(p: string, role: keyof typeof TOKENS = 'viewer'): Promise<T> => {
  const res = await fetch(`${t.url}${p}`, { headers: t.auth(role) });
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};

interface Arm { n: number; mean?: number; rate?: number }
interface Comparison {
  shadow: string; baseline: string; hasBaseline: boolean; noBaseline: null | { message: string }; sessions: { shadow: number; control: number };
  method: { kind: string; alpha: number }; latency: { ci: number[] }; errorRate: { shadow: Arm; control: Arm }; srm: unknown; verdicts: Record<string, string>; sentence: string;
}
interface WindowRec { itemId: string; variant: string; windowSize: number; windowStart: number; windowEnd: number; events: number; sessions: number; errorRate: number; latency: { mean: number | null }; provisional?: boolean }
interface AlertRec { id: string; incidentId: string; ruleId: string; itemId: string; variant: string; state: 'fired' | 'resolved'; windowEnd: number; action: string | null; message: string; value: number | null }
interface PlanState { status: string; step: number; reason: string | null }
interface Profile { profileVersion: number; state: string; guardrail: boolean; shadows: { traffic: { percentage: number }; rolloutState: PlanState | null }[]; updatedBy: string }
const planOf = (p: Profile): PlanState | null => p.shadows[0]?.rolloutState ?? null;

/**
 * Telemetry through the real path: POST /api/v1/telemetry with the batch's assignment token (as
 * resolve hands it to a device; minted here with the deployment's key ring for made-up users) and,
 * for the control arm, its controlOf — the collector verifies it and the events count.
 */
async function postBatch(itemId: string, variant: string, sessionId: string, userId: string, events: Record<string, unknown>[]): Promise<void> {
  const profileVersion = t.p.ctx.profileStore.get(itemId)?.profileVersion ?? 1;
  const now = Date.now();
  const batch = withToken(t, { itemId, version: '1.0.0', variant, controlOf: variant === CONTROL ? SHADOW : null, profileVersion, sessionId, userId, sentAt: now, events });
  const res = await fetch(`${t.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
  if (res.status !== 202) throw new Error(`telemetry ${res.status}: ${await res.text()}`);
  if (!firstPostAt.at) firstPostAt.at = now;
}

/** A batch POSTed to the collector WITHOUT an assignment token: stored, but unverified. */
async function postForged(itemId: string, variant: string, sessionId: string, events: Record<string, unknown>[]): Promise<void> {
  const res = await fetch(`${t.url}/api/v1/telemetry`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ itemId, version: '1.0.0', variant, profileVersion: t.p.ctx.profileStore.get(itemId)?.profileVersion ?? 1, sessionId, userId: `forger-${sessionId}`, sentAt: Date.now(), events }),
  });
  if (res.status !== 202) throw new Error(`telemetry ${res.status}: ${await res.text()}`);
}

/** One simulated session: a start, three requests, an error in some sessions. */
function sessionEvents(variant: string, n: number): Record<string, unknown>[] {
  const now = Date.now();
  const regression = mode === 'regression' && variant === SHADOW;
  const base = regression ? 250 : 100;
  const evs: Record<string, unknown>[] = [{ id: randomUUID(), type: 'session', name: 'start', ts: now }];
  for (let k = 0; k < 3; k++) evs.push({ id: randomUUID(), type: 'request', name: 'api', ts: now, value: base + ((n * 7 + k * 13) % 40), attrs: { status: '200' } });
  const error = regression ? n % 5 < 3 : n % 20 === 0;
  if (error) evs.push({ id: randomUUID(), type: 'error', name: 'TypeError: boom', ts: now });
  if (n % 4 === 0) evs.push({ id: randomUUID(), type: 'usage', name: 'buy', ts: now });
  return evs;
}

function startSender(): void {
  let n = 0;
  sender = setInterval(() => {
    const jobs: Promise<void>[] = [];
    for (const variant of [CONTROL, SHADOW]) {
      for (let k = 0; k < 2; k++) {
        const i = n++;
        jobs.push(postBatch(ITEM, variant, `sess-${variant}-${i}`, `user-${variant}-${i}`, sessionEvents(variant, i)));
      }
    }
    Promise.all(jobs).then(() => (sent += jobs.length), () => undefined);
  }, 250);
}

async function ingest(fixture: string, shadow: ShadowConfig): Promise<void> {
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive(fixture, 'zip'), shadow) });
  expect(res.status).toBe(201);
}

async function putConfig(itemId: string, shadow: ShadowConfig, extra: Record<string, unknown>): Promise<Profile> {
  const cur = await get<Profile>(`/api/v1/items/${itemId}/shadow-config`);
  const res = await fetch(`${t.url}/api/v1/items/${itemId}/shadow-config`, { method: 'PUT', ...json('operator', { shadows: [shadow], ...extra }, { 'if-match': `"${cur.profileVersion}"` }) });
  expect(res.status).toBe(200);
  return (await res.json()) as Profile;
}

beforeAll(async () => {
  hookServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      // Only signed bodies count (pipeline/alerts/webhook.ts): what a receiver should check.
      if (!verifyWebhookSignature(HOOK_SECRET, { signature: req.headers['x-penumbra-signature'] as string, timestamp: req.headers['x-penumbra-timestamp'] as string }, body)) return void res.writeHead(401).end();
      hooks.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
  const prefix = uniquePrefix('stream');
  streamOptions(prefix, { metrics: { allowedLatenessMs: LATENESS, srmMinExposures: 50 } });
  rolloutOptions(prefix, { tickMs: 250 });
  t = await startTestPenumbra('stream', { PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_WEBHOOK_URL: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`, PENUMBRA_WEBHOOK_SECRET: HOOK_SECRET }, { sink: false });
  await ingest('multi-page-web', MAIN_SHADOW);
  await ingest('js-entry', SRM_SHADOW);
  stream = openStream(`${t.url}/api/v1/stream`, { authorization: `Bearer ${TOKENS.viewer}` });
  await stream.opened;
});

afterAll(async () => {
  if (sender) clearInterval(sender);
  stream?.close();
  await t?.stop();
  await new Promise((r) => hookServer?.close(r));
});

test('alert rules: CRUD with validation, roles and audit', async () => {
  const post = (role: keyof typeof TOKENS, body: unknown) => fetch(`${t.url}/api/v1/alert-rules`, { method: 'POST', ...json(role, body) });
  const bad = await post('operator', { name: '', metric: 'bogus', comparison: 'sideways', threshold: 'x', forWindows: 0 });
  expect(bad.status).toBe(422);
  const problem = (await bad.json()) as { errors: { path: string }[] };
  expect(problem.errors.map((e) => e.path).sort()).toEqual(['comparison', 'forWindows', 'metric', 'name', 'threshold']);
  expect((await post('viewer', { name: 'x', metric: 'errorRate', comparison: 'absolute', threshold: 1 })).status).toBe(403);

  const created = await post('operator', { itemId: ITEM, name: 'temp', metric: 'latencyP95', comparison: 'absolute', threshold: 500 });
  expect(created.status).toBe(201);
  const rule = (await created.json()) as { id: string; minSample: number; forWindows: number; guardrail: boolean; updatedBy: string };
  expect(rule).toMatchObject({ minSample: 20, forWindows: 1, guardrail: false, updatedBy: 'operator', direction: 'above', kind: 'threshold' });
  // A direction that does not fit the comparison is refused with the field at fault.
  const wrongWay = await post('operator', { itemId: ITEM, name: 'x', metric: 'conversion:buy', comparison: 'vs_control', direction: 'below', threshold: 0.05 });
  expect(wrongWay.status).toBe(422);
  expect(((await wrongWay.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(['direction']);
  expect((await get<{ rules: { id: string }[] }>('/api/v1/alert-rules')).rules.map((r) => r.id)).toContain(rule.id);

  const put = await fetch(`${t.url}/api/v1/alert-rules/${rule.id}`, { method: 'PUT', ...json('operator', { itemId: ITEM, name: 'temp2', metric: 'latencyP99', comparison: 'absolute', threshold: 800 }) });
  expect(put.status).toBe(200);
  expect((await get<{ rules: { id: string; name: string }[] }>('/api/v1/alert-rules')).rules.find((r) => r.id === rule.id)?.name).toBe('temp2');
  expect((await fetch(`${t.url}/api/v1/alert-rules/nope`, { method: 'PUT', ...json('operator', { name: 'n', metric: 'errorRate', comparison: 'absolute', threshold: 1 }) })).status).toBe(404);
  expect((await fetch(`${t.url}/api/v1/alert-rules/${rule.id}`, { method: 'DELETE', headers: t.auth('operator') })).status).toBe(204);
  expect((await get<{ rules: { id: string }[] }>('/api/v1/alert-rules')).rules.map((r) => r.id)).not.toContain(rule.id);

  const audit = await waitFor('audit of the rule changes', async () => {
    const { entries } = await get<{ entries: { action: string; actor: string; before: { name?: string } | null; after: { name?: string } | null }[] }>(`/api/v1/audit?action=alert-rule&itemId=${ITEM}`);
    return entries.length >= 3 ? entries : undefined;
  });
  expect(audit.map((e) => e.action)).toEqual(['alert-rule.delete', 'alert-rule.update', 'alert-rule.create']);
  expect(audit.every((e) => e.actor === 'operator')).toBe(true);
  expect(audit[1]).toMatchObject({ before: { name: 'temp' }, after: { name: 'temp2' } });
  expect(audit[0]).toMatchObject({ before: { name: 'temp2' }, after: null });
  const doc = await get<{ paths: Record<string, Record<string, unknown>> }>('/api/v1/openapi.json');
  expect(Object.keys(doc.paths['/api/v1/alert-rules'])).toEqual(expect.arrayContaining(['get', 'post']));
  expect(Object.keys(doc.paths['/api/v1/alert-rules/{id}'])).toEqual(expect.arrayContaining(['put', 'delete']));
  expect(doc.paths['/api/v1/items/{itemId}/metrics'].get).toBeDefined();
});

test('telemetry becomes windows on the metrics route and the SSE stream within seconds, with comparisons', async () => {
  startSender();
  const provisional = await waitFor('a provisional window on SSE', () => stream.events.find((e) => e.event === 'metrics' && e.data.itemId === ITEM && e.data.provisional === true), 10_000, 50);
  expect(provisional.at - firstPostAt.at).toBeLessThan(5000);
  const final = await waitFor('a closed window on SSE', () => stream.events.find((e) => e.event === 'metrics' && e.data.itemId === ITEM && e.data.variant === SHADOW && !e.data.provisional && e.data.windowSize === 10_000), 30_000, 50);
  const fw = final.data as unknown as WindowRec;
  // Closed within lateness + the 1 s timer (+ slack for a loaded machine) after the window ended.
  expect(final.at - fw.windowEnd).toBeLessThan(LATENESS + 4000);
  expect(fw.events).toBeGreaterThan(0);

  const m = await waitFor('both arms on the metrics route', async () => {
    const r = await get<{ windows: WindowRec[]; comparisons: Record<string, Comparison> }>(`/api/v1/items/${ITEM}/metrics?window=10s`);
    const variants = new Set(r.windows.map((w) => w.variant));
    return variants.has(CONTROL) && variants.has(SHADOW) && r.comparisons[SHADOW]?.hasBaseline ? r : undefined;
  });
  expect(m.windows.every((w) => w.windowSize === 10_000 && w.itemId === ITEM)).toBe(true);
  const cmp = m.comparisons[SHADOW];
  expect(cmp).toMatchObject({ shadow: SHADOW, baseline: 'control', hasBaseline: true, noBaseline: null, method: { kind: 'asymptotic-confidence-sequence', alpha: 0.05 } });
  expect(cmp.sessions.shadow).toBeGreaterThan(0);
  expect(cmp.sessions.control).toBeGreaterThan(0);
  expect(cmp.latency.ci).toHaveLength(2);
  expect(cmp.sentence).toMatch(/s1/);
  expect(cmp.srm).toMatchObject({ flagged: false });
  expect(stream.events.some((e) => e.event === 'comparison' && e.data.itemId === ITEM && e.data.variant === SHADOW)).toBe(true);
  const range = await get<{ windows: WindowRec[] }>(`/api/v1/items/${ITEM}/metrics?window=10s&from=0&to=${m.windows[0].windowStart}`);
  expect(range.windows).toEqual([]);
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/metrics?window=5s`, { headers: t.auth('viewer') })).status).toBe(422);
  expect((await fetch(`${t.url}/api/v1/items/${ITEM}/metrics`)).status).toBe(401);
});

test('a forged error burst without an assignment token is stored and counted, but moves no comparison and fires no alert', async () => {
  const created = await fetch(`${t.url}/api/v1/alert-rules`, { method: 'POST', ...json('operator', { itemId: ITEM, name: 'forgery guard', metric: 'errorRate', comparison: 'vs_control', threshold: 0.1, minSample: 5, forWindows: 1 }) });
  expect(created.status).toBe(201);
  const rule = (await created.json()) as { id: string };
  const before = (await get<{ comparisons: Record<string, Comparison> }>(`/api/v1/items/${ITEM}/metrics`)).comparisons[SHADOW];
  const burstStart = Date.now();
  let forged = 0;
  const forger = setInterval(() => {
    for (let k = 0; k < 5; k++) {
      const sid = `forged-${forged++}`;
      void postForged(ITEM, SHADOW, sid, [{ id: randomUUID(), type: 'session', name: 'start', ts: Date.now() }, { id: randomUUID(), type: 'error', name: 'Forged', ts: Date.now() }]).catch(() => undefined);
    }
  }, 200);
  try {
    // The 10 s window the burst started in closed (the burst runs on to its end) …
    const burstWindow = Math.floor(burstStart / 10_000) * 10_000;
    await waitFor('the burst window closed', () => stream.events.find((e) => e.event === 'metrics' && e.data.itemId === ITEM && !e.data.provisional && e.data.windowSize === 10_000 && (e.data.windowStart as number) >= burstWindow), 30_000, 100);
  } finally {
    clearInterval(forger);
  }
  // … and the alert evaluator has judged every window emitted so far (it consumes them in order).
  const emitted = streamHandles.get(t.p.ctx)!.processor!.stats.windows;
  await waitFor('the evaluator caught up', async () => {
    const h = (await (await fetch(`${t.url}/api/v1/health`)).json()) as { checks: { streamProcessing: { alerts: { evaluator: { processed: number } } } } };
    return h.checks.streamProcessing.alerts.evaluator.processed >= emitted ? true : undefined;
  }, 10_000, 100);
  const after = await get<{ comparisons: Record<string, Comparison>; unverified: { total: number; byVariant: Record<string, Record<string, number>> } }>(`/api/v1/items/${ITEM}/metrics`);
  // Counted apart, by claimed variant and reason …
  expect(after.unverified.byVariant[SHADOW]?.missing).toBeGreaterThan(forged);
  // … and invisible to the comparison: the shadow's error rate is what the real sessions say (1 in 20).
  expect(after.comparisons[SHADOW].errorRate.shadow.rate).toBeLessThan(0.1);
  expect(after.comparisons[SHADOW].sessions.shadow).toBeLessThan(before.sessions.shadow + forged);
  expect((await get<{ alerts: AlertRec[] }>(`/api/v1/alerts?itemId=${ITEM}`)).alerts.filter((a) => a.ruleId === rule.id)).toEqual([]);
  const prom = await (await fetch(`${t.url}/metrics`)).text();
  expect(prom).toMatch(new RegExp(`penumbra_telemetry_unverified_events_total\\{item="${ITEM.replace(/\./g, '\\.')}",reason="missing",variant="${SHADOW}"\\} \\d+`));
  expect((await fetch(`${t.url}/api/v1/alert-rules/${rule.id}`, { method: 'DELETE', headers: t.auth('operator') })).status).toBe(204);
});

test('a tombstone on the comparisons topic makes the followers forget the item (pipeline/comparisons-topic)', async () => {
  const followed = streamHandles.get(t.p.ctx)!.followedComparisons;
  const gone = `tomb-${randomUUID().slice(0, 8)}`;
  await t.p.ctx.producer.send([{ topic: t.p.ctx.cfg.topics.comparisons, key: gone, value: comparisonsRecord(gone, [], { computedAt: Date.now(), member: 'test', profileVersion: 1, unverified: { total: 2, byVariant: { s1: { missing: 2 } } }, join: null }) }]);
  await waitFor('the record followed', () => followed.has(gone), 15_000, 50);
  expect(followed.unverified(gone)).toEqual({ total: 2, byVariant: { s1: { missing: 2 } } });
  await t.p.ctx.producer.sendRaw(t.p.ctx.cfg.topics.comparisons, [{ key: gone, value: null }]);
  await waitFor('the item forgotten on its tombstone', () => !followed.has(gone), 15_000, 50);
  const m = await get<{ comparisonsSource: string; unverified: unknown }>(`/api/v1/items/${gone}/metrics`);
  // This one-process deployment owns every item: its own (empty) counts, not the deleted record's.
  expect(m).toMatchObject({ comparisonsSource: 'this-process', unverified: { total: 0, byVariant: {} } });
});

test('a 2-step legacy schedule with short holds runs as a timer plan and advances by itself', async () => {
  const p0 = await putConfig(ITEM, MAIN_SHADOW, { schedule: { shadow: SHADOW, steps: [{ percentage: 10, holdSeconds: 1 }, { percentage: 30, holdSeconds: 2 }] } });
  expect(planOf(p0)).toMatchObject({ status: 'running', step: 0 });
  const done = await waitFor('plan complete', async () => {
    const p = await get<Profile>(`/api/v1/items/${ITEM}/shadow-config`);
    return planOf(p)?.status === 'completed' ? p : undefined;
  }, 15_000);
  expect(planOf(done)?.step).toBe(1);
  expect(done.shadows[0].traffic.percentage).toBe(30);
  expect(done.updatedBy).toBe('system:rollout');
  const { entries } = await get<{ entries: { actor: string; action: string }[] }>(`/api/v1/audit?itemId=${ITEM}&actor=system:rollout`);
  expect(entries.filter((e) => e.action === 'rollout.decision').length).toBe(2);
});

test('an error regression fires within one window, pauses the schedule, resolves after it ends and resumes it', async () => {
  // vs_original: the deprecated name of vs_control, still accepted.
  const created = await fetch(`${t.url}/api/v1/alert-rules`, { method: 'POST', ...json('operator', { itemId: ITEM, name: 'shadow errors', metric: 'errorRate', comparison: 'vs_original', threshold: 0.1, minSample: 10, forWindows: 1, guardrail: true }) });
  expect(created.status).toBe(201);
  const rule = (await created.json()) as { id: string; comparison: string; direction: string };
  expect(rule).toMatchObject({ comparison: 'vs_control', direction: 'increase' });
  // A long-holding timer plan (a legacy schedule) that is running when the alert fires.
  await putConfig(ITEM, MAIN_SHADOW, { schedule: { shadow: SHADOW, steps: [{ percentage: 20, holdSeconds: 3600 }, { percentage: 40, holdSeconds: 1 }] } });

  mode = 'regression';
  const regressionAt = Date.now();
  const fired = await waitFor('fired alert', async () => (await get<{ alerts: AlertRec[] }>(`/api/v1/alerts?itemId=${ITEM}&state=fired`)).alerts.find((a) => a.ruleId === rule.id), 40_000, 250);
  // Within one window: the first window that ends after the regression started (or the next,
  // when the regression began late in it) decides.
  expect(fired.windowEnd).toBeLessThanOrEqual(Math.ceil(regressionAt / 10_000) * 10_000 + 10_000);
  expect(fired).toMatchObject({ variant: SHADOW, state: 'fired', action: 'schedule_paused' });
  expect(fired.value).toBeGreaterThan(0.1);
  expect(fired.message).toMatch(/shadow errors: s1 errorRate .* vs control /);
  await waitFor('alert on SSE', () => stream.events.find((e) => e.event === 'alert' && e.data.id === fired.id), 5000, 50);
  await waitFor('webhook', () => hooks.find((h) => h.id === fired.id), 10_000, 50);
  const paused = await waitFor('plan paused', async () => {
    const p = await get<Profile>(`/api/v1/items/${ITEM}/shadow-config`);
    return planOf(p)?.status === 'paused' ? p : undefined;
  }, 10_000);
  expect(planOf(paused)?.reason).toMatch(new RegExp(`^alert ${fired.incidentId}`));
  expect(paused.state).toBe('active'); // guardrail is off on this item so far

  mode = 'normal';
  const resolved = await waitFor('resolved alert', async () => (await get<{ alerts: AlertRec[] }>(`/api/v1/alerts?itemId=${ITEM}&state=resolved`)).alerts.find((a) => a.incidentId === fired.incidentId), 45_000, 250);
  expect(resolved.id).not.toBe(fired.id);
  expect(resolved.message).toMatch(/resolved for s1/);
  await waitFor('plan resumed', async () => planOf(await get<Profile>(`/api/v1/items/${ITEM}/shadow-config`))?.status === 'running', 25_000);
});

test('with the guardrail on, the regression rolls the item back and the audit says why', async () => {
  await putConfig(ITEM, MAIN_SHADOW, { guardrail: true, schedule: null });
  mode = 'regression';
  const rolled = await waitFor('rolled back', async () => {
    const p = await get<Profile>(`/api/v1/items/${ITEM}/shadow-config`);
    return p.state === 'rolled_back' ? p : undefined;
  }, 45_000, 250);
  mode = 'normal';
  expect(rolled.updatedBy).toBe('system:alerts');
  const { entries } = await get<{ entries: { actor: string; role: string; action: string; reason: string; before: { state: string }; after: { state: string } }[] }>(`/api/v1/audit?itemId=${ITEM}&actor=system:alerts`);
  const rb = entries.find((e) => e.after?.state === 'rolled_back')!;
  expect(rb).toMatchObject({ action: 'alert.action', role: 'system', before: { state: 'active' } });
  expect(rb.reason).toMatch(/^guardrail: alert "shadow errors" \(rule .+, incident .+\) fired on s1: /);
  const fired = (await get<{ alerts: AlertRec[] }>(`/api/v1/alerts?itemId=${ITEM}&state=fired`)).alerts[0];
  expect(fired.action).toBe('rolled_back');
  expect(rb.reason).toContain(fired.incidentId);
});

test('events whose variant disagrees with the assignment are counted', async () => {
  const res = await fetch(`${t.url}/api/v1/resolve?itemId=${ITEM}&userId=mismatch-user`);
  const { variant } = (await res.json()) as { variant: string };
  // The resolver queues its assignment record; the processors' index follows the topic.
  await waitFor('assignment indexed', () => streamHandles.get(t.p.ctx)?.assignments?.variantOf(ITEM, 'mismatch-user') === variant, 20_000, 100);
  const other = variant === 'original' ? SHADOW : 'original';
  const before = (await get<{ join: { mismatched: number } }>(`/api/v1/items/${ITEM}/metrics`)).join.mismatched;
  await postBatch(ITEM, other, 'mm-session', 'mismatch-user', [{ id: randomUUID(), type: 'usage', name: 'buy', ts: Date.now() }]);
  const j = await waitFor('mismatch counted', async () => {
    const cur = (await get<{ join: { mismatched: number } }>(`/api/v1/items/${ITEM}/metrics`)).join;
    return cur.mismatched > before ? cur : undefined;
  }, 20_000, 200);
  expect(j.mismatched).toBe(before + 1);
});

test('exposures that do not match the split raise an SRM alert; a running plan rolls its shadow back on the same evidence', async () => {
  // A resolver that sends everyone to the original although the split says 50 % (+ its control).
  const mismatched = (profileVersion: number, tag: string) => t.p.ctx.producer.send(Array.from({ length: 120 }, (_, i) => ({
    topic: t.cfg.topics.assignments, key: `srm-${tag}-u${i}`,
    value: { id: randomUUID(), itemId: SRM_ITEM, userId: `srm-${tag}-u${i}`, variant: 'original', profileVersion, bucket: i, reason: 'not_in_share', controlOf: null, deviceType: null, country: null, userGroup: null, appVersion: null, attributes: {}, derived: [], resolverId: 'test', ts: Date.now() },
  })));
  // No plan: the alert evaluator's built-in SRM check fires.
  const p = await putConfig(SRM_ITEM, SRM_SHADOW, {});
  expect(planOf(p)).toBeNull();
  await mismatched(p.profileVersion, 'a');
  const srmSender = setInterval(() => {
    void postBatch(SRM_ITEM, 'original', `srm-s-${Date.now()}`, 'srm-u1', [{ id: randomUUID(), type: 'request', name: 'api', ts: Date.now(), value: 50 }]).catch(() => undefined);
  }, 500);
  try {
    const srm = await waitFor('srm alert', async () => (await get<{ alerts: AlertRec[] }>(`/api/v1/alerts?itemId=${SRM_ITEM}&state=fired`)).alerts.find((a) => a.ruleId === 'srm'), 25_000, 250);
    expect(srm.message).toMatch(/Sample ratio mismatch/);
    expect(srm.value).toBeLessThan(0.001);
    const m = await get<{ comparisons: Record<string, { srm: { flagged: boolean } }> }>(`/api/v1/items/${SRM_ITEM}/metrics`);
    expect(Object.keys(m.comparisons)).toEqual([]); // no shadow telemetry → nothing to compare
    // A rollout plan (here a legacy schedule, a timer plan) checks SRM at every evaluation
    // (pipeline/rollout, issue 12: "roll back this shadow … an SRM"): the same mismatch at its
    // profile version rolls the shadow back — an open SRM alert would only have paused it.
    const q = await putConfig(SRM_ITEM, SRM_SHADOW, { schedule: { shadow: SHADOW, steps: [{ percentage: 50, holdSeconds: 3600 }] } });
    expect(planOf(q)?.status).toBe('running');
    await mismatched(q.profileVersion, 'b');
    const d = await waitFor('plan rolled back on SRM', async () => {
      const v = await get<{ timeline: { kind: string; rule: string | null; automated: boolean; evidence: { srm?: { p: number; flagged: boolean } } }[] }>(`/api/v1/items/${SRM_ITEM}/rollout`);
      return v.timeline.find((x) => x.kind === 'rollback' && x.rule === 'srm');
    }, 20_000, 250);
    expect(d.automated).toBe(true);
    expect(d.evidence.srm).toMatchObject({ flagged: true });
    expect(d.evidence.srm!.p).toBeLessThan(0.001);
    const after = await get<Profile & { shadows: { state: string }[] }>(`/api/v1/items/${SRM_ITEM}/shadow-config`);
    expect([after.shadows[0].state, planOf(after)?.status]).toEqual(['rolled_back', 'rolled_back']);
  } finally {
    clearInterval(srmSender);
  }
  expect(sent).toBeGreaterThan(0);
}, 60_000);

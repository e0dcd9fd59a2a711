/**
 * The console's fake API (fake-api.ts, what the browser test and the console benchmark run
 * against) answers errors exactly as the real server does. The same requests — no token, a bad
 * token, a viewer changing something, an unknown item or route, a stale If-Match, a missing
 * If-Match, an invalid config on PUT and on upload, a malformed JSON body, invalid alert rules —
 * go to the fake and
 * to a real Penumbra (createPenumbra, real Kafka and registry); their problem+json answers must
 * agree in status, `type`, `title`, the set of fields, the field paths in `errors` and the
 * fields of `current`. Every answer's status must be one the real OpenAPI document declares
 * for that operation.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeServer, type FakeServer } from './fake-api.ts';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../../pipeline/shadowing/fixtures.ts';

type Json = Record<string, unknown>;
interface Side { base: string; itemId: string; token: { operator: string; viewer: string }; archive: Buffer; shadows: Json[]; version: number }
interface Request { method: string; path: (s: Side) => string; role?: 'operator' | 'viewer' | 'bad'; headers?: (s: Side) => Record<string, string>; body?: (s: Side) => BodyInit; template: string }

let fake: FakeServer;
let real: TestPenumbra;
const sides: { fake?: Side; real?: Side } = {};
let openapi: { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

beforeAll(async () => {
  fake = await startFakeServer(mkdtempSync(path.join(tmpdir(), 'penumbra-fake-dist-')));
  real = await startTestPenumbra('fake-contract');
  const archive = await fixtureArchive('api-refs', 'zip');
  const up = await fetch(`${real.url}/api/v1/items`, { method: 'POST', headers: real.auth('operator'), body: uploadForm(archive, goldenConfig('api-refs', fixtureTree('api-refs'))) });
  expect(up.status).toBe(201);
  const itemId = ((await up.json()) as { item: { itemId: string } }).item.itemId;
  const current = async (base: string, id: string, token: string) => {
    const r = await fetch(`${base}/api/v1/items/${id}/shadow-config`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    return { version: Number(r.headers.get('etag')!.replace(/"/g, '')), shadows: ((await r.json()) as { shadows: Json[] }).shadows };
  };
  const r = await current(real.url, itemId, TOKENS.viewer);
  sides.real = { base: real.url, itemId, token: { operator: TOKENS.operator, viewer: TOKENS.viewer }, archive, ...r };
  const f = await current(fake.url, fake.state.itemId, 'view-token');
  sides.fake = { base: fake.url, itemId: fake.state.itemId, token: { operator: 'op-token', viewer: 'view-token' }, archive, ...f };
  openapi = (await (await fetch(`${real.url}/api/v1/openapi.json`)).json()) as typeof openapi;
}, 120_000);

afterAll(async () => {
  await fake?.close();
  await real?.stop();
});

/** The shadows as GET returned them, minus what the server adds, with one field changed. */
function shadowsWith(s: Side, percentage: number): Json[] {
  return s.shadows.map((x) => {
    const { artifact: _artifact, ...rest } = x as Json & { traffic: Json };
    return { ...rest, traffic: { ...(x.traffic as Json), percentage } };
  });
}
const json = (body: unknown) => JSON.stringify(body);
const config = (s: Side) => `/api/v1/items/${encodeURIComponent(s.itemId)}/shadow-config`;
const put = (s: Side, extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...extra });

const REQUESTS: [string, Request][] = [
  ['no token', { method: 'GET', template: '/api/v1/items', path: () => '/api/v1/items' }],
  ['unknown token', { method: 'GET', template: '/api/v1/items', path: () => '/api/v1/items', role: 'bad' }],
  ['a viewer changing the config', { method: 'PUT', template: '/api/v1/items/{itemId}/shadow-config', path: config, role: 'viewer', headers: (s) => put(s, { 'if-match': `"${s.version}"` }), body: (s) => json({ shadows: shadowsWith(s, 10) }) }],
  ['a viewer rolling back', { method: 'POST', template: '/api/v1/items/{itemId}/rollback', path: (s) => `/api/v1/items/${encodeURIComponent(s.itemId)}/rollback`, role: 'viewer', headers: () => ({ 'content-type': 'application/json' }), body: () => json({ reason: 'x' }) }],
  ['a viewer uploading', { method: 'POST', template: '/api/v1/items', path: () => '/api/v1/items', role: 'viewer', body: (s) => uploadForm(s.archive) }],
  ['an unknown item', { method: 'GET', template: '/api/v1/items/{itemId}', path: () => '/api/v1/items/com.example.nothing-here', role: 'viewer' }],
  ['an unknown route', { method: 'GET', template: '', path: () => '/api/v1/no-such-route', role: 'viewer' }],
  ['a stale If-Match', { method: 'PUT', template: '/api/v1/items/{itemId}/shadow-config', path: config, role: 'operator', headers: (s) => put(s, { 'if-match': `"${s.version + 5}"` }), body: (s) => json({ shadows: shadowsWith(s, 10) }) }],
  ['no If-Match', { method: 'PUT', template: '/api/v1/items/{itemId}/shadow-config', path: config, role: 'operator', headers: (s) => put(s), body: (s) => json({ shadows: shadowsWith(s, 10) }) }],
  ['an invalid config on PUT', { method: 'PUT', template: '/api/v1/items/{itemId}/shadow-config', path: config, role: 'operator', headers: (s) => put(s, { 'if-match': `"${s.version}"` }), body: (s) => json({ shadows: shadowsWith(s, 150) }) }],
  ['a malformed JSON body', { method: 'PUT', template: '/api/v1/items/{itemId}/shadow-config', path: config, role: 'operator', headers: (s) => put(s, { 'if-match': `"${s.version}"` }), body: () => '{"shadows": [' }],
  ['an invalid config on upload', { method: 'POST', template: '/api/v1/items', path: () => '/api/v1/items', role: 'operator', body: (s) => uploadForm(s.archive, [{ ...shadowsWith(s, 150)[0] }]) }],
  // Alert rules: the fake validates with the server's own schema (direction fits the comparison, metric names).
  ['an alert rule whose direction does not fit its comparison', { method: 'POST', template: '/api/v1/alert-rules', path: () => '/api/v1/alert-rules', role: 'operator', headers: () => ({ 'content-type': 'application/json' }), body: () => json({ name: 'buy drop', metric: 'conversion:buy', comparison: 'vs_control', direction: 'below', threshold: 0.05 }) }],
  ['an alert rule on an unknown metric', { method: 'POST', template: '/api/v1/alert-rules', path: () => '/api/v1/alert-rules', role: 'operator', headers: () => ({ 'content-type': 'application/json' }), body: () => json({ name: 'lcp', metric: 'perf:lcp', comparison: 'absolute', kind: 'ewma', threshold: 0 }) }],
  ['a viewer creating an alert rule', { method: 'POST', template: '/api/v1/alert-rules', path: () => '/api/v1/alert-rules', role: 'viewer', headers: () => ({ 'content-type': 'application/json' }), body: () => json({ name: 'x', metric: 'errorRate', comparison: 'absolute', threshold: 0.1 }) }],
];

async function ask(s: Side, r: Request): Promise<{ status: number; contentType: string; body: Json }> {
  const auth: Record<string, string> = r.role === 'bad' ? { authorization: 'Bearer not-a-token-of-anyone' } : r.role ? { authorization: `Bearer ${s.token[r.role]}` } : {};
  const res = await fetch(s.base + r.path(s), { method: r.method, headers: { ...auth, ...(r.headers?.(s) ?? {}) }, body: r.body?.(s) });
  const text = await res.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = { unparsable: text.slice(0, 200) };
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
}

/** What must agree: everything but the human `detail`, the instance URL and field messages. */
function shape(a: { status: number; contentType: string; body: Json }) {
  const b = a.body;
  return {
    status: a.status,
    contentType: a.contentType.split(';')[0],
    type: b.type,
    title: b.title,
    problemStatus: b.status,
    fields: Object.keys(b).sort(),
    errorPaths: Array.isArray(b.errors) ? (b.errors as { path: string }[]).map((e) => e.path) : undefined,
    errorFields: Array.isArray(b.errors) ? [...new Set((b.errors as Json[]).flatMap((e) => Object.keys(e)))].sort() : undefined,
    reason: b.reason,
    currentFields: b.current && typeof b.current === 'object' ? Object.keys(b.current).sort() : undefined,
  };
}

test.each(REQUESTS)('%s: the fake answers with the real server’s problem', async (_what, r) => {
  const [f, re] = [await ask(sides.fake!, r), await ask(sides.real!, r)];
  expect(re.status).toBeGreaterThanOrEqual(400); // the scenario is an error on the real server…
  expect(shape(f)).toEqual(shape(re)); // …and the fake says the same
  expect(typeof f.body.detail === 'string' && (f.body.detail as string).length > 0).toBe(true);
  expect(f.body.instance).toBe(r.path(sides.fake!));
  // A status the real OpenAPI document declares for the operation (unknown routes have none).
  if (r.template) {
    const op = openapi.paths[r.template]?.[r.method.toLowerCase()];
    expect({ op: `${r.method} ${r.template}`, declared: op ? Object.keys(op.responses) : null }).toEqual({ op: `${r.method} ${r.template}`, declared: expect.arrayContaining([String(re.status)]) });
  }
});

test('the fake changed nothing: every refused PUT left its profile version as it was', async () => {
  const r = await fetch(`${fake.url}/api/v1/items/${fake.state.itemId}/shadow-config`, { headers: { authorization: 'Bearer view-token' } });
  expect(r.headers.get('etag')).toBe(`"${sides.fake!.version}"`);
  expect(fake.state.puts).toBe(0);
});

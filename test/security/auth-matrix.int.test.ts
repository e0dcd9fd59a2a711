/**
 * Auth matrix, driven by the live OpenAPI document so routes added later are covered without
 * editing this file: every operation that declares `security` is called with no token, bad
 * tokens, and the viewer, operator and admin tokens.
 *   no / bad token        → 401 problem+json (type …/unauthorized)
 *   role below x-required-role → 403 problem+json (type …/forbidden)
 *   role at or above      → anything but 401/403
 * Every operation without `security` (device and ops routes) must answer without a token.
 * Requests use a real uploaded item, so authorised calls run the handler for real.
 */
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../../pipeline/shadowing/fixtures.ts';
import { fetchOperations, fillPath, ROLE_RANK, type Operation } from './openapi-ops.ts';

let t: TestPenumbra;
let ops: Operation[];
let itemId = '';
let version = '';

beforeAll(async () => {
  // Failed authentications are throttled per client (429 after 20); this matrix sends hundreds
  // of bad tokens on purpose, so the throttle is off here and proven in hardening.int.test.ts.
  t = await startTestPenumbra('auth-matrix', { PENUMBRA_RATE_AUTH_FAILURES: '0' });
  const archive = await fixtureArchive('api-refs', 'zip');
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(archive, goldenConfig('api-refs', fixtureTree('api-refs'))) });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { item: { itemId: string; latestVersion: string } };
  itemId = body.item.itemId;
  version = body.item.latestVersion;
  ops = await fetchOperations(t.url);
});
afterAll(async () => {
  await t?.stop();
});

interface Answer { status: number; contentType: string; body: string }

/** One request; streaming answers (SSE) are cut after the headers. */
async function call(op: Operation, headers: Record<string, string>, extraQuery = ''): Promise<Answer> {
  const path = fillPath(op.template, { itemId, version, variant: 'checkout-v2', file: 'index.html' });
  // Required query parameters get plausible values, so authorised calls reach the handler.
  if (!extraQuery) {
    const req = op.query.filter((q) => q.required).map((q) => `${q.name}=${encodeURIComponent(q.name === 'itemId' ? itemId : q.name === 'variant' ? 'checkout-v2' : 'u1')}`);
    if (req.length) extraQuery = `?${req.join('&')}`;
  }
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    let body: BodyInit | undefined;
    const h: Record<string, string> = { ...headers };
    if (op.method === 'post' || op.method === 'put') {
      if (op.bodyContentType === 'multipart/form-data') body = new FormData();
      else {
        body = '{}';
        h['content-type'] = 'application/json';
      }
    }
    const res = await fetch(`${t.url}${path}${extraQuery}`, { method: op.method.toUpperCase(), headers: h, body, redirect: 'manual', signal: ac.signal });
    const contentType = res.headers.get('content-type') ?? '';
    const text = contentType.startsWith('text/event-stream') ? '' : await res.text();
    if (contentType.startsWith('text/event-stream')) ac.abort();
    return { status: res.status, contentType, body: text };
  } finally {
    clearTimeout(timer);
  }
}

function expectProblem(a: Answer, status: number, code: string, what: string): void {
  expect({ what, status: a.status }).toEqual({ what, status });
  expect({ what, contentType: a.contentType }).toEqual({ what, contentType: expect.stringMatching(/^application\/problem\+json/) });
  const p = JSON.parse(a.body) as { type: string; status: number; detail: string };
  expect({ what, type: p.type, status: p.status }).toEqual({ what, type: `https://penumbra.dev/problems/${code}`, status });
  expect(p.detail.length).toBeGreaterThan(0);
}

const BAD_TOKENS: [string, Record<string, string>][] = [
  ['unknown bearer token', { authorization: 'Bearer not-a-real-token-0123456789' }],
  ['valid token with a suffix', { authorization: `Bearer ${TOKENS.admin}x` }],
  ['valid token truncated', { authorization: `Bearer ${TOKENS.admin.slice(0, -1)}` }],
  ['Basic scheme', { authorization: `Basic ${Buffer.from(`admin:${TOKENS.admin}`).toString('base64')}` }],
  ['empty bearer', { authorization: 'Bearer ' }],
  ['token without scheme', { authorization: TOKENS.admin }],
];

test('the document declares the operator routes with a required role', () => {
  const secured = ops.filter((o) => o.secured);
  // Guard against a vacuous matrix: the contract's operator routes must be in the document.
  for (const [method, template] of [
    ['post', '/api/v1/items'], ['get', '/api/v1/items'], ['get', '/api/v1/items/{itemId}'],
    ['get', '/api/v1/items/{itemId}/shadow-config'], ['put', '/api/v1/items/{itemId}/shadow-config'],
    ['post', '/api/v1/items/{itemId}/rollback'], ['get', '/api/v1/audit'], ['get', '/api/v1/stream'],
  ]) {
    expect(secured.map((o) => `${o.method} ${o.template}`)).toContain(`${method} ${template}`);
  }
  for (const o of secured) expect({ op: `${o.method} ${o.template}`, role: o.requiredRole }).toEqual({ op: `${o.method} ${o.template}`, role: expect.stringMatching(/^(viewer|operator|admin)$/) });
  // Changing traffic needs at least operator.
  for (const tpl of ['/api/v1/items/{itemId}/shadow-config', '/api/v1/items/{itemId}/rollback']) {
    const o = secured.find((x) => x.template === tpl && x.method !== 'get')!;
    expect(ROLE_RANK[o.requiredRole!]).toBeGreaterThanOrEqual(ROLE_RANK.operator);
  }
});

test('every secured operation × {no token, bad tokens, viewer, operator, admin}', async () => {
  const secured = ops.filter((o) => o.secured);
  const rows: string[] = [];
  for (const op of secured) {
    const name = `${op.method.toUpperCase()} ${op.template}`;
    expectProblem(await call(op, {}), 401, 'unauthorized', `${name} without token`);
    for (const [label, h] of BAD_TOKENS) expectProblem(await call(op, h), 401, 'unauthorized', `${name} with ${label}`);
    const cells: string[] = [];
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const a = await call(op, t.auth(role));
      cells.push(`${role}=${a.status}`);
      if (ROLE_RANK[role] < ROLE_RANK[op.requiredRole!]) expectProblem(a, 403, 'forbidden', `${name} as ${role}`);
      else expect(`${name} as ${role} → ${a.status}`).not.toMatch(/→ 40[13]$/);
    }
    rows.push(`${name.padEnd(55)} needs ${op.requiredRole!.padEnd(8)} ${cells.join(' ')}`);
  }
  process.stderr.write(`auth matrix (${secured.length} operations):\n${rows.join('\n')}\n`);
  expect(secured.length).toBeGreaterThanOrEqual(8);
});

test('a token in the query string is accepted nowhere; the stream takes a single-use ticket', async () => {
  for (const op of ops.filter((o) => o.secured && o.method === 'get')) {
    expectProblem(await call(op, {}, `?access_token=${TOKENS.admin}`), 401, 'unauthorized', `${op.template}?access_token=`);
  }
  const stream = ops.find((o) => o.template === '/api/v1/stream')!;
  const issue = await fetch(`${t.url}/api/v1/stream/ticket`, { method: 'POST', headers: t.auth('viewer') });
  expect(issue.status).toBe(200);
  const { ticket, expiresAt } = (await issue.json()) as { ticket: string; expiresAt: number };
  expect(ticket).not.toContain(TOKENS.viewer);
  expect(expiresAt - Date.now()).toBeLessThanOrEqual(30_000);
  expect((await call(stream, {}, `?ticket=${ticket}`)).status).toBe(200);
  expectProblem(await call(stream, {}, `?ticket=${ticket}`), 401, 'unauthorized', 'stream with a used ticket');
  expectProblem(await call(stream, {}, '?ticket=pst_made-up-0123456789'), 401, 'unauthorized', 'stream with an unknown ticket');
  // A ticket opens the stream only: elsewhere it is not a credential.
  const other = (await (await fetch(`${t.url}/api/v1/stream/ticket`, { method: 'POST', headers: t.auth('admin') })).json()) as { ticket: string };
  expectProblem(await call(ops.find((o) => o.template === '/api/v1/items' && o.method === 'get')!, {}, `?ticket=${other.ticket}`), 401, 'unauthorized', 'items with a ticket');
});

test('every operation without security answers without a token', async () => {
  const open = ops.filter((o) => !o.secured);
  expect(open.map((o) => `${o.method} ${o.template}`)).toEqual(expect.arrayContaining(['get /api/v1/resolve', 'post /api/v1/telemetry', 'get /api/v1/items/{itemId}/runtime-config', 'get /api/v1/health']));
  const rows: string[] = [];
  for (const op of open) {
    const a = await call(op, {});
    rows.push(`${op.method.toUpperCase()} ${op.template} → ${a.status}`);
    expect(`${op.method} ${op.template} → ${a.status}`).not.toMatch(/→ (40[13]|5\d\d)$/);
  }
  process.stderr.write(`open routes:\n${rows.join('\n')}\n`);
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiError, canMutate, toApiError } from './api.ts';

let server: http.Server;
let base: string;
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
let version = 3;

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    const problem = (status: number, extra: object) => { res.writeHead(status, { 'content-type': 'application/problem+json' }); res.end(JSON.stringify({ type: 'https://penumbra.dev/problems/x', title: 'T', status, detail: 'D', ...extra })); };
    if (req.headers.authorization !== 'Bearer tok') return problem(401, { detail: 'no token' });
    if (req.url === '/api/v1/whoami') { res.setHeader('content-type', 'application/json'); return res.end(JSON.stringify({ name: 'olivia', role: 'operator' })); }
    if (req.url === '/api/v1/items/a/shadow-config' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json', etag: `"${version}"` });
      return res.end(JSON.stringify({ itemId: 'a', profileVersion: version, state: 'active', shadows: [] }));
    }
    if (req.url === '/api/v1/items/a/shadow-config' && req.method === 'PUT') {
      if (req.headers['if-match'] !== `"${version}"`) return problem(409, { detail: 'stale', current: { profileVersion: version, updatedBy: 'sam', updatedAt: 1764200000000 } });
      if (JSON.parse(body).shadows.length > 1) return problem(422, { errors: [{ path: 'shadows/1/traffic/rules/0/range', message: 'bad range' }] });
      version++;
      res.writeHead(200, { 'content-type': 'application/json', etag: `"${version}"` });
      return res.end(JSON.stringify({ itemId: 'a', profileVersion: version, state: 'active', shadows: [] }));
    }
    if (req.url === '/api/v1/items' && req.method === 'POST') return problem(422, { reason: 'path-traversal', errors: [{ path: 'shadowConfig/0/traffic/percentage', message: 'too big' }] });
    if (req.url?.startsWith('/api/v1/items/a/metrics')) { res.setHeader('content-type', 'application/json'); return res.end('{}'); }
    if (req.url === '/api/v1/alert-rules/r1' && req.method === 'DELETE') { res.writeHead(204); return res.end(); }
    if (req.url === '/api/v1/stream/ticket' && req.method === 'POST') { res.setHeader('content-type', 'application/json'); return res.end(JSON.stringify({ ticket: 'pst_one', expiresAt: 1 })); }
    if (req.url === '/api/v1/broken') { res.writeHead(502, { 'content-type': 'text/html' }); return res.end('<h1>Bad gateway</h1>'); }
    problem(404, { detail: 'nope' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

test('sends the bearer token and parses JSON', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  expect(await c.whoami()).toEqual({ name: 'olivia', role: 'operator' });
  expect(seen.at(-1)!.headers.authorization).toBe('Bearer tok');
});

test('401 becomes an ApiError with the problem detail', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'wrong' });
  const e = await c.whoami().catch((x) => x);
  expect(e).toBeInstanceOf(ApiError);
  expect(e).toMatchObject({ status: 401, detail: 'no token', type: 'https://penumbra.dev/problems/x', isUnauthorized: true });
});

test('shadow-config: remembers the ETag, sends it as If-Match, 409 carries who/when, 422 carries field paths', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  const v = await c.getShadowConfig('a');
  expect(c.etagOf('a')).toBe(`"${v.profileVersion}"`);
  const saved = await c.putShadowConfig('a', { shadows: [] });
  expect(seen.at(-1)!.headers['if-match']).toBe(`"${v.profileVersion}"`);
  expect(seen.at(-1)!.headers['content-type']).toBe('application/json');
  expect(c.etagOf('a')).toBe(`"${saved.profileVersion}"`);
  const conflict = await c.putShadowConfig('a', { shadows: [] }, v.profileVersion).catch((x) => x);
  expect(conflict).toMatchObject({ status: 409, isConflict: true, current: { profileVersion: saved.profileVersion, updatedBy: 'sam', updatedAt: 1764200000000 } });
  const invalid = await c.putShadowConfig('a', { shadows: [{} as never, {} as never] }).catch((x) => x);
  expect(invalid.status).toBe(422);
  expect(invalid.errors).toEqual([{ path: 'shadows/1/traffic/rules/0/range', message: 'bad range' }]);
  expect(invalid.fieldErrors('shadows/1')).toEqual(['bad range']);
  expect(invalid.fieldErrors('shadows/0')).toEqual([]);
});

test('PUT without a known ETag is refused locally (428)', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  await expect(c.putShadowConfig('zzz', { shadows: [] })).rejects.toMatchObject({ status: 428 });
});

test('upload is multipart with the item file and shadowConfig text; 422 keeps reason and paths', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  const e = await c.uploadItem(new Blob([new Uint8Array([80, 75, 3, 4])]), 'notes.zip', '{"name":"x"}').catch((x) => x);
  expect(e).toMatchObject({ status: 422, reason: 'path-traversal', errors: [{ path: 'shadowConfig/0/traffic/percentage', message: 'too big' }] });
  const req = seen.at(-1)!;
  expect(req.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
  expect(req.body).toContain('name="item"; filename="notes.zip"');
  expect(req.body).toContain('name="shadowConfig"');
  expect(req.body).toContain('{"name":"x"}');
});

test('metrics query string and defaults for missing fields; 204 ok', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  expect(await c.metrics('a', { window: '1m', from: 1, to: 2 })).toEqual({ windows: [], comparisons: {}, unverified: null, comparisonsSource: 'none', comparisonsFreshness: null });
  expect(seen.at(-1)!.url).toBe('/api/v1/items/a/metrics?window=1m&from=1&to=2');
  await expect(c.deleteAlertRule('r1')).resolves.toBeUndefined();
});

test('non-JSON errors and network failures still become ApiError', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  const e = await (c as unknown as { request(m: string, p: string): Promise<unknown> }).request('GET', '/broken').catch((x) => x);
  expect(e).toMatchObject({ status: 502, detail: '<h1>Bad gateway</h1>' });
  const down = new ApiClient({ baseUrl: 'http://127.0.0.1:1/api/v1', token: 'tok' });
  await expect(down.whoami()).rejects.toMatchObject({ status: 0, type: 'network' });
  const parsed = await toApiError(new Response('{"title":"Conflict","status":409,"current":{"updatedBy":"x"}}', { status: 409 }));
  expect(parsed.current).toEqual({ updatedBy: 'x' });
});

test('stream URL carries a ticket fetched with the header, never the token; roles', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  const url = await c.streamUrl('com.x');
  expect(url).toBe(`${base}/stream?ticket=pst_one&itemId=com.x`);
  expect(url).not.toContain('tok');
  expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/api/v1/stream/ticket', headers: expect.objectContaining({ authorization: 'Bearer tok' }) });
  expect([canMutate('viewer'), canMutate('operator'), canMutate('admin'), canMutate(null)]).toEqual([false, true, true, false]);
});

test('[#13] risk: no score yet (404) is an empty view; release posts the reason and a missing hold is an ApiError', async () => {
  const c = new ApiClient({ baseUrl: base, token: 'tok' });
  expect(await c.risk('a')).toEqual({ scores: [], holds: [], plan: null, forecast: { holdAt: null, shadows: [], holds: [] }, earlyHolds: [] });
  const e = await c.releaseRiskHold('a', 'checked').catch((x) => x);
  expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/api/v1/items/a/risk/release', body: JSON.stringify({ reason: 'checked' }) });
  expect(e).toBeInstanceOf(ApiError);
  expect(e).toMatchObject({ status: 404 });
});

/**
 * A tiny static server for console/dist plus an in-memory fake of the operator API routes the
 * console uses (contract in shared ARCHITECTURE.md / the console brief). Used by the browser
 * test and bench/console.bench.ts; the real end-to-end test runs against `npm start`.
 * Tokens: `op-token` (operator olivia), `view-token` (viewer vic).
 *
 * Errors are the real server's: each is one of its error classes (pipeline/errors.ts) turned into
 * problem+json by its own toProblem (connectors/http/problem.ts), so types, titles and fields
 * cannot drift; fake-api.int.test.ts sends the same requests to this fake and to a real Penumbra
 * and compares the answers, and checks each one against the real OpenAPI document.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { toProblem } from '../../connectors/http/problem.ts';
import { ArchiveRejectedError, AuthError, ConflictError, NotFoundError, PenumbraError, PreconditionRequiredError, ValidationError, type FieldIssue } from '../../pipeline/errors.ts';

const TOKENS: Record<string, { name: string; role: string }> = {
  'op-token': { name: 'olivia', role: 'operator' },
  'view-token': { name: 'vic', role: 'viewer' },
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json' };
export const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

/** The error the real server throws for this answer (the class decides type, title and fields). */
function errorFor(status: number, detail: string, extra: { errors?: FieldIssue[]; reason?: string; current?: unknown }): unknown {
  switch (status) {
    case 401: return new AuthError('unauthorized', detail);
    case 403: return new AuthError('forbidden', detail);
    case 404: return new NotFoundError(detail);
    case 409: return new ConflictError(detail, extra.current);
    case 428: return new PreconditionRequiredError(detail);
    case 422: return extra.reason ? new ArchiveRejectedError(extra.reason, detail, extra.errors ?? []) : new ValidationError(detail, extra.errors ?? []);
    default: return new PenumbraError('internal', detail, { status });
  }
}
function sendError(res: http.ServerResponse, err: unknown): void {
  const p = toProblem(err, res.req?.url);
  res.writeHead(p.status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify(p));
}
function problem(res: http.ServerResponse, status: number, detail: string, extra: { errors?: FieldIssue[]; reason?: string; current?: unknown } = {}): void {
  sendError(res, errorFor(status, detail, extra));
}
/** JSON body, or the error express.json() raises on a malformed one (the real API answers 400 malformed-json). */
async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw Object.assign(new Error((err as Error).message), { status: 400, type: 'entity.parse.failed' });
  }
}
function json(res: http.ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function makeState(now = Date.now()) {
  const itemId = 'com.example.notes';
  const shadow = {
    name: 'checkout-v2',
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints: { api: 'https://shadow-api.example.com/v1' },
    traffic: { percentage: 20, match: 'all' as const, rules: [{ attribute: 'deviceType', op: 'in', values: ['android'] }, { attribute: 'appVersion', op: 'semver', range: '>=1.2.0' }] },
    artifact: { sha256: 'b'.repeat(64), size: 48213 },
  };
  const profile = { itemId, profileVersion: 3, state: 'active' as string, itemVersion: '1.4.0', holdout: null, guardrail: null,
    schedule: { shadow: 'checkout-v2', steps: [{ percentage: 5, holdSeconds: 600 }, { percentage: 20, holdSeconds: 1800 }, { percentage: 50, holdSeconds: 3600 }], currentStep: 1, status: 'running', stepStartedAt: now - 300_000 },
    shadows: [shadow], updatedBy: 'olivia', updatedAt: now - 3_600_000 };
  const variant = (name: string, sha: string, size: number) => ({ name, sha256: sha, size, files: 12, profileVersion: 3, replacements: name === 'original' ? 0 : 4,
    artifactUrl: `/api/v1/items/${itemId}/artifacts/${name}`, launchUrl: `/d/${itemId}/1.4.0/${name}/index.html` });
  const item = () => ({ itemId, name: 'Notes', latestVersion: '1.4.0', state: profile.state, profileVersion: profile.profileVersion, updatedAt: profile.updatedAt,
    versions: [{ version: '1.4.0', entry: 'index.html', ingestedAt: now - 86_400_000, manifest: { id: itemId, version: '1.4.0', name: 'Notes', entry: 'index.html', endpoints: { api: 'https://api.example.com/v1' } },
      variants: [variant('original', 'a'.repeat(64), 45120), variant('checkout-v2', 'b'.repeat(64), 48213)] }],
    shadows: profile.shadows.map((s) => ({ name: s.name, percentage: s.traffic.percentage, rules: s.traffic.rules })) });
  const other = { itemId: 'com.example.shop', name: 'Shop', latestVersion: '2.0.1', state: 'rolled_back', profileVersion: 7, updatedAt: now - 7_200_000,
    versions: [{ version: '2.0.1', entry: 'index.html', ingestedAt: now - 90_000_000, manifest: { id: 'com.example.shop', version: '2.0.1', name: 'Shop', entry: 'index.html' }, variants: [] }], shadows: [] };
  // A mobile item (an Expo update bundle, pipeline/mobile), rolled back: apps revert to their embedded update.
  const mobileId = 'com.example.ledger.app';
  const mobileProfile = { itemId: mobileId, profileVersion: 4, state: 'rolled_back', itemVersion: '1.0.0', holdout: null, guardrail: null, schedule: null,
    shadows: [{ ...shadow, name: 'fast-api', traffic: { percentage: 50, match: 'all' as const, rules: [] } }], updatedBy: 'olivia', updatedAt: now - 600_000 };
  const mobile = { itemId: mobileId, name: 'Ledger (iOS/Android update)', kind: 'mobile', platforms: ['ios', 'android'], runtimeVersion: '1.0.0', updateUrl: `/api/v1/expo/${mobileId}/manifest`,
    latestVersion: '1.0.0', state: 'rolled_back', profileVersion: 4, updatedAt: now - 600_000,
    versions: [{ version: '1.0.0', entry: '_expo/static/js/ios/index-0123.js', ingestedAt: now - 3_600_000, manifest: { id: mobileId, version: '1.0.0', name: 'Ledger', entry: '_expo/static/js/ios/index-0123.js', runtimeVersion: '1.0.0', platforms: ['ios', 'android'] },
      variants: [] }], shadows: [{ name: 'fast-api', percentage: 50, rules: [] }] };
  const windows = (from: number, to: number, sizeMs: number) => {
    const out: unknown[] = [];
    const start = Math.floor(from / sizeMs) * sizeMs;
    for (let t = start, k = 0; t < to && k < 400; t += sizeMs, k++) {
      for (const v of ['original', 'checkout-v2']) {
        const s = v === 'original' ? 0 : 1;
        const wave = Math.sin(t / 200_000 + s);
        out.push({ itemId, variant: v, windowSize: sizeMs === 10_000 ? '10s' : '1m', windowStart: t, windowEnd: t + sizeMs, events: 400 + 80 * wave, sessions: 90, users: 80,
          errors: 2 + s, errorSessions: 2 + s, errorRate: 0.02 + 0.01 * s + 0.003 * wave, requests: 200, requestErrors: 1, rate: (400 + 80 * wave) / (sizeMs / 1000),
          latency: { count: 200, mean: 120 + 15 * s, p50: 100 + 10 * s + 5 * wave, p95: 240 + 30 * s, p99: 400 + 50 * s + 20 * wave },
          conversions: { buy: { sessions: 9 + s, rate: 0.1 + 0.012 * s } }, perf: {}, late: 0 });
      }
    }
    return out;
  };
  const comparison = {
    latency: { t: 3.1, df: 412, p: 0.002, diff: 14.8, ci: [5.4, 24.2] }, errorRate: { z: 1.1, p: 0.27, diff: 0.004, ci: [-0.003, 0.011], lift: 0.18 },
    conversions: { buy: { z: 2.4, p: 0.016, diff: 0.012, ci: [0.002, 0.022], lift: 0.12 } }, srm: { chi2: 0.4, p: 0.52, flagged: false },
    verdicts: { latency: 'worse', errorRate: 'inconclusive', 'conversion:buy': 'better' },
  };
  return {
    itemId, profile, item, other, mobile, mobileProfile, windows, comparison,
    resolvers: [{ resolverId: 'r1', host: 'api-1', pid: 4121, versions: { [itemId]: 3 } as Record<string, number>, at: now - 2000, stale: false },
                { resolverId: 'r2', host: 'api-2', pid: 4388, versions: { [itemId]: 3 } as Record<string, number>, at: now - 3000, stale: false }],
    exposures: { itemId, counts: { original: 8012, 'checkout-v2': 1988 }, total: 10000, since: now - 86_400_000 },
    rules: [{ id: 'ar1', itemId, name: 'Shadow error rate', metric: 'errorRate', comparison: 'vs_original', threshold: 0.02, minSample: 100, forWindows: 3, guardrail: true }] as Record<string, unknown>[],
    alerts: [{ id: 'al1', incidentId: 'in1', ruleId: 'ar1', itemId, variant: 'checkout-v2', metric: 'errorRate', state: 'resolved', value: 0.051, threshold: 0.02, baseline: 0.021,
      message: 'checkout-v2 error rate 5.1% exceeded the original (2.1%) by more than 2 pp for 3 windows', windowEnd: now - 7_000_000, action: null, at: now - 7_000_000 }],
    audit: [
      { id: 'au2', itemId, actor: 'olivia', role: 'operator', action: 'shadow-config.put', outcome: 'applied', reason: null,
        before: { shadows: [{ name: 'checkout-v2', traffic: { percentage: 10 } }] }, after: { shadows: [{ name: 'checkout-v2', traffic: { percentage: 20 } }] }, requestId: 'req-2', at: now - 3_600_000 },
      { id: 'au1', itemId: 'com.example.shop', actor: 'sam', role: 'admin', action: 'rollback', outcome: 'applied', reason: 'checkout errors', before: { state: 'active' }, after: { state: 'rolled_back' }, requestId: 'req-1', at: now - 7_200_000 },
    ],
    sseClients: new Set<http.ServerResponse>(),
    tickets: new Map<string, string>(),
    puts: 0,
  };
}
export type FakeState = ReturnType<typeof makeState>;

export interface FakeServer { url: string; state: FakeState; close(): Promise<void>; broadcast(event: string, data: unknown): void }

/** `extraFiles` maps URL paths to local files (the browser test serves axe-core same-origin, so the CSP stays strict). */
export async function startFakeServer(distDir: string, opts: { withApi?: boolean; extraFiles?: Record<string, string> } = {}): Promise<FakeServer> {
  const st = makeState();
  const withApi = opts.withApi ?? true;
  const broadcast = (event: string, data: unknown) => { for (const c of st.sseClients) c.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };

  async function api(req: http.IncomingMessage, res: http.ServerResponse, u: URL): Promise<void> {
    const p = u.pathname.slice('/api/v1'.length);
    // The stream takes a single-use ticket from POST /stream/ticket (as the real API does).
    let token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
    if (!token && p === '/stream') {
      token = st.tickets.get(u.searchParams.get('ticket') ?? '') ?? null;
      st.tickets.delete(u.searchParams.get('ticket') ?? '');
    }
    const who = token ? TOKENS[token] : undefined;
    if (!who) return problem(res, 401, 'Missing or unknown operator token');
    const m = req.method ?? 'GET';
    const mutate = () => { if (who.role === 'viewer') { problem(res, 403, 'Viewers cannot change anything'); return false; } return true; };
    let mm: RegExpExecArray | null;
    if (p === '/whoami') return json(res, who);
    if (p === '/stream/ticket' && m === 'POST') {
      const ticket = `pst_${Math.random().toString(36).slice(2)}`;
      st.tickets.set(ticket, token!);
      return json(res, { ticket, expiresAt: Date.now() + 30_000 });
    }
    if (p === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      st.sseClients.add(res);
      req.on('close', () => st.sseClients.delete(res));
      const send = (e: string, d: unknown) => res.write(`event: ${e}\ndata: ${JSON.stringify(d)}\n\n`);
      send('resolvers', { resolvers: st.resolvers });
      send('exposures', st.exposures);
      const t = Date.now();
      for (const w of st.windows(t - 20_000, t, 10_000)) send('metrics', w);
      send('comparison', { itemId: st.itemId, variant: 'checkout-v2', comparison: st.comparison });
      return;
    }
    if (p === '/items' && m === 'GET') {
      const q = (u.searchParams.get('q') ?? '').toLowerCase();
      return json(res, { items: [st.item(), st.other, st.mobile].filter((i) => !q || i.itemId.includes(q) || i.name.toLowerCase().includes(q)) });
    }
    if (p === '/items' && m === 'POST') {
      if (!mutate()) return;
      await readBody(req);
      return problem(res, 422, 'The shadow config is invalid', { errors: [{ path: 'shadowConfig/0/traffic/percentage', message: 'must be between 0 and 100' }] });
    }
    if ((mm = /^\/items\/([^/]+)$/.exec(p))) {
      const id = decodeURIComponent(mm[1]);
      if (id === st.itemId) return json(res, st.item());
      if (id === st.other.itemId) return json(res, st.other);
      if (id === st.mobile.itemId) return json(res, st.mobile);
      return problem(res, 404, `No item ${id}`);
    }
    if ((mm = /^\/items\/([^/]+)\/shadow-config$/.exec(p))) {
      if (decodeURIComponent(mm[1]) === st.mobile.itemId && m === 'GET') return json(res, st.mobileProfile, { etag: `"${st.mobileProfile.profileVersion}"` });
      if (decodeURIComponent(mm[1]) !== st.itemId) return problem(res, 404, 'No such item');
      if (m === 'GET') return json(res, st.profile, { etag: `"${st.profile.profileVersion}"` });
      if (!mutate()) return;
      if (req.headers['if-match'] === undefined) return problem(res, 428, 'PUT shadow-config needs If-Match: <profileVersion>');
      const ifMatch = Number(String(req.headers['if-match']).replace(/"/g, ''));
      const body = (await readJson(req)) as { shadows: Record<string, unknown>[] };
      if (ifMatch !== st.profile.profileVersion) return problem(res, 409, 'Stale If-Match', { current: { profileVersion: st.profile.profileVersion, updatedBy: st.profile.updatedBy, updatedAt: st.profile.updatedAt } });
      const bad = (body.shadows as { traffic: { percentage: number } }[]).findIndex((s) => s.traffic.percentage > 100);
      if (bad >= 0) return problem(res, 422, 'Invalid config', { errors: [{ path: `shadows/${bad}/traffic/percentage`, message: 'must be ≤ 100' }] });
      st.puts++;
      Object.assign(st.profile, { shadows: body.shadows.map((s) => ({ ...s, artifact: { sha256: 'b'.repeat(64), size: 1 } })), profileVersion: st.profile.profileVersion + 1, updatedBy: who.name, updatedAt: Date.now() });
      broadcast('profile', st.profile);
      return json(res, st.profile, { etag: `"${st.profile.profileVersion}"` });
    }
    if ((mm = /^\/items\/([^/]+)\/(rollback|activate)$/.exec(p)) && m === 'POST') {
      if (!mutate()) return;
      await readBody(req);
      Object.assign(st.profile, { state: mm[2] === 'rollback' ? 'rolled_back' : 'active', profileVersion: st.profile.profileVersion + 1, updatedBy: who.name, updatedAt: Date.now() });
      const v = st.profile.profileVersion;
      // Resolvers acknowledge one after the other, as real ones poll at different times.
      setTimeout(() => { st.resolvers[0].versions[st.itemId] = v; broadcast('resolvers', { resolvers: st.resolvers }); }, 300);
      setTimeout(() => { st.resolvers[1].versions[st.itemId] = v; broadcast('resolvers', { resolvers: st.resolvers }); }, 900);
      broadcast('profile', st.profile);
      return json(res, st.profile, { etag: `"${v}"` });
    }
    if ((mm = /^\/items\/([^/]+)\/metrics$/.exec(p))) {
      const size = u.searchParams.get('window') === '1m' ? 60_000 : 10_000;
      const to = Number(u.searchParams.get('to') ?? Date.now()), from = Number(u.searchParams.get('from') ?? to - 900_000);
      return json(res, { windows: st.windows(Math.max(from, to - 400 * size), to, size), comparisons: { 'checkout-v2': st.comparison } });
    }
    if (p === '/resolvers') return json(res, { resolvers: st.resolvers });
    if (p === '/exposures') return json(res, st.exposures);
    if (p === '/alert-rules' && m === 'GET') return json(res, { rules: st.rules });
    if (p === '/alert-rules' && m === 'POST') {
      if (!mutate()) return;
      const r = { ...(await readJson(req)), id: `ar${st.rules.length + 1}` };
      st.rules.push(r);
      return json(res, r);
    }
    if ((mm = /^\/alert-rules\/([^/]+)$/.exec(p))) {
      if (!mutate()) return;
      const id = decodeURIComponent(mm[1]);
      if (m === 'DELETE') { st.rules = st.rules.filter((r) => r.id !== id); res.writeHead(204); res.end(); return; }
      const r = { ...(await readJson(req)), id };
      st.rules = st.rules.map((x) => (x.id === id ? r : x));
      return json(res, r);
    }
    if (p === '/alerts') return json(res, { alerts: st.alerts });
    if (p === '/audit') {
      const i = u.searchParams.get('itemId'), a = u.searchParams.get('actor');
      return json(res, { entries: st.audit.filter((e) => (!i || e.itemId === i) && (!a || e.actor === a)) });
    }
    return problem(res, 404, `No route ${m} ${p}`);
  }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (withApi && u.pathname.startsWith('/api/v1/')) {
      api(req, res, u).catch((e) => { if (!res.headersSent) sendError(res, e); });
      return;
    }
    const extra = opts.extraFiles?.[u.pathname];
    if (extra) { res.writeHead(200, { 'content-type': 'text/javascript' }); fs.createReadStream(extra).pipe(res); return; }
    const rel = path.normalize(decodeURIComponent(u.pathname)).replace(/^([/\\])+/, '');
    let file = path.join(distDir, rel);
    if (!file.startsWith(distDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(distDir, 'index.html');
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-security-policy': CSP });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, state: st, broadcast,
    close: () => new Promise<void>((r) => { for (const c of st.sseClients) c.end(); server.closeAllConnections(); server.close(() => r()); }),
  };
}

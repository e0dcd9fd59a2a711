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
 *
 * Shapes follow the real server by construction where it matters most: the comparison is built by
 * the pipeline's own code (compareVariants → comparisonView, shadow vs its control arm, always-valid
 * intervals) from generated totals, and alert-rule bodies go through the server's zod schema and
 * `ruleView` (so vs_original is stored as vs_control, directions default, bad rules get 422 with
 * field paths).
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { toProblem } from '../../connectors/http/problem.ts';
import { ArchiveRejectedError, AuthError, ConflictError, NotFoundError, PenumbraError, PreconditionRequiredError, ValidationError, type FieldIssue } from '../../pipeline/errors.ts';
import { compareVariants } from '../../pipeline/stats/compare.ts';
import { comparisonView } from '../../pipeline/telemetry/comparisons.ts';
import { alertRuleInputSchema } from '../../connectors/http/alerts-router.ts';
import { zodIssues } from '../../connectors/http/validate.ts';
import { ruleView } from '../../pipeline/alerts/rule-store.ts';
import type { AlertRule } from '../../schemas/types.generated.ts';

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
    // Real items: the untouched original sends nothing; the control arm and the shadow do.
    for (let t = start, k = 0; t < to && k < 400; t += sizeMs, k++) {
      for (const v of ['control', 'checkout-v2']) {
        const s = v === 'control' ? 0 : 1;
        const wave = Math.sin(t / 200_000 + s);
        out.push({ itemId, variant: v, windowSize: sizeMs, windowStart: t, windowEnd: t + sizeMs, events: 400 + 80 * wave, sessions: 90, users: 80,
          errors: 2 + s, errorSessions: 2 + s, errorRate: 0.02 + 0.01 * s + 0.003 * wave, requests: 200, requestErrors: 1, rate: (400 + 80 * wave) / (sizeMs / 1000),
          latency: { count: 200, mean: 120 + 15 * s, p50: 100 + 10 * s + 5 * wave, p95: 240 + 30 * s, p99: 400 + 50 * s + 20 * wave, sum: 200 * (120 + 15 * s), sumSq: 0 },
          conversions: { buy: { sessions: 9 + s, rate: 0.1 + 0.012 * s } },
          perf: { lcp: { count: 85, mean: 1800 + 250 * s, p95: 2600 + 400 * s + 50 * wave }, inp: { count: 40, mean: 90 + 5 * s, p95: 180 + 10 * s }, cls: { count: 85, mean: 0.04 + 0.01 * s, p95: 0.09 + 0.02 * s }, ttfb: { count: 90, mean: 70, p95: 130 + 5 * wave } },
          late: 0, emittedAt: t + sizeMs + 1500 });
      }
    }
    return out;
  };
  // Generated cumulative totals of both arms (documented as generated: a fake server for tests).
  const sums = (n: number, mean: number, variance: number) => ({ count: n, sum: n * mean, sumSq: variance * (n - 1) + n * mean * mean });
  const arm = (variant: string, o: { errors: number; latency: number; buy: number; lcp: number; cls: number }) => ({
    itemId, variant, controlOf: variant === 'control' ? 'checkout-v2' : null, profileVersion: 3, sessions: 1200, errorSessions: o.errors, requests: 4800, requestErrors: 20,
    latency: sums(4800, o.latency, 900), perf: { lcp: sums(1150, o.lcp, 250_000), cls: sums(1150, o.cls, 0.004), ttfb: sums(1190, 70, 400) }, conversions: { buy: o.buy },
  });
  const controlTotals = arm('control', { errors: 24, latency: 120, buy: 120, lcp: 1800, cls: 0.04 });
  const shadowTotals = arm('checkout-v2', { errors: 31, latency: 135, buy: 180, lcp: 2050, cls: 0.041 });
  const srm = { chi2: 0.4, p: 0.52, df: 2, flagged: false, total: 10000, profileVersion: 3, observed: { original: 6012, control: 1990, 'checkout-v2': 1998 }, expected: { original: 6000, control: 2000, 'checkout-v2': 2000 }, shares: { original: 60, control: 20, 'checkout-v2': 20 } };
  const comparison = JSON.parse(JSON.stringify(comparisonView(compareVariants(controlTotals, shadowTotals), srm, controlTotals, shadowTotals, now))) as Record<string, unknown>;
  const unverified = { total: 37, byVariant: { 'checkout-v2': { missing: 31, expired: 2 }, control: { mismatch: 4 } } };
  return {
    itemId, profile, item, other, mobile, mobileProfile, windows, comparison,
    resolvers: [{ resolverId: 'r1', host: 'api-1', pid: 4121, versions: { [itemId]: 3 } as Record<string, number>, at: now - 2000, stale: false },
                { resolverId: 'r2', host: 'api-2', pid: 4388, versions: { [itemId]: 3 } as Record<string, number>, at: now - 3000, stale: false }],
    exposures: { itemId, counts: { original: 6012, control: 1990, 'checkout-v2': 1998 }, total: 10000, since: now - 86_400_000 },
    unverified,
    // What GET …/metrics says of the comparisons' origin (the browser test switches it to a stale topic record).
    comparisonsSource: 'this-process' as string,
    comparisonsFreshness: null as Record<string, unknown> | null,
    rules: [{ id: 'ar1', itemId, name: 'Shadow error rate', metric: 'errorRate', comparison: 'vs_control', direction: 'increase', kind: 'threshold', threshold: 0.02, ewma: null, minSample: 100, forWindows: 3, guardrail: true, updatedBy: 'olivia', updatedAt: now - 86_400_000 }] as Record<string, unknown>[],
    alerts: [{ id: 'al1', incidentId: 'in1', ruleId: 'ar1', itemId, variant: 'checkout-v2', metric: 'errorRate', state: 'resolved', value: 0.051, threshold: 0.02, baseline: 0.021,
      message: 'Shadow error rate: checkout-v2 errorRate 5.1% vs control 2.1% (+3 pp, threshold +2 pp) for 3 windows.', windowEnd: now - 7_000_000, action: null, at: now - 7_000_000 }],
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
      send('unverified', { itemId: st.itemId, unverified: st.unverified });
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
      return json(res, { windows: st.windows(Math.max(from, to - 400 * size), to, size), comparisons: { 'checkout-v2': st.comparison }, comparisonsSource: st.comparisonsSource, comparisonsFreshness: st.comparisonsFreshness, unverified: st.unverified, join: { matched: 9000, mismatched: 3, unassigned: 12 } });
    }
    if (p === '/resolvers') return json(res, { resolvers: st.resolvers });
    if (p === '/exposures') return json(res, st.exposures);
    if (p === '/alert-rules' && m === 'GET') return json(res, { rules: st.rules });
    // Rule bodies go through the server's own schema and view (normalisation, 422 paths).
    const ruleFrom = async (id: string): Promise<Record<string, unknown> | null> => {
      const parsed = alertRuleInputSchema.safeParse(await readJson(req));
      if (!parsed.success) {
        problem(res, 422, 'alert rule is invalid', { errors: zodIssues(parsed.error, '') });
        return null;
      }
      return ruleView({ ...parsed.data, id, deleted: false, updatedBy: who.name, updatedAt: Date.now() } as AlertRule) as unknown as Record<string, unknown>;
    };
    if (p === '/alert-rules' && m === 'POST') {
      if (!mutate()) return;
      const r = await ruleFrom(`ar${st.rules.length + 1}`);
      if (!r) return;
      st.rules.push(r);
      return json(res, r);
    }
    if ((mm = /^\/alert-rules\/([^/]+)$/.exec(p))) {
      if (!mutate()) return;
      const id = decodeURIComponent(mm[1]);
      if (m === 'DELETE') { st.rules = st.rules.filter((r) => r.id !== id); res.writeHead(204); res.end(); return; }
      const r = await ruleFrom(id);
      if (!r) return;
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

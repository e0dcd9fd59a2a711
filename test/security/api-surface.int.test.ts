/**
 * The API's outer surface, as docs/security.md describes it: security headers on every
 * answer, a CSP on the console, CORS open on device routes and closed on operator routes, the
 * launch cookie as the only cookie; and operability: GET /metrics in the Prometheus text format
 * with request latency per route, collector refusal/DLQ counts, consumer lag and profile
 * versions, plus one structured debug log line per request.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { produceVerified, startTestPenumbra, uploadForm, type TestPenumbra } from '../penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../../pipeline/shadowing/fixtures.ts';
import { parseExposition } from '../../pipeline/app/metrics.ts';

let t: TestPenumbra;
let itemId = '';
const logLines: Record<string, unknown>[] = [];
const realWrite = process.stderr.write.bind(process.stderr);

beforeAll(async () => {
  // Capture the structured logs (one JSON object per line on stderr) of the in-process API.
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    for (const line of String(chunk).split('\n')) {
      if (line.startsWith('{')) {
        try {
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not ours */
        }
      }
    }
    return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  const consoleDir = mkdtempSync(path.join(tmpdir(), 'penumbra-console-'));
  writeFileSync(path.join(consoleDir, 'index.html'), '<!doctype html><title>console</title><div id="app"></div>');
  // Limits below the defaults (PENUMBRA_RATE_*): the rate-limit test must exceed them even on a
  // loaded 2-core machine, where a wave of 100 requests can take as long as the refill of 100.
  t = await startTestPenumbra('api-surface', { PENUMBRA_LOG_LEVEL: 'debug', PENUMBRA_RATE_FILES: '50:100', PENUMBRA_RATE_RUNTIME_CONFIG: '20:40' }, { consoleDir });
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await fixtureArchive('api-refs', 'zip'), goldenConfig('api-refs', fixtureTree('api-refs'))) });
  expect(res.status).toBe(201);
  itemId = ((await res.json()) as { item: { itemId: string } }).item.itemId;
});
afterAll(async () => {
  await t?.stop();
  process.stderr.write = realWrite;
});

test('every answer carries nosniff, no-referrer and frame options; the console has a strict CSP', async () => {
  for (const p of ['/api/v1/health', '/api/v1/items', `/api/v1/resolve?itemId=${itemId}&userId=u1`, '/api/v1/nope', '/']) {
    const res = await fetch(`${t.url}${p}`);
    await res.arrayBuffer();
    expect({ p, nosniff: res.headers.get('x-content-type-options') }).toEqual({ p, nosniff: 'nosniff' });
    expect({ p, ref: res.headers.get('referrer-policy') }).toEqual({ p, ref: 'no-referrer' });
    // The resolve fast path (raw node:http) answers JSON only, which no browser renders in a frame.
    if (!p.startsWith('/api/v1/resolve')) expect({ p, frame: res.headers.get('x-frame-options') }).toEqual({ p, frame: 'SAMEORIGIN' });
    expect(res.headers.get('x-powered-by')).toBeNull();
  }
  const shell = await fetch(`${t.url}/items/some/client/route`);
  expect(shell.status).toBe(200);
  expect(await shell.text()).toContain('<div id="app">');
  const csp = shell.headers.get('content-security-policy') ?? '';
  const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]));
  expect(directives['default-src']).toBe("'self'");
  expect(directives['script-src']).toBe("'self'"); // no 'unsafe-inline', no 'unsafe-eval'
  expect(directives['frame-ancestors']).toBe("'none'");
  expect(directives['base-uri']).toBe("'self'");
  expect(directives['connect-src']).toBe("'self'");
});

test('CORS: device routes are open to any origin, operator routes are same-origin only', async () => {
  const origin = { origin: 'https://evil.example' };
  const resolve = await fetch(`${t.url}/api/v1/resolve?itemId=${itemId}&userId=u1`, { headers: origin });
  expect(resolve.headers.get('access-control-allow-origin')).toBe('*');
  const rc = await fetch(`${t.url}/api/v1/items/${itemId}/runtime-config?variant=checkout-v2`, { headers: origin });
  expect(rc.headers.get('access-control-allow-origin')).toBe('*');
  const pre = await fetch(`${t.url}/api/v1/telemetry`, { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  expect(pre.status).toBe(204);
  expect(pre.headers.get('access-control-allow-origin')).toBe('*');
  // No credentials are ever allowed cross-origin (a `*` origin cannot carry them anyway).
  expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
  expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).not.toContain('authorization');

  for (const [method, p] of [['GET', '/api/v1/items'], ['PUT', `/api/v1/items/${itemId}/shadow-config`], ['POST', `/api/v1/items/${itemId}/rollback`], ['GET', '/api/v1/audit']] as const) {
    const preflight = await fetch(`${t.url}${p}`, { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type, if-match' } });
    await preflight.arrayBuffer();
    expect({ p, acao: preflight.headers.get('access-control-allow-origin') }).toEqual({ p, acao: null });
    expect({ p, acah: preflight.headers.get('access-control-allow-headers') }).toEqual({ p, acah: null });
    const real = await fetch(`${t.url}${p}`, { method: method === 'GET' ? 'GET' : 'OPTIONS', headers: { ...origin, ...t.auth('admin') } });
    await real.arrayBuffer();
    expect({ p, acao: real.headers.get('access-control-allow-origin') }).toEqual({ p, acao: null });
  }
});

test('the only cookie is the launch uid: HttpOnly, SameSite=Lax, an opaque id', async () => {
  const cookies: string[] = [];
  for (const p of ['/api/v1/health', '/api/v1/items', `/api/v1/resolve?itemId=${itemId}&userId=u1`, `/launch/${itemId}`, '/']) {
    const res = await fetch(`${t.url}${p}`, { headers: t.auth('admin'), redirect: 'manual' });
    await res.arrayBuffer();
    cookies.push(...res.headers.getSetCookie());
  }
  expect(cookies).toHaveLength(1);
  expect(cookies[0]).toMatch(/^penumbra_uid=[A-Za-z0-9_-]{8,128}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
  // A cookie never authenticates an operator route.
  const who = await fetch(`${t.url}/api/v1/whoami`, { headers: { cookie: cookies[0].split(';')[0] } });
  expect(who.status).toBe(401);
});

test('GET /metrics: latency per OpenAPI route, collector refusals and DLQ counts, lag, profile versions', async () => {
  const junk = `/api/v1/no-such-${randomUUID()}`;
  await (await fetch(`${t.url}${junk}`)).arrayBuffer();
  await (await fetch(`${t.url}/api/v1/items/${itemId}`, { headers: t.auth('viewer') })).arrayBuffer();
  const now = Date.now();
  const batch = {
    itemId, version: '3.0.0', variant: 'checkout-v2', profileVersion: 1, sessionId: 's-metrics', userId: 'u-metrics', sentAt: now,
    events: [
      { id: randomUUID(), type: 'usage', name: 'buy', ts: now },
      { id: randomUUID(), type: 'perf', name: 'lcp', ts: now, value: 1200 },
      { id: randomUUID(), type: 'perf', name: 'lcp', ts: now }, // perf without value: refused
    ],
  };
  const tel = await fetch(`${t.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
  expect(tel.status).toBe(202);
  const bad = await fetch(`${t.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nope"' });
  expect(bad.status).toBe(400);

  // Kafka positions (lag, DLQ size) are cached between scrapes: poll until this run's shows.
  const dlqKey = `penumbra_dlq_topic_records{topic="${t.cfg.topics.dlq}"}`;
  let text = '';
  let s = new Map<string, number>();
  for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 1000))) {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    text = await res.text();
    s = parseExposition(text); // throws on any malformed line
    if ((s.get(dlqKey) ?? 0) >= 2) break;
  }
  const get = (k: string) => s.get(k);
  expect(get('penumbra_http_request_duration_seconds_count{method="GET",route="/api/v1/items/{itemId}",status="200"}')).toBeGreaterThanOrEqual(1);
  expect(get('penumbra_http_request_duration_seconds_count{method="POST",route="/api/v1/telemetry",status="202"}')).toBe(1);
  expect(get('penumbra_http_request_duration_seconds_count{method="POST",route="/api/v1/telemetry",status="400"}')).toBe(1);
  expect(get('penumbra_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}')).toBeGreaterThanOrEqual(1);
  // The resolve fast path (in front of Express) is timed too.
  expect(get('penumbra_http_request_duration_seconds_count{method="GET",route="/api/v1/resolve",status="200"}')).toBeGreaterThanOrEqual(2);
  // Probed URLs never become label values.
  expect(text).not.toContain('no-such-');
  expect(get('penumbra_telemetry_events_accepted_total')).toBe(2);
  expect(get('penumbra_telemetry_events_rejected_total')).toBe(1);
  expect(get('penumbra_telemetry_batches_refused_total')).toBe(1);
  expect(get('penumbra_dead_letters_total{source="collector"}')).toBe(2);
  expect(get(dlqKey)).toBeGreaterThanOrEqual(2);
  expect(get(`penumbra_resolver_profile_version{item="${itemId}"}`)).toBe(1);
  expect(get('penumbra_health_status{check="collector"}')).toBe(1);
  expect(get('penumbra_health_stat{check="assignments",stat="dropped"}')).toBe(0);
  expect(get('process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
  // The profile writer commits its offsets: it shows up with a lag (0 once it is caught up).
  const lagKey = `penumbra_consumer_lag{group="${t.prefix}profile-writer",topic="${t.cfg.topics.shadowCommands}"}`;
  expect(get(lagKey)).toBe(0);
  expect(get('penumbra_metrics_collector_errors_total')).toBe(0);
  expect(get('penumbra_consumer_lag_age_seconds')).toBeLessThanOrEqual(15);
});

test('each request is logged at debug level with method, route, status and duration', async () => {
  const rid = `req-${randomUUID()}`;
  await (await fetch(`${t.url}/api/v1/items/${itemId}/shadow-config`, { headers: { ...t.auth('viewer'), 'x-request-id': rid } })).arrayBuffer();
  await new Promise((r) => setTimeout(r, 50));
  const line = logLines.find((l) => l.requestId === rid);
  expect(line).toMatchObject({ level: 'debug', component: 'penumbra', msg: 'request', method: 'GET', route: '/api/v1/items/{itemId}/shadow-config', status: 200 });
  expect(typeof line!.ms).toBe('number');
  expect(typeof line!.t).toBe('string');
});

test('device routes are rate limited per client address: 429 problem+json with Retry-After, other clients unaffected', async () => {
  const routes = [
    { name: 'artifacts', path: `/api/v1/items/${itemId}/artifacts/checkout-v2`, requests: 60 },
    { name: 'runtime-config', path: `/api/v1/items/${itemId}/runtime-config?variant=checkout-v2`, requests: 300 },
    { name: 'files', path: `/d/${itemId}/3.0.0/checkout-v2/index.html`, requests: 1200 },
  ];
  for (const [i, r] of routes.entries()) {
    const noisy = { 'x-forwarded-for': `198.51.100.${10 + i}` };
    const statuses = new Map<number, number>();
    let limited: Response | null = null;
    // Concurrent waves, so the bucket cannot refill between requests on a slow machine.
    for (let sent = 0; sent < r.requests; sent += 100) {
      const wave = await Promise.all(Array.from({ length: Math.min(100, r.requests - sent) }, () => fetch(`${t.url}${r.path}`, { headers: noisy })));
      for (const res of wave) {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 429 && !limited) limited = res;
        else await res.arrayBuffer();
      }
    }
    expect({ route: r.name, ok: (statuses.get(200) ?? 0) > 0, limited: (statuses.get(429) ?? 0) > 0, other: [...statuses.keys()].filter((s) => s !== 200 && s !== 429) }).toEqual({ route: r.name, ok: true, limited: true, other: [] });
    expect(limited!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited!.json()) as { type: string }).type).toBe('https://penumbra.dev/problems/rate-limited');
    // Another device is served meanwhile.
    const other = await fetch(`${t.url}${r.path}`, { headers: { 'x-forwarded-for': `198.51.100.${100 + i}` } });
    await other.arrayBuffer();
    expect({ route: r.name, status: other.status }).toEqual({ route: r.name, status: 200 });
  }
}, 120_000);

test('GET /metrics: windows late and dropped events are counted by window size and reason', async () => {
  // Verified events (as the collector writes them after a token check): unverified ones never
  // reach a window, so they could be neither late nor duplicates there.
  const post = async (events: { id: string; ts: number }[]) => {
    await produceVerified(t, { itemId, version: '3.0.0', variant: 'original', profileVersion: 1, sessionId: 's-late', userId: 'u-late', events: events.map((e) => ({ ...e, type: 'usage' as const, name: 'buy' })) });
  };
  const scrape = async () => parseExposition(await (await fetch(`${t.url}/metrics`)).text());
  const onTime = { id: randomUUID(), ts: Date.now() };
  await post([onTime]);
  // Wait until the processor has seen it (its watermark now trails that event by 5 s).
  let s = await scrape();
  for (const until = Date.now() + 30_000; (s.get('penumbra_health_stat{check="streamProcessing",stat="metricsProcessor.events"}') ?? 0) < 1 && Date.now() < until; await new Promise((r) => setTimeout(r, 500))) s = await scrape();
  const before = { late10: s.get('penumbra_window_late_events_total{window="10s"}') ?? -1, dup: s.get('penumbra_window_dropped_events_total{reason="duplicate"}') ?? -1 };
  expect(before.late10).toBeGreaterThanOrEqual(0);
  expect(before.dup).toBeGreaterThanOrEqual(0);
  // Ten minutes old: both its 10 s and 60 s windows closed long ago. Then the on-time event again.
  await post([{ id: randomUUID(), ts: Date.now() - 600_000 }]);
  await post([onTime]);
  for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
    s = await scrape();
    if ((s.get('penumbra_window_late_events_total{window="10s"}') ?? 0) > before.late10 && (s.get('penumbra_window_dropped_events_total{reason="duplicate"}') ?? 0) > before.dup) break;
  }
  expect(s.get('penumbra_window_late_events_total{window="10s"}')).toBe(before.late10 + 1);
  expect(s.get('penumbra_window_late_events_total{window="60s"}')).toBeGreaterThanOrEqual(1);
  expect(s.get('penumbra_window_dropped_events_total{reason="duplicate"}')).toBe(before.dup + 1);
  expect(s.get('penumbra_window_dropped_events_total{reason="invalid"}')).toBeGreaterThanOrEqual(0);
}, 60_000);

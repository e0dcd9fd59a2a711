/**
 * Issue 5 acceptance, end to end in a real headless Chromium: a device opens the shadow through
 * /launch/…, clicks an instrumented element, causes a JS error and calls the rewritten API
 * endpoint; within 5 s the events are in DuckDB, in the window aggregates and on the SSE
 * stream. The original variant, opened the same way, sends nothing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../penumbra-helpers.ts';
import { writeArchive } from '../../pipeline/shadowing/archive.ts';
import type { WarehouseFeatureHandle } from '../../pipeline/warehouse/feature.ts';
import { requires } from '../requires.ts';

// Every test here drives Chromium: skipped visibly without it, a failure under CI (test/requires.ts).
const test = requires(['chromium']);

const ITEM = 'com.example.shop';
let t: TestPenumbra;
let browser: Browser;
let shadowApi: http.Server;
let shadowApiUrl: string;
const shadowApiHits: string[] = [];

/** A small web app: a buy button that calls the API, and a button that throws. */
async function shopArchive(): Promise<Buffer> {
  const manifest = { id: ITEM, version: '1.0.0', name: 'Shop', entry: 'index.html', endpoints: { api: 'https://api.shop.example/v1' } };
  const files = new Map<string, Buffer>([
    ['manifest.json', Buffer.from(JSON.stringify(manifest))],
    ['index.html', Buffer.from(`<!doctype html><html><head><meta charset="utf-8"><title>Shop</title><script src="app.js"></script></head>
<body><button id="buy">Buy</button><button id="boom">Boom</button><p id="out"></p></body></html>`)],
    ['app.js', Buffer.from(`const API = "https://api.shop.example/v1";
document.addEventListener('click', (e) => {
  if (e.target.id === 'buy') fetch(API + '/orders', { method: 'POST' }).then(r => r.text()).then(t => { document.getElementById('out').textContent = t; });
  if (e.target.id === 'boom') setTimeout(() => { undefinedFunctionCall(); }, 0);
});`)],
  ]);
  return writeArchive({ manifest, files }, 'zip');
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  shadowApi = http.createServer((req, res) => {
    shadowApiHits.push(`${req.method} ${req.url}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.end('order placed (shadow api)');
  });
  await new Promise<void>((r) => shadowApi.listen(0, '127.0.0.1', r));
  shadowApiUrl = `http://127.0.0.1:${(shadowApi.address() as AddressInfo).port}/v1`;
  t = await startTestPenumbra('e2e-telemetry');
  // Shadows embed the public URL; with port 0 it is only known now, so set it before ingest.
  t.p.ctx.ingest.publicUrl = t.url;
  const cfg = {
    name: 'checkout-v2',
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints: { api: shadowApiUrl },
    traffic: { percentage: 50, match: 'all', rules: [] },
  };
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(await shopArchive(), cfg) });
  expect(res.status).toBe(201);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
}, 60000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  shadowApi?.close();
});

/** Find users the resolver puts in each variant (50 % split, so a few tries suffice). */
async function userFor(variant: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const r = (await (await fetch(`${t.url}/api/v1/resolve?itemId=${ITEM}&userId=user-${i}`)).json()) as { variant: string };
    if (r.variant === variant) return `user-${i}`;
  }
  throw new Error(`no user resolved to ${variant}`);
}

function sseCollector(url: string, headers: Record<string, string> = {}): { events: { event: string; data: unknown }[]; close(): void } {
  const events: { event: string; data: unknown }[] = [];
  const ctrl = new AbortController();
  void (async () => {
    try {
      const res = await fetch(url, { signal: ctrl.signal, headers });
      const reader = res.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return { events, close: () => ctrl.abort() };
}

test('a shadow opened in Chromium sends usage, error and request events that reach DuckDB, windows and SSE within 5 s', async () => {
  const sse = sseCollector(`${t.url}/api/v1/stream?itemId=${ITEM}`, { authorization: `Bearer ${TOKENS.viewer}` });
  const shadowUser = await userFor('checkout-v2');
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${t.url}/launch/${ITEM}?userId=${shadowUser}&deviceType=android`);
  expect(page.url()).toContain(`/d/${ITEM}/1.0.0/checkout-v2/`);
  await page.waitForFunction(() => Boolean((window as unknown as { penumbra?: unknown }).penumbra));
  const t0 = Date.now();
  await page.click('#buy');
  await page.waitForFunction(() => document.getElementById('out')?.textContent === 'order placed (shadow api)');
  await page.click('#boom');
  await waitFor('the page error', async () => pageErrors.length > 0, 3000);
  // Flush now rather than waiting for the library's 2 s timer; the 5 s budget starts at the click.
  await page.evaluate(() => (window as unknown as { penumbra: { flush(): void } }).penumbra.flush());
  expect(shadowApiHits).toContain('POST /v1/orders');

  const handle = t.p.handles.find((h) => typeof (h as WarehouseFeatureHandle).sink === 'function') as WarehouseFeatureHandle;
  const rows = await waitFor('events in DuckDB', async () => {
    const sink = handle.sink();
    if (!sink) return undefined;
    const r = await sink.query(`SELECT type, name, variant FROM telemetry_events WHERE item_id = '${ITEM}' AND user_id = '${shadowUser}'`);
    const types = new Set(r.map((x) => String(x.type)));
    if (process.env.E2E_DEBUG) console.log(JSON.stringify(r), JSON.stringify(await sink.query(`SELECT count(*)::INTEGER n FROM telemetry_events`)));
    return types.has('usage') && types.has('error') && types.has('request') ? r : undefined;
  }, 5000);
  const inDuckDbMs = Date.now() - t0;
  expect(inDuckDbMs).toBeLessThan(5000);
  expect(rows.every((r) => r.variant === 'checkout-v2')).toBe(true);
  expect(rows.some((r) => r.type === 'usage' && r.name === 'buy')).toBe(true);
  expect(rows.some((r) => r.type === 'error' && /undefinedFunctionCall/.test(String(r.name)))).toBe(true);
  expect(rows.some((r) => r.type === 'request' && r.name === 'api')).toBe(true);

  // Window aggregates: the open 10 s window is published live (provisional) on the SSE stream
  // within the same 5 s; the closed window reaches the metrics route after the watermark passes
  // (window end + allowed lateness).
  type W = { variant: string; events: number; errors: number; requests: number; provisional?: boolean; windowSize: number };
  const live = await waitFor('the shadow window on SSE', async () => sse.events.find((e) => e.event === 'metrics' && (e.data as W).variant === 'checkout-v2' && (e.data as W).errors > 0 && (e.data as W).requests > 0), Math.max(500, 5000 - (Date.now() - t0)));
  expect(Date.now() - t0).toBeLessThan(5000);
  expect((live.data as W).events).toBeGreaterThanOrEqual(3);
  const closed = await waitFor('a closed window on the metrics route', async () => {
    const m = (await (await fetch(`${t.url}/api/v1/items/${ITEM}/metrics?window=10s`, { headers: t.auth('viewer') })).json()) as { windows: W[] };
    return m.windows.find((x) => x.variant === 'checkout-v2' && x.errors > 0 && x.requests > 0);
  }, 30000);
  expect(closed.windowSize).toBe(10000);
  sse.close();
  await page.close();
}, 60000);

test('the original variant sends nothing', async () => {
  const user = await userFor('original');
  const page = await browser.newPage();
  const telemetryCalls: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/telemetry') || r.url().includes('/runtime-config')) telemetryCalls.push(r.url());
  });
  await page.goto(`${t.url}/launch/${ITEM}?userId=${user}`);
  expect(page.url()).toContain(`/d/${ITEM}/1.0.0/original/`);
  await page.click('#buy');
  await page.waitForTimeout(2500); // longer than the library's flush interval, had it been injected
  expect(await page.evaluate(() => 'penumbra' in window)).toBe(false);
  expect(telemetryCalls).toEqual([]);
  const handle = t.p.handles.find((h) => typeof (h as WarehouseFeatureHandle).sink === 'function') as WarehouseFeatureHandle;
  const r = await handle.sink()!.query(`SELECT count(*)::INTEGER AS n FROM telemetry_events WHERE item_id = '${ITEM}' AND variant = 'original'`);
  expect(Number(r[0].n)).toBe(0);
  await page.close();
}, 30000);

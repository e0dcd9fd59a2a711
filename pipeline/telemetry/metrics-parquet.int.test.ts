/**
 * The metrics route beyond the in-memory range: with a 1 s memory retention every window is
 * "old", so GET /api/v1/items/{itemId}/metrics must read it back from the warehouse's Parquet
 * snapshot (real sink, real DuckDB) — identical to the record the processor emitted.
 */
import { randomUUID } from 'node:crypto';
import { produceVerified, startTestPenumbra, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { uniquePrefix } from '../../test/stack-helpers.ts';
import { streamHandles, streamOptions } from './feature.ts';
import type { MetricWindowRecord } from './metric-record.ts';

const ITEM = 'com.example.parquet';
let t: TestPenumbra;

beforeAll(async () => {
  const prefix = uniquePrefix('metrics-parquet');
  streamOptions(prefix, { metrics: { allowedLatenessMs: 500 }, metricsRetentionMs: 1000 });
  t = await startTestPenumbra('metrics-parquet', { PENUMBRA_TOPIC_PREFIX: prefix }, { sink: true });
});
afterAll(async () => {
  await t?.stop();
});

test('older ranges come from the Parquet snapshot, equal to the emitted records', async () => {
  const emitted: MetricWindowRecord[] = [];
  const unsub = t.p.ctx.hub.subscribe(ITEM, (e) => {
    if (e.event === 'metrics' && !(e.data as { provisional?: boolean }).provisional) emitted.push(e.data as MetricWindowRecord);
  });
  const now = Date.now();
  for (const variant of ['control', 'shadow']) {
    // Verified telemetry straight to the topic (the collector's token check is tested elsewhere).
    await produceVerified(t, {
      itemId: ITEM, version: '1', variant, controlOf: 'shadow', profileVersion: 1, sessionId: `s-${variant}`, userId: 'u1',
      events: [
        { id: randomUUID(), type: 'request', name: 'api', ts: now, value: 120.5, attrs: { status: '200' } },
        { id: randomUUID(), type: 'request', name: 'api', ts: now, value: 80.25, attrs: { status: '503' } },
        { id: randomUUID(), type: 'usage', name: 'buy', ts: now },
        { id: randomUUID(), type: 'perf', name: 'fcp', ts: now, value: 33 },
      ],
    });
  }
  const end = Date.now() + 60_000;
  let got: MetricWindowRecord[] = [];
  const store = streamHandles.get(t.p.ctx)!.metricsStore;
  while (Date.now() < end) {
    const tenSec = emitted.filter((w) => w.windowSize === 10_000);
    // Ask only once memory no longer answers for them (1 s retention).
    if (tenSec.length >= 2 && store.query(ITEM, 10_000, 0, Infinity).length === 0) {
      const res = await fetch(`${t.url}/api/v1/items/${ITEM}/metrics?window=10s&from=0`, { headers: t.auth('viewer') });
      got = ((await res.json()) as { windows: MetricWindowRecord[] }).windows;
      if (got.length >= 2) break;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  unsub();
  // Memory answered nothing when asked, so these came from metric_windows.parquet.
  expect(store.query(ITEM, 10_000, 0, Infinity)).toEqual([]);
  const want = emitted.filter((w) => w.windowSize === 10_000).sort((a, b) => (a.variant < b.variant ? -1 : 1));
  expect(got).toEqual(want);
  expect(got[0]).toMatchObject({ events: 4, requests: 2, requestErrors: 1, conversions: { buy: { sessions: 1, rate: 1 } }, perf: { fcp: { count: 1, mean: 33, p95: 33 } } });
}, 90_000);

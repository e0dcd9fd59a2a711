/**
 * The metrics processor's commit rule across a restart, on the real stack: instance A aggregates
 * a first 10 s window (emitted) and part of a second one (still open) and stops; instance B on the
 * same topic prefix (same consumer group) resumes from A's committed offset. B must emit the
 * second window with every event exactly once, must not re-emit a partial copy of the first,
 * and the 60 s window holding both must count every event once.
 */
import { randomUUID } from 'node:crypto';
import { produceVerified, startTestPenumbra, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { uniquePrefix } from '../../test/stack-helpers.ts';
import { streamOptions } from './feature.ts';
import type { MetricWindowRecord } from './metric-record.ts';

const ITEM = 'com.example.restart';
const prefix = uniquePrefix('restart');
streamOptions(prefix, { metrics: { allowedLatenessMs: 1000 } });

let a: TestPenumbra | null = null;
let b: TestPenumbra | null = null;

afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(t: TestPenumbra, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    const now = Date.now();
    const events = Array.from({ length: Math.min(50, n - i) }, (_, k) => ({ id: `${tag}-${i + k}-${randomUUID()}`, type: 'request' as const, name: 'api', ts: now, value: 10 + k, attrs: { status: '200' } }));
    // Verified telemetry straight to the topic (the collector's token check is tested elsewhere).
    await produceVerified(t, { itemId: ITEM, version: '1', variant: 'original', profileVersion: 1, sessionId: `${tag}-s${i}`, userId: `${tag}-u${i}`, events });
  }
}

async function windows(t: TestPenumbra, size: '10s' | '1m'): Promise<MetricWindowRecord[]> {
  const res = await fetch(`${t.url}/api/v1/items/${ITEM}/metrics?window=${size}&from=0`, { headers: t.auth('viewer') });
  return ((await res.json()) as { windows: MetricWindowRecord[] }).windows;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

test('a restart replays open windows from the committed offset: nothing lost, nothing counted twice', async () => {
  // Start right after a 10 s boundary in the first half of a minute, so the two 10 s windows
  // used below share one 60 s window.
  for (;;) {
    const s = Date.now() % 60_000;
    if (s % 10_000 < 300 && s < 40_000) break;
    await sleep(100);
  }
  a = await startTestPenumbra('restart', { PENUMBRA_TOPIC_PREFIX: prefix }, { sink: false });
  const w1 = Math.floor(Date.now() / 10_000) * 10_000;
  await send(a, 150, 'w1');
  expect(Math.floor(Date.now() / 10_000) * 10_000).toBe(w1); // still inside w1 (the machine kept up)
  const first = await waitFor('window 1 emitted by A', async () => (await windows(a!, '10s')).find((w) => w.windowStart === w1), 20_000);
  expect(first.events).toBe(150);

  const w2 = w1 + 10_000;
  while (Date.now() < w2 + 200) await sleep(50);
  await send(a, 200, 'w2');
  await sleep(1500); // let A's timer commit what is safe (below window 2 and the 60 s window)
  await a.stop();
  a = null;
  const stoppedAt = Date.now();

  b = await startTestPenumbra('restart', { PENUMBRA_TOPIC_PREFIX: prefix }, { sink: false });
  const second = await waitFor('window 2 emitted by B', async () => (await windows(b!, '10s')).find((w) => w.windowStart === w2), 30_000);
  expect(second.events).toBe(200);
  // Window 2 was still open when A stopped: B emitted it (A's stop can outlast the window on a
  // loaded machine — a whole-app stop took 7 s at load 20 — so this is checked on the record
  // rather than on the clock).
  expect(second.emittedAt).toBeGreaterThan(stoppedAt);
  // B replayed window 1's events too (they feed the open 60 s window) but did not re-emit window 1.
  const again = (await windows(b, '10s')).filter((w) => w.windowStart === w1);
  expect(again.map((w) => [w.events, w.emittedAt])).toEqual([[150, first.emittedAt]]);
  const minute = await waitFor('the 60 s window', async () => (await windows(b!, '1m')).find((w) => w.windowStart === Math.floor(w1 / 60_000) * 60_000), 75_000);
  expect(minute.events).toBe(350);
}, 200_000);

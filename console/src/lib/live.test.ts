import { LiveStore, applyEvent, backoffDelay, emptySnapshot, upsertWindow, type EventSourceLike } from './live.ts';
import type { MetricWindow } from './types.ts';

const w = (variant: string, start: number, events = 1): MetricWindow => ({ itemId: 'i', variant, windowSize: '10s', windowStart: start, windowEnd: start + 10_000, events });

class FakeES implements EventSourceLike {
  static all: FakeES[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  listeners = new Map<string, (ev: { data: string }) => void>();
  constructor(public url: string) { FakeES.all.push(this); }
  addEventListener(t: string, fn: (ev: { data: string }) => void) { this.listeners.set(t, fn); }
  close() { this.closed = true; }
  emit(t: string, data: unknown) { this.listeners.get(t)?.({ data: typeof data === 'string' ? data : JSON.stringify(data) }); }
}

test('upsertWindow keeps order, replaces late re-emissions, and stays bounded', () => {
  let l: MetricWindow[] = [];
  for (const s of [30, 10, 20]) l = upsertWindow(l, w('o', s * 1000), 3);
  expect(l.map((x) => x.windowStart)).toEqual([10_000, 20_000, 30_000]);
  l = upsertWindow(l, w('o', 20_000, 99), 3);
  expect(l.map((x) => x.events)).toEqual([1, 99, 1]);
  l = upsertWindow(l, w('o', 40_000), 3);
  expect(l.map((x) => x.windowStart)).toEqual([20_000, 30_000, 40_000]);
});

test('applyEvent routes each event type; garbage leaves the state untouched', () => {
  let s = emptySnapshot();
  s = applyEvent(s, 'metrics', JSON.stringify(w('original', 0)), 1);
  s = applyEvent(s, 'metrics', JSON.stringify(w('shadow', 0)), 2);
  expect(Object.keys(s.windows.i)).toEqual(['original', 'shadow']);
  s = applyEvent(s, 'comparison', JSON.stringify({ itemId: 'i', variant: 'shadow', comparison: { sentence: 'x' } }), 3);
  expect(s.comparisons.i.shadow.sentence).toBe('x');
  s = applyEvent(s, 'alert', JSON.stringify({ id: 'a1', state: 'fired' }), 4);
  s = applyEvent(s, 'alert', JSON.stringify({ id: 'a2', state: 'fired' }), 5);
  s = applyEvent(s, 'alert', JSON.stringify({ id: 'a1', state: 'resolved' }), 6);
  expect(s.alerts.map((a) => `${a.id}:${a.state}`)).toEqual(['a1:resolved', 'a2:fired']);
  s = applyEvent(s, 'resolvers', JSON.stringify({ resolvers: [{ resolverId: 'r', versions: { i: 2 }, at: 1 }] }), 7);
  expect(s.resolvers).toHaveLength(1);
  s = applyEvent(s, 'exposures', JSON.stringify({ itemId: 'i', counts: { original: 3 }, total: 3 }), 8);
  expect(s.exposures.i.total).toBe(3);
  s = applyEvent(s, 'unverified', JSON.stringify({ itemId: 'i', unverified: { total: 4, byVariant: { shadow: { missing: 4 } } } }), 8);
  expect(s.unverified.i.byVariant.shadow.missing).toBe(4);
  expect(applyEvent(s, 'unverified', JSON.stringify({ itemId: 'i' }), 8)).toBe(s);
  s = applyEvent(s, 'profile', JSON.stringify({ itemId: 'i', profileVersion: 4, state: 'rolled_back', shadows: [] }), 9);
  expect(s.profiles.i.state).toBe('rolled_back');
  expect(s.lastEventAt).toBe(9);
  expect(applyEvent(s, 'metrics', 'not json', 10)).toBe(s);
  expect(applyEvent(s, 'metrics', '{"variant":"x"}', 10)).toBe(s);
  expect(applyEvent(s, 'unknown', '{}', 10)).toBe(s);
});

test('alert feed is bounded, newest first', () => {
  let s = emptySnapshot();
  for (let i = 0; i < 5; i++) s = applyEvent(s, 'alert', JSON.stringify({ id: `a${i}` }), i, { maxWindows: 10, maxAlerts: 3 });
  expect(s.alerts.map((a) => a.id)).toEqual(['a4', 'a3', 'a2']);
});

test('backoff doubles up to the cap with ±20% jitter', () => {
  expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 1000, 8000, () => 0.5))).toEqual([1000, 2000, 4000, 8000, 8000]);
  expect(backoffDelay(0, 1000, 8000, () => 0)).toBe(800);
  expect(backoffDelay(0, 1000, 8000, () => 1)).toBe(1200);
});

test('LiveStore: subscribes, reconnects with backoff after errors, resets on open, ignores closed sources', () => {
  FakeES.all = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const store = new LiveStore({ createEventSource: (u) => new FakeES(u), setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; }, clearTimer: () => {}, random: () => 0.5, now: () => 42 });
  const statuses: string[] = [];
  const unsub = store.subscribe((s) => statuses.push(s.status));
  store.connect('/api/v1/stream?ticket=t');
  const first = FakeES.all[0];
  expect(first.url).toBe('/api/v1/stream?ticket=t');
  first.onopen!({});
  first.emit('metrics', w('original', 0));
  expect(store.snapshot.windows.i.original).toHaveLength(1);
  first.onerror!({});
  expect(first.closed).toBe(true);
  expect(store.snapshot).toMatchObject({ status: 'reconnecting', attempts: 1, retryInMs: 1000 });
  first.emit('metrics', w('original', 10_000)); // a closed source must not write
  expect(store.snapshot.windows.i.original).toHaveLength(1);
  timers.shift()!.fn();
  const second = FakeES.all[1];
  second.onerror!({});
  expect(store.snapshot.retryInMs).toBe(2000);
  timers.shift()!.fn();
  FakeES.all[2].onopen!({});
  expect(store.snapshot).toMatchObject({ status: 'open', attempts: 0, retryInMs: null });
  // Same URL: no new connection; another URL replaces it.
  store.connect('/api/v1/stream?ticket=t');
  expect(FakeES.all).toHaveLength(3);
  store.connect('/api/v1/stream?ticket=u');
  expect(FakeES.all[2].closed).toBe(true);
  store.disconnect();
  expect(store.snapshot.status).toBe('closed');
  expect(statuses).toContain('connecting');
  unsub();
});

test('LiveStore: a function source gives every attempt a fresh URL (single-use stream tickets)', async () => {
  FakeES.all = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const store = new LiveStore({ createEventSource: (u) => new FakeES(u), setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; }, clearTimer: () => {}, random: () => 0.5 });
  let n = 0;
  let fail = false;
  const source = async () => {
    if (fail) throw new Error('ticket refused');
    return `/api/v1/stream?ticket=t${++n}`;
  };
  const flush = () => new Promise((r) => setTimeout(r, 0));
  store.connect(source, 'stream:olivia');
  await flush();
  expect(FakeES.all.map((e) => e.url)).toEqual(['/api/v1/stream?ticket=t1']);
  FakeES.all[0].onerror!({});
  timers.shift()!.fn();
  await flush();
  // The reconnect asked for a new ticket: a used one is refused by the server.
  expect(FakeES.all.map((e) => e.url)).toEqual(['/api/v1/stream?ticket=t1', '/api/v1/stream?ticket=t2']);
  // Same key while connected: nothing new.
  store.connect(source, 'stream:olivia');
  await flush();
  expect(FakeES.all).toHaveLength(2);
  // A failing ticket request backs off like a failed connection.
  FakeES.all[1].onerror!({});
  fail = true;
  timers.shift()!.fn();
  await flush();
  expect(store.snapshot).toMatchObject({ status: 'reconnecting', attempts: 3 });
  // A URL that arrives after a disconnect is dropped.
  fail = false;
  timers.shift()!.fn();
  store.disconnect();
  await flush();
  expect(FakeES.all).toHaveLength(2);
  expect(store.snapshot.status).toBe('closed');
});

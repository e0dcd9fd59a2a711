/** Issue 17 item 4: the comparison store's per-arm and per-session state is capped under many distinct keys. */
import type { TelemetryEvent } from '../windows/types.ts';
import { ComparisonStore } from './comparisons.ts';

const T = 1_764_200_000_000;
let n = 0;
const ev = (p: Partial<TelemetryEvent>): TelemetryEvent => ({
  id: `c${n++}`, itemId: 'it', version: '1', variant: 'a', profileVersion: 1, sessionId: 's', userId: 'u',
  type: 'request', name: 'api', ts: T, value: 100, attrs: { status: '200' }, verified: true, ...p,
});

test('arms beyond maxArms evict the least recently updated one (and its variant), counted', () => {
  const c = new ComparisonStore({}, { maxArms: 50, maxSessionsPerArm: 1000 });
  for (let i = 0; i < 3000; i++) c.add(ev({ itemId: `item-${i % 600}`, variant: `v${i}` }));
  expect(c.size).toBe(50);
  // The per-item variant index shrinks with its arms: 50 arms of the last 50 events span 50 items.
  expect(c.bounds).toEqual({ arms: 50, items: 50, armsEvicted: 2950, sessionsRefused: 0 });
  expect(c.totals('item-0', 'v0')).toBeUndefined();
  expect(c.totals(`item-${2999 % 600}`, 'v2999')).toMatchObject({ sessions: 1, requests: 1 });
  // An arm that keeps receiving events stays (recency = last update).
  const d = new ComparisonStore({}, { maxArms: 10, maxSessionsPerArm: 1000 });
  for (let i = 0; i < 500; i++) {
    d.add(ev({ variant: 'busy' }));
    d.add(ev({ variant: `noise${i}` }));
  }
  expect(d.totals('it', 'busy')?.requests).toBe(500);
});

test('sessions beyond maxSessionsPerArm are left out; the aggregate stays exact over the sessions it holds', () => {
  const c = new ComparisonStore({}, { maxArms: 10, maxSessionsPerArm: 100 });
  for (let i = 0; i < 10_000; i++) c.add(ev({ sessionId: `s${i}` }));
  c.add(ev({ sessionId: 's3', type: 'error', name: 'boom', value: null }));
  expect(c.totals('it', 'a')).toMatchObject({ sessions: 100, errorSessions: 1, requests: 100 });
  expect(c.bounds.sessionsRefused).toBe(9900);
});

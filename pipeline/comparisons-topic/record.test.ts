/**
 * Issue 15 (gaps): the comparisons topic's pure core. A ComparisonStore's views survive the Avro
 * record (encoded with the real schema) unchanged as the route would answer them, the typed
 * evidence carries n / successes / values / interval / decision per metric, and the follower
 * keeps the newest record per item.
 */
import { ComparisonStore } from '../telemetry/comparisons.ts';
import { avroType } from '../../schemas/index.ts';
import type { ItemComparisons } from '../../schemas/types.generated.ts';
import type { TelemetryEvent } from '../windows/types.ts';
import { comparisonsRecord, evidenceOf, FollowedComparisons, viewsFromRecord } from './record.ts';

const T = 1_764_200_000_000;
let n = 0;
const ev = (p: Partial<TelemetryEvent>): TelemetryEvent => ({
  id: `r${n++}`, itemId: 'it', version: '1', variant: 'original', profileVersion: 3, sessionId: 's', userId: 'u',
  type: 'request', name: 'api', ts: T, value: 100, attrs: { status: '200' }, verified: true, ...p,
});

/** 30 control and 30 shadow sessions: shadow slower (150 vs 100 ms ± 4), 1 in 3 control sessions converts, 1 in 10 shadow sessions errs. */
function store(): ComparisonStore {
  const c = new ComparisonStore({});
  for (let i = 0; i < 30; i++) {
    const jitter = (i % 5) - 2;
    c.add(ev({ variant: 'control', controlOf: 'beta', sessionId: `c${i}`, value: 100 + jitter }));
    if (i % 3 === 0) c.add(ev({ variant: 'control', controlOf: 'beta', sessionId: `c${i}`, type: 'usage', name: 'buy', value: null, attrs: { selector: '#buy' } }));
    c.add(ev({ variant: 'beta', sessionId: `b${i}`, value: 150 + jitter }));
    if (i % 10 === 0) c.add(ev({ variant: 'beta', sessionId: `b${i}`, type: 'error', name: 'TypeError', value: null, attrs: {} }));
  }
  // A shadow with data but no control arm: "no baseline", said in words.
  c.add(ev({ variant: 'gamma', sessionId: 'g0' }));
  return c;
}

test('views → Avro record → views: what the owner answers, byte for byte as JSON', () => {
  const views = store().compareItem('it', undefined, null, T + 5);
  expect(views.map((v) => v.variant)).toEqual(['beta', 'gamma']);
  const rec = comparisonsRecord('it', views.map((v) => v.comparison).reverse(), { computedAt: T + 5, member: 'host-1', profileVersion: 3 });
  const type = avroType('item-comparisons');
  const back = type.fromBuffer(type.toBuffer(rec)) as ItemComparisons;
  expect(back.shadows.map((s) => s.shadow)).toEqual(['beta', 'gamma']);
  const answered = JSON.parse(JSON.stringify(Object.fromEntries(views.map((v) => [v.variant, v.comparison]))));
  expect(viewsFromRecord(back)).toEqual(answered);
});

test('typed evidence: n, successes, values, interval and decision per metric (golden)', () => {
  const [beta, gamma] = store().compareItem('it', undefined, null, T).map((v) => v.comparison);
  const ev = evidenceOf(beta);
  expect(ev.map((e) => [e.metric, e.kind])).toEqual([['latency', 'mean'], ['errorRate', 'rate'], ['conversion:buy', 'rate']]);
  const [lat, err, buy] = ev;
  expect(lat).toMatchObject({ shadowN: 30, controlN: 30, shadowX: null, controlX: null, shadowValue: 150, controlValue: 100, diff: 50, significant: true, verdict: 'worse', valid: true });
  expect(lat.ciLow).toBeGreaterThan(0);
  expect(lat.ciHigh).toBeGreaterThan(lat.ciLow);
  expect(lat.relative).toBeCloseTo(0.5, 10);
  expect(err).toMatchObject({ shadowN: 30, controlN: 30, shadowX: 3, controlX: 0, shadowValue: 0.1, controlValue: 0 });
  expect(buy).toMatchObject({ shadowN: 30, controlN: 30, shadowX: 0, controlX: 10 });
  expect(buy.controlValue).toBeCloseTo(1 / 3, 12);
  for (const e of ev) expect(['better', 'worse', 'inconclusive']).toContain(e.verdict);
  const rec = comparisonsRecord('it', [beta, gamma], { computedAt: T, member: 'm', profileVersion: null });
  expect(rec.shadows[0]).toMatchObject({ hasBaseline: true, noBaselineReason: null, sessionsShadow: 30, sessionsControl: 30, profileVersionShadow: 3, method: 'asymptotic-confidence-sequence', alpha: 0.05, srmP: null, srmFlagged: false });
  expect(rec.shadows[1]).toMatchObject({ shadow: 'gamma', hasBaseline: false, noBaselineReason: 'no_control_data', sessionsShadow: 1, sessionsControl: 0, metrics: [] });
  expect(rec.shadows[1].sentence).toMatch(/No baseline for gamma/);
});

test('the follower keeps the newest record per item, reports its freshness, and is bounded', () => {
  const views = store().compareItem('it', undefined, null, T).map((v) => v.comparison);
  const f = new FollowedComparisons(2);
  const rec = (itemId: string, at: number, vs = views) => comparisonsRecord(itemId, vs, { computedAt: at, member: `m@${at}`, profileVersion: 3 });
  expect(Object.keys(f.apply(rec('it', T + 100), T + 130)!)).toEqual(['beta', 'gamma']);
  expect(f.freshness('it', T + 1100)).toEqual({ computedAt: T + 100, receivedAt: T + 130, ageMs: 1000, transitMs: 30, member: `m@${T + 100}` });
  // A former owner's older record (late, after a rebalance) does not replace the newer one.
  expect(f.apply(rec('it', T + 50, views.slice(0, 1)), T + 140)).toBeNull();
  expect(Object.keys(f.views('it'))).toEqual(['beta', 'gamma']);
  // No shadows: the item is cleared.
  expect(f.apply(rec('it', T + 200, []), T + 210)).toEqual({});
  expect(f.has('it')).toBe(false);
  expect(f.freshness('it', T)).toBeNull();
  f.apply(rec('a', T), T);
  f.apply(rec('b', T), T);
  f.apply(rec('c', T), T);
  expect(f.size).toBe(2);
  expect(f.has('a')).toBe(false);
});

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
import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { comparisonsRecord, evidenceOf, FollowedComparisons, PublishSchedule, viewsFromRecord } from './record.ts';

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

test('the follower keeps the newest record per item, reports its freshness and staleness, and is bounded', () => {
  const views = store().compareItem('it', undefined, null, T).map((v) => v.comparison);
  const f = new FollowedComparisons(2, 30_000);
  const rec = (itemId: string, at: number, vs = views) => comparisonsRecord(itemId, vs, { computedAt: at, member: `m@${at}`, profileVersion: 3 });
  const first = f.apply(rec('it', T + 100), T + 130)!;
  expect(Object.keys(first.views)).toEqual(['beta', 'gamma']);
  expect(first).toMatchObject({ recomputed: true, unverifiedChanged: false });
  expect(f.freshness('it', T + 1100)).toEqual({ computedAt: T + 100, publishedAt: T + 100, receivedAt: T + 130, ageMs: 1000, transitMs: 30, member: `m@${T + 100}`, stale: false, staleAfterMs: 30_000 });
  // Older than the bound (by the owner's last publication): stale.
  expect(f.freshness('it', T + 100 + 30_000)!.stale).toBe(false);
  expect(f.freshness('it', T + 100 + 30_001)!.stale).toBe(true);
  // A former owner's older record (late, after a rebalance) does not replace the newer one.
  expect(f.apply(rec('it', T + 50, views.slice(0, 1)), T + 140)).toBeNull();
  expect(Object.keys(f.views('it'))).toEqual(['beta', 'gamma']);
  // No shadows and no counts (a v1 owner with nothing to compare): the item is cleared.
  expect(f.apply(rec('it', T + 200, []), T + 210)!.views).toEqual({});
  expect(f.has('it')).toBe(false);
  expect(f.freshness('it', T)).toBeNull();
  f.apply(rec('a', T), T);
  f.apply(rec('b', T), T);
  f.apply(rec('c', T), T);
  expect(f.size).toBe(2);
  expect(f.has('a')).toBe(false);
  // A tombstone forgets the item.
  expect(f.remove('c')).toBe(true);
  expect(f.has('c')).toBe(false);
  expect(f.remove('c')).toBe(false);
});

test('v2: unverified counts and join counters ride on the record; a keep-alive refreshes without a recomputation', () => {
  const views = store().compareItem('it', undefined, null, T).map((v) => v.comparison);
  const unverified = { total: 3, byVariant: { beta: { missing: 2, expired: 1 } } };
  const join = { matched: 58, mismatched: 1, unassigned: 2 };
  const type = avroType('item-comparisons');
  const rec = comparisonsRecord('it', views, { computedAt: T, member: 'm', profileVersion: 3, unverified, join });
  const back = type.fromBuffer(type.toBuffer(rec)) as ItemComparisons;
  expect(back).toMatchObject({ publishedAt: T, unverified, join });
  const f = new FollowedComparisons(10, 30_000);
  expect(f.apply(back, T + 5)).toMatchObject({ recomputed: true, unverifiedChanged: true });
  expect(f.unverified('it')).toEqual(unverified);
  expect(f.join('it')).toEqual(join);
  // The same computation republished later (a keep-alive): newer publishedAt, not a recomputation.
  const keepAlive = comparisonsRecord('it', views, { computedAt: T, publishedAt: T + 10_000, member: 'm', profileVersion: 3, unverified, join });
  expect(f.apply(keepAlive, T + 10_010)).toMatchObject({ recomputed: false, unverifiedChanged: false });
  expect(f.freshness('it', T + 35_000)).toMatchObject({ ageMs: 35_000, publishedAt: T + 10_000, transitMs: 10, stale: false });
  // Counts only (no shadows: nothing verified yet) still count as a record.
  const countsOnly = comparisonsRecord('u', [], { computedAt: T, member: 'm', profileVersion: 3, unverified, join: { matched: 0, mismatched: 0, unassigned: 0 } });
  expect(f.apply(countsOnly, T)).toMatchObject({ views: {}, unverifiedChanged: true });
  expect(f.has('u')).toBe(true);
  expect(f.unverified('u')).toEqual(unverified);
});

test('v2 reads v1 records: no publishedAt (computedAt is used), no counts', () => {
  const v1 = avro.Type.forSchema(JSON.parse(readFileSync(new URL('../../schemas/avro/item-comparisons.v1.avsc', import.meta.url), 'utf8')) as avro.Schema);
  const v2 = avroType('item-comparisons');
  const views = store().compareItem('it', undefined, null, T).map((v) => v.comparison);
  const { publishedAt: _p, unverified: _u, join: _j, ...old } = comparisonsRecord('it', views, { computedAt: T, member: 'm', profileVersion: 3 });
  const read = v2.createResolver(v1);
  const back = v2.fromBuffer(v1.toBuffer(old), read) as ItemComparisons;
  expect(back).toMatchObject({ publishedAt: null, unverified: null, join: null, computedAt: T });
  const f = new FollowedComparisons();
  f.apply(back, T + 1);
  expect(f.freshness('it', T + 2)).toMatchObject({ publishedAt: T, transitMs: 1 });
  expect(f.unverified('it')).toBeNull();
});

test('publish schedule: counts at most once per interval per item, a keep-alive per refresh period, owned items only', () => {
  const s = new PublishSchedule({ minIntervalMs: 1000, refreshMs: 10_000, maxItems: 3 });
  const all = () => true;
  // Counts of an item never published: at once, computedAt = now (no comparison yet).
  s.countsChanged('a');
  expect(s.due(T, all)).toEqual([{ itemId: 'a', computedAt: T, profileVersion: null, reason: 'counts' }]);
  s.published('a', T, T, null);
  expect(s.due(T + 1, all)).toEqual([]);
  // A recomputation, then counts within the interval: held back until it has passed.
  s.recomputed('a', T + 2000, 4);
  s.countsChanged('a');
  expect(s.due(T + 2500, all)).toEqual([]);
  expect(s.due(T + 3000, all)).toEqual([{ itemId: 'a', computedAt: T + 2000, profileVersion: 4, reason: 'counts' }]);
  s.published('a', T + 3000, T + 2000, 4);
  // A recomputation clears pending counts (the record carried them).
  s.countsChanged('a');
  s.recomputed('a', T + 3500, 4);
  expect(s.due(T + 5000, all)).toEqual([]);
  // Keep-alive after refreshMs without any publication.
  expect(s.due(T + 13_499, all)).toEqual([]);
  expect(s.due(T + 13_500, all)).toEqual([{ itemId: 'a', computedAt: T + 3500, profileVersion: 4, reason: 'refresh' }]);
  // Not owned any more (a rebalance): forgotten, no keep-alive, no counts.
  s.countsChanged('a');
  expect(s.due(T + 20_000, () => false)).toEqual([]);
  expect(s.size).toBe(0);
  expect(s.due(T + 40_000, all)).toEqual([]);
  // Forgotten on delete; bounded.
  for (const id of ['b', 'c', 'd', 'e']) s.recomputed(id, T, 1);
  expect(s.size).toBe(3);
  s.forget('e');
  expect(s.due(T + 10_000, all).map((x) => x.itemId)).toEqual(['c', 'd']);
});

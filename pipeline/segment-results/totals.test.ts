/**
 * The per-segment totals query on a real DuckDB over a Parquet snapshot in the sink's layout,
 * checked against the same totals computed in plain TypeScript from the generated events.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { queryParquet } from '../../connectors/duckdb-sink/query.ts';
import { armTotalsSql, conversionsSql, perfSql, type Dimension } from './totals-sql.ts';
import { armKey, cellsFromRows } from './totals.ts';

interface Ev { session_id: string; user_id: string; variant: string; control_of: string | null; type: string; name: string; value: number | null; attrs_json: string; verified: boolean; ts: number }
const ITEM = 'com.example.shop';
const T0 = Date.UTC(2026, 0, 1, 12);
let dir: string;
const events: Ev[] = [];
const device = (u: number) => (u % 2 === 0 ? 'android' : 'ios');
const inPower = (u: number) => u % 3 === 0;

beforeAll(async () => {
  dir = path.join(mkdtempSync(path.join(tmpdir(), 'seg-results-')), 'parquet');
  // 60 users; even ones in the shadow, odd ones in its control; 2 sessions each; a fixed pattern of
  // requests (some failing), errors, conversions and a perf metric; every 7th event unverified.
  let n = 0;
  for (let u = 0; u < 60; u++) {
    const variant = u % 4 < 2 ? 's' : 'control';
    for (let k = 0; k < 2; k++) {
      const sid = `u${u}-s${k}`;
      const add = (type: string, name: string, value: number | null, attrs: Record<string, string> = {}) =>
        events.push({ session_id: sid, user_id: `u${u}`, variant, control_of: variant === 'control' ? 's' : null, type, name, value, attrs_json: JSON.stringify(attrs), verified: n++ % 7 !== 3, ts: T0 + n * 1000 });
      add('session', 'start', null);
      for (let r = 0; r < 3; r++) add('request', 'api', 100 + ((u * 7 + r * 13) % 50), { status: (u + r) % 9 === 0 ? '503' : '200' });
      if ((u + k) % 5 === 0) add('error', 'TypeError', null);
      if ((u * k) % 3 === 1) add('usage', 'buy', null);
      add('perf', 'lcp', 900 + u * 3);
    }
  }
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  const part = (t: string, p: string | null) => {
    const d = p ? path.join(dir, t, p) : path.join(dir, t);
    mkdirSync(d, { recursive: true });
    return path.join(d, 'part-0.parquet');
  };
  await c.run(`CREATE TABLE te (session_id VARCHAR, user_id VARCHAR, variant VARCHAR, control_of VARCHAR, type VARCHAR, name VARCHAR, value DOUBLE, attrs_json VARCHAR, verified BOOLEAN, ts TIMESTAMP, item_id VARCHAR)`);
  const app = await c.createAppender('te');
  for (const e of events) {
    app.appendVarchar(e.session_id); app.appendVarchar(e.user_id); app.appendVarchar(e.variant);
    if (e.control_of === null) app.appendNull(); else app.appendVarchar(e.control_of);
    app.appendVarchar(e.type); app.appendVarchar(e.name);
    if (e.value === null) app.appendNull(); else app.appendDouble(e.value);
    app.appendVarchar(e.attrs_json); app.appendBoolean(e.verified);
    app.appendVarchar(new Date(e.ts).toISOString().replace('T', ' ').replace('Z', ''));
    app.appendVarchar(ITEM);
    app.endRow();
  }
  app.closeSync();
  await c.run(`COPY te TO '${part('telemetry_events', 'date=2026-01-01')}' (FORMAT PARQUET)`);
  await c.run(`COPY (SELECT 'u' || range AS user_id, CASE WHEN range % 2 = 0 THEN 'android' ELSE 'ios' END AS device_type, 'DE' AS country, '${ITEM}' AS item_id, TIMESTAMP '2026-01-01 11:00:00' AS ts FROM range(60)) TO '${part('assignments', 'date=2026-01-01')}' (FORMAT PARQUET)`);
  await c.run(`COPY (SELECT 'u' || range AS user_id, CASE WHEN range % 3 = 0 THEN '["power"]' ELSE '[]' END AS segments_json FROM range(60)) TO '${part('segment_memberships', null)}' (FORMAT PARQUET)`);
  c.closeSync();
  inst.closeSync();
});

function expected(filter: (u: number) => boolean, arm: { variant: string; controlOf: string | null }) {
  const evs = events.filter((e) => e.verified && e.variant === arm.variant && e.control_of === arm.controlOf && filter(Number(e.user_id.slice(1))));
  const sessions = new Set(evs.map((e) => e.session_id));
  const reqs = evs.filter((e) => e.type === 'request');
  const lat = reqs.map((e) => e.value!);
  return {
    sessions: sessions.size,
    errorSessions: new Set(evs.filter((e) => e.type === 'error').map((e) => e.session_id)).size,
    requests: reqs.length,
    requestErrors: reqs.filter((e) => JSON.parse(e.attrs_json).status === '503').length,
    latency: { count: lat.length, sum: lat.reduce((a, b) => a + b, 0), sumSq: lat.reduce((a, b) => a + b * b, 0) },
    buy: new Set(evs.filter((e) => e.type === 'usage' && e.name === 'buy').map((e) => e.session_id)).size,
    lcp: evs.filter((e) => e.type === 'perf').length,
  };
}

test('totals per device type and segment equal the same totals computed from the events', async () => {
  const dims: Dimension[] = ['deviceType', 'segment:power'];
  const params = [ITEM, T0 - 1000, T0 + 10_000_000];
  const [arms, conv, perf] = await Promise.all([armTotalsSql(dims), conversionsSql(dims), perfSql(dims)].map((sql) => queryParquet(dir, sql, params)));
  const cells = cellsFromRows(ITEM, arms, conv, perf);
  const cell = (d: string, v: string) => cells.find((c) => c.dimension === d && c.value === v)!;
  const checks: [string, string, (u: number) => boolean][] = [
    ['all', '*', () => true], ['deviceType', 'android', (u) => device(u) === 'android'], ['deviceType', 'ios', (u) => device(u) === 'ios'],
    ['segment:power', 'in', inPower], ['segment:power', 'out', (u) => !inPower(u)],
  ];
  for (const [d, v, f] of checks) {
    for (const arm of [{ variant: 's', controlOf: null }, { variant: 'control', controlOf: 's' }]) {
      const got = cell(d, v).arms.get(armKey(arm.variant, arm.controlOf));
      const want = expected(f, arm);
      expect({ d, v, arm: arm.variant, got: got && { sessions: got.sessions, errorSessions: got.errorSessions, requests: got.requests, requestErrors: got.requestErrors, buy: got.conversions.buy ?? 0, lcp: got.perf.lcp?.count ?? 0 } })
        .toEqual({ d, v, arm: arm.variant, got: { sessions: want.sessions, errorSessions: want.errorSessions, requests: want.requests, requestErrors: want.requestErrors, buy: want.buy, lcp: want.lcp } });
      expect(got!.latency.count).toBe(want.latency.count);
      expect(got!.latency.sum).toBeCloseTo(want.latency.sum, 6);
      expect(got!.latency.sumSq).toBeCloseTo(want.latency.sumSq, 3);
    }
  }
});

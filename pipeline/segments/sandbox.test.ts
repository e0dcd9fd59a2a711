/**
 * The sandbox on a real DuckDB over a real Parquet snapshot (written here): what operator SQL
 * may and may not do, the time limit and the size limit.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { ValidationError } from '../errors.ts';
import { Sandbox, SegmentTimeoutError } from './sandbox.ts';
import { MembershipState, type MemberChange } from './state.ts';

let dir: string;
let secret: string;

beforeAll(async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'segments-sandbox-'));
  dir = path.join(root, 'parquet');
  secret = path.join(root, 'secret.csv');
  writeFileSync(secret, 'a,b\n1,2\n');
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  // 500 events of 50 users: u-k has 10 sessions, every tenth event an error; events of u-0..u-4
  // are 30 days old; usage events of even users are clicks on "buy".
  await c.run(`CREATE TABLE t AS SELECT 'u-' || (range % 50) AS user_id, 'sess-' || range AS session_id,
    CASE WHEN range % 10 = 0 THEN 'error' ELSE 'usage' END AS type,
    CASE WHEN range % 10 = 0 THEN 'TypeError' WHEN range % 2 = 0 THEN 'buy' ELSE 'open' END AS name,
    'com.example.notes' AS item_id,
    CAST(now() AS TIMESTAMP) - CASE WHEN range % 50 < 5 THEN INTERVAL 30 DAY ELSE INTERVAL 1 HOUR END AS ts
    FROM range(500)`);
  const { mkdirSync } = await import('node:fs');
  // The sink's layout (connectors/duckdb-sink/export.ts): telemetry_events/<hive part>/<file>.parquet.
  const part = path.join(dir, 'telemetry_events', 'date=2026-01-01');
  mkdirSync(part, { recursive: true });
  await c.run(`COPY t TO '${path.join(part, 'part-0.parquet')}' (FORMAT PARQUET)`);
  c.closeSync();
  inst.closeSync();
});

async function members(sql: string, max = 1000, timeoutMs = 5000): Promise<string[]> {
  const sb = await Sandbox.open(dir);
  const out: string[] = [];
  try {
    await sb.members(sql, max, timeoutMs, (chunk) => {
      for (const [u] of chunk.getRows()) out.push(u as string);
    });
  } finally {
    sb.close();
  }
  return out.sort();
}

async function refusal(sql: string): Promise<string> {
  const sb = await Sandbox.open(dir);
  try {
    await sb.check(sql);
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues[0].path).toBe('sql');
    return (err as ValidationError).issues[0].message;
  } finally {
    sb.close();
  }
}

describe('segment sandbox', () => {
  it('runs a SELECT over the snapshot views: distinct ids as text', async () => {
    const ids = await members(`SELECT user_id FROM telemetry_events WHERE type = 'error' GROUP BY user_id HAVING count(DISTINCT session_id) >= 2`);
    expect(ids).toEqual(['u-0', 'u-10', 'u-20', 'u-30', 'u-40']);
    expect(await members('SELECT 42 AS user_id UNION ALL SELECT 42 UNION ALL SELECT NULL')).toEqual(['42']);
  });

  it('empty views for tables the snapshot does not have yet', async () => {
    expect(await members('SELECT user_id FROM assignments')).toEqual([]);
  });

  it('refuses anything but one SELECT with a user_id column', async () => {
    expect(await refusal('SELECT 1; SELECT 2')).toMatch(/multiple statements/i);
    expect(await refusal('CREATE TABLE x (user_id int)')).toMatch(/one SELECT/);
    expect(await refusal('EXPLAIN SELECT user_id FROM telemetry_events')).toMatch(/one SELECT/);
    expect(await refusal('SELECT session_id FROM telemetry_events')).toMatch(/user_id/);
    expect(await refusal('SELECT user_id FROM no_such_table')).toMatch(/no_such_table/);
    expect(await refusal('SELECT user_id FROM telemetry_events')).toBe('accepted');
  });

  it('reads no other file, writes nothing, and cannot lift its own limits', async () => {
    expect(await refusal(`SELECT a AS user_id FROM read_csv('${secret}')`)).toMatch(/disabled by configuration/);
    expect(await refusal(`SELECT * AS user_id FROM glob('/etc/*')`)).toMatch(/disabled by configuration|user_id/);
    expect(await refusal(`COPY (SELECT 1) TO '${path.join(tmpdir(), 'x.csv')}'`)).toMatch(/disabled by configuration|one SELECT/);
    expect(await refusal('SET enable_external_access = true')).toMatch(/locked|one SELECT/);
    expect(await refusal(`ATTACH '${path.join(tmpdir(), 'x.duckdb')}'`)).toMatch(/disabled by configuration|one SELECT/);
    // …while the snapshot folder itself stays readable.
    expect(await refusal(`SELECT user_id FROM read_parquet('${path.join(dir, 'telemetry_events', '*', '*.parquet')}')`)).toBe('accepted');
  });

  it('interrupts a query past its time limit', async () => {
    const sb = await Sandbox.open(dir);
    try {
      await expect(sb.members('SELECT a.range::VARCHAR AS user_id FROM range(100000000) a, range(1000) b WHERE a.range * b.range = -1', 10, 300, () => {})).rejects.toBeInstanceOf(SegmentTimeoutError);
    } finally {
      sb.close();
    }
  });

  it('runs the examples of docs/segments.md', async () => {
    // ≥ 3 sessions in the last 7 days: everyone but u-0..u-4 (their events are 30 days old).
    const active = await members(`SELECT user_id FROM telemetry_events WHERE ts >= now() - INTERVAL 7 DAY GROUP BY user_id HAVING count(DISTINCT session_id) >= 3`);
    expect(active).toHaveLength(45);
    expect(active).not.toContain('u-3');
    // Hit an error: u-0, u-10, … (every tenth event is an error of a user ≡ 0 mod 10).
    expect(await members(`SELECT DISTINCT user_id FROM telemetry_events WHERE type = 'error'`)).toEqual(['u-0', 'u-10', 'u-20', 'u-30', 'u-40']);
    // Converted on the point "buy" of one item: the even users (but those ≡ 0 mod 10 only ever erred).
    const buyers = await members(`SELECT DISTINCT user_id FROM telemetry_events WHERE item_id = 'com.example.notes' AND type = 'usage' AND name = 'buy'`);
    expect(buyers).toHaveLength(20);
    expect(buyers.every((u) => Number(u.slice(2)) % 2 === 0 && Number(u.slice(2)) % 10 !== 0)).toBe(true);
  });

  it('stops one row past maxMembers, so growth past the limit is seen without reading it all', async () => {
    expect(await members('SELECT user_id FROM telemetry_events', 10)).toHaveLength(11);
  });
});

describe('membership state', () => {
  it('replays the topic (latest record per user), diffs a new result and publishes complete records', async () => {
    const st = await MembershipState.create();
    try {
      st.replayRecord('u1', ['a', 'b']);
      st.replayRecord('u2', ['a']);
      st.replayRecord('u1', ['b']);
      st.replayRecord('u3', []);
      await st.finishReplay();
      expect(Object.fromEntries(await st.counts())).toEqual({ a: 1, b: 1 });

      const sb = await Sandbox.open(dir);
      const app = await st.beginCandidates();
      await sb.members(`SELECT 'u' || range AS user_id FROM range(1, 4)`, 100, 5000, (c) => app.appendDataChunk(c));
      app.closeSync();
      sb.close();
      const sent: MemberChange[] = [];
      const r = await st.applyCandidates('a', async (b) => void sent.push(...b), 2);
      expect(r).toEqual({ added: 2, removed: 0, members: 3 });
      expect(sent.sort((x, y) => (x.userId < y.userId ? -1 : 1))).toEqual([
        { userId: 'u1', segments: ['a', 'b'] },
        { userId: 'u3', segments: ['a'] },
      ]);
    } finally {
      st.close();
    }
  });

  it('keeps the state when publishing fails, so the next evaluation resends the same change', async () => {
    const st = await MembershipState.create();
    try {
      await st.finishReplay();
      const app = await st.beginCandidates();
      app.appendVarchar('u9');
      app.endRow();
      app.closeSync();
      await expect(st.applyCandidates('a', async () => { throw new Error('Kafka down'); })).rejects.toThrow('Kafka down');
      expect(await st.counts()).toEqual(new Map());
      const sent: MemberChange[] = [];
      await st.applyCandidates('a', async (b) => void sent.push(...b));
      expect(sent).toEqual([{ userId: 'u9', segments: ['a'] }]);
      // Deleting: an empty candidate set removes everyone, and they are told so.
      await (await st.beginCandidates()).closeSync();
      const gone: MemberChange[] = [];
      expect(await st.applyCandidates('a', async (b) => void gone.push(...b))).toEqual({ added: 0, removed: 1, members: 0 });
      expect(gone).toEqual([{ userId: 'u9', segments: [] }]);
    } finally {
      st.close();
    }
  });
});

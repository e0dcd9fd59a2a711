/**
 * kill -9 of the whole Penumbra process (API, collector, processors and DuckDB sink) while
 * devices keep sending telemetry, then a restart on the same data folder and topics.
 *
 * Guarantees checked, reading the DuckDB file itself after a clean stop:
 *  - every event answered 202 is in telemetry_events: the 202 means "acknowledged by Kafka",
 *    and the sink resumes from the offsets stored in DuckDB;
 *  - exactly once: rows = distinct ids = records on penumbra.telemetry.raw, and the stored
 *    offsets equal the topic's end — no offset was stored past data that was not written, and
 *    nothing written before the kill was written again. telemetry_events has no primary key
 *    (the sink de-duplicates ids itself: connectors/duckdb-sink/recent-ids.ts, rebuilt from the
 *    rows after the restart), so rows = distinct ids is a real check, not a constraint's echo;
 *  - nothing that was never sent appears.
 * Events sent while the process was down fail at the client (connection refused) and are simply
 * not acknowledged — that is the contract: retry until 202.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { kafkaFor } from '../stack-helpers.ts';
import { faultEnv, spawnPenumbra, killAll, health, waitFor, type PenumbraChild } from './child.ts';

const RUN = randomUUID().slice(0, 8);
let env: Record<string, string>;

beforeAll(async () => {
  env = await faultEnv('kill9-telemetry');
});
afterAll(() => killAll());

/** Device load: `workers` loops posting 25-event batches to whichever URL is current. */
function load(target: () => string, workers = 6) {
  const sent = new Set<string>();
  const acked = new Set<string>();
  let failures = 0;
  let running = true;
  let seq = 0;
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (running) {
      const now = Date.now();
      const ids = Array.from({ length: 25 }, () => `${RUN}-${w}-${seq++}`);
      const body = { itemId: 'com.example.fault', version: '1.0.0', variant: 'original', profileVersion: 0, sessionId: `s-${w}-${seq % 50}`, userId: `u-${w}`, sentAt: now, events: ids.map((id, k) => ({ id, type: 'perf', name: 'lcp', ts: now - k, value: 100 + k })) };
      for (const id of ids) sent.add(id);
      try {
        const res = await fetch(`${target()}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (res.status === 202) {
          const r = JSON.parse(text) as { accepted: number; rejected: unknown[] };
          if (r.accepted !== ids.length) throw new Error(`partial accept ${text}`);
          for (const id of ids) acked.add(id);
        } else failures++;
      } catch {
        failures++; // connection refused/reset while the process is dead: not acknowledged
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });
  return {
    sent, acked,
    failures: () => failures,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

test('kill -9 under telemetry load: every 202 event is in DuckDB exactly once after a restart', async () => {
  let current: PenumbraChild = await spawnPenumbra(env);
  const l = load(() => current.url);
  await waitFor('800 acknowledged events', () => l.acked.size >= 800, 60_000);
  // Let the sink commit some transactions, then kill mid-load.
  await waitFor('the sink committing', async () => Number((await health(current.url)).checks.duckdb?.records ?? 0) > 200, 60_000);
  const ackedBeforeKill = l.acked.size;
  await current.kill9();
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 1500)); // devices keep trying against a dead process

  current = await spawnPenumbra(env);
  const restartedIn = Date.now() - killedAt;
  await waitFor('more acknowledged events after the restart', () => l.acked.size >= ackedBeforeKill + 800, 60_000);
  await l.stop();

  // Wait until the sink has stored everything on telemetry.raw, then stop cleanly.
  const prefix = env.PENUMBRA_TOPIC_PREFIX;
  const rawTopic = `${prefix}telemetry.raw`;
  await waitFor('the sink to catch up with telemetry.raw', async () => {
    const h = await health(current.url);
    return (h.checks.duckdb?.lagByTopic as Record<string, number> | undefined)?.[rawTopic] === 0;
  }, 120_000, 500);
  const stopped = await current.stop();
  expect(stopped.code).toBe(0);

  const admin = kafkaFor('fault-kill9-telemetry').admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(rawTopic);
  await admin.disconnect();
  const onTopic = ends.reduce((s, o) => s + Number(o.high) - Number(o.low), 0);

  const db = await DuckDBInstance.create(path.join(env.PENUMBRA_DATA_DIR, 'warehouse', 'penumbra.duckdb'));
  const conn = await db.connect();
  const [counts] = (await conn.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM telemetry_events WHERE id LIKE '${RUN}-%'`)).getRowObjectsJS();
  const ids = new Set((await conn.runAndReadAll(`SELECT id FROM telemetry_events WHERE id LIKE '${RUN}-%'`)).getRowObjectsJS().map((r) => String(r.id)));
  const [offs] = (await conn.runAndReadAll(`SELECT coalesce(sum(next_offset), 0)::BIGINT AS s FROM sink_offsets WHERE topic = '${rawTopic}'`)).getRowObjectsJS();
  conn.closeSync();
  db.closeSync();

  const missing = [...l.acked].filter((id) => !ids.has(id));
  const invented = [...ids].filter((id) => !l.sent.has(id));
  process.stderr.write(`kill9-telemetry: sent ${l.sent.size}, acked ${l.acked.size} (${ackedBeforeKill} before the kill), client failures ${l.failures()}, ` +
    `restart took ${restartedIn} ms, topic ${onTopic}, DuckDB rows ${Number(counts.n)} (${Number(counts.d)} distinct)\n`);
  expect(missing.slice(0, 5)).toEqual([]);
  expect(invented.slice(0, 5)).toEqual([]);
  expect(Number(counts.n)).toBe(Number(counts.d));
  // Unacknowledged sends may still have reached Kafka (the kill can land after the broker's
  // ack but before our 202): whatever is on the topic is stored, once.
  expect(Number(counts.n)).toBe(onTopic);
  expect(Number(offs.s)).toBe(ends.reduce((s, o) => s + Number(o.high), 0));
  expect(ackedBeforeKill).toBeGreaterThan(0);
  expect(l.acked.size).toBeGreaterThan(ackedBeforeKill);
}, 300_000);

/**
 * The table specs are the contract analysts rely on: every table and column is documented in
 * docs/warehouse.md with its type, the rows a record becomes match the columns, and the SQL the
 * sink derives has the keys and conflict handling the exactly-once design depends on.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ALL_TABLES, TOPIC_TABLES, ITEMS, TELEMETRY_EVENTS, METRIC_WINDOWS, ROLLOUT_DECISIONS, BANDIT_WEIGHTS, createTableSql, insertSql, mergeSql, type TableSpec } from './tables.ts';
import * as fx from './fixtures.ts';

const doc = readFileSync(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../docs/warehouse.md'), 'utf8');

test.each(ALL_TABLES.map((t) => [t.name, t] as const))('docs/warehouse.md documents every column of %s', (_name, t) => {
  expect(doc).toContain(`### \`${t.name}\``);
  const section = doc.slice(doc.indexOf(`### \`${t.name}\``)).split('\n### ')[0];
  for (const c of t.columns) expect(section).toMatch(new RegExp(`\\| \`${c.name}\` \\| ${c.type} \\|`));
});

const samples = [
  [ITEMS, fx.catalogEntry(['1.0.0', '1.1.0'])],
  [TELEMETRY_EVENTS, fx.telemetryEvent(1)],
  [METRIC_WINDOWS, fx.metricWindow(3)],
] as unknown as [TableSpec, unknown][];

test.each(samples.map(([t, v]) => [t.name, t, v] as const))('rows of %s have one cell per column', (_n, t, v) => {
  const rows = t.rows(v as never, { topic: 't', partition: 0, offset: '0' });
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect(r).toHaveLength(t.columns.length);
});

test('a catalog entry becomes one row per version × variant, latest flagged', () => {
  const rows = ITEMS.rows(fx.catalogEntry(['1.0.0', '1.1.0']), { topic: 't', partition: 0, offset: '0' });
  const col = (n: string) => ITEMS.columns.findIndex((c) => c.name === n);
  expect(rows.map((r) => [r[col('version')], r[col('variant')], r[col('is_latest')]])).toEqual([
    ['1.0.0', 'original', false], ['1.0.0', 'checkout-v2', false], ['1.1.0', 'original', true], ['1.1.0', 'checkout-v2', true],
  ]);
});

test('every table but telemetry_events has a primary key; insert-once tables ignore conflicts, upserts replace non-key columns', () => {
  for (const t of ALL_TABLES) {
    if (t.recentDedup) expect(createTableSql(t)).not.toContain('PRIMARY KEY');
    else expect(createTableSql(t)).toContain(`PRIMARY KEY (${t.key.map((k) => `"${k}"`).join(', ')})`);
  }
  expect(ALL_TABLES.filter((t) => t.recentDedup).map((t) => t.name)).toEqual(['telemetry_events']);
  expect(mergeSql(TELEMETRY_EVENTS)).toMatch(/ON CONFLICT DO NOTHING$/);
  expect(mergeSql(TELEMETRY_EVENTS)).toContain('ORDER BY "_ord" ASC) = 1');
  const upsert = mergeSql(METRIC_WINDOWS);
  expect(upsert).toContain('ON CONFLICT ("item_id", "variant", "window_size_ms", "window_start") DO UPDATE SET');
  expect(upsert).toContain('"late" = excluded."late"');
  expect(upsert).not.toContain('"window_start" = excluded');
  expect(upsert).toContain('ORDER BY "_ord" DESC) = 1');
  expect(upsert).toContain('"_sink_tx" = excluded."_sink_tx"');
  expect(upsert).toContain('epoch_ms("window_start"::BIGINT)');
  expect(insertSql(TELEMETRY_EVENTS, 7)).toBe(`INSERT INTO "telemetry_events" (${TELEMETRY_EVENTS.columns.map((c) => `"${c.name}"`).join(', ')}, "_sink_tx") SELECT ${TELEMETRY_EVENTS.columns.map((c) => (c.type === 'TIMESTAMP' ? `epoch_ms("${c.name}"::BIGINT)` : c.type === 'BIGINT' ? `"${c.name}"::BIGINT` : `"${c.name}"`)).join(', ')}, 7::BIGINT FROM "_stage_telemetry_events"`);
  // A topic may feed several tables, all decoding it with the same schema (the sink decodes once).
  for (const t of TOPIC_TABLES) for (const u of TOPIC_TABLES) if (t.source!.topic === u.source!.topic) expect(u.source!.schema).toBe(t.source!.schema);
  expect(new Set(TOPIC_TABLES.map((t) => t.name)).size).toBe(TOPIC_TABLES.length);
  // A de-duplicated table takes the direct path as its topic's main (first) table.
  for (const t of TOPIC_TABLES) if (t.recentDedup) expect(TOPIC_TABLES.find((u) => u.source!.topic === t.source!.topic)).toBe(t);
});

test('a reweighting decision becomes one rollout_decisions row and one bandit_weights row per arm', () => {
  const d = {
    id: 'c1:0', itemId: 'i', shadow: null, kind: 'reweight' as const, rule: 'thompson', automated: true, actor: 'system:bandit', profileVersion: 7, step: null, percentage: null, reason: 'epoch 2',
    evidenceJson: JSON.stringify({ epoch: 2, phase: 'thompson', arms: [{ arm: 'a', weight: 0.1, pBest: 0.05, sessions: 300 }, { arm: 'b', weight: 0.85, pBest: 0.94, sessions: 310 }, { arm: 'control', weight: 0.05, pBest: 0.01, sessions: 305 }] }), at: 1000,
  };
  const meta = { topic: 't', partition: 0, offset: '0' };
  expect(ROLLOUT_DECISIONS.rows(d, meta)).toHaveLength(1);
  expect(ROLLOUT_DECISIONS.rows(d, meta)[0]).toHaveLength(ROLLOUT_DECISIONS.columns.length);
  const w = BANDIT_WEIGHTS.rows(d, meta);
  expect(w.map((r) => [r[2], r[3], r[4], r[5]])).toEqual([[2, 'thompson', 'a', 0.1], [2, 'thompson', 'b', 0.85], [2, 'thompson', 'control', 0.05]]);
  for (const r of w) expect(r).toHaveLength(BANDIT_WEIGHTS.columns.length);
  expect(BANDIT_WEIGHTS.rows({ ...d, kind: 'advance', evidenceJson: '{}' }, meta)).toEqual([]);
  expect(BANDIT_WEIGHTS.rows({ ...d, evidenceJson: 'not json' }, meta)).toEqual([]);
});

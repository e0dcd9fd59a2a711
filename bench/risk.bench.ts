/**
 * Predictive shadowing on GENERATED history (issue #13, item 5).
 *
 * Workload: the history generator (pipeline/history-generator, seeded, documented truth) plays
 * `items × (versions − 1)` rollouts through a real Penumbra (Kafka, registry, DuckDB sink) and the
 * simulator; the pipeline's guardrail and schedule decide every outcome. Then bench/risk_eval.py
 * reads the warehouse with the trainer's own TRAINING_QUERY, holds out 30 % of the items (never
 * seen in training), fits the production estimator on the rest and scores the held-out rollouts:
 *
 *  - ROC AUC: the model (every input) vs a baseline that ignores the change features (the same
 *    estimator on the history inputs only), side by side on the same held-out rollouts; the
 *    oracle's AUC (the generator's true probabilities) is the ceiling, in the notes;
 *  - precision and recall of "risky" (p ≥ 0.5), model vs the same baseline.
 *
 * Everything is generated data and every row says so. An incomplete run (too few outcomes, one
 * class missing) fails instead of reporting. Alone: `node bin/penumbra.js bench --only risk`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../pipeline/config/config.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { runHistory } from '../pipeline/history-generator/run.ts';
import { warehousePaths } from '../pipeline/warehouse/feature.ts';
import { queryParquet } from '../connectors/duckdb-sink/query.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TOKEN = 'bench-operator-token-0123456789abcdef';

interface Eval {
  train: number;
  test: number;
  trainPositives: number;
  testPositives: number;
  error?: string;
  model: { auc: number; precision: number | null; recall: number | null; flagged: number };
  historyOnly: { auc: number; precision: number | null; recall: number | null; flagged: number };
  oracleAuc?: number;
  baseRate: number;
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const items = opts.quick ? 10 : 16;
  const versions = opts.quick ? 4 : 7;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bench-risk-'));
  const cfg = loadConfig({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0', PENUMBRA_CONTENT_PORT: '0', PENUMBRA_DATA_DIR: dataDir, PENUMBRA_TOPIC_PREFIX: `bench-risk-${Date.now()}.`,
    PENUMBRA_PARTITIONS: '2', PENUMBRA_LOG_LEVEL: 'warn', PENUMBRA_TOKENS: `bench:operator:${TOKEN}`, PENUMBRA_RISK_RETRAIN_HOURS: '0',
  });
  const p = await createPenumbra(cfg, { sink: true });
  let history;
  try {
    history = await runHistory({ url: p.url, token: TOKEN, seed: 'bench-risk', items, versionsPerItem: versions, holdSeconds: 12, settleSeconds: 18, prefix: 'bench' });
    const ended = history.rollouts.filter((r) => r.outcome !== 'none').length;
    const parquet = warehousePaths(dataDir).parquetDir;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [r] = await queryParquet(parquet, "SELECT count(DISTINCT item_id || '@' || version) AS n FROM rollout_outcomes WHERE item_id LIKE 'gen.bench.%'").catch(() => [{ n: 0 }]);
      if (Number(r.n) >= ended) break;
      if (Date.now() > deadline) throw new Error(`only ${Number(r.n)} of ${ended} rollout outcomes reached the warehouse`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  } finally {
    await p.stop(); // final snapshot: the files the evaluation reads no longer change
  }
  const truthFile = path.join(dataDir, 'truth.json');
  writeFileSync(truthFile, JSON.stringify(Object.fromEntries(history.items.flatMap((it) => it.versions.slice(1).map((v) => [`${v.itemId}@${v.version}`, v.risk])))));
  const testItems = history.items.slice(Math.round(items * 0.7)).map((it) => it.itemId);
  const r = spawnSync(process.env.PENUMBRA_PYTHON || 'python3', [path.join(HERE, 'risk_eval.py'), '--data-dir', dataDir, '--truth', truthFile, '--test-items', testItems.join(',')], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`risk_eval.py failed: ${r.stderr}`);
  const e = JSON.parse(r.stdout.trim().split('\n').pop()!) as Eval;
  if (e.error) throw new Error(`incomplete generated history: ${e.error} (${JSON.stringify(e)})`);
  const agree = history.rollouts.filter((x) => x.outcome !== 'none' && (x.outcome === 'regression') === x.bad).length;
  const workload = `GENERATED data: ${history.rollouts.length} rollouts (${items} items × ${versions - 1} versions, seed bench-risk) through the pipeline in ${Math.round(history.durationMs / 1000)} s; ` +
    `train ${e.train} (${e.trainPositives} regressions) / held-out ${e.test} (${e.testPositives}) by item; pipeline labels agree with the truth on ${agree}/${history.rollouts.length}`;
  const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? a / b : null);
  return [
    { name: 'risk model ROC AUC, held-out (GENERATED data)', unit: 'AUC', ours: e.model.auc, peer: e.historyOnly.auc, peerName: 'same estimator, history inputs only (ignores change features)', ratio: e.model.auc / e.historyOnly.auc, notes: `oracle (true probabilities) ${e.oracleAuc?.toFixed(3) ?? 'n/a'}; ${workload}` },
    { name: 'risk model precision at p>=0.5 (GENERATED data)', unit: 'precision', ours: e.model.precision ?? NaN, peer: e.historyOnly.precision, peerName: 'history inputs only', ratio: ratio(e.model.precision, e.historyOnly.precision), notes: `flagged ${e.model.flagged} vs ${e.historyOnly.flagged} of ${e.test}; baseline ${fmt(e.historyOnly.precision)}` },
    { name: 'risk model recall at p>=0.5 (GENERATED data)', unit: 'recall', ours: e.model.recall ?? NaN, peer: e.historyOnly.recall, peerName: 'history inputs only', ratio: ratio(e.model.recall, e.historyOnly.recall), notes: `base rate ${e.baseRate.toFixed(3)}` },
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const res = await run({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(res, null, 1));
  process.exit(0);
}

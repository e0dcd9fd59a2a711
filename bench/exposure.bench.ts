/**
 * Exposure to bad versions: risk-sized plans vs one fixed plan for all (issue #13, item 5).
 * GENERATED DATA — every row says so.
 *
 * Workload, all through one real Penumbra (Kafka, registry, DuckDB sink) and the simulator
 * (pipeline/history-generator, seeded, documented truth):
 *  1. training history: `trainItems × (trainVersions − 1)` proactive rollouts (seed
 *     bench-exposure-train); the pipeline's guardrail decides every outcome; then
 *     POST /api/v1/risk/models/retrain trains the model from the warehouse (the bench fails if
 *     it cannot);
 *  2. two arms side by side, at the same time and the same simulated load: the SAME generated
 *     versions (seed bench-exposure; the items differ only in their id prefix) go out
 *     proactively — arm "risk" with the plan the model's score sizes (pipeline/risk-plan tiers),
 *     arm "fixed" with FIXED_PLAN's steps for every version. Both on a shortened clock (each step
 *     held `stepSeconds` instead of the tiers' 60–300 s analyses), with the generator's guardrail
 *     (error sessions above 30 % in one 10 s window of ≥ 5 sessions).
 *
 * Measured: for every bad version, the sessions the simulator served its shadow before the
 * pipeline rolled it back (all of its round's sessions if it was never rolled back) — the users
 * exposed to it. Published: the median over bad versions, risk-sized (ours) vs fixed (peer),
 * with totals, misses and the good versions' plan lengths (what risk sizing costs them) in the
 * notes. The load generator (the simulator) runs outside the pipeline's request path; the peer
 * arm runs in the same process and run as ours, which is the comparison the issue asks for.
 * Alone: `node bin/penumbra.js bench --only exposure`.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../pipeline/config/config.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { runHistory, type HistoryRunReport, type RolloutRecord } from '../pipeline/history-generator/run.ts';
import { FIXED_PLAN } from '../pipeline/risk-plan/size.ts';
import { warehousePaths } from '../pipeline/warehouse/feature.ts';
import { queryParquet } from '../connectors/duckdb-sink/query.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const TOKEN = 'bench-operator-token-0123456789abcdef';

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Sessions the bad versions' shadows were served before their rollout ended (GENERATED). */
export function exposure(rollouts: RolloutRecord[]): { perBad: number[]; total: number; missed: number; bad: number } {
  const bad = rollouts.filter((r) => r.bad);
  const perBad = bad.map((r) => r.shadowSessions);
  return { perBad, total: perBad.reduce((a, b) => a + b, 0), missed: bad.filter((r) => r.outcome !== 'regression').length, bad: bad.length };
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const trainItems = opts.quick ? 10 : 12;
  const trainVersions = opts.quick ? 4 : 5;
  // One round: every arm gets exactly the same versions (a later round would edit each item from
  // whatever its arm served, and the arms' histories would part).
  const items = opts.quick ? 8 : 16;
  const versions = 2;
  const stepSeconds = 10; // the plan schema's minimum analysis
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bench-exposure-'));
  const cfg = loadConfig({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0', PENUMBRA_CONTENT_PORT: '0', PENUMBRA_DATA_DIR: dataDir, PENUMBRA_TOPIC_PREFIX: `bench-exposure-${Date.now()}.`,
    PENUMBRA_PARTITIONS: '2', PENUMBRA_LOG_LEVEL: 'warn', PENUMBRA_TOKENS: `bench:operator:${TOKEN}`, PENUMBRA_RISK_RETRAIN_HOURS: '0',
    PENUMBRA_RISK_MIN_ROWS: '20', PENUMBRA_RISK_MIN_CLASS: '4',
  });
  const p = await createPenumbra(cfg, { sink: true });
  let train: HistoryRunReport;
  let arms: [HistoryRunReport, HistoryRunReport];
  let model: { version: number; trainingRows: number; positives: number; auc: number };
  try {
    // 1. Training history and a model trained from the warehouse.
    train = await runHistory({ url: p.url, token: TOKEN, seed: 'bench-exposure-train', items: trainItems, versionsPerItem: trainVersions, holdSeconds: 12, settleSeconds: 10, prefix: 'extrain' });
    const ended = train.rollouts.filter((r) => r.outcome !== 'none').length;
    const parquet = warehousePaths(dataDir).parquetDir;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [r] = await queryParquet(parquet, "SELECT count(DISTINCT item_id || '@' || version) AS n FROM rollout_outcomes WHERE item_id LIKE 'gen.extrain.%'").catch(() => [{ n: 0 }]);
      if (Number(r.n) >= ended) break;
      if (Date.now() > deadline) throw new Error(`only ${Number(r.n)} of ${ended} rollout outcomes reached the warehouse`);
      await new Promise((res) => setTimeout(res, 1000));
    }
    const res = await fetch(`${p.url}/api/v1/risk/models/retrain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as { trained?: boolean; reason?: string; model?: { version: number; trainingRows: number; positives: number; auc: number } };
    if (res.status !== 201 || !body.model) throw new Error(`incomplete run: the risk model could not be trained (${res.status}: ${body.reason ?? JSON.stringify(body)})`);
    model = body.model;

    // 2. The same versions, risk-sized vs fixed, side by side.
    const longest = 6; // steps of the very-high tier, the longest plan
    const common = { url: p.url, token: TOKEN, seed: 'bench-exposure', items, versionsPerItem: versions, holdSeconds: longest * stepSeconds, settleSeconds: 6, rate: 2 * items };
    arms = await Promise.all([
      runHistory({ ...common, prefix: 'exrisk', rollout: () => ({ analysisSeconds: stepSeconds }) }),
      runHistory({ ...common, prefix: 'exfixed', rollout: () => ({ steps: FIXED_PLAN.steps, analysisSeconds: stepSeconds }) }),
    ]);
  } finally {
    await p.stop();
  }
  const [risk, fixed] = arms.map((a) => exposure(a.rollouts));
  if (risk.bad === 0 || risk.bad !== fixed.bad) throw new Error(`incomplete run: ${risk.bad} bad versions in the risk arm, ${fixed.bad} in the fixed arm`);
  const goodPlanSeconds = (a: HistoryRunReport) => median(a.rollouts.filter((r) => !r.bad && r.plan).map((r) => r.plan!.steps.length * stepSeconds));
  const badFirstStep = median(arms[0].rollouts.filter((r) => r.bad && r.plan).map((r) => r.plan!.steps[0]));
  const workload = `GENERATED data: model v${model.version} trained on ${model.trainingRows} generated rollouts (${model.positives} regressions, cross-validated AUC ${model.auc.toFixed(3)}); ` +
    `then the same ${items * (versions - 1)} generated versions (${risk.bad} bad) per arm, both arms at once, ${2 * items} simulated sessions/s per arm over ${items} items; steps held ${stepSeconds} s (shortened clock); guardrail 30 % error sessions in a 10 s window of ≥ 5`;
  return [
    {
      name: 'sessions exposed to a bad version before rollback, median (GENERATED data)', unit: 'sessions', ours: median(risk.perBad), peer: median(fixed.perBad), peerName: `fixed plan ${FIXED_PLAN.steps.join('/')} % for every version`,
      ratio: median(fixed.perBad) > 0 ? median(risk.perBad) / median(fixed.perBad) : null,
      notes: `total ${risk.total} vs ${fixed.total}; missed (never rolled back) ${risk.missed} vs ${fixed.missed} of ${risk.bad}; bad versions' median first step ${badFirstStep} % (risk) vs ${FIXED_PLAN.steps[0]} %; good versions' median plan ${goodPlanSeconds(arms[0])} s vs ${goodPlanSeconds(arms[1])} s; ${workload}`,
    },
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const res = await run({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(res, null, 1));
  process.exit(0);
}

/**
 * @jest-environment ./test/onnx-environment.cjs
 */
/**
 * The risk model end to end without Kafka: a warehouse snapshot (Parquet, written with DuckDB)
 * of generated rollouts whose regressions depend on two inputs in a known way → train_risk.py
 * (scikit-learn → ONNX) → onnxruntime-node. Checks that the model finds the signal, that every
 * score's contributions add up to its logit (the explanation is the model's own terms), that
 * too little history is refused with a reason, and the prior/evidence arithmetic.
 */
import { mkdtempSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DuckDBInstance } from '@duckdb/node-api';
import { Prng } from '../simulator/prng.ts';
import { available, requires, type Dependency } from '../../test/requires.ts';
import { TRAIN_SCRIPT } from './trainer.ts';
import { LoadedRiskModel, type RiskModelMetadata } from './scorer.ts';
import { betaQuantile, priorScore, updateWithEvidence } from './prior.ts';
import { detectOutcome } from './outcomes.ts';
import { RiskHistory } from './history.ts';
import type { ShadowProfile } from '../domain/types.ts';

/** What train_risk.py imports (test/requirements.txt). */
const TRAIN_DEPS: Dependency[] = ['python:sklearn', 'python:skl2onnx', 'python:onnx', 'python:onnxruntime', 'python:duckdb'];
const pyTest = requires(TRAIN_DEPS);
const canTrain = available(TRAIN_DEPS);
const NOW = Date.UTC(2026, 5, 1);

/** n rollouts: regression with probability sigmoid(-2 + 1.5·new_origins + 2·script_growth). */
async function writeWarehouse(n: number, seed: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'risk-train-'));
  const pq = path.join(dir, 'warehouse', 'parquet');
  mkdirSync(pq, { recursive: true });
  const rng = new Prng(seed);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run('CREATE TABLE change_features (id VARCHAR, item_id VARCHAR, version VARCHAR, inputs_json VARCHAR, computed_at TIMESTAMP)');
  await c.run('CREATE TABLE rollout_outcomes (id VARCHAR, item_id VARCHAR, version VARCHAR, outcome VARCHAR, cause VARCHAR, decided_at TIMESTAMP)');
  for (let i = 0; i < n; i++) {
    const inputs = { new_origins: rng.int(0, 3), script_growth: Math.round(rng.normal() * 0.5 * 1000) / 1000, log_files_added: Math.round(rng.float() * 3 * 1000) / 1000, noise: rng.float() };
    const z = -2 + 1.5 * inputs.new_origins + 2 * inputs.script_growth;
    const bad = rng.float() < 1 / (1 + Math.exp(-z));
    const t = NOW - 86_400_000 + i * 1000;
    await c.run(`INSERT INTO change_features VALUES ('f${i}', 'it${i % 7}', '1.0.${i}', '${JSON.stringify(inputs)}', epoch_ms(${t}::BIGINT))`);
    await c.run(`INSERT INTO rollout_outcomes VALUES ('o${i}', 'it${i % 7}', '1.0.${i}', '${bad ? 'regression' : 'success'}', 'x', epoch_ms(${t + 500}::BIGINT))`);
  }
  // An outcome outside the window must not be read.
  await c.run(`INSERT INTO change_features VALUES ('old', 'old', '0.0.1', '{"new_origins": 9}', epoch_ms(${NOW - 400 * 86_400_000}::BIGINT))`);
  await c.run(`INSERT INTO rollout_outcomes VALUES ('old', 'old', '0.0.1', 'regression', 'x', epoch_ms(${NOW - 400 * 86_400_000}::BIGINT))`);
  for (const t of ['change_features', 'rollout_outcomes']) await c.run(`COPY ${t} TO '${path.join(pq, `${t}.parquet`)}' (FORMAT PARQUET)`);
  c.closeSync();
  return dir;
}

function train(dataDir: string, extra: string[] = []): { result: Record<string, unknown>; out: string } {
  const out = mkdtempSync(path.join(tmpdir(), 'risk-out-'));
  const r = spawnSync(process.env.PENUMBRA_PYTHON || 'python3', [TRAIN_SCRIPT, '--data-dir', dataDir, '--out', out, '--now', String(NOW), ...extra], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`train_risk.py failed: ${r.stderr}`);
  return { result: JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>, out };
}

describe('train_risk.py → ONNX → onnxruntime-node', () => {
  let dataDir: string;
  let meta: RiskModelMetadata;
  let model: LoadedRiskModel;
  beforeAll(async () => {
    if (!canTrain) return; // the tests below are skipped (or fail under CI), naming what is missing
    dataDir = await writeWarehouse(240, 'risk-unit');
    const { result, out } = train(dataDir, ['--version', '7']);
    expect(result.status).toBe('trained');
    meta = JSON.parse(readFileSync(path.join(out, 'metadata.json'), 'utf8')) as RiskModelMetadata;
    model = await LoadedRiskModel.load(readFileSync(path.join(out, 'model.onnx')), meta, 7);
  }, 120_000);
  afterAll(async () => model?.release());

  pyTest('trains on the window only and finds the two inputs that drive regressions', () => {
    expect(meta.trainingRows).toBe(240);
    expect(meta.features).toEqual(['new_origins', 'script_growth', 'log_files_added', 'noise']);
    expect(meta.metrics.auc).toBeGreaterThan(0.75);
    expect(meta.metrics.brier).toBeLessThan(meta.metrics.baseRate * (1 - meta.metrics.baseRate));
    const top = meta.importance.slice(0, 2).map((i) => i.feature).sort();
    expect(top).toEqual(['new_origins', 'script_growth']);
    expect((meta as unknown as { onnx: { maxAbsDiffVsSklearn: number } }).onnx.maxAbsDiffVsSklearn).toBeLessThan(1e-5);
  });

  pyTest('scores in TypeScript; contributions add up to the logit and rank the risky input first', async () => {
    const rows: Record<string, number>[] = [
      { new_origins: 3, script_growth: 0.1, log_files_added: 1, noise: 0.5 },
      { new_origins: 0, script_growth: -0.5, log_files_added: 1, noise: 0.5 },
      { new_origins: 0, script_growth: 1.5, log_files_added: 0, noise: 0.1, unknown_input: 42 },
    ];
    const s = await model.scoreMany(rows);
    for (const x of s) expect(Math.abs(x.probability - 1 / (1 + Math.exp(-x.logit)))).toBeLessThan(1e-4);
    expect(s[0].probability).toBeGreaterThan(0.7);
    expect(s[1].probability).toBeLessThan(0.2);
    expect(s[0].contributions[0].feature).toBe('new_origins');
    expect(s[2].contributions[0].feature).toBe('script_growth');
    // A missing input is 0, an unknown one is ignored.
    expect((await model.score({ new_origins: 3, script_growth: 0.1, log_files_added: 1, noise: 0.5 })).probability).toBeCloseTo(s[0].probability, 6);
  });

  pyTest('too little history: nothing is written and the reason is given', async () => {
    const small = await writeWarehouse(12, 'risk-small');
    const { result } = train(small);
    expect(result.status).toBe('insufficient');
    expect(result.trainingRows).toBe(12);
    expect(String(result.reason)).toMatch(/12 labelled rollouts .* training needs at least 30/);
  }, 60_000);
});

describe('prior and evidence', () => {
  it('Beta(1,4) prior: mean 0.2 without history, moves with outcomes, interval brackets the mean', () => {
    const p0 = priorScore(0, 0);
    expect(p0.probability).toBeCloseTo(0.2, 12);
    expect(p0.low).toBeCloseTo(betaQuantile(0.05, 1, 4), 9);
    // Beta(1,4): P(X ≤ x) = 1 − (1 − x)^4 → the 5 % quantile is 1 − 0.95^(1/4).
    expect(p0.low).toBeCloseTo(1 - 0.95 ** 0.25, 6);
    expect(p0.high).toBeCloseTo(1 - 0.05 ** 0.25, 6);
    const p = priorScore(10, 6);
    expect(p.probability).toBeCloseTo(7 / 15, 12);
    expect(p.low).toBeLessThan(p.probability);
    expect(p.high).toBeGreaterThan(p.probability);
  });

  it('telemetry moves the score towards what it shows; no sessions leave it unchanged', () => {
    const none = updateWithEvidence(0.3, { shadowSessions: 0, shadowErrorSessions: 0, baselineSessions: 500, baselineErrorSessions: 10 });
    expect(none.probability).toBeCloseTo(0.3, 9);
    const bad = updateWithEvidence(0.3, { shadowSessions: 200, shadowErrorSessions: 16, baselineSessions: 500, baselineErrorSessions: 10 });
    const good = updateWithEvidence(0.3, { shadowSessions: 200, shadowErrorSessions: 4, baselineSessions: 500, baselineErrorSessions: 10 });
    expect(bad.probability).toBeGreaterThan(0.9);
    expect(good.probability).toBeLessThan(0.3);
    expect(bad.logBayesFactor).toBeGreaterThan(0);
  });

  it('a thin control does not make a healthy shadow\'s few errors a regression; a crash is one at once (counts seen in the generated history)', () => {
    const at = (k: number, n: number, kb: number, nb: number) => updateWithEvidence(0.2, { shadowSessions: n, shadowErrorSessions: k, baselineSessions: nb, baselineErrorSessions: kb });
    // Healthy shadows next to controls with no error yet: the risk stays near the prior.
    for (const [k, n, kb, nb] of [[2, 35, 0, 39], [4, 80, 0, 57], [2, 66, 0, 69], [1, 11, 0, 13], [6, 80, 0, 57]]) expect(at(k, n, kb, nb).probability).toBeLessThan(0.6);
    // Crash-level regressions at their first update: above the early-hold threshold (90 %).
    for (const [k, n, kb, nb] of [[12, 36, 2, 40], [9, 21, 0, 24], [13, 33, 1, 53]]) expect(at(k, n, kb, nb).probability).toBeGreaterThan(0.9);
    // Monotone in the shadow's errors, and golden numbers (numerical integration, deterministic).
    const ps = [0, 2, 4, 8, 16].map((k) => at(k, 100, 2, 100).probability);
    expect([...ps].sort((x, y) => x - y)).toEqual(ps);
    expect(at(16, 200, 10, 500).logBayesFactor).toBeCloseTo(4.80, 2);
    expect(at(4, 200, 10, 500).logBayesFactor).toBeCloseTo(-3.40, 2);
  });
});

describe('outcomes and history', () => {
  const base: ShadowProfile = { itemId: 'i', profileVersion: 3, state: 'active', seed: 'i', holdout: 0, itemVersion: '1.1.0', shadows: [{ name: 's', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: 5, match: 'all', rules: [] } }], updatedBy: 'op', updatedAt: 1000 };

  it('a system rollback is a guardrail regression, an operator rollback is one too; a completed plan or a clean replacement a success', () => {
    const sys = detectOutcome(base, { ...base, profileVersion: 4, state: 'rolled_back', updatedBy: 'system:alerts', updatedAt: 2000 }, 500);
    expect(sys).toMatchObject({ itemId: 'i', version: '1.1.0', shadow: 's', outcome: 'regression', cause: 'guardrail_rollback', startedAt: 500, decidedAt: 2000, profileVersion: 4 });
    expect(detectOutcome(base, { ...base, profileVersion: 4, state: 'rolled_back', updatedBy: 'alice' })?.cause).toBe('operator_rollback');
    // The shadow's rollout plan (pipeline/rollout) completing — a legacy schedule runs as one.
    const plan = { steps: [{ percentage: 5 }], analysisSeconds: 10, minSessionsPerArm: 0, guardrails: [], maxInconclusive: 3, onComplete: 'hold' as const };
    const st = { status: 'running' as 'running' | 'completed', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null };
    const withPlan = (status: 'running' | 'completed', pv: number): ShadowProfile => ({ ...base, profileVersion: pv, shadows: [{ ...base.shadows[0], rollout: plan, rolloutState: { ...st, status } }] });
    const done = detectOutcome(withPlan('running', 3), withPlan('completed', 4));
    expect(done).toMatchObject({ outcome: 'success', cause: 'plan_done', shadow: 's' });
    // A newer version replacing an active, never rolled back one: that rollout ended well.
    expect(detectOutcome(base, { ...base, profileVersion: 4, itemVersion: '1.2.0', shadows: [{ ...base.shadows[0], name: 't' }] })).toMatchObject({ version: '1.1.0', shadow: 's', outcome: 'success', cause: 'superseded' });
    // Not outcomes: first sight, a replay, a new version after a rolled-back one.
    expect(detectOutcome(undefined, base)).toBeNull();
    expect(detectOutcome(base, base)).toBeNull();
    expect(detectOutcome({ ...base, state: 'rolled_back' }, { ...base, profileVersion: 4, itemVersion: '1.2.0', state: 'rolled_back' })).toBeNull();
  });

  it('history: one outcome per version in the window (a regression if any) and the baseline arms\' recent error rate', () => {
    const h = new RiskHistory({ windowMs: 10_000, errorWindowMs: 120_000 });
    const o = (id: string, version: string, outcome: string, at: number) => ({ id, itemId: 'i', version, shadow: 's', outcome, cause: 'x', actor: 'a', profileVersion: 1, startedAt: null, decidedAt: at });
    h.addOutcome(o('1', '1.0.0', 'regression', 95_000));
    h.addOutcome(o('2', '1.0.0', 'success', 96_000)); // any regression of a version makes it one
    h.addOutcome(o('3', '1.1.0', 'success', 97_000));
    h.addOutcome(o('5', '1.1.1', 'success', 98_000));
    h.addOutcome(o('6', '1.1.1', 'regression', 99_000)); // rolled back after its schedule finished
    h.addOutcome(o('4', '0.9.0', 'regression', 10_000)); // out of the window
    const w = (variant: string, start: number, sessions: number, errorSessions: number) => ({ windowSize: 60_000, variant, windowStart: start, windowEnd: start + 60_000, sessions, errorSessions, itemId: 'i' }) as never;
    h.addWindow(w('original', 0, 100, 2));
    h.addWindow(w('control', 0, 100, 4));
    h.addWindow(w('shadow-x', 0, 100, 50)); // not a baseline arm
    const i = h.inputsFor('i', 100_000, 50, '1.2.0');
    expect(i).toEqual({ priorRollouts: 3, priorRegressions: 2, lastOutcome: 'regression', currentErrorRate: 0.03, currentSessions: 200, currentIngestedAt: 50 });
    expect(h.counts(100_000)).toEqual({ rollouts: 3, regressions: 2 });
  });

  it('rollout evidence sums the shadow\'s 10 s windows since a time against the control arm, never the uninstrumented original, up to the control\'s newest window', () => {
    const h = new RiskHistory();
    const w = (variant: string, start: number, sessions: number, errorSessions: number) => ({ windowSize: 10_000, variant, windowStart: start, windowEnd: start + 10_000, sessions, errorSessions, itemId: 'i' }) as never;
    h.addWindow(w('s', 0, 50, 40)); // before the rollout's start: not counted
    h.addWindow(w('s', 10_000, 20, 3));
    h.addWindow(w('s', 20_000, 30, 4));
    h.addWindow(w('original', 10_000, 100, 2)); // not a baseline: the original sends no telemetry of the same kind
    // No control window yet: no evidence on either side (nothing to compare with).
    expect(h.evidenceSince('i', 's', 10_000)).toEqual({ shadowSessions: 0, shadowErrorSessions: 0, baselineSessions: 0, baselineErrorSessions: 0, baseline: 'control' });
    h.addWindow(w('control', 10_000, 40, 1));
    // The control has 10 000 only: the shadow's 20 000 window waits for the control's.
    expect(h.evidenceSince('i', 's', 10_000)).toEqual({ shadowSessions: 20, shadowErrorSessions: 3, baselineSessions: 40, baselineErrorSessions: 1, baseline: 'control' });
    h.addWindow(w('s', 20_000, 35, 4)); // a re-emitted window replaces its earlier emission
    h.addWindow(w('control', 20_000, 30, 0));
    expect(h.evidenceSince('i', 's', 10_000)).toEqual({ shadowSessions: 55, shadowErrorSessions: 7, baselineSessions: 70, baselineErrorSessions: 1, baseline: 'control' });
  });
});

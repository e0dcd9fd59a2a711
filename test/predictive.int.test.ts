/**
 * @jest-environment ./test/onnx-environment.cjs
 *
 * Predictive shadowing on the real stack (issue #13): one Penumbra (own topic prefix, DuckDB sink)
 * for the whole file.
 *
 * 1. Ingest v1 then v2 of the shop fixture: v2's change-feature record is on
 *    penumbra.change.features and in DuckDB; with no history the score is the documented prior
 *    and the note says so.
 * 2. The history generator plays a GENERATED release history through the API and the simulator;
 *    the pipeline's guardrail and schedule decide the outcomes, written to penumbra.risk.outcomes.
 * 3. POST /api/v1/risk/models/retrain trains model v1 (Python → ONNX) from the warehouse; the next
 *    ingest is scored by it, with its explanation.
 * 4. The analyst notebook retrains, shows calibration and importance, and registers v2; the next
 *    ingest uses v2.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startTestPenumbra, TOKENS, uploadForm, type TestPenumbra } from './penumbra-helpers.ts';
import { versionArchive } from '../pipeline/change-features/fixtures.ts';
import { warehousePaths } from '../pipeline/warehouse/feature.ts';
import { queryParquet } from '../connectors/duckdb-sink/query.ts';
import { runHistory, type HistoryRunReport } from '../pipeline/history-generator/run.ts';
import { available, requires, type Dependency } from './requires.ts';
import { waitFor } from './wait-for.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Training (train_risk.py) and the notebook runner (test/requirements.txt). */
const DEPS: Dependency[] = ['python:sklearn', 'python:skl2onnx', 'python:onnx', 'python:onnxruntime', 'python:duckdb', 'python:nbclient'];
const pyTest = requires(DEPS);
const ready = available(DEPS);

describe('predictive shadowing', () => {
  let t: TestPenumbra;
  let parquetDir: string;
  let history: HistoryRunReport;

  const api = async (method: string, p: string, body?: unknown, role: keyof typeof TOKENS = 'operator'): Promise<{ status: number; json: Json }> => {
    const res = await fetch(`${t.url}${p}`, { method, headers: { ...t.auth(role), ...(body && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}) }, body: body instanceof FormData ? body : body ? JSON.stringify(body) : undefined });
    return { status: res.status, json: (await res.json()) as Json };
  };
  const ingest = async (archive: Buffer) => api('POST', '/api/v1/items', uploadForm(archive));
  const modelIntercept = async (): Promise<number> => {
    const { riskHandles } = await import('../pipeline/risk-model/feature.ts');
    return riskHandles.get(t.p.ctx)!.service.model!.meta.intercept;
  };

  beforeAll(async () => {
    if (!ready) return; // every test below is skipped (or fails under CI), naming what is missing
    t = await startTestPenumbra('predictive', { PENUMBRA_RISK_MIN_ROWS: '8', PENUMBRA_RISK_MIN_CLASS: '2', PENUMBRA_RISK_RETRAIN_HOURS: '0' }, { sink: true });
    parquetDir = warehousePaths(t.dataDir).parquetDir;
  }, 120_000);
  afterAll(async () => t?.stop());

  pyTest('v2 after v1 goes out proactively as a shadow with a plan sized by its score (the prior, which says so); its change features are on the topic and in DuckDB', async () => {
    const v1 = await ingest(await versionArchive('shop', 'v1'));
    expect(v1.status).toBe(201);
    expect(v1.json.proactive).toBe(false); // a first version has nothing to shadow
    const v2 = await ingest(await versionArchive('shop', 'v2'));
    expect(v2.status).toBe(201);
    expect(v2.json.risk).toMatchObject({ source: 'prior', modelVersion: null });
    // Proactive by default (the item has an active original): a version shadow, not a replacement.
    expect(v2.json).toMatchObject({ proactive: true, versionShadow: 'v-1-1-0' });
    expect(v2.json.plan).toMatchObject({ steps: [5, 15, 30, 50], analysisSeconds: 120, minSessionsPerArm: 300 }); // 20 % → medium tier
    expect(v2.json.sizing).toMatch(/^risk 20.0 % \(the prior/);
    expect(v2.json.item.latestVersion).toBe('1.0.0');
    const cfg = (await api('GET', '/api/v1/items/com.example.shop/shadow-config', undefined, 'viewer')).json;
    expect(cfg).toMatchObject({ itemVersion: '1.0.0', state: 'active', guardrail: true });
    expect(cfg.shadows.map((x: Json) => [x.name, x.traffic.percentage])).toEqual([['v-1-1-0', 5]]);
    expect(cfg.schedule).toMatchObject({ shadow: 'v-1-1-0', steps: [5, 15, 30, 50].map((p) => ({ percentage: p, holdSeconds: 120 })) });
    // The version shadow serves the new version's files (instrumented), the original the old ones.
    const art = await fetch(`${t.url}/api/v1/items/com.example.shop/artifacts/v-1-1-0`);
    expect(art.status).toBe(200);
    const { readArchiveBuffer } = await import('../pipeline/shadowing/archive.ts');
    const tree = await readArchiveBuffer(Buffer.from(await art.arrayBuffer()));
    expect(tree.manifest.version).toBe('1.1.0');
    expect(tree.files.has('vendor/track.js')).toBe(true);
    expect(v2.json.risk.probability).toBeCloseTo(0.2, 9);
    expect(v2.json.risk.note).toMatch(/too little history for a model: 0 labelled rollouts/);
    const models = await api('GET', '/api/v1/risk/models', undefined, 'viewer');
    expect(models.json.current).toBeNull();
    const rows = await waitFor('change features of 1.1.0 in the warehouse', async () => {
      const r = await queryParquet(parquetDir, "SELECT * FROM change_features WHERE item_id = 'com.example.shop' AND version = '1.1.0'");
      return r.length ? r : undefined;
    }, 30_000, 500);
    expect(rows[0]).toMatchObject({ id: v2.json.risk.featuresId, previous_version: '1.0.0', files_added: 1, files_removed: 1, files_changed: 2, version_bump: 'minor', proactive: true });
    expect(JSON.parse(rows[0].new_origins_json as string)).toEqual(['https://collect.tracker.example.org', 'https://recs.example.net']);
    const scores = await waitFor('the score in the warehouse', async () => {
      const r = await queryParquet(parquetDir, "SELECT source, probability, note FROM risk_scores WHERE item_id = 'com.example.shop' AND version = '1.1.0'");
      return r.length ? r : undefined;
    }, 30_000, 500);
    expect(scores).toEqual([expect.objectContaining({ source: 'prior', probability: 0.2 })]);
    // An operator promotes it: it becomes the original through the normal ingest path.
    const pr = await api('POST', '/api/v1/items/com.example.shop/versions/1.1.0/promote');
    expect(pr.status).toBe(200);
    expect(pr.json.profile).toMatchObject({ itemVersion: '1.1.0', shadows: [] });
    expect((await api('GET', '/api/v1/items/com.example.shop', undefined, 'viewer')).json.latestVersion).toBe('1.1.0');
  });

  pyTest('generated history through the pipeline: proactive version shadows, outcomes decided by the guardrail', async () => {
    // One round of 8 first rollouts, 8 sessions/s each (seed int-1 draws 4 bad of 8, so both
    // outcomes are present even if the guardrail misses one on a loaded machine).
    history = await runHistory({ url: t.url, token: TOKENS.operator, seed: 'int-1', items: 8, versionsPerItem: 2, rate: 64, holdSeconds: 12, settleSeconds: 18, maxWaitForBadSeconds: 120, log: (m, e) => console.log(m, JSON.stringify(e)) });
    const ended = history.rollouts.filter((r) => r.outcome !== 'none');
    console.log(`generated history: ${history.rollouts.length} rollouts in ${Math.round(history.durationMs / 1000)} s; ` +
      `${ended.filter((r) => r.outcome === 'regression').length} rolled back, bad ${history.rollouts.filter((r) => r.bad).length}; ` +
      `agreement with the truth ${ended.filter((r) => (r.outcome === 'regression') === r.bad).length}/${ended.length}`);
    expect(ended.length).toBe(8);
    // Every outcome the pipeline wrote (its own history counts them) reaches the warehouse.
    const { riskHandles } = await import('../pipeline/risk-model/feature.ts');
    const decided = riskHandles.get(t.p.ctx)!.history.counts(Date.now());
    expect(decided.rollouts).toBeGreaterThanOrEqual(8);
    // Prior meets evidence: running versions got updated scores from their shadow's telemetry;
    // a healthy one's risk goes down.
    const handle = riskHandles.get(t.p.ctx)!;
    const updates = history.rollouts.flatMap((r) => handle.scores(r.itemId).filter((x) => x.phase === 'update').map((u) => ({ r, u })));
    expect(updates.length).toBeGreaterThan(0);
    const good = updates.filter(({ r }) => !r.bad).map(({ u }) => JSON.parse(u.evidenceJson!) as Json);
    expect(good.length).toBeGreaterThan(0);
    expect(good.filter((e) => e.probability < e.priorProbability).length).toBeGreaterThan(good.length / 2);
    expect(decided.regressions).toBeGreaterThanOrEqual(2);
    await waitFor('outcomes in the warehouse', async () => {
      const [r] = await queryParquet(parquetDir, "SELECT count(DISTINCT item_id || '@' || version) AS n, count(DISTINCT item_id || '@' || version) FILTER (WHERE outcome = 'regression') AS bad FROM rollout_outcomes");
      return Number(r.n) >= decided.rollouts && Number(r.bad) >= decided.regressions ? true : undefined;
    }, 60_000, 500);
  }, 300_000);

  pyTest('retraining produces model v1 from the warehouse; the next ingest is scored by it and explained', async () => {
    const r = await api('POST', '/api/v1/risk/models/retrain');
    if (r.status !== 201) throw new Error(`retrain answered ${r.status}: ${JSON.stringify(r.json)}`);
    expect(r.json.model).toMatchObject({ version: 1, kind: 'logistic_regression' });
    console.log(`model v1 (GENERATED data): ${r.json.model.trainingRows} rollouts, ${r.json.model.positives} regressions, cross-validated AUC ${r.json.metrics.auc.toFixed(3)}, Brier ${r.json.metrics.brier.toFixed(3)}`);
    expect(r.json.model.trainingRows).toBeGreaterThanOrEqual(8);
    const models = await api('GET', '/api/v1/risk/models', undefined, 'viewer');
    expect(models.json.current.version).toBe(1);
    const v3 = await ingest(await versionArchive('shop', 'v3'));
    expect(v3.json.risk).toMatchObject({ source: 'model', modelVersion: 1 });
    expect(v3.json).toMatchObject({ proactive: true, versionShadow: 'v-2-0-0' });
    expect(v3.json.risk.note).toMatch(/^model v1 .*AUC/);
    const risk = await api('GET', '/api/v1/items/com.example.shop/risk', undefined, 'viewer');
    const last = risk.json.scores.at(-1);
    expect(last.version).toBe('2.0.0');
    expect(last.explanation.length).toBeGreaterThan(5);
    // The explanation is the model's own additive terms: they sum to the logit of the score.
    // (Compared as probabilities: a float32 probability near 0 or 1 loses its logit's digits.)
    const sum = last.explanation.reduce((s: number, c: Json) => s + c.contribution, 0);
    expect(Math.abs(last.probability - 1 / (1 + Math.exp(-(sum + (await modelIntercept())))))).toBeLessThan(1e-4);
  }, 120_000);

  pyTest('the analyst notebook retrains, shows calibration and importance, and registers v2; the next ingest uses v2', async () => {
    const outDir = mkdtempSync(path.join(tmpdir(), 'penumbra-risk-notebook-'));
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const p = spawn('python3', [path.join(REPO, 'notebooks', 'run_notebooks.py'), 'risk_model', '--out-dir', outDir, '--timeout', '120'], {
        cwd: REPO, env: { ...process.env, PENUMBRA_DATA_DIR: t.dataDir, PENUMBRA_API_URL: t.url, PENUMBRA_API_TOKEN: TOKENS.admin, PENUMBRA_RISK_MIN_ROWS_NOTEBOOK: '8', PENUMBRA_RISK_MIN_CLASS_NOTEBOOK: '2' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.once('error', reject);
      p.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
    if (r.code !== 0) throw new Error(`risk notebook failed (exit ${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
    const numbers = JSON.parse(readFileSync(path.join(outDir, 'risk_model.json'), 'utf8')) as Json;
    expect(numbers).toMatchObject({ trained: true, registeredVersion: 2 });
    expect(numbers.generatedShare).toBeGreaterThan(0.5);
    expect(readFileSync(path.join(outDir, 'risk_model.ipynb'), 'utf8')).toContain('GENERATED DATA');
    const models = await api('GET', '/api/v1/risk/models', undefined, 'viewer');
    expect(models.json.current).toMatchObject({ version: 2, trainedBy: 'notebook' });
    expect(models.json.versions.map((v: Json) => v.version)).toEqual([2, 1]);
    const fd = uploadForm(await versionArchive('shop', 'v1'));
    fd.append('proactive', 'false'); // explicit: replace instead of shadowing
    const v4 = await api('POST', '/api/v1/items', fd);
    expect(v4.json.risk).toMatchObject({ source: 'model', modelVersion: 2 });
    expect(v4.json.proactive).toBe(false);
  }, 180_000);
});

/**
 * Retraining: runs train_risk.py (scikit-learn → ONNX) against this process's warehouse
 * snapshots, stores the artifact in the blob store and announces it as the next model version
 * on penumbra.risk.models. Every process following that topic (RiskService.applyRecord) then
 * loads it; the caller waits until this one has.
 *
 * Also accepts an artifact trained elsewhere (the analyst notebook): it is loaded once here to
 * prove it serves (outputs, feature list) before it is announced.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobStore } from '../../connectors/blob-store/blob-store.ts';
import type { RiskModel } from '../../schemas/types.generated.ts';
import { UnavailableError, ValidationError } from '../errors.ts';
import { LoadedRiskModel, type RiskModelMetadata } from './scorer.ts';
import type { RiskService, TrainingThresholds } from './service.ts';

export const TRAIN_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'train_risk.py');

export type TrainOutcome =
  | { trained: true; model: RiskModel; metadata: RiskModelMetadata }
  | { trained: false; reason: string; trainingRows: number; positives: number; negatives: number; windowDays: number };

export interface TrainerDeps {
  dataDir: string;
  python: string;
  blobs: BlobStore;
  service: RiskService;
  thresholds: TrainingThresholds;
  /** Produce the model record on penumbra.risk.models. */
  publish: (m: RiskModel) => Promise<void>;
}

function runPython(python: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(new UnavailableError(`cannot run ${python} to train the risk model: ${err.message} (set PENUMBRA_PYTHON; it needs scikit-learn, skl2onnx, onnx, duckdb)`, err, false));
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export class RiskTrainer {
  private running: Promise<TrainOutcome> | null = null;

  constructor(private readonly deps: TrainerDeps) {}

  /** Train now; concurrent calls share one run. */
  train(trainedBy: string, now = Date.now()): Promise<TrainOutcome> {
    if (!this.running) {
      this.running = this.run(trainedBy, now).finally(() => (this.running = null));
    }
    return this.running;
  }

  private async run(trainedBy: string, now: number): Promise<TrainOutcome> {
    const out = mkdtempSync(path.join(tmpdir(), 'penumbra-risk-train-'));
    try {
      const t = this.deps.thresholds;
      const version = this.deps.service.latestVersion() + 1;
      const r = await runPython(this.deps.python, [
        TRAIN_SCRIPT, '--data-dir', this.deps.dataDir, '--out', out, '--window-days', String(t.windowDays), '--now', String(now),
        '--min-rows', String(t.minRows), '--min-class', String(t.minClass), '--trained-by', trainedBy, '--version', String(version),
      ], 300_000);
      const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (r.code !== 0 || !line) {
        throw new UnavailableError(`risk model training failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`, undefined, false);
      }
      const res = JSON.parse(line) as { status: string; reason?: string; trainingRows: number; positives: number; negatives: number; windowDays: number };
      if (res.status !== 'trained') {
        return { trained: false, reason: res.reason ?? 'insufficient history', trainingRows: res.trainingRows, positives: res.positives, negatives: res.negatives, windowDays: res.windowDays };
      }
      const onnx = readFileSync(path.join(out, 'model.onnx'));
      const metadata = JSON.parse(readFileSync(path.join(out, 'metadata.json'), 'utf8')) as RiskModelMetadata;
      return await this.register(onnx, metadata, trainedBy, version);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }

  /** Store and announce an artifact as the next version (training above, or an upload). */
  async register(onnx: Buffer, metadata: RiskModelMetadata, trainedBy: string, version = this.deps.service.latestVersion() + 1): Promise<TrainOutcome & { trained: true }> {
    // Load once before announcing it: an artifact that cannot serve never becomes current.
    let probe: LoadedRiskModel;
    try {
      probe = await LoadedRiskModel.load(onnx, metadata, version);
    } catch (err) {
      if (err instanceof ValidationError) throw err;
      throw new ValidationError(`the ONNX model cannot be loaded: ${(err as Error).message}`, [{ path: 'onnx', message: 'not a loadable ONNX model' }]);
    }
    await probe.release();
    const meta = { ...metadata, version };
    const [o, m] = await Promise.all([this.deps.blobs.put(onnx), this.deps.blobs.put(Buffer.from(JSON.stringify(meta)))]);
    const record: RiskModel = {
      name: meta.name ?? 'rollout-risk', version, onnxSha256: o.sha256, metadataSha256: m.sha256, kind: meta.kind, features: meta.features,
      windowStart: meta.windowStart, windowEnd: meta.windowEnd, trainingRows: meta.trainingRows, positives: meta.positives,
      auc: Number.isFinite(meta.metrics?.auc) ? meta.metrics.auc : null, brier: Number.isFinite(meta.metrics?.brier) ? meta.metrics.brier : null,
      trainedBy, trainedAt: Date.now(),
    };
    await this.deps.publish(record);
    await this.deps.service.waitForVersion(version);
    return { trained: true, model: record, metadata: meta };
  }
}

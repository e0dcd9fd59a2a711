/**
 * Serving side of the rollout-risk model: loads a trained artifact (ONNX file + metadata JSON,
 * written by train_risk.py and kept in the blob store) into onnxruntime-node and scores change
 * features. It never trains.
 *
 * Explanation: the exported graph has a second output, `contributions` — the model's own
 * per-input log-odds terms ((x − mean) / scale × coef of the logistic regression), so
 * intercept + Σ contributions = logit(probability). A score lists the inputs that pushed it up
 * (positive terms), largest first; a test checks the identity on every score it makes.
 */
import type { InferenceSession } from 'onnxruntime-node';
import { ValidationError } from '../errors.ts';

export interface RiskModelMetadata {
  name: string;
  kind: string;
  version: number | null;
  features: string[];
  intercept: number;
  windowStart: number;
  windowEnd: number;
  windowDays: number;
  trainingRows: number;
  positives: number;
  negatives: number;
  metrics: { auc: number; brier: number; logLoss: number; baseRate: number; expectedCalibrationError: number; calibration: unknown[]; folds: number };
  importance: { feature: string; coef: number; mean: number; scale: number }[];
  onnx: { inputName: string; probabilityOutput: string; contributionsOutput: string };
  trainedBy: string;
  trainedAt: number;
}

export interface Contribution {
  feature: string;
  value: number;
  contribution: number;
}

export interface ModelScore {
  probability: number;
  /** Every input's term, largest (most risk-raising) first. */
  contributions: Contribution[];
  logit: number;
}

export class LoadedRiskModel {
  private constructor(
    readonly meta: RiskModelMetadata,
    readonly version: number,
    private readonly session: InferenceSession,
    private readonly ort: typeof import('onnxruntime-node'),
  ) {}

  static async load(onnxBytes: Buffer, meta: RiskModelMetadata, version: number): Promise<LoadedRiskModel> {
    if (!Array.isArray(meta.features) || meta.features.length === 0) throw new ValidationError('model metadata lists no features', [{ path: 'metadata/features', message: 'empty' }]);
    // Loaded on first use: processes that never load a model never map the native library.
    // The CommonJS package's namespace differs by loader: jest's interop gives `default`, tsx
    // (npm start, the CLI, benches) gives the named exports only — take whichever has the API.
    const mod = (await import('onnxruntime-node')) as typeof import('onnxruntime-node') & { default?: typeof import('onnxruntime-node') };
    const ort = mod.InferenceSession ? mod : mod.default!;
    const session = await ort.InferenceSession.create(onnxBytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
    for (const out of [meta.onnx.probabilityOutput, meta.onnx.contributionsOutput]) {
      if (!session.outputNames.includes(out)) throw new ValidationError(`ONNX model has no output ${out} (outputs: ${session.outputNames.join(', ')})`, [{ path: 'onnx', message: `missing output ${out}` }]);
    }
    return new LoadedRiskModel(meta, version, session, ort);
  }

  /**
   * Score named inputs. An input the model knows but the record lacks is 0 (inputs are only
   * added over time, 0 meaning "absent"); inputs the model does not know are ignored.
   */
  async score(inputs: Record<string, number>): Promise<ModelScore> {
    return (await this.scoreMany([inputs]))[0];
  }

  async scoreMany(rows: Record<string, number>[]): Promise<ModelScore[]> {
    const f = this.meta.features;
    const data = new Float32Array(rows.length * f.length);
    rows.forEach((r, i) => f.forEach((name, j) => (data[i * f.length + j] = Number.isFinite(r[name]) ? r[name] : 0)));
    // Only the two float outputs are fetched: the int64 `label` output is not needed (and jest's
    // VM realm cannot build BigInt64Array tensors from the native binding).
    const out = await this.session.run({ [this.meta.onnx.inputName]: new this.ort.Tensor('float32', data, [rows.length, f.length]) }, [this.meta.onnx.probabilityOutput, this.meta.onnx.contributionsOutput]);
    const probs = out[this.meta.onnx.probabilityOutput].data as Float32Array;
    const contrib = out[this.meta.onnx.contributionsOutput].data as Float32Array;
    return rows.map((r, i) => {
      const contributions = f
        .map((name, j) => ({ feature: name, value: Number.isFinite(r[name]) ? r[name] : 0, contribution: contrib[i * f.length + j] }))
        .sort((a, b) => b.contribution - a.contribution);
      const p = probs[i * 2 + 1];
      return { probability: p, contributions, logit: this.meta.intercept + contributions.reduce((s, c) => s + c.contribution, 0) };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * RiskService: the serving half of the risk model inside a Penumbra process.
 *
 *  - holds the newest model version announced on penumbra.risk.models, loaded from the blob
 *    store (ONNX + metadata) into onnxruntime-node — never trained here;
 *  - scores change features: with a model, its probability and its own per-input
 *    contributions; without one (too little history to train), the documented Beta prior
 *    (prior.ts) updated with the window's outcomes, and a note that says so;
 *  - updates a score with rollout telemetry (prior meets evidence, prior.ts).
 */
import { randomUUID } from 'node:crypto';
import type { BlobStore } from '../../connectors/blob-store/blob-store.ts';
import type { RiskModel, RiskScore } from '../../schemas/types.generated.ts';
import type { ChangeFeatures } from '../change-features/features.ts';
import { LoadedRiskModel, type RiskModelMetadata } from './scorer.ts';
import { PRIOR_A, PRIOR_B, priorScore, updateWithEvidence, type ArmEvidence } from './prior.ts';
import type { RiskHistory } from './history.ts';

export interface TrainingThresholds {
  minRows: number;
  minClass: number;
  windowDays: number;
}

export const DEFAULT_THRESHOLDS: TrainingThresholds = { minRows: 30, minClass: 5, windowDays: 90 };

const pct = (p: number): string => `${(p * 100).toFixed(1)} %`;

export class RiskService {
  private current: LoadedRiskModel | null = null;
  private readonly records = new Map<number, RiskModel>();
  private loading: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<(m: LoadedRiskModel) => void>();

  constructor(private readonly deps: { blobs: BlobStore; history: RiskHistory; thresholds?: TrainingThresholds; log?: (msg: string, extra?: Record<string, unknown>) => void }) {}

  get thresholds(): TrainingThresholds {
    return this.deps.thresholds ?? DEFAULT_THRESHOLDS;
  }

  get model(): LoadedRiskModel | null {
    return this.current;
  }

  /** Every model version seen, newest first. */
  versions(): RiskModel[] {
    return [...this.records.values()].sort((a, b) => b.version - a.version);
  }

  latestVersion(): number {
    return Math.max(0, ...this.records.keys());
  }

  onModel(l: (m: LoadedRiskModel) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** A record from penumbra.risk.models: load it when it is newer than the model in use. */
  applyRecord(r: RiskModel): Promise<void> {
    this.records.set(r.version, r);
    // Loads are serialised so an older version finishing late never replaces a newer one.
    this.loading = this.loading.then(async () => {
      if (this.current && this.current.version >= r.version) return;
      if (r.version < this.latestVersion()) return;
      try {
        const [onnx, metaBytes] = await Promise.all([this.deps.blobs.get(r.onnxSha256), this.deps.blobs.get(r.metadataSha256)]);
        const meta = JSON.parse(metaBytes.toString('utf8')) as RiskModelMetadata;
        const loaded = await LoadedRiskModel.load(onnx, meta, r.version);
        const old = this.current;
        this.current = loaded;
        await old?.release();
        for (const l of this.listeners) l(loaded);
        this.deps.log?.('risk model loaded', { version: r.version, auc: r.auc, rows: r.trainingRows });
      } catch (err) {
        this.deps.log?.('risk model could not be loaded; keeping the previous one', { version: r.version, err: String(err) });
      }
    });
    return this.loading;
  }

  /** Resolves once model `version` (or newer) is in use; rejects after timeoutMs. */
  waitForVersion(version: number, timeoutMs = 15000): Promise<void> {
    if ((this.current?.version ?? 0) >= version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`risk model ${version} was not loaded within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onModel((m) => {
        if (m.version >= version) {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  /** The prior as it stands now (GET /api/v1/risk/models shows it). */
  prior(now: number) {
    const c = this.deps.history.counts(now);
    return { ...priorScore(c.rollouts, c.regressions), rollouts: c.rollouts, regressions: c.regressions, priorA: PRIOR_A, priorB: PRIOR_B };
  }

  /** Score change features at ingest. */
  async score(f: ChangeFeatures, featuresId: string, now: number, shadow: string | null = null): Promise<RiskScore> {
    const base = { id: randomUUID(), itemId: f.itemId, version: f.version, shadow, featuresId, phase: 'ingest', evidenceJson: null, at: now };
    const m = this.current;
    if (m) {
      const s = await m.score(f.inputs);
      const up = s.contributions.filter((c) => c.contribution > 0.05).slice(0, 3);
      const note = `model v${m.version} (${m.meta.kind}, cross-validated AUC ${m.meta.metrics.auc.toFixed(2)} on ${m.meta.trainingRows} rollouts): ${pct(s.probability)}` +
        (up.length ? `; pushed up by ${up.map((c) => `${c.feature} = ${round(c.value)} (+${c.contribution.toFixed(2)} log-odds)`).join(', ')}` : '; no input pushed it above the base rate');
      return { ...base, source: 'model', modelVersion: m.version, probability: s.probability, low: null, high: null, explanation: s.contributions.map((c) => ({ feature: c.feature, value: c.value, contribution: c.contribution })), note };
    }
    const p = this.prior(now);
    const t = this.thresholds;
    const note = `too little history for a model: ${p.rollouts} labelled rollouts in the last ${t.windowDays} days (${p.regressions} regressions); ` +
      `training needs ${t.minRows} with ${t.minClass} of each outcome. Using the prior Beta(${PRIOR_A}, ${PRIOR_B}) updated with those outcomes: ` +
      `${pct(p.probability)} (90 % interval ${pct(p.low)}–${pct(p.high)}), the same for every version; no change feature is used.`;
    return { ...base, source: 'prior', modelVersion: null, probability: p.probability, low: p.low, high: p.high, explanation: [], note };
  }

  /** A later score of the same version: the ingest score combined with the rollout's telemetry. */
  update(prior: RiskScore, e: ArmEvidence, now: number, relativeIncrease = 2): RiskScore {
    const u = updateWithEvidence(prior.probability, e, relativeIncrease);
    const note = `${pct(prior.probability)} at ingest (${prior.source}${prior.modelVersion ? ` v${prior.modelVersion}` : ''}) → ${pct(u.probability)} after ${e.shadowSessions} shadow sessions ` +
      `(${e.shadowErrorSessions} with errors, ${pct(u.shadowRate)}) vs baseline ${pct(u.baselineRate)}; log Bayes factor ${u.logBayesFactor.toFixed(2)} for a regression of ${relativeIncrease}× or more`;
    return {
      ...prior, id: randomUUID(), phase: 'update', probability: u.probability, low: null, high: null, note, at: now,
      evidenceJson: JSON.stringify({ ...e, ...u, priorProbability: prior.probability, priorScoreId: prior.id, relativeIncrease }),
    };
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

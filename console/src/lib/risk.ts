/**
 * [#13] What the console shows of a version's rollout risk: the ingest score (model or prior,
 * with the inputs that pushed it up) and the newest live update (prior meets telemetry). Pure.
 */
import type { RiskScoreView } from './types.ts';

export interface RiskSummary {
  version: string;
  shadow: string | null;
  /** Percent text of the ingest score, e.g. "23.4 %", and its source line. */
  atIngest: string;
  source: string;
  /** Interval when the prior gave one. */
  interval: string | null;
  /** Inputs that raised the risk, largest first (at most 3), e.g. "new_origins = 2 (+0.84)". */
  pushedUp: string[];
  /** Newest live update, if any. */
  now: string | null;
  nowDetail: string | null;
  note: string;
  tone: 'ok' | 'warn' | 'bad';
}

const pct = (p: number): string => `${(p * 100).toFixed(1)} %`;
const num = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(3));

export function toneFor(p: number): RiskSummary['tone'] {
  return p < 0.15 ? 'ok' : p < 0.35 ? 'warn' : 'bad';
}

/** The newest version's summary, or null without any score. */
export function riskSummary(scores: RiskScoreView[]): RiskSummary | null {
  const ingest = [...scores].filter((s) => s.phase === 'ingest').sort((a, b) => a.at - b.at).at(-1);
  if (!ingest) return null;
  const update = scores.filter((s) => s.phase === 'update' && s.version === ingest.version && s.at >= ingest.at).sort((a, b) => a.at - b.at).at(-1) ?? null;
  let nowDetail: string | null = null;
  if (update?.evidenceJson) {
    try {
      const e = JSON.parse(update.evidenceJson) as { shadowSessions: number; shadowErrorSessions: number; baselineRate: number; baseline?: string };
      nowDetail = `${e.shadowErrorSessions} of ${e.shadowSessions} shadow sessions with errors vs ${pct(e.baselineRate)} on ${e.baseline ?? 'the baseline'}`;
    } catch { /* evidence is informative only */ }
  }
  const current = update?.probability ?? ingest.probability;
  return {
    version: ingest.version,
    shadow: update?.shadow ?? ingest.shadow,
    atIngest: pct(ingest.probability),
    source: ingest.source === 'model' ? `model v${ingest.modelVersion}` : 'prior (too little history for a model)',
    interval: ingest.low !== null && ingest.high !== null ? `${pct(ingest.low)}–${pct(ingest.high)}` : null,
    pushedUp: ingest.explanation.filter((c) => c.contribution > 0.05).slice(0, 3).map((c) => `${c.feature} = ${num(c.value)} (+${c.contribution.toFixed(2)})`),
    now: update ? pct(update.probability) : null,
    nowDetail,
    note: ingest.note,
    tone: toneFor(current),
  };
}

/**
 * [#13] What the console shows of a version's rollout risk (GET /api/v1/items/{itemId}/risk):
 * the ingest score (model or prior, with the inputs that pushed it up) → its newest live update
 * (prior meets telemetry), the plan the score chose, and the early holds with their lead time.
 * Pure: RiskPanel.svelte only renders this.
 */
import type { EarlyHoldView, ForecastHoldView, GuardrailForecastView, RiskHoldView, RiskPlanView, RiskScoreView, StepForecastView } from './types.ts';

export interface RiskPlanSummary {
  /** The tier the score landed in ("medium"), or null for an operator's full plan. */
  tier: string | null;
  /** What the plan is, e.g. "start 5 %, steps 5/15/30/50 %, 120 s analyses, …". */
  text: string;
  /** Fields the operator set over the mapping ("operator set steps, analysisSeconds"), if any. */
  overridden: string | null;
}

export interface RiskSummary {
  version: string;
  shadow: string | null;
  /** Percent text of the ingest score, e.g. "23.4 %", and its source line. */
  atIngest: string;
  /** "prior" (the documented Beta prior: too little history) or "model". */
  sourceKind: 'prior' | 'model';
  source: string;
  /** Interval when the prior gave one. */
  interval: string | null;
  /** Inputs that raised the risk, largest first (at most 3), e.g. "new_origins = 2 (+0.84)". */
  pushedUp: string[];
  /** Newest live update, if any. */
  now: string | null;
  nowDetail: string | null;
  /** The current probability (live update, else the ingest score) as percent text. */
  current: string;
  /** Direction of the live update vs the ingest score. */
  trend: 'up' | 'down' | 'same' | null;
  /** The plan the score chose (from the ingest score's "Sized:" note), null for a replacing ingest. */
  plan: RiskPlanSummary | null;
  /** The ingest score's note without the plan sentence. */
  note: string;
  /** Tone of the current probability, and of the ingest score. */
  tone: 'ok' | 'warn' | 'bad';
  ingestTone: 'ok' | 'warn' | 'bad';
}

/**
 * Percent with one decimal, never "100.0 %" or "0.0 %": a score is a probability, never a
 * certainty (a strong update's log-odds overflow to exactly 1 in floating point).
 */
export const pct = (p: number): string => (p >= 0.9995 ? '> 99.9 %' : p < 0.0005 ? '< 0.1 %' : `${(p * 100).toFixed(1)} %`);
const num = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(3));

export function toneFor(p: number): RiskSummary['tone'] {
  return p < 0.15 ? 'ok' : p < 0.35 ? 'warn' : 'bad';
}

/**
 * The plan sentence the proactive ingest appends to its score's note (pipeline/risk-plan
 * `describeSizing`, joined as "<note>. Sized: <sizing>"). The note is the one place the GET
 * route carries the plan, so this reads it back; an unknown shape is shown verbatim.
 */
export function splitSizing(note: string): { note: string; plan: RiskPlanSummary | null } {
  const at = note.lastIndexOf('. Sized: ');
  if (at < 0) return { note, plan: null };
  const sizing = note.slice(at + '. Sized: '.length);
  const base = note.slice(0, at);
  const byOperator = /^plan set by the operator: (.*)$/.exec(sizing);
  if (byOperator) return { note: base, plan: { tier: null, text: byOperator[1], overridden: null } };
  const m = /→ ([a-z_]+) tier: (.*?)(?:; (operator set .*))?$/.exec(sizing);
  if (!m) return { note: base, plan: { tier: null, text: sizing, overridden: null } };
  return { note: base, plan: { tier: m[1].replace('_', ' '), text: m[2], overridden: m[3] ?? null } };
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
  const prior = ingest.source !== 'model';
  const { note, plan } = splitSizing(ingest.note);
  return {
    version: ingest.version,
    shadow: update?.shadow ?? ingest.shadow,
    atIngest: pct(ingest.probability),
    sourceKind: prior ? 'prior' : 'model',
    source: prior ? 'prior (too little history for a model)' : `model v${ingest.modelVersion}`,
    interval: ingest.low !== null && ingest.high !== null ? `${pct(ingest.low)}–${pct(ingest.high)}` : null,
    pushedUp: ingest.explanation.filter((c) => c.contribution > 0.05).slice(0, 3).map((c) => `${c.feature} = ${num(c.value)} (+${c.contribution.toFixed(2)})`),
    now: update ? pct(update.probability) : null,
    nowDetail,
    current: pct(current),
    trend: update ? (pct(update.probability) === pct(ingest.probability) ? 'same' : update.probability > ingest.probability ? 'up' : 'down') : null,
    plan,
    note,
    tone: toneFor(current),
    ingestTone: toneFor(ingest.probability),
  };
}

/** A duration as operators read it: "850 ms", "12 s", "3 min 5 s". */
export function fmtLead(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const a = Math.abs(ms);
  const sign = ms < 0 ? '−' : '';
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  const s = Math.round(a / 1000);
  if (s < 60) return `${sign}${s} s`;
  return `${sign}${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
}

export interface HoldRow {
  key: string;
  shadow: string;
  version: string;
  /** Why it was held: the updated risk and the evidence against the control arm. */
  reason: string;
  heldAt: number;
  /** Where it stands: "holding the step", "released by …", "rolled back …", "completed …". */
  status: string;
  /** The lead time before the rollback (regressions only), e.g. "held 14 s before the rollback". */
  lead: string | null;
  /** An operator may release it (the route releases the newest active hold). */
  active: boolean;
}

/** Early holds, newest first, in words. */
export function holdRows(holds: RiskHoldView[]): HoldRow[] {
  return [...holds].sort((a, b) => b.heldAt - a.heldAt).map((h) => {
    const e = h.evidence;
    const reason = `risk ${pct(h.probability)} after ${e.shadowErrorSessions} of ${e.shadowSessions} shadow sessions with errors vs ${e.baselineErrorSessions} of ${e.baselineSessions} on ${e.baseline}`;
    const active = h.releasedBy === null && h.outcome === null;
    const status = h.outcome === 'regression' ? `rolled back${h.releasedBy ? ` (released by ${h.releasedBy} before)` : ''}`
      : h.outcome === 'success' ? `the rollout completed${h.releasedBy ? ` (released by ${h.releasedBy})` : ''}`
        : h.releasedBy ? `released by ${h.releasedBy}`
          : h.profileVersion === null ? 'hold being applied' : 'holding the step';
    const lead = h.outcome === 'regression' && h.leadMs !== null ? (h.leadMs >= 0 ? `held ${fmtLead(h.leadMs)} before the rollback` : `held ${fmtLead(-h.leadMs)} after the rollback`) : null;
    return { key: h.scoreId, shadow: h.shadow, version: h.version, reason, heldAt: h.heldAt, status, lead, active };
  });
}

/**
 * The chosen plan from the route's structured `plan` field (preferred over the note's sentence):
 * the same words as describeSizing, and who set which fields over the mapping.
 */
export function planSummary(p: RiskPlanView): RiskPlanSummary {
  const text = `start ${p.steps[0]} %, steps ${p.steps.join('/')} %, ${p.analysisSeconds} s analyses, ${p.minSessionsPerArm} sessions per arm, onComplete ${p.onComplete}`;
  if (p.source === 'operator' || p.tier === null) return { tier: null, text, overridden: null };
  return { tier: p.tier.replace('_', ' '), text, overridden: p.overridden.length ? `${p.overriddenBy ?? 'an operator'} set ${p.overridden.join(', ')}` : null };
}

/** A delta in the metric's unit, as the rollout timeline writes it ("+1.2 pp", "+35 ms"). */
export function fmtDelta(metric: string, d: number): string {
  const sign = d >= 0 ? '+' : '−';
  const a = Math.abs(d);
  if (metric === 'errorRate' || metric === 'requestErrorRate' || metric.startsWith('conversion:')) return `${sign}${(Math.round(a * 1000) / 10).toString()} pp`;
  if (metric === 'perf:cls') return `${sign}${(Math.round(a * 1000) / 1000).toString()}`;
  return `${sign}${(Math.round(a * 10) / 10).toString()} ms`;
}

export interface ForecastRow {
  key: string;
  shadow: string;
  /** "errorRate may rise by at most +2 pp". */
  guardrail: string;
  /** The comparison now, e.g. "+16.7 pp [−2.4 pp, +35.7 pp] on 56 vs 49". */
  now: string;
  /** "~772 vs 700 at the analysis in 1 min 45 s". */
  projected: string;
  /** P(the guardrail fails by the analysis) as percent text, or why there is none. */
  probability: string;
  tone: 'ok' | 'warn' | 'bad';
}

const STATUS_WORDS: Record<string, string> = { regressed: 'failing now (the guardrail rolls back)', unmeasured: 'too little data yet', due: 'analysis due' };

/** Every guardrail of every planned shadow, forecast at its step's analysis. */
export function forecastRows(shadows: StepForecastView[], holdAt: number | null): ForecastRow[] {
  return shadows.flatMap((f) => f.guardrails.map((g: GuardrailForecastView) => {
    const n = g.now;
    const now = n.diff !== null && n.ciLow !== null && n.ciHigh !== null ? `${fmtDelta(g.metric, n.diff)} [${fmtDelta(g.metric, n.ciLow)}, ${fmtDelta(g.metric, n.ciHigh)}] on ${n.shadowN} vs ${n.controlN}` : `${n.shadowN} vs ${n.controlN} observations`;
    const p = g.probability;
    const tone: ForecastRow['tone'] = g.status === 'regressed' ? 'bad' : p === null ? 'ok' : holdAt !== null && p >= holdAt ? 'bad' : p >= 0.5 ? 'warn' : 'ok';
    return {
      key: `${f.shadow}/${f.step}/${g.metric}/${g.direction}`,
      shadow: f.shadow,
      guardrail: `${g.metric} may ${g.direction === 'increase' ? 'rise' : 'fall'} by at most ${fmtDelta(g.metric, g.direction === 'increase' ? g.maxDelta : -g.maxDelta)}`,
      now,
      projected: g.status === 'forecast' ? `~${Math.round(g.projected.shadowN)} vs ${Math.round(g.projected.controlN)} at the analysis in ${fmtLead(g.remainingSeconds * 1000)}` : '—',
      probability: p !== null ? pct(p) : STATUS_WORDS[g.status] ?? g.status,
      tone,
    };
  }));
}

/** Forecast holds, newest first, in words (as holdRows). */
export function forecastHoldRows(holds: ForecastHoldView[]): HoldRow[] {
  return [...holds].sort((a, b) => b.heldAt - a.heldAt).map((h) => {
    const active = h.releasedBy === null && h.outcome === null;
    const reason = `forecast ${pct(h.probability)} that ${h.guardrail.metric} fails by the step's analysis (≥ ${pct(h.holdAt)})`;
    const by = h.releasedBy ? ` (released by ${h.releasedBy} before)` : '';
    const status = h.outcome === 'rolled_back' ? `rolled back${by}`
      : h.outcome === 'advanced' ? `the step passed${by}`
        : h.outcome === 'completed' ? `the plan completed${by}`
          : h.outcome === 'removed' ? 'the shadow was removed'
            : h.releasedBy ? `released by ${h.releasedBy}`
              : h.profileVersion === null ? 'hold being applied' : 'holding the step';
    const lead = h.outcome === 'rolled_back' && h.leadMs !== null ? (h.leadMs >= 0 ? `held ${fmtLead(h.leadMs)} before the rollback` : `held ${fmtLead(-h.leadMs)} after the rollback`) : null;
    return { key: `${h.shadow}@${h.stepStartedAt}`, shadow: h.shadow, version: '', reason, heldAt: h.heldAt, status, lead, active };
  });
}

/**
 * Early holds the in-memory tables do not show (placed before the server restarted, or by
 * another process; pipeline/early-holds), in words: the release route resumes them too.
 */
export function earlyHoldRows(early: EarlyHoldView[], shown: HoldRow[]): HoldRow[] {
  const keys = new Set(shown.map((r) => r.key));
  // Absent from older servers' answers.
  return (early ?? [])
    .filter((h) => !keys.has(h.kind === 'forecast' ? (h.key ?? h.id) : String(h.evidence?.scoreId ?? h.id)))
    // Rebuilt from the profile alone for a moment (its decision not read yet): the shown row is it.
    .filter((h) => !(h.status === 'active' && shown.some((r) => r.active && r.shadow === h.shadow)))
    .sort((a, b) => (b.heldAt ?? 0) - (a.heldAt ?? 0))
    .map((h) => ({
      key: h.id, shadow: h.shadow, version: '', reason: h.reason, heldAt: h.heldAt ?? 0,
      status: h.status === 'active' ? 'holding the step' : h.status === 'released' ? `released by ${h.releasedBy ?? 'an operator'}` : `ended (${h.endedBy ?? 'plan changed'})`,
      lead: null, active: h.status === 'active',
    }));
}

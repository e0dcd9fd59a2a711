/**
 * The per-segment allocation's decision function and its transitions (pure).
 *
 * `decideSegmentReweight`: (plan, state, per-cell evidence, now) → one `SegmentReweightRecord`
 * covering every cell that has something to do, or nothing. The analyzer submits it as a
 * `reweight` command (payload `scope: "segments"`) on the item's command topic — the same path,
 * audit and timeline as the global bandit's reweightings — and the profile writer applies it with
 * `applySegmentReweight`. An operator's override of a cell (`applyCellOverride`) is a
 * `bandit_control` command (action `cell_override`) on the same topic.
 *
 * Rules, per cell, in order (the global bandit's rules of pipeline/bandit/reweight.ts, per cell):
 *  1. A stopped bandit, or a cell an operator overrides, decides nothing.
 *  2. At every call (running or paused): a shadow arm live in the cell whose guardrail regressed
 *     against the control IN THE CELL (the always-valid rule of the rollout plans) is cut off in
 *     that cell only → the cell reweights now.
 *  3. Paused: nothing more.
 *  4. Every `reweightSeconds` since the cell's last reweighting (or the run's start) → the cell
 *     reweights by Thompson sampling over its own sessions (bandit/thompson.ts; burn-in with
 *     `segments.burnInSessions`, else the bandit's). Arms the global bandit dropped stay at 0.
 */
import { murmur3 } from '../traffic-split/hash.ts';
import { judgeGuardrail, type GuardrailResult, type MetricComparison } from '../rollout/evidence.ts';
import { armsOf, type BanditPlan, type BanditState } from '../bandit/plan.ts';
import { computeWeights, type ArmStats, type ArmWeight } from '../bandit/thompson.ts';
import type { DecisionOut, Transition } from '../rollout/transitions.ts';
import type { ShadowProfile } from '../domain/types.ts';
import { cellLabel, type CellState } from './plan.ts';

export interface CellEvidence {
  /** Primary-metric statistics per arm (control included when it is an arm), sessions of the cell's users since the run started. */
  stats: ArmStats[];
  /** Per shadow arm: comparisons with the control within the cell, per guardrail metric. */
  comparisons: Record<string, Record<string, MetricComparison | undefined>>;
}

export interface CellRecord {
  cell: string;
  /** `deviceType=android`, `segment=power-users`, … */
  label: string;
  /** The cell's epoch after this decision (previous + 1). */
  epoch: number;
  phase: 'burn_in' | 'thompson' | 'stopped';
  seed: number;
  draws: number;
  /** Per arm: sessions in the cell, posterior, P(best), weight. */
  arms: ArmWeight[];
  drops: { arm: string; reason: string; guardrails: GuardrailResult[] }[];
  guardrails: Record<string, GuardrailResult[]>;
  scheduled: boolean;
  sentence: string;
}

export interface SegmentReweightRecord {
  scope: 'segments';
  by: string;
  metric: string;
  better: 'higher' | 'lower';
  burnInSessions: number;
  cells: CellRecord[];
  reason: string;
  at: number;
}

export type SegmentDecision = { kind: 'none'; why: string } | { kind: 'reweight'; record: SegmentReweightRecord; expect: SegmentExpect };

/** What the analyzer saw: the run and each decided cell's epoch (the writer refuses a stale one). */
export interface SegmentExpect {
  run: number;
  epochs: Record<string, number>;
}

export interface SegmentReweightPayload {
  scope: 'segments';
  record: SegmentReweightRecord;
  expect: SegmentExpect;
}

const pct = (w: number) => `${Math.round(w * 1000) / 10}%`;

export function decideSegmentReweight(input: { itemId: string; plan: BanditPlan; state: BanditState; evidence: Record<string, CellEvidence | undefined>; now: number }): SegmentDecision {
  const { plan, state, now } = input;
  const split = plan.segments;
  if (!split || !state.cells || state.cells.length === 0) return { kind: 'none', why: 'no per-segment allocation' };
  if (state.status === 'stopped') return { kind: 'none', why: 'bandit stopped' };
  const arms = armsOf(plan);
  const burnIn = split.burnInSessions ?? plan.burnInSessions;
  const globallyDropped = new Set(state.dropped.map((d) => d.arm));
  const out: CellRecord[] = [];
  const epochs: Record<string, number> = {};
  for (const c of state.cells) {
    if (c.override) continue;
    const ev = input.evidence[c.cell];
    const already = new Set([...globallyDropped, ...c.dropped.map((d) => d.arm)]);
    const guardrails: Record<string, GuardrailResult[]> = {};
    const drops: CellRecord['drops'] = [];
    for (const arm of plan.arms) {
      if (already.has(arm)) continue;
      const results = plan.guardrails.map((g) => judgeGuardrail(g, ev?.comparisons[arm]?.[g.metric]));
      guardrails[arm] = results;
      const bad = results.filter((r) => r.verdict === 'regressed');
      if (bad.length > 0) {
        drops.push({ arm, guardrails: results, reason: bad.map((r) => `${r.metric} ${r.direction} beyond ${r.maxDelta} vs control in ${cellLabel(split.by, c.cell)} (estimate ${r.estimate}, interval [${r.ciLow}, ${r.ciHigh}], always-valid p=${r.p})`).join('; ') });
      }
    }
    const due = now >= (c.lastReweightAt ?? state.startedAt) + plan.reweightSeconds * 1000;
    if (drops.length === 0 && (state.status === 'paused' || !due)) continue;
    const epoch = c.epoch + 1;
    const seed = murmur3(`${input.itemId}:${state.startedAt}:${c.cell}:${epoch}`);
    const dropped = new Set([...already, ...drops.map((d) => d.arm)]);
    const w = computeWeights(arms, ev?.stats ?? [], { better: plan.better, floorShare: plan.floorShare, burnInSessions: burnIn, dropped, seed });
    const label = cellLabel(split.by, c.cell);
    const weights = w.arms.map((a) => `${a.arm} ${pct(a.weight)}`).join(', ');
    const dropText = drops.map((d) => `cut ${d.arm} in ${label} only: ${d.reason}`).join('; ');
    const sentence = w.phase === 'stopped' ? `${dropText}; no arm left in ${label}: its users get the original.` : `${dropText ? dropText + '; ' : ''}${label} epoch ${epoch}: ${w.note}: ${weights}.`;
    out.push({ cell: c.cell, label, epoch, phase: w.phase, seed, draws: w.draws, arms: w.arms, drops, guardrails, scheduled: due, sentence });
    epochs[c.cell] = c.epoch;
  }
  if (out.length === 0) return { kind: 'none', why: state.status === 'paused' ? 'bandit paused' : 'no cell due' };
  return {
    kind: 'reweight',
    record: { scope: 'segments', by: split.by, metric: plan.metric, better: plan.better, burnInSessions: burnIn, cells: out, reason: out.map((c) => c.sentence).join(' '), at: now },
    expect: { run: state.startedAt, epochs },
  };
}

/** The cells after an accepted per-segment reweighting (cells not in the record unchanged). */
export function applyCellRecords(cells: readonly CellState[], rec: SegmentReweightRecord, now: number): CellState[] {
  const byCell = new Map(rec.cells.map((c) => [c.cell, c]));
  return cells.map((c) => {
    const r = byCell.get(c.cell);
    if (!r) return c;
    return { ...c, epoch: r.epoch, weights: r.arms.map((a) => ({ arm: a.arm, weight: a.weight })), dropped: [...c.dropped, ...r.drops.map((d) => ({ arm: d.arm, epoch: r.epoch, reason: d.reason }))], lastReweightAt: now };
  });
}

const reject = (errorCode: string, detail: string, issues: { path: string; message: string }[] = []): Transition => ({ ok: false, errorCode, detail, issues });

/** An automated per-segment reweighting (system:bandit), re-checked against the current state. */
export function applySegmentReweight(p: ShadowProfile, pl: SegmentReweightPayload, now: number): Transition {
  const st = p.banditState;
  if (!p.bandit || !st || !st.cells || st.cells.length === 0) return reject('noop', 'no per-segment allocation');
  if (st.startedAt !== pl.expect.run) return reject('noop', `stale per-segment reweighting: the bandit run is ${st.startedAt}, the analysis saw ${pl.expect.run}`);
  if (st.status === 'stopped') return reject('noop', 'bandit stopped');
  const byCell = new Map(st.cells.map((c) => [c.cell, c]));
  // A cell whose epoch moved, or that an operator took over meanwhile, is left out; nothing left → stale.
  const fresh = pl.record.cells.filter((r) => {
    const c = byCell.get(r.cell);
    return c !== undefined && !c.override && c.epoch === pl.expect.epochs[r.cell];
  });
  if (fresh.length === 0) return reject('noop', 'stale per-segment reweighting: every cell it decided moved on or is overridden');
  const record: SegmentReweightRecord = { ...pl.record, cells: fresh, reason: fresh.map((c) => c.sentence).join(' ') };
  const cells = applyCellRecords(st.cells, record, now);
  const rule = fresh.some((c) => c.drops.length > 0) ? 'segment_guardrail' : fresh.every((c) => c.phase === 'burn_in') ? 'segment_burn_in' : 'segment_thompson';
  const decisions: DecisionOut[] = [{ shadow: null, kind: 'reweight', rule, automated: true, step: null, percentage: null, reason: record.reason, evidence: record }];
  return { ok: true, profile: { ...p, banditState: { ...st, cells } }, changed: true, decisions };
}

export interface CellOverridePayload {
  action: 'cell_override';
  cell: string;
  /** Arm → weight (normalised to sum 1); null releases the cell back to the automated mode. */
  weights: Record<string, number> | null;
}

/** An operator's override of one cell: fixed weights (frozen for the automated mode), or a release. */
export function applyCellOverride(p: ShadowProfile, pl: CellOverridePayload, actor: string, reason: string | null, now: number): Transition {
  const st = p.banditState;
  if (!p.bandit || !st) return reject('validation', 'item has no bandit', [{ path: 'bandit', message: 'none configured' }]);
  const c = st.cells?.find((x) => x.cell === pl.cell);
  if (!p.bandit.segments || !st.cells || !c) {
    return reject('not-found', `no cell "${pl.cell}" in the bandit's per-segment allocation${p.bandit.segments ? ` (cells: ${p.bandit.segments.cells.join(', ')})` : ' (it has none)'}`);
  }
  const label = cellLabel(p.bandit.segments.by, c.cell);
  const why = reason ? `: ${reason}` : '';
  const arms = armsOf(p.bandit);
  let next: CellState;
  if (pl.weights === null) {
    if (!c.override) return reject('noop', `${label} is not overridden`);
    // The next automated reweighting of the cell is one full period away.
    next = { ...c, override: null, lastReweightAt: now };
  } else {
    const issues: { path: string; message: string }[] = [];
    for (const k of Object.keys(pl.weights)) if (!arms.includes(k)) issues.push({ path: `weights/${k}`, message: `not an arm (arms: ${arms.join(', ')})` });
    const dropped = new Set(st.dropped.map((d) => d.arm));
    for (const a of arms) {
      const v = pl.weights[a] ?? 0;
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) issues.push({ path: `weights/${a}`, message: 'must be a number ≥ 0' });
      else if (v > 0 && dropped.has(a)) issues.push({ path: `weights/${a}`, message: `${a} was dropped by the bandit's guardrail for everyone; it cannot take users in one cell` });
    }
    const total = arms.reduce((s, a) => s + (pl.weights![a] ?? 0), 0);
    if (issues.length === 0 && !(total > 0)) issues.push({ path: 'weights', message: 'at least one arm needs a weight > 0' });
    if (issues.length > 0) return reject('validation', 'invalid cell weights', issues);
    next = { ...c, weights: arms.map((a) => ({ arm: a, weight: (pl.weights![a] ?? 0) / total })), override: { actor, reason, at: now } };
  }
  const cells = st.cells.map((x) => (x.cell === c.cell ? next : x));
  const sentence = pl.weights === null
    ? `${actor} released ${label} back to the automated per-segment allocation${why}`
    : `${actor} fixed the weights of ${label}: ${next.weights.map((w) => `${w.arm} ${pct(w.weight)}`).join(', ')} (automated reweighting of the cell suspended)${why}`;
  return {
    ok: true, profile: { ...p, banditState: { ...st, cells } }, changed: true,
    decisions: [{ shadow: null, kind: 'reweight', rule: pl.weights === null ? 'segment_release' : 'segment_override', automated: false, step: null, percentage: null, reason: sentence, evidence: { scope: 'segments', cell: c.cell, label, previous: c.weights, weights: next.weights, override: next.override } }],
  };
}

/**
 * Profile transitions of rollout plans, bandits, per-shadow state and promotions — the part of
 * the profile writer's pure core (pipeline/profiles/commands.ts) that this feature owns. Each
 * function takes the current profile and a command payload and returns the next profile (the
 * writer bumps the version and remembers the command id) plus the decision records to publish
 * on penumbra.rollout.decisions, or a rejection.
 *
 * Automated decisions carry what the analyzer expected the state to be (step, its start, the
 * bandit epoch): if an operator or another analyzer changed it meanwhile, the decision is stale
 * and refused as a `noop`, so an override always wins over a decision computed before it.
 */
import type { FieldIssue } from '../errors.ts';
import { PenumbraError } from '../errors.ts';
import type { ShadowProfile, ShadowSpec, ArtifactRef } from '../domain/types.ts';
import { compileProfile } from '../traffic-split/traffic-split.ts';
import { applyDecision, type DecisionRecord } from './decide.ts';
import { planFromSchedule, startState, type RolloutPlan, type RolloutState } from './plan.ts';
import { startBandit, type BanditPlan, type BanditState } from '../bandit/plan.ts';
import { applyReweight, type ReweightRecord } from '../bandit/reweight.ts';
import type { RolloutDecisionKind } from '../../schemas/types.generated.ts';

/** One entry of the timeline (penumbra.rollout.decisions), before the writer adds id, actor, version, time. */
export interface DecisionOut {
  shadow: string | null;
  kind: RolloutDecisionKind;
  rule: string | null;
  automated: boolean;
  step: number | null;
  percentage: number | null;
  reason: string;
  evidence: unknown;
}

export type Transition =
  | { ok: true; profile: ShadowProfile; changed: boolean; decisions: DecisionOut[] }
  | { ok: false; errorCode: string; detail: string; issues: FieldIssue[] };

const reject = (errorCode: string, detail: string, issues: FieldIssue[] = []): Transition => ({ ok: false, errorCode, detail, issues });

function layoutIssues(p: ShadowProfile): FieldIssue[] {
  try {
    compileProfile(p);
    return [];
  } catch (err) {
    if (err instanceof PenumbraError) return err.issues.length ? err.issues : [{ path: 'shadows', message: err.message }];
    return [{ path: 'shadows', message: (err as Error).message }];
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Every plan's largest step must fit the bucket layout with the other shadows as they are
 * (a control cohort takes as much again): refused up front rather than at the last step.
 */
export function planFitIssues(p: ShadowProfile): FieldIssue[] {
  const issues: FieldIssue[] = [];
  p.shadows.forEach((s, i) => {
    if (!s.rollout || s.state === 'rolled_back') return;
    const last = s.rollout.steps.length - 1;
    const top = s.rollout.steps[last].percentage;
    if (top <= s.traffic.percentage) return;
    const probe: ShadowProfile = { ...p, shadows: p.shadows.map((x, j) => (j === i ? { ...x, traffic: { ...x.traffic, percentage: top } } : x)) };
    const li = layoutIssues(probe);
    if (li.length > 0) issues.push({ path: `shadows/${i}/rollout/steps/${last}`, message: `the last step (${top}%) does not fit: ${li.map((x) => x.message).join('; ')}` });
  });
  return issues;
}

/** Share a running or paused plan holds the shadow at. */
function planShare(plan: RolloutPlan, st: RolloutState): number {
  return plan.steps[Math.min(st.step, plan.steps.length - 1)].percentage;
}

/**
 * The shadows of a new configuration (PUT or a new item version) reconciled with the current
 * ones: a plan equal to the current one keeps its state (and owns the shadow's share while it
 * runs or is paused); a new or changed plan starts at step 0 now; `rollout: undefined` keeps the
 * current plan (clients that do not know plans do not delete them), `null` removes it. A legacy
 * `schedule` becomes its shadow's plan; a legacy `schedule: null` removes timer plans (no
 * guardrails, no sample requirement) that the request does not name.
 */
export function reconcilePlans(
  current: ShadowProfile | null,
  incoming: readonly ShadowSpec[],
  now: number,
  legacy?: { shadow: string; steps: { percentage: number; holdSeconds: number }[] } | null,
): { shadows: ShadowSpec[]; issues: FieldIssue[]; decisions: DecisionOut[] } {
  const issues: FieldIssue[] = [];
  const decisions: DecisionOut[] = [];
  const prevByName = new Map((current?.shadows ?? []).map((s) => [s.name, s]));
  if (legacy && !incoming.some((s) => s.name === legacy.shadow)) {
    issues.push({ path: 'schedule/shadow', message: `schedule names shadow ${legacy.shadow}, which is not configured` });
  }
  const shadows = incoming.map((raw, i) => {
    const prev = prevByName.get(raw.name);
    const { rolloutState: _ignored, ...s } = raw; // state is the writer's, never the client's
    let plan: RolloutPlan | null | undefined = s.rollout;
    if (legacy && legacy.shadow === s.name) plan = planFromSchedule(legacy.steps);
    if (plan === undefined) plan = prev?.rollout ?? null;
    // `schedule: null` (deprecated) meant "no timer ramp": it removes timer plans, not guarded ones.
    if (legacy === null && s.rollout === undefined && plan && plan.guardrails.length === 0 && plan.minSessionsPerArm === 0) plan = null;
    const state: ShadowSpec['state'] = s.state ?? prev?.state ?? 'active';
    const out: ShadowSpec = { ...s, state };
    if (!plan) {
      delete out.rollout;
      delete out.rolloutState;
      if (prev?.rollout) decisions.push({ shadow: s.name, kind: 'pause', rule: null, automated: false, step: null, percentage: s.traffic.percentage, reason: `rollout plan of ${s.name} removed`, evidence: {} });
      return out;
    }
    out.rollout = plan;
    if (prev?.rollout && prev.rolloutState && same(prev.rollout, plan)) {
      out.rolloutState = prev.rolloutState;
      const st = prev.rolloutState;
      if ((st.status === 'running' || st.status === 'paused') && s.traffic.percentage !== planShare(plan, st)) {
        if (s.traffic.percentage === prev.traffic.percentage) out.traffic = { ...s.traffic, percentage: planShare(plan, st) };
        else issues.push({ path: `shadows/${i}/traffic/percentage`, message: `the rollout plan sets this share (step ${st.step + 1}: ${planShare(plan, st)}%); pause and skip, restart or remove the plan to change it` });
      }
      return out;
    }
    out.rolloutState = startState(now);
    out.traffic = { ...s.traffic, percentage: plan.steps[0].percentage };
    out.state = 'active';
    decisions.push({ shadow: s.name, kind: 'start', rule: null, automated: false, step: 0, percentage: plan.steps[0].percentage, reason: `rollout plan of ${s.name} started: steps ${plan.steps.map((x) => `${x.percentage}%`).join(' → ')}, ${plan.guardrails.length} guardrail(s), analysis every ${plan.analysisSeconds} s`, evidence: { plan } });
    return out;
  });
  return { shadows, issues, decisions };
}

/** A bandit in a PUT: undefined keeps, null removes, a changed one starts a new run now. */
export function reconcileBandit(current: ShadowProfile | null, incoming: BanditPlan | null | undefined, now: number): { bandit: BanditPlan | null; state: BanditState | null; decisions: DecisionOut[] } {
  if (incoming === undefined) return { bandit: current?.bandit ?? null, state: current?.banditState ?? null, decisions: [] };
  if (incoming === null) {
    return { bandit: null, state: null, decisions: current?.bandit ? [{ shadow: null, kind: 'bandit_stop', rule: null, automated: false, step: null, percentage: null, reason: 'bandit removed', evidence: {} }] : [] };
  }
  if (current?.bandit && current.banditState && same(current.bandit, incoming)) return { bandit: current.bandit, state: current.banditState, decisions: [] };
  const state = startBandit(incoming, now);
  return {
    bandit: incoming,
    state,
    decisions: [{ shadow: null, kind: 'bandit_start', rule: null, automated: false, step: null, percentage: null, reason: `bandit started over ${incoming.arms.join(', ')}${incoming.control ? ' and control' : ''} on ${incoming.metric} (${incoming.better} is better), reweighting every ${incoming.reweightSeconds} s`, evidence: { bandit: incoming, weights: state.weights } }],
  };
}

function withShadow(p: ShadowProfile, name: string, f: (s: ShadowSpec) => ShadowSpec): ShadowProfile {
  return { ...p, shadows: p.shadows.map((s) => (s.name === name ? f(s) : s)) };
}

function checked(p: ShadowProfile, decisions: DecisionOut[]): Transition {
  const issues = layoutIssues(p);
  if (issues.length > 0) return reject('validation', 'the change does not fit the bucket layout', issues);
  return { ok: true, profile: p, changed: true, decisions };
}

export interface RolloutDecisionPayload {
  shadow: string;
  decision: DecisionRecord;
  /** The state the analyzer decided on. */
  expect: { step: number; stepStartedAt: number; status: RolloutState['status'] };
}

/** An automated rollout decision (system:rollout). */
export function applyRolloutDecision(p: ShadowProfile, pl: RolloutDecisionPayload, now: number): Transition {
  const s = p.shadows.find((x) => x.name === pl.shadow);
  if (!s?.rollout || !s.rolloutState) return reject('noop', `shadow ${pl.shadow} has no rollout plan`);
  const st = s.rolloutState;
  if (st.step !== pl.expect.step || st.stepStartedAt !== pl.expect.stepStartedAt || st.status !== pl.expect.status) {
    return reject('noop', `stale decision: the plan of ${pl.shadow} is at step ${st.step + 1} (${st.status}) since ${st.stepStartedAt}, the analysis saw step ${pl.expect.step + 1} (${pl.expect.status})`);
  }
  if (st.status !== 'running' && !(st.status === 'paused' && pl.decision.kind === 'rollback')) return reject('noop', `plan of ${pl.shadow} is ${st.status}`);
  if (p.state !== 'active' && pl.decision.kind !== 'rollback') return reject('noop', 'item is rolled back');
  const rec = pl.decision;
  const next = applyDecision(st, rec, now);
  let profile = withShadow(p, s.name, (x) => ({ ...x, rolloutState: next }));
  if (rec.kind === 'advance') profile = withShadow(profile, s.name, (x) => ({ ...x, traffic: { ...x.traffic, percentage: rec.nextPercentage! } }));
  if (rec.kind === 'rollback') profile = withShadow(profile, s.name, (x) => ({ ...x, state: 'rolled_back' }));
  const pct = rec.kind === 'advance' ? rec.nextPercentage : rec.percentage;
  return checked(profile, [{ shadow: s.name, kind: rec.kind, rule: rec.rule, automated: true, step: next.step, percentage: pct, reason: rec.reason, evidence: rec }]);
}

export type RolloutAction = 'pause' | 'resume' | 'skip' | 'restart';

/** An operator's override of a plan. */
/**
 * An override of one shadow's plan. By an operator, or by a system component (`system:*`, e.g.
 * the risk feature's early hold, pipeline/risk-model): then the decision is automated, its
 * `evidence` is what it rests on, and a pause keeps the component's reason verbatim (it carries
 * its own numbers and how to release it).
 */
export function applyRolloutControl(p: ShadowProfile, pl: { shadow: string; action: RolloutAction; evidence?: Record<string, unknown> | null }, actor: string, reason: string | null, now: number): Transition {
  const s = p.shadows.find((x) => x.name === pl.shadow);
  if (!s) return reject('not-found', `no shadow named ${pl.shadow}`);
  if (!s.rollout || !s.rolloutState) return reject('validation', `shadow ${pl.shadow} has no rollout plan`, [{ path: 'shadow', message: 'no rollout plan' }]);
  const plan = s.rollout;
  const st = s.rolloutState;
  const why = reason ? `: ${reason}` : '';
  const automated = actor.startsWith('system:');
  const out = (state: RolloutState, extra: Partial<ShadowSpec>, kind: RolloutDecisionKind, sentence: string): Transition =>
    checked(withShadow(p, s.name, (x) => ({ ...x, ...extra, rolloutState: state })), [{ shadow: s.name, kind, rule: null, automated, step: state.step, percentage: (extra.traffic ?? s.traffic).percentage, reason: sentence, evidence: pl.evidence ?? {} }]);
  switch (pl.action) {
    case 'pause':
      if (st.status !== 'running') return reject('noop', `plan of ${s.name} is ${st.status}`);
      return out({ ...st, status: 'paused', reason: automated && reason ? reason : `paused by ${actor}${why}` }, {}, 'pause', `${actor} paused the plan of ${s.name} at step ${st.step + 1} (${planShare(plan, st)}%)${why}`);
    case 'resume':
      if (st.status !== 'paused') return reject('noop', `plan of ${s.name} is ${st.status}${st.status === 'rolled_back' || st.status === 'completed' ? '; restart it instead' : ''}`);
      // The step's data so far still counts; the next analysis is one full period from now.
      return out({ ...st, status: 'running', lastAnalysisAt: now, reason: null }, {}, 'resume', `${actor} resumed the plan of ${s.name} at step ${st.step + 1}${why}`);
    case 'skip': {
      if (st.status !== 'running' && st.status !== 'paused') return reject('noop', `plan of ${s.name} is ${st.status}`);
      if (st.step + 1 >= plan.steps.length) {
        return out({ ...st, status: 'completed', lastAnalysisAt: now, inconclusive: 0, reason: `completed by ${actor} (skip)${why}` }, {}, 'skip', `${actor} skipped the last step's analysis of ${s.name}: plan complete at ${planShare(plan, st)}%${why}`);
      }
      const ns: RolloutState = { status: st.status, step: st.step + 1, stepStartedAt: now, lastAnalysisAt: null, inconclusive: 0, reason: st.status === 'paused' ? st.reason : null };
      const pct = plan.steps[ns.step].percentage;
      return out(ns, { traffic: { ...s.traffic, percentage: pct } }, 'skip', `${actor} skipped ${s.name} to step ${ns.step + 1} (${pct}%) without an analysis${why}`);
    }
    case 'restart': {
      const pct = plan.steps[0].percentage;
      return out(startState(now), { state: 'active', traffic: { ...s.traffic, percentage: pct } }, 'restart', `${actor} restarted the plan of ${s.name} at step 1 (${pct}%)${why}`);
    }
  }
}

/** Per-shadow rollback and re-activation. */
export function applyShadowState(p: ShadowProfile, pl: { shadow: string }, to: 'rolled_back' | 'active', actor: string, reason: string | null): Transition {
  const s = p.shadows.find((x) => x.name === pl.shadow);
  if (!s) return reject('not-found', `no shadow named ${pl.shadow}`);
  if ((s.state ?? 'active') === to) return reject('noop', `shadow ${pl.shadow} is already ${to === 'active' ? 'active' : 'rolled back'}`);
  const why = reason ? `: ${reason}` : '';
  let rolloutState = s.rolloutState;
  if (to === 'rolled_back' && rolloutState && (rolloutState.status === 'running' || rolloutState.status === 'paused')) {
    rolloutState = { ...rolloutState, status: 'rolled_back', reason: `shadow rolled back by ${actor}${why}` };
  }
  const next = withShadow(p, s.name, (x) => ({ ...x, state: to, ...(rolloutState ? { rolloutState } : {}) }));
  return checked(next, [{
    shadow: s.name, kind: to === 'rolled_back' ? 'shadow_rollback' : 'shadow_activate', rule: null, automated: actor.startsWith('system:'), step: rolloutState?.step ?? null, percentage: s.traffic.percentage,
    reason: to === 'rolled_back' ? `${actor} rolled back shadow ${s.name}: its users get the original${why}` : `${actor} re-activated shadow ${s.name} at ${s.traffic.percentage}%${why}`, evidence: {},
  }]);
}

/** Item-wide rollback pauses running plans (they do not advance while everyone gets the original). */
export function pausePlansForRollback(p: ShadowProfile): ShadowProfile {
  return { ...p, shadows: p.shadows.map((s) => (s.rolloutState?.status === 'running' ? { ...s, rolloutState: { ...s.rolloutState, status: 'paused' as const, reason: 'item rolled back' } } : s)) };
}

/** An alert pauses every running plan of the item; all clear resumes the plans an alert paused. */
export function alertPlans(p: ShadowProfile, action: 'pause_schedule' | 'resume_schedule', reason: string, now: number): Transition {
  const decisions: DecisionOut[] = [];
  const shadows = p.shadows.map((s) => {
    const st = s.rolloutState;
    if (!st) return s;
    if (action === 'pause_schedule' && st.status === 'running') {
      decisions.push({ shadow: s.name, kind: 'pause', rule: 'alert', automated: true, step: st.step, percentage: s.traffic.percentage, reason, evidence: {} });
      return { ...s, rolloutState: { ...st, status: 'paused' as const, reason } };
    }
    if (action === 'resume_schedule' && st.status === 'paused' && (st.reason ?? '').startsWith('alert') && p.state === 'active') {
      decisions.push({ shadow: s.name, kind: 'resume', rule: 'alert', automated: true, step: st.step, percentage: s.traffic.percentage, reason: 'all alerts on the item resolved', evidence: {} });
      return { ...s, rolloutState: { ...st, status: 'running' as const, lastAnalysisAt: now, reason: null } };
    }
    return s;
  });
  if (decisions.length === 0) return reject('noop', action === 'pause_schedule' ? 'no running rollout plan' : 'no plan paused by an alert');
  return { ok: true, profile: { ...p, shadows }, changed: true, decisions };
}

export interface ReweightPayload {
  record: ReweightRecord;
  expect: { run: number; epoch: number };
}

/** An automated reweighting (system:bandit). */
export function applyReweightCommand(p: ShadowProfile, pl: ReweightPayload, now: number): Transition {
  const st = p.banditState;
  if (!p.bandit || !st) return reject('noop', 'no bandit');
  if (st.startedAt !== pl.expect.run || st.epoch !== pl.expect.epoch) return reject('noop', `stale reweighting: bandit is at epoch ${st.epoch} of run ${st.startedAt}, the analysis saw epoch ${pl.expect.epoch}`);
  if (st.status === 'stopped') return reject('noop', 'bandit stopped');
  const next = applyReweight(st, pl.record, now);
  return {
    ok: true,
    profile: { ...p, banditState: next },
    changed: true,
    decisions: [{ shadow: null, kind: pl.record.phase === 'stopped' ? 'bandit_stop' : 'reweight', rule: pl.record.phase, automated: true, step: null, percentage: null, reason: pl.record.reason, evidence: pl.record }],
  };
}

/** An operator's override of the bandit. */
export function applyBanditControl(p: ShadowProfile, pl: { action: 'pause' | 'resume' | 'stop' | 'restart' }, actor: string, reason: string | null, now: number): Transition {
  const st = p.banditState;
  if (!p.bandit || !st) return reject('validation', 'item has no bandit', [{ path: 'bandit', message: 'none configured' }]);
  const why = reason ? `: ${reason}` : '';
  const d = (kind: RolloutDecisionKind, sentence: string, state: BanditState): Transition => ({
    ok: true, profile: { ...p, banditState: state }, changed: true, decisions: [{ shadow: null, kind, rule: null, automated: false, step: null, percentage: null, reason: sentence, evidence: { weights: state.weights } }],
  });
  switch (pl.action) {
    case 'pause':
      if (st.status !== 'running') return reject('noop', `bandit is ${st.status}`);
      return d('bandit_pause', `${actor} paused the bandit (weights frozen)${why}`, { ...st, status: 'paused', reason: `paused by ${actor}${why}` });
    case 'resume':
      if (st.status !== 'paused') return reject('noop', `bandit is ${st.status}`);
      return d('bandit_resume', `${actor} resumed the bandit${why}`, { ...st, status: 'running', lastReweightAt: now, reason: null });
    case 'stop':
      if (st.status === 'stopped') return reject('noop', 'bandit already stopped');
      return d('bandit_stop', `${actor} stopped the bandit: its users get the original${why}`, { ...st, status: 'stopped', reason: `stopped by ${actor}${why}` });
    case 'restart': {
      const s0 = startBandit(p.bandit, now);
      return d('bandit_start', `${actor} restarted the bandit with equal weights; nobody is sticky any more${why}`, s0);
    }
  }
}

export interface PromotePayload {
  shadow: string;
  /**
   * `shadow` (absent in commands written before #13 landed): the shadow's changes on the served
   * version; `version`: another ingested version (a version shadow's) — it need not be running.
   */
  from?: 'shadow' | 'version';
  /** What an automated promotion was decided on (the plan's completing decision); null for an operator's. */
  evidence?: Record<string, unknown> | null;
  itemVersion: string;
  original: ArtifactRef;
  controlArtifact?: ArtifactRef | null;
  /** The other shadows, rebuilt on the promoted original by the ingest path. */
  shadows: ShadowSpec[];
}

/**
 * Promotion: the shadow's changes become the original (a new item version built through the
 * ingest path); the previous original, control artifact and shadows are kept in `promotion` so
 * the promotion can be rolled back. A bandit that had the shadow as an arm ends with it.
 */
export function applyPromote(p: ShadowProfile, pl: PromotePayload, actor: string, now: number): Transition {
  const fromVersion = pl.from === 'version';
  if (!fromVersion && !p.shadows.some((s) => s.name === pl.shadow)) return reject('not-found', `no shadow named ${pl.shadow}`);
  const prevByName = new Map(p.shadows.map((s) => [s.name, s]));
  const shadows = pl.shadows.map((s) => {
    const prev = prevByName.get(s.name);
    return prev?.rolloutState && !s.rolloutState ? { ...s, rolloutState: prev.rolloutState } : s;
  });
  const banditHadIt = p.bandit?.arms.includes(pl.shadow) ?? false;
  const next: ShadowProfile = {
    ...p,
    itemVersion: pl.itemVersion,
    original: pl.original,
    ...(pl.controlArtifact ? { controlArtifact: pl.controlArtifact } : {}),
    shadows,
    bandit: banditHadIt ? null : p.bandit ?? null,
    banditState: banditHadIt ? null : p.banditState ?? null,
    promotion: {
      shadow: pl.shadow, fromItemVersion: p.itemVersion, toItemVersion: pl.itemVersion, by: actor, at: now,
      previous: { itemVersion: p.itemVersion, ...(p.original ? { original: p.original } : {}), ...(p.controlArtifact ? { controlArtifact: p.controlArtifact } : {}), shadows: p.shadows },
    },
  };
  const reason = fromVersion
    ? `${actor} promoted version ${pl.itemVersion}${p.shadows.some((s) => s.name === pl.shadow) ? ` (shadow ${pl.shadow})` : ''}: it replaces ${p.itemVersion} as the original`
    : `${actor} promoted ${pl.shadow}: item version ${pl.itemVersion} (its endpoint changes, no instrumentation) replaces ${p.itemVersion} as the original`;
  const evidence = { from: fromVersion ? 'version' : 'shadow', fromItemVersion: p.itemVersion, toItemVersion: pl.itemVersion, ...(pl.evidence ? { decidedOn: pl.evidence } : {}) };
  return checked(next, [{ shadow: pl.shadow, kind: 'promote', rule: pl.evidence ? 'plan_complete' : null, automated: actor.startsWith('system:'), step: null, percentage: null, reason, evidence }]);
}

/** Rolling back a promotion restores the previous original and shadows; the promoted shadow stays rolled back. */
export function applyPromotionRollback(p: ShadowProfile, actor: string, reason: string | null): Transition {
  const pr = p.promotion;
  if (!pr) return reject('noop', 'no promotion to roll back');
  const why = reason ? `: ${reason}` : '';
  const shadows = pr.previous.shadows.map((s) =>
    s.name === pr.shadow
      ? { ...s, state: 'rolled_back' as const, ...(s.rolloutState ? { rolloutState: { ...s.rolloutState, status: 'rolled_back' as const, reason: `promotion rolled back by ${actor}${why}` } } : {}) }
      : s,
  );
  const next: ShadowProfile = { ...p, itemVersion: pr.previous.itemVersion, original: pr.previous.original, shadows, promotion: null };
  if (pr.previous.controlArtifact) next.controlArtifact = pr.previous.controlArtifact;
  else delete next.controlArtifact;
  return checked(next, [{ shadow: pr.shadow, kind: 'promotion_rollback', rule: null, automated: false, step: null, percentage: null, reason: `${actor} rolled back the promotion of ${pr.shadow}: item version ${pr.previous.itemVersion} is the original again, ${pr.shadow} stays rolled back${why}`, evidence: { fromItemVersion: pr.toItemVersion, toItemVersion: pr.previous.itemVersion } }]);
}

/**
 * Pure core of the profile writer: (current profile, command) → next profile or a rejection.
 *
 * Commands for one item are applied in order by exactly one writer (the shadow.commands topic
 * is keyed by itemId), which is what makes `If-Match` hold across several API processes: the
 * version check happens here, not in the API. Every accepted command bumps profileVersion by 1.
 * A command whose id is already in `recentCommands` was applied before a crash and is answered
 * as accepted without applying it again (idempotent replay).
 */
import type { ArtifactRef, ShadowProfile, ShadowSpec } from '../domain/types.ts';
import type { FieldIssue } from '../errors.ts';
import { compileProfile } from '../traffic-split/traffic-split.ts';
import { PenumbraError } from '../errors.ts';
import type { BanditPlan } from '../bandit/plan.ts';
import { applyCellOverride, applySegmentReweight, type CellOverridePayload, type SegmentReweightPayload } from '../segment-allocation/decide.ts';
import {
  alertPlans, applyBanditControl, applyPromote, applyPromotionRollback, applyReweightCommand, applyRolloutControl, applyRolloutDecision, applyShadowState,
  pausePlansForRollback, planFitIssues, reconcileBandit, reconcilePlans,
  type DecisionOut, type PromotePayload, type ReweightPayload, type RolloutAction, type RolloutDecisionPayload, type Transition,
} from '../rollout/transitions.ts';

export type CommandKind =
  | 'put_config' | 'rollback' | 'activate' | 'new_version' | 'schedule_tick' | 'alert_action'
  // Rollout plans, bandits, per-shadow state and promotion (pipeline/rollout/transitions.ts).
  | 'rollout_decision' | 'rollout_control' | 'shadow_rollback' | 'shadow_activate' | 'reweight' | 'bandit_control' | 'promote' | 'promotion_rollback';

export interface Command {
  commandId: string;
  itemId: string;
  kind: CommandKind;
  ifMatch: number | null;
  payload: unknown;
  actor: string;
  role: string;
  reason: string | null;
  at: number;
}

/** put_config payload: the editable part of a profile (shadows with artifacts already built). */
export interface PutConfigPayload {
  shadows: ShadowSpec[];
  state?: 'active' | 'rolled_back';
  holdout?: number;
  guardrail?: boolean;
  /** Legacy timer ramp: becomes the named shadow's rollout plan (pipeline/rollout). */
  schedule?: { shadow: string; steps: { percentage: number; holdSeconds: number }[] } | null;
  /** Bandit among the shadows: undefined keeps the current one, null removes it. */
  bandit?: BanditPlan | null;
  /** A control artifact built for this change (a control was switched on); absent keeps the current one. */
  controlArtifact?: ArtifactRef;
}

/** new_version payload: an ingest produced artifacts for a (new) item version. */
export interface NewVersionPayload {
  itemVersion: string;
  original: { sha256: string; size: number };
  shadows: ShadowSpec[];
  /** The control arm's archive for itemVersion; absent when no shadow has a control cohort. */
  controlArtifact?: ArtifactRef;
}

/** alert_action payload: a guardrail rollback, or pausing/resuming the item's running rollout plans (the action names predate plans). */
export interface AlertActionPayload {
  action: 'rollback' | 'pause_schedule' | 'resume_schedule';
  alertId: string;
}

export type CommandResult =
  | { ok: true; profile: ShadowProfile; replay: boolean; changed: boolean; decisions?: DecisionOut[] }
  | { ok: false; errorCode: string; detail: string; issues: FieldIssue[]; current: ShadowProfile | null };

const RECENT = 32;

function reject(errorCode: string, detail: string, current: ShadowProfile | null, issues: FieldIssue[] = []): CommandResult {
  return { ok: false, errorCode, detail, issues, current };
}

function remember(list: string[] | undefined, id: string): string[] {
  const out = [...(list ?? []), id];
  return out.length > RECENT ? out.slice(out.length - RECENT) : out;
}

/** Validate the traffic layout of a candidate profile by compiling it (throws ValidationError). */
function trafficIssues(p: ShadowProfile): FieldIssue[] {
  try {
    compileProfile(p);
    return [];
  } catch (err) {
    if (err instanceof PenumbraError) return err.issues.length ? err.issues : [{ path: 'shadows', message: err.message }];
    return [{ path: 'shadows', message: (err as Error).message }];
  }
}

export function applyCommand(current: ShadowProfile | null, cmd: Command, now: number): CommandResult {
  if (current?.recentCommands?.includes(cmd.commandId)) {
    return { ok: true, profile: current, replay: true, changed: false };
  }
  if (cmd.ifMatch !== null && (current?.profileVersion ?? 0) !== cmd.ifMatch) {
    return reject(
      'conflict',
      `profile of ${cmd.itemId} is at version ${current?.profileVersion ?? 0}, not ${cmd.ifMatch}` +
        (current ? ` (changed by ${current.updatedBy} at ${new Date(current.updatedAt).toISOString()})` : ''),
      current,
    );
  }
  const base = (p: ShadowProfile): ShadowProfile => ({
    ...p,
    profileVersion: (current?.profileVersion ?? 0) + 1,
    recentCommands: remember(current?.recentCommands, cmd.commandId),
    updatedBy: cmd.actor,
    updatedAt: now,
  });
  const fromTransition = (t: Transition): CommandResult =>
    t.ok ? { ok: true, profile: base(t.profile), replay: false, changed: t.changed, decisions: t.decisions } : reject(t.errorCode, t.detail, current, t.issues);

  switch (cmd.kind) {
    case 'new_version': {
      const pl = cmd.payload as NewVersionPayload;
      const plans = reconcilePlans(current, pl.shadows, now);
      const next = base({
        itemId: cmd.itemId,
        profileVersion: 0,
        state: current?.state ?? 'active',
        seed: current?.seed ?? cmd.itemId,
        holdout: current?.holdout ?? 0,
        itemVersion: pl.itemVersion,
        original: pl.original,
        ...(pl.controlArtifact ? { controlArtifact: pl.controlArtifact } : {}),
        shadows: plans.shadows,
        schedule: null,
        // A bandit whose arms the new version no longer has ends with it.
        ...(current?.bandit && current.bandit.arms.every((a) => plans.shadows.some((s) => s.name === a))
          ? { bandit: current.bandit, banditState: current.banditState ?? null }
          : { bandit: null, banditState: null }),
        promotion: current?.promotion ?? null,
        guardrail: current?.guardrail ?? false,
        updatedBy: cmd.actor,
        updatedAt: now,
      });
      const issues = [...plans.issues, ...trafficIssues(next)];
      if (issues.length) return reject('validation', 'shadow configuration is invalid', current, issues);
      const fit = planFitIssues(next);
      if (fit.length) return reject('validation', 'a rollout plan does not fit the bucket layout', current, fit);
      return { ok: true, profile: next, replay: false, changed: true, decisions: plans.decisions };
    }
    case 'put_config': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile; ingest it first`, null);
      const pl = cmd.payload as PutConfigPayload;
      const plans = reconcilePlans(current, pl.shadows, now, pl.schedule);
      const bandit = reconcileBandit(current, pl.bandit, now);
      if (bandit.bandit && bandit.bandit.arms.some((a) => !plans.shadows.some((s) => s.name === a))) {
        return reject('validation', 'the bandit names a shadow that is not configured', current, [{ path: 'bandit/arms', message: 'every arm must be a configured shadow' }]);
      }
      const next = base({
        ...current,
        shadows: plans.shadows,
        state: pl.state ?? current.state,
        holdout: pl.holdout ?? current.holdout,
        guardrail: pl.guardrail ?? current.guardrail ?? false,
        ...(pl.controlArtifact ? { controlArtifact: pl.controlArtifact } : {}),
        schedule: null,
        bandit: bandit.bandit,
        banditState: bandit.state,
      });
      const issues = [...plans.issues, ...trafficIssues(next)];
      if (issues.length) return reject('validation', 'shadow configuration is invalid', current, issues);
      const fit = planFitIssues(next);
      if (fit.length) return reject('validation', 'a rollout plan does not fit the bucket layout', current, fit);
      return { ok: true, profile: next, replay: false, changed: true, decisions: [...plans.decisions, ...bandit.decisions] };
    }
    case 'rollback': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return { ok: true, profile: base({ ...pausePlansForRollback(current), state: 'rolled_back' }), replay: false, changed: current.state !== 'rolled_back' };
    }
    case 'activate': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return { ok: true, profile: base({ ...current, state: 'active' }), replay: false, changed: current.state !== 'active' };
    }
    case 'schedule_tick':
      // Retired: schedules run as rollout plans; a tick still queued from an older version is a no-op.
      return reject('noop', 'schedule_tick is retired: schedules run as rollout plans (pipeline/rollout)', current);
    case 'alert_action': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      const pl = cmd.payload as AlertActionPayload;
      if (pl.action === 'rollback') {
        if (current.state === 'rolled_back') return reject('noop', 'already rolled back', current);
        return { ok: true, profile: base({ ...pausePlansForRollback(current), state: 'rolled_back' }), replay: false, changed: true };
      }
      return fromTransition(alertPlans(current, pl.action, cmd.reason ?? `alert ${pl.alertId}`, now));
    }
    case 'rollout_decision':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return fromTransition(applyRolloutDecision(current, cmd.payload as RolloutDecisionPayload, now));
    case 'rollout_control':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return fromTransition(applyRolloutControl(current, cmd.payload as { shadow: string; action: RolloutAction; evidence?: Record<string, unknown> | null }, cmd.actor, cmd.reason, now));
    case 'shadow_rollback':
    case 'shadow_activate':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return fromTransition(applyShadowState(current, cmd.payload as { shadow: string }, cmd.kind === 'shadow_rollback' ? 'rolled_back' : 'active', cmd.actor, cmd.reason));
    case 'reweight':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      // Per-segment allocation (pipeline/segment-allocation) reweights through the same command.
      if ((cmd.payload as { scope?: string }).scope === 'segments') return fromTransition(applySegmentReweight(current, cmd.payload as SegmentReweightPayload, now));
      return fromTransition(applyReweightCommand(current, cmd.payload as ReweightPayload, now));
    case 'bandit_control':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      if ((cmd.payload as { action?: string }).action === 'cell_override') return fromTransition(applyCellOverride(current, cmd.payload as CellOverridePayload, cmd.actor, cmd.reason, now));
      return fromTransition(applyBanditControl(current, cmd.payload as { action: 'pause' | 'resume' | 'stop' | 'restart' }, cmd.actor, cmd.reason, now));
    case 'promote':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return fromTransition(applyPromote(current, cmd.payload as PromotePayload, cmd.actor, now));
    case 'promotion_rollback':
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return fromTransition(applyPromotionRollback(current, cmd.actor, cmd.reason));
  }
}

/**
 * Pure core of the profile writer: (current profile, command) → next profile or a rejection.
 *
 * Commands for one item are applied in order by exactly one writer (the shadow.commands topic
 * is keyed by itemId), which is what makes `If-Match` hold across several API processes: the
 * version check happens here, not in the API. Every accepted command bumps profileVersion by 1.
 * A command whose id is already in `recentCommands` was applied before a crash and is answered
 * as accepted without applying it again (idempotent replay).
 */
import type { ArtifactRef, ShadowProfile, ShadowSpec, RolloutSchedule } from '../domain/types.ts';
import type { FieldIssue } from '../errors.ts';
import { compileProfile } from '../traffic-split/traffic-split.ts';
import { PenumbraError } from '../errors.ts';

export type CommandKind = 'put_config' | 'rollback' | 'activate' | 'new_version' | 'schedule_tick' | 'alert_action';

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
  schedule?: { shadow: string; steps: { percentage: number; holdSeconds: number }[] } | null;
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

/** alert_action payload: a guardrail rollback or a schedule pause/resume from the alert processor. */
export interface AlertActionPayload {
  action: 'rollback' | 'pause_schedule' | 'resume_schedule';
  alertId: string;
}

export type CommandResult =
  | { ok: true; profile: ShadowProfile; replay: boolean; changed: boolean }
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

function startSchedule(s: PutConfigPayload['schedule'], now: number): RolloutSchedule | null {
  if (!s) return null;
  return { shadow: s.shadow, steps: s.steps.map((x) => ({ ...x })), currentStep: 0, status: 'running', stepStartedAt: now };
}

function applySchedule(shadows: ShadowSpec[], schedule: RolloutSchedule | null | undefined): ShadowSpec[] {
  if (!schedule || schedule.currentStep < 0) return shadows;
  const step = schedule.steps[schedule.currentStep];
  if (!step) return shadows;
  return shadows.map((s) => (s.name === schedule.shadow ? { ...s, traffic: { ...s.traffic, percentage: step.percentage } } : s));
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

  switch (cmd.kind) {
    case 'new_version': {
      const pl = cmd.payload as NewVersionPayload;
      const next = base({
        itemId: cmd.itemId,
        profileVersion: 0,
        state: current?.state ?? 'active',
        seed: current?.seed ?? cmd.itemId,
        holdout: current?.holdout ?? 0,
        itemVersion: pl.itemVersion,
        original: pl.original,
        ...(pl.controlArtifact ? { controlArtifact: pl.controlArtifact } : {}),
        shadows: pl.shadows,
        schedule: current?.schedule ?? null,
        guardrail: current?.guardrail ?? false,
        updatedBy: cmd.actor,
        updatedAt: now,
      });
      const issues = trafficIssues(next);
      if (issues.length) return reject('validation', 'shadow configuration is invalid', current, issues);
      return { ok: true, profile: next, replay: false, changed: true };
    }
    case 'put_config': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile; ingest it first`, null);
      const pl = cmd.payload as PutConfigPayload;
      let schedule = pl.schedule === undefined ? current.schedule ?? null : startSchedule(pl.schedule, now);
      if (schedule && !pl.shadows.some((s) => s.name === schedule!.shadow)) {
        return reject('validation', `schedule names shadow ${schedule.shadow}, which is not configured`, current, [{ path: 'schedule/shadow', message: 'unknown shadow' }]);
      }
      const next = base({
        ...current,
        ...(pl.controlArtifact ? { controlArtifact: pl.controlArtifact } : {}),
        shadows: applySchedule(pl.shadows, schedule),
        state: pl.state ?? current.state,
        holdout: pl.holdout ?? current.holdout,
        guardrail: pl.guardrail ?? current.guardrail ?? false,
        schedule,
      });
      const issues = trafficIssues(next);
      if (issues.length) return reject('validation', 'shadow configuration is invalid', current, issues);
      schedule = next.schedule ?? null;
      return { ok: true, profile: next, replay: false, changed: true };
    }
    case 'rollback': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      const schedule = current.schedule && current.schedule.status === 'running' ? { ...current.schedule, status: 'paused' as const, pausedReason: 'rolled back' } : current.schedule ?? null;
      return { ok: true, profile: base({ ...current, state: 'rolled_back', schedule }), replay: false, changed: current.state !== 'rolled_back' };
    }
    case 'activate': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      return { ok: true, profile: base({ ...current, state: 'active' }), replay: false, changed: current.state !== 'active' };
    }
    case 'schedule_tick': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      const s = current.schedule;
      if (!s || s.status !== 'running' || current.state !== 'active') return reject('noop', 'no running schedule', current);
      const step = s.steps[s.currentStep];
      if (step && now - s.stepStartedAt < step.holdSeconds * 1000) return reject('noop', 'current step still holding', current);
      const nextIdx = s.currentStep + 1;
      if (nextIdx >= s.steps.length) {
        return { ok: true, profile: base({ ...current, schedule: { ...s, status: 'done' } }), replay: false, changed: true };
      }
      const schedule: RolloutSchedule = { ...s, currentStep: nextIdx, stepStartedAt: now };
      const next = base({ ...current, schedule, shadows: applySchedule(current.shadows, schedule) });
      const issues = trafficIssues(next);
      if (issues.length) return reject('validation', 'schedule step is invalid', current, issues);
      return { ok: true, profile: next, replay: false, changed: true };
    }
    case 'alert_action': {
      if (!current) return reject('not-found', `item ${cmd.itemId} has no profile`, null);
      const pl = cmd.payload as AlertActionPayload;
      if (pl.action === 'rollback') {
        if (current.state === 'rolled_back') return reject('noop', 'already rolled back', current);
        return { ok: true, profile: base({ ...current, state: 'rolled_back' }), replay: false, changed: true };
      }
      const s = current.schedule;
      if (!s) return reject('noop', 'no schedule', current);
      if (pl.action === 'pause_schedule' && s.status === 'running') {
        return { ok: true, profile: base({ ...current, schedule: { ...s, status: 'paused', pausedReason: cmd.reason ?? `alert ${pl.alertId}` } }), replay: false, changed: true };
      }
      if (pl.action === 'resume_schedule' && s.status === 'paused' && current.state === 'active') {
        // Resuming restarts the hold of the current step: the share held while paused does not count.
        return { ok: true, profile: base({ ...current, schedule: { ...s, status: 'running', pausedReason: undefined, stepStartedAt: now } }), replay: false, changed: true };
      }
      return reject('noop', `schedule is ${s.status}`, current);
    }
  }
}

/**
 * Rollout schedule advancer. Every `intervalMs` (1 s) it looks at the in-memory profiles and, for
 * each active item whose running schedule's current step has held long enough, submits a
 * `schedule_tick` command (actor `system:schedule`) to the profile writer, which re-checks the
 * hold, applies the next step's percentage (or marks the schedule done) and audits it.
 *
 * Runs only in the process that runs the processors. Several such processes are harmless: the
 * writer applies commands per item in order, and a tick whose hold has not elapsed (because
 * another process's tick just advanced the step) is rejected as `noop`. A paused schedule (an
 * alert fired, or a rollback) is not ticked; the alert evaluator resumes it when all clear.
 */
import type { ShadowProfile } from '../domain/types.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import { PenumbraError } from '../errors.ts';

export interface DueTick {
  itemId: string;
  profileVersion: number;
  step: number;
  reason: string;
}

/** Items whose schedule should advance at `now` (pure). */
export function dueScheduleTicks(profiles: readonly ShadowProfile[], now: number): DueTick[] {
  const out: DueTick[] = [];
  for (const p of profiles) {
    const s = p.schedule;
    if (!s || s.status !== 'running' || p.state !== 'active') continue;
    const step = s.steps[s.currentStep];
    if (!step) continue;
    if (now - s.stepStartedAt < step.holdSeconds * 1000) continue;
    const last = s.currentStep + 1 >= s.steps.length;
    out.push({
      itemId: p.itemId,
      profileVersion: p.profileVersion,
      step: s.currentStep,
      reason: last
        ? `schedule of ${s.shadow}: last step (${step.percentage}%) held ${step.holdSeconds}s; schedule done`
        : `schedule of ${s.shadow}: step ${s.currentStep + 1} (${step.percentage}%) held ${step.holdSeconds}s; next ${s.steps[s.currentStep + 1].percentage}%`,
    });
  }
  return out;
}

export interface ScheduleAdvancer {
  /** Runs one pass now (tests); resolves when its submits settled. */
  tick(): Promise<void>;
  stats: { ticks: number; submitted: number; advanced: number; noops: number; failed: number };
  stop(): void;
}

export function startScheduleAdvancer(deps: {
  store: ProfileStore;
  profiles: ProfileService;
  intervalMs?: number;
  now?: () => number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}): ScheduleAdvancer {
  const now = deps.now ?? Date.now;
  const inFlight = new Set<string>();
  const stats = { ticks: 0, submitted: 0, advanced: 0, noops: 0, failed: 0 };
  const tick = async (): Promise<void> => {
    stats.ticks++;
    const due = dueScheduleTicks(deps.store.all(), now()).filter((d) => !inFlight.has(d.itemId));
    await Promise.all(
      due.map(async (d) => {
        inFlight.add(d.itemId);
        stats.submitted++;
        try {
          await deps.profiles.submit({ itemId: d.itemId, kind: 'schedule_tick', ifMatch: null, payload: {}, actor: 'system:schedule', role: 'system', reason: d.reason });
          stats.advanced++;
        } catch (err) {
          if (err instanceof PenumbraError && err.code === 'noop') stats.noops++;
          else {
            stats.failed++;
            deps.log?.('schedule tick failed', { itemId: d.itemId, err: String(err) });
          }
        } finally {
          inFlight.delete(d.itemId);
        }
      }),
    );
  };
  const timer = setInterval(() => void tick(), deps.intervalMs ?? 1000);
  timer.unref?.();
  return { tick, stats, stop: () => clearInterval(timer) };
}

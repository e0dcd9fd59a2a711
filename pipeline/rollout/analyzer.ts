/**
 * The rollout analyzer: runs the decision functions of every running rollout plan and bandit and
 * submits their decisions as commands on the item's command topic.
 *
 * Reads: the profiles (ProfileStore), the per-arm aggregates (ArmAggregates, fed by the metrics
 * processor's event tap in the same process) and the SRM check of the item's exposures.
 * Writes: `rollout_decision` (actor `system:rollout`) and `reweight` (actor `system:bandit`)
 * commands through the ProfileService — the profile writer re-checks each against the current
 * state (a stale decision is a no-op), applies it, audits it with its evidence and publishes it
 * on penumbra.rollout.decisions. A completed plan with `onComplete: promote` then starts a
 * promotion through the ingest path (`promote`).
 *
 * Runs every `intervalMs` (default 1 s) in the process that runs the processors. Safety checks
 * (guardrail regressions, SRM) are therefore judged within about a second of the evidence
 * arriving; analyses and reweightings happen at their periods. One command per item in flight:
 * the next evaluation of that item waits for the outcome. Several analyzers (several processors
 * processes) are harmless: the writer refuses the second of two identical decisions as stale.
 */
import type { ShadowProfile } from '../domain/types.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import { PenumbraError } from '../errors.ts';
import type { ArmAggregates } from './arm-aggregates.ts';
import { armStatsOf, buildEvidence, compareMetric, tuningFor, type SequentialTests } from './build-evidence.ts';
import { decideRollout, type DecisionRecord } from './decide.ts';
import type { SrmEvidence } from './evidence.ts';
import { armsOf, CONTROL_ARM } from '../bandit/plan.ts';
import { decideReweight } from '../bandit/reweight.ts';

export const ROLLOUT_ACTOR = 'system:rollout';
export const BANDIT_ACTOR = 'system:bandit';

export interface AnalyzerDeps {
  store: ProfileStore;
  profiles: Pick<ProfileService, 'submit'>;
  aggregates: ArmAggregates;
  tests: SequentialTests;
  /** SRM of the item's exposures against its split (null when it does not apply). */
  srm: (p: ShadowProfile) => SrmEvidence | null;
  /**
   * Promote a shadow (a plan's onComplete) through the one promotion path (pipeline/promote),
   * with the completing decision as its evidence; resolves when the promotion was accepted.
   */
  promote?: (itemId: string, shadow: string, reason: string, evidence: DecisionRecord) => Promise<void>;
  intervalMs?: number;
  now?: () => number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /**
   * Whether this process's metrics member owns the item (issue 15 item 4: with N members only the
   * owner's aggregates see the item's events). Items it does not own are left to the owner's
   * analyzer and their arms unwatched here. Default: every item (one member).
   */
  owns?: (itemId: string) => boolean;
}

export interface AnalyzerStats {
  ticks: number;
  evaluations: number;
  submitted: number;
  accepted: number;
  stale: number;
  failed: number;
  promotions: number;
  /** Evaluations left to the member owning the item (its by-item partition is elsewhere). */
  notOwned: number;
  byKind: Record<string, number>;
}

export interface Analyzer {
  /** One pass now; resolves when its commands settled (tests). */
  tick(): Promise<void>;
  stats: AnalyzerStats;
  stop(): void;
}

/** The arm key of the bandit's control: it is served as the control cohort of its first arm. */
export function banditControlArm(arms: readonly string[]): string {
  return `control:${arms[0]}`;
}

export function startAnalyzer(deps: AnalyzerDeps): Analyzer {
  const now = deps.now ?? Date.now;
  const stats: AnalyzerStats = { ticks: 0, evaluations: 0, submitted: 0, accepted: 0, stale: 0, failed: 0, promotions: 0, notOwned: 0, byKind: {} };
  const inFlight = new Set<string>();
  const agg = deps.aggregates;

  async function submit(itemId: string, kind: 'rollout_decision' | 'reweight', payload: unknown, actor: string, reason: string, label: string): Promise<boolean> {
    stats.submitted++;
    try {
      await deps.profiles.submit({ itemId, kind, ifMatch: null, payload, actor, role: 'system', reason });
      stats.accepted++;
      stats.byKind[label] = (stats.byKind[label] ?? 0) + 1;
      return true;
    } catch (err) {
      if (err instanceof PenumbraError && err.code === 'noop') stats.stale++;
      else {
        stats.failed++;
        deps.log?.('rollout decision failed', { itemId, kind, err: String(err) });
      }
      return false;
    }
  }

  /** The evaluation of one item: at most one command, chosen in order of urgency. */
  async function evaluate(p: ShadowProfile, t: number): Promise<void> {
    stats.evaluations++;
    const watched = new Set<string>();
    const srm = p.state === 'active' ? deps.srm(p) : null;
    const pending: { run: () => Promise<void>; urgent: boolean }[] = [];

    for (const s of p.shadows) {
      const st = s.rolloutState;
      if (!s.rollout || !st || (st.status !== 'running' && st.status !== 'paused')) continue;
      const baseline = s.control !== false;
      const shadowArm = s.name;
      const controlArm = `control:${s.name}`;
      agg.watch(p.itemId, shadowArm, st.stepStartedAt);
      watched.add(shadowArm);
      if (baseline) {
        agg.watch(p.itemId, controlArm, st.stepStartedAt);
        watched.add(controlArm);
      }
      if (p.state !== 'active') continue;
      const metrics = s.rollout.guardrails.map((g) => g.metric);
      const evidence = buildEvidence(agg.totals(p.itemId, shadowArm), baseline ? agg.totals(p.itemId, controlArm) : undefined, metrics, deps.tests, srm, tuningFor(s.rollout.minSessionsPerArm));
      const d = decideRollout({ shadow: s.name, plan: s.rollout, state: st, evidence, baseline, now: t });
      if (d.kind === 'none') continue;
      const rec: DecisionRecord = d.record;
      const expect = { step: st.step, stepStartedAt: st.stepStartedAt, status: st.status };
      pending.push({
        urgent: rec.kind === 'rollback',
        run: async () => {
          const ok = await submit(p.itemId, 'rollout_decision', { shadow: s.name, decision: rec, expect }, ROLLOUT_ACTOR, rec.reason, rec.kind);
          if (ok && rec.kind === 'complete' && rec.onComplete === 'promote' && deps.promote) {
            try {
              await deps.promote(p.itemId, s.name, `plan of ${s.name} completed: ${rec.reason}`, rec);
              stats.promotions++;
            } catch (err) {
              stats.failed++;
              deps.log?.('promotion after a completed plan failed', { itemId: p.itemId, shadow: s.name, err: String(err) });
            }
          }
        },
      });
    }

    const b = p.bandit;
    const bs = p.banditState;
    if (b && bs && bs.status !== 'stopped') {
      const controlKey = banditControlArm(b.arms);
      const key = (arm: string) => (arm === CONTROL_ARM ? controlKey : arm);
      for (const arm of armsOf(b)) {
        agg.watch(p.itemId, key(arm), bs.startedAt);
        watched.add(key(arm));
      }
      if (b.control) {
        agg.watch(p.itemId, controlKey, bs.startedAt);
        watched.add(controlKey);
      }
      // A bandit with per-segment allocation is reweighted and guarded per cell (the rest of the
      // users being a cell too) by pipeline/segment-allocation; its global weights stand aside.
      if (p.state === 'active' && !b.segments) {
        const armStats = armsOf(b).map((arm) => armStatsOf(arm, b.metric, agg.totals(p.itemId, key(arm))));
        const control = b.control ? agg.totals(p.itemId, controlKey) : undefined;
        const comparisons: Record<string, Record<string, ReturnType<typeof compareMetric>>> = {};
        if (control) {
          for (const arm of b.arms) {
            const at = agg.totals(p.itemId, arm);
            if (at) comparisons[arm] = Object.fromEntries(b.guardrails.map((g) => [g.metric, compareMetric(g.metric, at, control, deps.tests, tuningFor(b.burnInSessions))]));
          }
        }
        const d = decideReweight({ itemId: p.itemId, plan: b, state: bs, stats: armStats, comparisons, now: t });
        if (d.kind === 'reweight') {
          const rec = d.record;
          pending.push({
            urgent: rec.drops.length > 0,
            run: async () => {
              await submit(p.itemId, 'reweight', { record: rec, expect: { run: bs.startedAt, epoch: bs.epoch } }, BANDIT_ACTOR, rec.reason, rec.phase === 'stopped' ? 'bandit_stop' : 'reweight');
            },
          });
        }
      }
    }

    // Arms nobody watches any more (plan ended, bandit removed) free their sessions.
    for (const w of agg.watched(p.itemId)) if (!watched.has(w.arm)) agg.unwatch(p.itemId, w.arm);

    // One command per item and pass: a rollback first; the rest waits for the next pass (the
    // profile it was decided on changes with the first command anyway).
    pending.sort((x, y) => Number(y.urgent) - Number(x.urgent));
    if (pending.length > 0) await pending[0].run();
  }

  const tick = async (): Promise<void> => {
    stats.ticks++;
    const t = now();
    const work: Promise<void>[] = [];
    for (const p of deps.store.all()) {
      if (inFlight.has(p.itemId)) continue;
      const hasPlan = p.shadows.some((s) => s.rollout && s.rolloutState) || (p.bandit && p.banditState);
      if (!hasPlan || (deps.owns && !deps.owns(p.itemId))) {
        for (const w of agg.watched(p.itemId)) agg.unwatch(p.itemId, w.arm);
        if (hasPlan) stats.notOwned++;
        continue;
      }
      inFlight.add(p.itemId);
      work.push(
        evaluate(p, t)
          .catch((err) => {
            stats.failed++;
            deps.log?.('rollout evaluation failed', { itemId: p.itemId, err: String(err) });
          })
          .finally(() => inFlight.delete(p.itemId)),
      );
    }
    await Promise.all(work);
  };
  const timer = setInterval(() => void tick(), deps.intervalMs ?? 1000);
  timer.unref?.();
  return { tick, stats, stop: () => clearInterval(timer) };
}

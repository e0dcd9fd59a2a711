/**
 * Forecast holds (issue #13, item 4), wired: the pure forecast of pipeline/guardrail-forecast,
 * fed every second with the rollout analyzer's own arm totals since each step began
 * (pipeline/rollout ArmAggregates), for every running or paused rollout plan with guardrails and
 * a control cohort; a forecast at or above PENUMBRA_FORECAST_HOLD_PERCENT (default 90) pauses
 * the plan through the item's command topic (rollout_control, actor `system:forecast`), audited
 * with the forecast, its inputs, the projected sizes and the probability. The guardrail keeps
 * protecting a paused plan (pipeline/rollout rule 2), so a bad version is still rolled back by
 * its own test; the time from the hold to that rollback is the hold's lead time.
 *
 * One hold per step run: a released hold (POST /api/v1/items/{itemId}/risk/release, the risk
 * hold's override route, which releases the newest active hold of either kind) is not repeated
 * at the same step — also across a restart: the step runs already held are read back from the
 * rollout decisions (pipeline/app/early-holds.ts). Runs only where the processors run (the
 * aggregates live there). The forecasts and the holds' outcomes (lead time) are in memory; the
 * holds themselves are durable (decisions + the profile's paused state), listed and released from
 * every process through pipeline/app/early-holds.ts.
 */
import type { Feature, FeatureContext } from './features.ts';
import type { ShadowProfile } from '../domain/types.ts';
import { rolloutHandles } from '../rollout/feature.ts';
import { tuningFor } from '../rollout/build-evidence.ts';
import { forecastHoldReason, type GuardrailForecast } from '../guardrail-forecast/forecast.ts';
import { forecastStep, holdOutcome, type StepForecast } from '../guardrail-forecast/step.ts';
import { earlyHolds } from './early-holds.ts';
import { heldBefore } from '../early-holds/holds.ts';

export const FORECAST_ACTOR = 'system:forecast';
/** Holds remembered per item (the audit log keeps them all). */
const MAX_HOLDS_PER_ITEM = 50;

/** A forecast hold and what became of it. */
export interface ForecastHold {
  itemId: string;
  shadow: string;
  step: number;
  stepStartedAt: number;
  /** The guardrail whose forecast held the step, and the whole step's forecast (all guardrails). */
  guardrail: GuardrailForecast;
  forecast: StepForecast;
  probability: number;
  holdAt: number;
  heldAt: number;
  reason: string;
  /** Profile version of the pause (null until the writer accepted it). */
  profileVersion: number | null;
  releasedBy: string | null;
  /** How the step ended: rolled back (the guardrail or an operator), advanced, completed, or the shadow left the profile. */
  outcome: 'rolled_back' | 'advanced' | 'completed' | 'removed' | null;
  decidedAt: number | null;
  /** Milliseconds from the hold to the rollback (rolled_back only). */
  leadMs: number | null;
  /** The rollback's reason (the rule's sentence), when rolled back. */
  outcomeReason: string | null;
}

export interface ForecastHandle {
  holdAt: number;
  /** The newest forecast of each planned shadow of the item. */
  forecasts(itemId: string): StepForecast[];
  holds(itemId?: string): ForecastHold[];
  /** Mark this process's hold of that step run released (the release route, any process, resumed it). */
  released(itemId: string, shadow: string, stepStartedAt: number, by: string): void;
}

export const forecastHandles = new WeakMap<FeatureContext, ForecastHandle>();

export interface ForecastOptions {
  tickMs?: number;
}

export function forecastFeature(opts: ForecastOptions = {}): Feature {
  return async (ctx) => {
    const holdAt = ctx.cfg.risk.forecastHoldPercent / 100;
    const current = new Map<string, Map<string, StepForecast>>();
    const holds = new Map<string, ForecastHold>();
    const keyOf = (itemId: string, shadow: string, stepStartedAt: number) => `${itemId}\u0000${shadow}\u0000${stepStartedAt}`;
    const inFlight = new Set<string>();
    const stops: (() => void)[] = [];

    const tick = (): void => {
      const agg = rolloutHandles.get(ctx)?.aggregates;
      if (!agg) return;
      const now = Date.now();
      for (const p of ctx.profileStore.all()) {
        const mine = new Map<string, StepForecast>();
        for (const s of p.shadows) {
          const st = s.rolloutState;
          if (p.state !== 'active' || !s.rollout || !st || (st.status !== 'running' && st.status !== 'paused') || s.control === false || s.rollout.guardrails.length === 0) continue;
          // The analyzer's totals since THIS step began (it re-watches at each step change).
          const since = (arm: string) => agg.watched(p.itemId).find((w) => w.arm === arm)?.since;
          if (since(s.name) !== st.stepStartedAt || since(`control:${s.name}`) !== st.stepStartedAt) continue;
          const f = forecastStep({ shadow: s.name, plan: s.rollout, state: st, shadowTotals: agg.totals(p.itemId, s.name), controlTotals: agg.totals(p.itemId, `control:${s.name}`), tuning: tuningFor(s.rollout.minSessionsPerArm), now, holdAt });
          mine.set(s.name, f);
          const key = keyOf(p.itemId, s.name, st.stepStartedAt);
          if (!f.hold || holds.has(key) || inFlight.has(p.itemId)) continue;
          // Held before this process started (and perhaps released since): not again at this step.
          if (heldBefore(earlyHolds(ctx, p.itemId), 'forecast', `${s.name}@${st.stepStartedAt}`)) continue;
          const reason = forecastHoldReason(s.name, f.hold, holdAt, `POST /api/v1/items/${p.itemId}/risk/release`);
          const hold: ForecastHold = { itemId: p.itemId, shadow: s.name, step: st.step, stepStartedAt: st.stepStartedAt, guardrail: f.hold, forecast: f, probability: f.hold.probability!, holdAt, heldAt: now, reason, profileVersion: null, releasedBy: null, outcome: null, decidedAt: null, leadMs: null, outcomeReason: null };
          holds.set(key, hold);
          inFlight.add(p.itemId);
          // Evidence: the forecast of every guardrail (inputs, projected sizes, probabilities),
          // the threshold and the method, so a reviewer can recompute it.
          const evidence = { kind: 'guardrail_forecast', method: 'always-valid interval projected to the analysis at the arms\' arrival rates (pipeline/guardrail-forecast)', holdAt, shadow: s.name, step: st.step, stepStartedAt: st.stepStartedAt, analysisDueAt: f.analysisDueAt, guardrail: f.hold, guardrails: f.guardrails };
          ctx.profiles.submit({ itemId: p.itemId, kind: 'rollout_control', ifMatch: null, payload: { shadow: s.name, action: 'pause', evidence }, actor: FORECAST_ACTOR, role: 'system', reason }).then(
            (after) => {
              hold.profileVersion = after.profileVersion;
              ctx.log.info('forecast hold: rollout step held early', { itemId: p.itemId, shadow: s.name, probability: hold.probability, profileVersion: after.profileVersion });
            },
            // Refused (the plan changed meanwhile): forget it, the next tick decides again.
            (err) => {
              holds.delete(key);
              ctx.log.warn('forecast hold not applied', { itemId: p.itemId, shadow: s.name, err: String(err) });
            },
          ).finally(() => inFlight.delete(p.itemId));
        }
        if (mine.size) current.set(p.itemId, mine);
        else current.delete(p.itemId);
      }
    };

    // Outcomes: how each held step ended, from the profile transitions (one writer, in order).
    const settle = (p: ShadowProfile): void => {
      for (const h of holds.values()) {
        if (h.itemId !== p.itemId || h.outcome !== null) continue;
        const o = holdOutcome(h, p);
        if (!o) continue;
        h.outcome = o.outcome;
        h.decidedAt = o.decidedAt;
        h.leadMs = o.leadMs;
        h.outcomeReason = o.reason;
        ctx.log.info('forecast hold outcome', { itemId: h.itemId, shadow: h.shadow, outcome: o.outcome, leadMs: o.leadMs });
      }
      // Bounded memory: keep the newest MAX_HOLDS_PER_ITEM holds of an item.
      const mine = [...holds.entries()].filter(([, h]) => h.itemId === p.itemId);
      if (mine.length > MAX_HOLDS_PER_ITEM) for (const [k] of mine.sort((x, y) => x[1].heldAt - y[1].heldAt).slice(0, mine.length - MAX_HOLDS_PER_ITEM)) holds.delete(k);
    };

    if (ctx.processors) {
      stops.push(ctx.profileStore.onChange(settle));
      const timer = setInterval(tick, opts.tickMs ?? 1000);
      timer.unref?.();
      stops.push(() => clearInterval(timer));
    }

    // A release by any process shows on this process's holds: the rollout decisions carry it.
    const copy = (h: ForecastHold): ForecastHold => {
      if (h.releasedBy !== null) return { ...h };
      const r = earlyHolds(ctx, h.itemId).find((x) => x.kind === 'forecast' && x.key === `${h.shadow}@${h.stepStartedAt}` && x.status === 'released');
      return { ...h, releasedBy: r?.releasedBy ?? null };
    };
    forecastHandles.set(ctx, {
      holdAt,
      forecasts: (itemId) => [...(current.get(itemId)?.values() ?? [])],
      holds: (itemId) => [...holds.values()].filter((h) => itemId === undefined || h.itemId === itemId).map(copy),
      released: (itemId, shadow, stepStartedAt, by) => {
        const h = holds.get(keyOf(itemId, shadow, stepStartedAt));
        if (h && h.releasedBy === null) h.releasedBy = by;
      },
    });
    return {
      async stop() {
        forecastHandles.delete(ctx);
        for (const s of stops.reverse()) s();
      },
    };
  };
}

/**
 * The rollout feature (registered in pipeline/app/features.ts after the telemetry feature):
 * rollout plans, per-shadow rollback, bandits and promotion.
 *
 * Every process: follows penumbra.rollout.decisions into the DecisionLog (the timeline; each new
 * decision is also published on the live hub as `rollout`), follows penumbra.audit into the
 * ProfileHistory (reverts), and mounts the routes (connectors/http/rollout-router.ts).
 * The process that runs the processors also: taps the metrics processor's de-duplicated events
 * into the ArmAggregates and runs the analyzer (analyzer.ts), which submits the automated
 * decisions as commands and promotes a completed plan whose onComplete is `promote`.
 *
 * Options are code (`rolloutOptions(prefix, {...})`, like `streamOptions`): tests shorten the
 * evaluation period; the limits of plans and bandits are configuration (README).
 */
import { randomUUID } from 'node:crypto';
import type { Feature, FeatureContext } from '../app/features.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import { streamHandles } from '../telemetry/feature.ts';
import { srmCheck } from '../telemetry/comparisons.ts';
import { sequentialMeanDiff, sequentialProportionDiff } from '../stats/sequential.ts';
import { createRolloutRouter } from '../../connectors/http/rollout-router.ts';
import { putShadowConfig } from '../../connectors/http/items-router.ts';
import { promote as promoteItem } from '../promote/promote.ts';
import { resolverHandles } from '../resolver/feature.ts';
import { ArmAggregates } from './arm-aggregates.ts';
import { startAnalyzer, ROLLOUT_ACTOR, type Analyzer } from './analyzer.ts';
import type { SequentialTests } from './build-evidence.ts';
import { DecisionLog, decisionView } from './decision-log.ts';
import { ProfileHistory } from './history.ts';

export interface RolloutOptions {
  /** Analyzer period, ms (default 1000). */
  tickMs?: number;
}

const byPrefix = new Map<string, RolloutOptions>();

/** Options for the Penumbra instance on topic prefix `prefix` (set before createPenumbra). */
export function rolloutOptions(prefix: string, opts: RolloutOptions): void {
  byPrefix.set(prefix, opts);
}

export interface RolloutHandle {
  decisions: DecisionLog;
  history: ProfileHistory;
  aggregates: ArmAggregates | null;
  analyzer: Analyzer | null;
}

/** Handles of running instances, by FeatureContext (tests and the benchmark inspect them). */
export const rolloutHandles = new WeakMap<FeatureContext, RolloutHandle>();

/** The statistics core's always-valid tests, as the decision functions use them. */
export const sequentialTests: SequentialTests = {
  proportionDiff: (x1, n1, x2, n2, tuning) => sequentialProportionDiff(x1, n1, x2, n2, { tuning }),
  meanDiff: (a, b, tuning) => sequentialMeanDiff(a, b, { tuning }),
};

export function rolloutFeature(defaults: RolloutOptions = {}): Feature {
  return async (ctx) => {
    const o: RolloutOptions = { ...defaults, ...(byPrefix.get(ctx.cfg.topicPrefix) ?? {}) };
    const { cfg } = ctx;
    const stops: (() => Promise<void>)[] = [];
    const stopAll = async () => {
      for (const s of stops.reverse()) await s().catch((err) => ctx.log.warn('rollout feature stop step failed', { err: String(err) }));
    };
    try {
      const decisions = new DecisionLog();
      const history = new ProfileHistory();
      const decisionsFollower: Follower = await followTopic({
        kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.rolloutDecisions, schema: 'rollout-decision', groupPrefix: ctx.groupPrefix,
        onRecord: (d) => {
          if (decisions.add(d)) ctx.hub.publish({ event: 'rollout', itemId: d.itemId, data: decisionView(d) });
        },
        onError: (err) => ctx.log.warn('rollout decision decode failed', { err: String(err) }),
      });
      stops.push(() => decisionsFollower.stop());
      const auditFollower: Follower = await followTopic({
        kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.audit, schema: 'audit-entry', groupPrefix: ctx.groupPrefix,
        onRecord: (e) => history.add(e), onError: (err) => ctx.log.warn('audit decode failed (history)', { err: String(err) }),
      });
      stops.push(() => auditFollower.stop());

      // The one promotion path (pipeline/promote): this route, the version route of
      // pipeline/version-shadows and a completed plan all end in one audited `promote` command.
      const promote = async (a: { itemId: string; shadow: string; who: { name: string; role: string }; requestId: string; reason?: string | null; evidence?: Record<string, unknown> | null }) => {
        const r = await promoteItem(ctx.ingest, { itemId: a.itemId, target: { shadow: a.shadow }, actor: a.who, requestId: a.requestId, reason: a.reason ?? null, evidence: a.evidence ?? null });
        return { profile: r.profile, from: r.from, itemVersion: r.itemVersion, fromVersion: r.fromVersion, replacements: r.replacements };
      };

      let aggregates: ArmAggregates | null = null;
      let analyzer: Analyzer | null = null;
      const stream = streamHandles.get(ctx);
      if (ctx.processors && stream?.processor && stream.assignments) {
        const agg = new ArmAggregates();
        aggregates = agg;
        const off = stream.processor.onEvent((e) => agg.add(e));
        stops.push(async () => {
          off();
        });
        const assignments = stream.assignments;
        analyzer = startAnalyzer({
          store: ctx.profileStore,
          profiles: ctx.profiles,
          aggregates: agg,
          tests: sequentialTests,
          srm: (p) => {
            const v = srmCheck(p, assignments.exposures(p.itemId, p.profileVersion).counts);
            return v ? { p: v.p, flagged: v.flagged, observed: v.observed, expected: v.expected } : null;
          },
          promote: async (itemId, shadow, reason, decision) => {
            await promote({ itemId, shadow, who: { name: ROLLOUT_ACTOR, role: 'system' }, requestId: randomUUID(), reason, evidence: { trigger: 'plan', decision } });
          },
          intervalMs: o.tickMs,
          log: ctx.log.warn,
          owns: (itemId) => stream.processor!.owns(itemId),
        });
        const a = analyzer;
        stops.push(async () => a.stop());
      }

      const router = createRolloutRouter({
        profiles: ctx.profiles, decisions, history, tokens: ctx.tokens, openapi: ctx.openapi,
        putConfig: (a) => putShadowConfig({ catalog: ctx.catalog, profiles: ctx.profiles, blobs: ctx.blobs, ingest: ctx.ingest, publishCatalog: ctx.ingest.publishCatalog }, a),
        promote,
        stickyCounts: (itemId, run) => resolverHandles.get(ctx)?.sticky.index.counts(itemId, run) ?? {},
      });

      ctx.healthChecks.push(async () => ({
        rollout: {
          status: 'ok' as const,
          decisions: decisions.applied,
          analyzer: analyzer ? { ...analyzer.stats } : null,
          armSessionsInMemory: aggregates?.sessionCount ?? null,
          events: aggregates ? { ...aggregates.counters } : null,
        },
      }));
      rolloutHandles.set(ctx, { decisions, history, aggregates, analyzer });
      return { router, stop: stopAll };
    } catch (err) {
      await stopAll();
      throw err;
    }
  };
}

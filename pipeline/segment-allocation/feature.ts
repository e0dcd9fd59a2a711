/**
 * The per-segment allocation feature (registered in pipeline/app/features.ts after the rollout
 * feature, whose decision log it reads). Every process mounts the routes
 * (connectors/http/segment-allocation-router.ts). The process that runs the processors also taps
 * the metrics processor's de-duplicated events into the CellAggregates and runs the analyzer
 * (analyzer.ts) for the items its metrics member owns (issue 15: with N members only the owner's
 * tap sees an item's events); the cell of each user comes from this process's sticky index (the resolver
 * feature follows penumbra.bandit.sticky, whose records carry the cell since bandit-sticky v2).
 * The resolvers apply the per-cell weights themselves (pipeline/resolver/resolver.ts via cells.ts).
 */
import type { Feature, FeatureContext } from '../app/features.ts';
import { streamHandles } from '../telemetry/feature.ts';
import { resolverHandles } from '../resolver/feature.ts';
import { rolloutHandles, sequentialTests } from '../rollout/feature.ts';
import { createSegmentAllocationRouter } from '../../connectors/http/segment-allocation-router.ts';
import { CellAggregates } from './cell-aggregates.ts';
import { startSegmentAnalyzer, type SegmentAnalyzer } from './analyzer.ts';

export interface SegmentAllocationOptions {
  /** Analyzer period, ms (default 1000). */
  tickMs?: number;
}

const byPrefix = new Map<string, SegmentAllocationOptions>();

/** Options for the Penumbra instance on topic prefix `prefix` (set before createPenumbra). */
export function segmentAllocationOptions(prefix: string, opts: SegmentAllocationOptions): void {
  byPrefix.set(prefix, opts);
}

export interface SegmentAllocationHandle {
  aggregates: CellAggregates | null;
  analyzer: SegmentAnalyzer | null;
}

export const segmentAllocationHandles = new WeakMap<FeatureContext, SegmentAllocationHandle>();

export function segmentAllocationFeature(defaults: SegmentAllocationOptions = {}): Feature {
  return async (ctx) => {
    const o = { ...defaults, ...(byPrefix.get(ctx.cfg.topicPrefix) ?? {}) };
    let aggregates: CellAggregates | null = null;
    let analyzer: SegmentAnalyzer | null = null;
    let off: (() => void) | null = null;
    const stream = streamHandles.get(ctx);
    if (ctx.processors && stream?.processor) {
      const agg = new CellAggregates();
      aggregates = agg;
      off = stream.processor.onEvent((e) => agg.add(e));
      analyzer = startSegmentAnalyzer({
        store: ctx.profileStore, profiles: ctx.profiles, aggregates: agg, tests: sequentialTests, intervalMs: o.tickMs, log: ctx.log.warn,
        owns: (itemId) => stream.processor!.owns(itemId),
        cellOf: (itemId, userId, run) => resolverHandles.get(ctx)?.sticky.index.cellOf(itemId, userId, run),
      });
    }
    const router = createSegmentAllocationRouter({
      profiles: ctx.profiles, tokens: ctx.tokens, openapi: ctx.openapi,
      decisions: () => rolloutHandles.get(ctx)?.decisions ?? null,
      stickyByCell: (itemId, run) => resolverHandles.get(ctx)?.sticky.index.countsByCell(itemId, run) ?? {},
    });
    ctx.healthChecks.push(async () => ({
      segmentAllocation: { status: 'ok' as const, analyzer: analyzer ? { ...analyzer.stats } : null, cellSessionsInMemory: aggregates?.sessionCount ?? null, events: aggregates ? { ...aggregates.counters } : null },
    }));
    segmentAllocationHandles.set(ctx, { aggregates, analyzer });
    return {
      router,
      stop: async () => {
        analyzer?.stop();
        off?.();
      },
    };
  };
}

/**
 * Segments wiring: the definitions store (follows the compacted penumbra.segments), the
 * /api/v1/segments routes, the health check, and — when this process runs the processors — the
 * evaluator (one leader across processes: evaluator.ts). The memberships every resolver holds
 * are fed by the resolver feature (pipeline/preferences/follow.ts → ctx.segmentIndex).
 */
import type { Feature, FeatureContext, FeatureHandle } from '../app/features.ts';
import { followTopic } from '../kafka/follow.ts';
import { readerParquetSource } from '../../connectors/parquet-source/source.ts';
import { createSegmentsRouter } from '../../connectors/http/segments-router.ts';
import { createSegmentResultsRouter } from '../../connectors/http/segment-results-router.ts';
import { Router } from 'express';
import { SegmentStore } from './segment-store.ts';
import { startSegmentEvaluator, type SegmentEvaluator } from './evaluator.ts';
import { failing } from './evaluation.ts';

export interface SegmentsFeatureOptions {
  /** Evaluator scheduler tick (default 1000 ms). */
  tickMs?: number;
}

export interface SegmentsFeatureHandle extends FeatureHandle {
  store: SegmentStore;
  evaluator: SegmentEvaluator | null;
}

export async function startSegments(ctx: FeatureContext, opts: SegmentsFeatureOptions = {}): Promise<SegmentsFeatureHandle> {
  const { cfg } = ctx;
  const store = new SegmentStore();
  const follower = await followTopic({
    kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.segments, schema: 'segment', groupPrefix: ctx.groupPrefix,
    onRecord: (s) => store.apply(s), onError: (err) => ctx.log.warn('segment definition decode failed', { err: String(err) }),
  });
  let evaluator: SegmentEvaluator | null = null;
  try {
    // The evaluator decides deletions from the definitions, so they must be complete first.
    await follower.ready;
    // The sink's folder, or the bucket's export (PENUMBRA_PARQUET_READ=s3: connectors/parquet-source).
    const parquetDir = readerParquetSource(cfg);
    if (ctx.processors) {
      evaluator = await startSegmentEvaluator({
        kafka: ctx.kafka, codec: ctx.codec, producer: ctx.producer, topics: cfg.topics, groupPrefix: ctx.groupPrefix, store,
        status: (id) => ctx.segmentIndex.getStatus(id), parquetDir, limits: cfg.segments, tickMs: opts.tickMs,
        log: (msg, extra) => ctx.log.warn(msg, extra),
      });
    }
    ctx.healthChecks.push(async () => {
      const bad = failing(ctx.segmentIndex.statuses());
      const index = ctx.segmentIndex.stats();
      return {
        segments: {
          // A failing segment keeps its last good membership; health says so (a warning, resolve is unaffected).
          status: bad.length > 0 ? 'degraded' : 'ok',
          definitions: store.all().length,
          ...(bad.length > 0 ? { detail: `${bad.length} segment(s) kept their last good membership: ${bad.map((s) => `${s.segmentId} (${s.state}: ${s.error ?? ''})`).join('; ').slice(0, 500)}` } : {}),
          failing: bad.map((s) => ({ segmentId: s.segmentId, state: s.state, error: s.error, lastGoodAt: s.lastGoodAt, evaluatedAt: s.evaluatedAt })),
          membersLoaded: index.members,
          bytes: index.bytes,
          budgetMembers: cfg.segments.totalMembers,
          evaluator: evaluator ? { ...evaluator.stats } : null,
        },
      };
    });
    const router = Router();
    router.use(createSegmentsRouter({
      store, index: ctx.segmentIndex, evaluator: () => evaluator, producer: ctx.producer, topics: cfg.topics, tokens: ctx.tokens, openapi: ctx.openapi,
      parquetDir, limits: cfg.segments,
    }));
    // Per-segment results (pipeline/segment-results): the comparisons broken down by segment.
    // The live comparisons' tuning N* (PENUMBRA_SEQUENTIAL_TUNING), so a cell's verdict reads like the dashboard's.
    router.use(createSegmentResultsRouter({ profiles: ctx.profileStore, index: ctx.segmentIndex, parquetDir, tokens: ctx.tokens, openapi: ctx.openapi, sequential: { tuning: cfg.sequentialTuning } }));
    return {
      router, store, evaluator,
      async stop() {
        await evaluator?.stop();
        await follower.stop();
      },
    };
  } catch (err) {
    await evaluator?.stop().catch(() => {});
    await follower.stop().catch(() => {});
    throw err;
  }
}

export function segmentsFeature(opts: SegmentsFeatureOptions = {}): Feature {
  return async (ctx) => startSegments(ctx, opts);
}

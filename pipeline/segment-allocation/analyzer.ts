/**
 * The per-segment allocation's analyzer: for every bandit with `segments`, every `intervalMs`,
 * builds each cell's evidence (cell-aggregates.ts + evidence.ts), runs `decideSegmentReweight`
 * and submits its decision as a `reweight` command (payload `scope: "segments"`, actor
 * `system:bandit`) through the ProfileService — the item's command topic, one writer, audited
 * with the record as evidence, on the timeline like any reweighting. One command per item in
 * flight; a stale decision is a no-op at the writer (counted). Runs in the processors process.
 */
import type { ShadowProfile } from '../domain/types.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import { PenumbraError } from '../errors.ts';
import type { SequentialTests } from '../rollout/build-evidence.ts';
import type { CellAggregates } from './cell-aggregates.ts';
import { decideSegmentReweight, type SegmentReweightPayload } from './decide.ts';
import { cellEvidence, watchedKeys } from './evidence.ts';

export const SEGMENT_BANDIT_ACTOR = 'system:bandit';

export interface SegmentAnalyzerStats {
  ticks: number;
  evaluations: number;
  submitted: number;
  accepted: number;
  stale: number;
  failed: number;
  /** Sessions of the last evaluation whose user had no cell (global weights, or not sticky yet). */
  unattributed: number;
  /** Evaluations left to the metrics member owning the item (issue 15: its by-item partition is elsewhere). */
  notOwned: number;
}

export interface SegmentAnalyzer {
  tick(): Promise<void>;
  stats: SegmentAnalyzerStats;
  stop(): void;
}

export function startSegmentAnalyzer(deps: {
  store: ProfileStore;
  profiles: Pick<ProfileService, 'submit'>;
  aggregates: CellAggregates;
  tests: SequentialTests;
  /** The cell a user of the item's bandit run was allocated in (the sticky index). */
  cellOf: (itemId: string, userId: string, run: number) => string | null | undefined;
  intervalMs?: number;
  now?: () => number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /** Whether this process's metrics member owns the item (only the owner's tap sees its events); default: every item. */
  owns?: (itemId: string) => boolean;
}): SegmentAnalyzer {
  const now = deps.now ?? Date.now;
  const stats: SegmentAnalyzerStats = { ticks: 0, evaluations: 0, submitted: 0, accepted: 0, stale: 0, failed: 0, unattributed: 0, notOwned: 0 };
  const inFlight = new Set<string>();
  const agg = deps.aggregates;

  async function evaluate(p: ShadowProfile, t: number): Promise<void> {
    const b = p.bandit!;
    const st = p.banditState!;
    agg.watch(p.itemId, watchedKeys(b), st.startedAt);
    if (p.state !== 'active' || st.status === 'stopped') return;
    stats.evaluations++;
    const { cells, unattributed } = agg.totals(p.itemId, (u) => deps.cellOf(p.itemId, u, st.startedAt));
    stats.unattributed = unattributed;
    const d = decideSegmentReweight({ itemId: p.itemId, plan: b, state: st, evidence: cellEvidence(b, cells, deps.tests), now: t });
    if (d.kind === 'none') return;
    const payload: SegmentReweightPayload = { scope: 'segments', record: d.record, expect: d.expect };
    stats.submitted++;
    try {
      await deps.profiles.submit({ itemId: p.itemId, kind: 'reweight', ifMatch: null, payload, actor: SEGMENT_BANDIT_ACTOR, role: 'system', reason: d.record.reason });
      stats.accepted++;
    } catch (err) {
      if (err instanceof PenumbraError && err.code === 'noop') stats.stale++;
      else {
        stats.failed++;
        deps.log?.('per-segment reweighting failed', { itemId: p.itemId, err: String(err) });
      }
    }
  }

  const tick = async (): Promise<void> => {
    stats.ticks++;
    const t = now();
    const live = new Set<string>();
    const work: Promise<void>[] = [];
    for (const p of deps.store.all()) {
      if (!p.bandit?.segments || !p.banditState?.cells?.length) continue;
      // With N metrics members only the item's owner sees its events: the others leave it alone.
      if (deps.owns && !deps.owns(p.itemId)) {
        stats.notOwned++;
        continue;
      }
      live.add(p.itemId);
      if (inFlight.has(p.itemId)) continue;
      inFlight.add(p.itemId);
      work.push(evaluate(p, t).catch((err) => {
        stats.failed++;
        deps.log?.('per-segment evaluation failed', { itemId: p.itemId, err: String(err) });
      }).finally(() => inFlight.delete(p.itemId)));
    }
    // Items whose per-segment allocation ended free their sessions.
    for (const it of agg.watchedItems()) if (!live.has(it)) agg.unwatch(it);
    await Promise.all(work);
  };
  const timer = setInterval(() => void tick(), deps.intervalMs ?? 1000);
  timer.unref?.();
  return { tick, stats, stop: () => clearInterval(timer) };
}

/**
 * What an evaluation means for the membership in force, and which segments are due (pure).
 *
 * The rule of the issue: a segment that fails or grows past its limit keeps its last good
 * membership and raises a health warning — it never changes what resolvers answer. So only an
 * `ok` outcome is applied; `failed`, `timeout` and `over_limit` publish a status that names the
 * problem and carries the last good evaluation forward.
 */
import type { Segment, SegmentStatus } from '../../schemas/types.generated.ts';

export type QueryResult =
  | { kind: 'ok'; candidates: number }
  | { kind: 'failed'; error: string }
  | { kind: 'timeout'; error: string };

export type SegmentState = 'ok' | 'failed' | 'timeout' | 'over_limit';

export interface Outcome {
  /** Replace the membership in force with the query's result. */
  apply: boolean;
  state: SegmentState;
  error: string | null;
}

/**
 * `otherMembers`: members of every other segment in force; `totalMembers`: the deployment's
 * budget (PENUMBRA_SEGMENT_TOTAL_MEMBERS) — what every resolver must be able to hold.
 */
export function decideOutcome(def: Pick<Segment, 'maxMembers'>, result: QueryResult, budget: { otherMembers: number; totalMembers: number }): Outcome {
  if (result.kind === 'failed') return { apply: false, state: 'failed', error: result.error };
  if (result.kind === 'timeout') return { apply: false, state: 'timeout', error: result.error };
  if (result.candidates > def.maxMembers) {
    return { apply: false, state: 'over_limit', error: `the query returned more than maxMembers (${def.maxMembers}) users` };
  }
  if (budget.otherMembers + result.candidates > budget.totalMembers) {
    return {
      apply: false,
      state: 'over_limit',
      error: `${result.candidates} members would bring all segments to ${budget.otherMembers + result.candidates}, over the budget of ${budget.totalMembers} (PENUMBRA_SEGMENT_TOTAL_MEMBERS)`,
    };
  }
  return { apply: true, state: 'ok', error: null };
}

export interface EvaluationFacts {
  evaluationId: string;
  evaluatedAt: number;
  durationMs: number;
  snapshotAt: number | null;
  /** Users the query returned (null when it failed). */
  candidates: number | null;
  /** When applied: the membership's size now and the change. */
  members: number;
  added: number;
  removed: number;
}

/** The status record of an evaluation, carrying the last good evaluation forward when not applied. */
export function statusAfter(def: Segment, outcome: Outcome, prev: SegmentStatus | undefined, f: EvaluationFacts): SegmentStatus {
  return {
    segmentId: def.id,
    state: outcome.state,
    evaluationId: f.evaluationId,
    evaluatedAt: f.evaluatedAt,
    durationMs: f.durationMs,
    snapshotAt: f.snapshotAt,
    members: outcome.apply ? f.members : (prev?.members ?? 0),
    candidateMembers: f.candidates,
    added: outcome.apply ? f.added : 0,
    removed: outcome.apply ? f.removed : 0,
    lastGoodEvaluationId: outcome.apply ? f.evaluationId : (prev?.lastGoodEvaluationId ?? null),
    lastGoodAt: outcome.apply ? f.evaluatedAt : (prev?.lastGoodAt ?? null),
    error: outcome.error,
    definitionUpdatedAt: def.updatedAt,
  };
}

/**
 * Segments to evaluate at `now`, most overdue first: enabled ones never evaluated, whose
 * definition changed since their last evaluation, or whose schedule has elapsed. `lastRun` is
 * when this evaluator last tried each segment (a failure waits for the next period as well, so a
 * broken query costs one attempt per period, not a tight loop).
 */
export function dueSegments(defs: readonly Segment[], status: (id: string) => SegmentStatus | undefined, lastRun: (id: string) => number | undefined, now: number): Segment[] {
  const due: { s: Segment; at: number }[] = [];
  for (const s of defs) {
    if (!s.enabled || s.deleted) continue;
    const st = status(s.id);
    const last = Math.max(lastRun(s.id) ?? -Infinity, st?.evaluatedAt ?? -Infinity);
    if (st === undefined || st.definitionUpdatedAt < s.updatedAt) due.push({ s, at: -Infinity });
    else if (now - last >= s.scheduleSeconds * 1000) due.push({ s, at: last + s.scheduleSeconds * 1000 });
  }
  return due.sort((a, b) => a.at - b.at || (a.s.id < b.s.id ? -1 : 1)).map((d) => d.s);
}

/** Segments whose last evaluation did not apply: what health warns about. */
export function failing(statuses: Iterable<SegmentStatus>): SegmentStatus[] {
  return [...statuses].filter((s) => s.state !== 'ok' && s.state !== 'deleted');
}

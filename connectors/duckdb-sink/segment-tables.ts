/**
 * Warehouse tables of behavioural segments and preferences (issue #14), in their own file like
 * risk-tables.ts: the current segments of every user (for per-segment results in notebooks and
 * the API), the history of segment evaluations, and the current pins. Same contract as
 * tables.ts (documented column by column in docs/warehouse.md; a unit test checks it).
 */
import type { TableSpec } from './tables.ts';

const json = (v: unknown): string => JSON.stringify(v);

export const SEGMENT_MEMBERSHIPS: TableSpec<'segment-membership'> = {
  name: 'segment_memberships',
  source: { topic: 'segmentMemberships', schema: 'segment-membership' },
  key: ['user_id'],
  mode: 'upsert',
  partitionBy: null,
  doc: "The segments each user is in now (pipeline/segments): a later record of the user replaces the row. Select a segment's members with list_contains(CAST(segments_json AS JSON)::VARCHAR[], 'power-users').",
  columns: [
    { name: 'user_id', type: 'VARCHAR', notNull: true, doc: 'User.' },
    { name: 'segments_json', type: 'VARCHAR', notNull: true, doc: 'Every segment the user is in, sorted, JSON array text; [] = none.' },
    { name: 'evaluation_id', type: 'VARCHAR', notNull: true, doc: 'Evaluation that produced the row.' },
    { name: 'changed_json', type: 'VARCHAR', notNull: true, doc: 'Segments whose membership of the user changed with it, JSON array text.' },
    { name: 'updated_at', type: 'TIMESTAMP', notNull: true, doc: 'When the record was produced.' },
  ],
  rows: (m) => [[m.userId, json(m.segments), m.evaluationId, json(m.changed), m.updatedAt]],
};

export const SEGMENT_EVALUATIONS: TableSpec<'segment-status'> = {
  name: 'segment_evaluations',
  source: { topic: 'segmentStatus', schema: 'segment-status' },
  key: ['evaluation_id'],
  mode: 'insert-once',
  partitionBy: 'evaluated_at',
  doc: 'Every evaluation of a segment: its outcome, size and change (the compacted topic keeps only the last per segment; this is the history).',
  columns: [
    { name: 'evaluation_id', type: 'VARCHAR', notNull: true, doc: 'Evaluation.' },
    { name: 'segment_id', type: 'VARCHAR', notNull: true, doc: 'Segment.' },
    { name: 'state', type: 'VARCHAR', notNull: true, doc: 'ok, failed, timeout, over_limit or deleted.' },
    { name: 'members', type: 'BIGINT', notNull: true, doc: 'Users in the membership in force after it (the last good one when not ok).' },
    { name: 'candidate_members', type: 'BIGINT', doc: 'Users the query returned (capped at maxMembers + 1); NULL when it failed.' },
    { name: 'added', type: 'BIGINT', notNull: true, doc: 'Users that entered.' },
    { name: 'removed', type: 'BIGINT', notNull: true, doc: 'Users that left.' },
    { name: 'duration_ms', type: 'BIGINT', notNull: true, doc: 'Query time.' },
    { name: 'snapshot_at', type: 'TIMESTAMP', doc: 'Warehouse snapshot the query read.' },
    { name: 'last_good_evaluation_id', type: 'VARCHAR', doc: 'Evaluation whose membership is in force.' },
    { name: 'error', type: 'VARCHAR', doc: 'Why it failed; NULL when ok.' },
    { name: 'evaluated_at', type: 'TIMESTAMP', notNull: true, doc: 'When it finished.' },
  ],
  rows: (s) => [[s.evaluationId, s.segmentId, s.state, s.members, s.candidateMembers, s.added, s.removed, s.durationMs, s.snapshotAt, s.lastGoodEvaluationId, s.error, s.evaluatedAt]],
};

export const PINS: TableSpec<'pin'> = {
  name: 'pins',
  source: { topic: 'pins', schema: 'pin' },
  key: ['item_id', 'user_id'],
  mode: 'upsert',
  partitionBy: null,
  doc: 'The pinned variant of each (item, user) (pipeline/preferences): a later change replaces the row; variant NULL = the pin was removed. Pinned users are kept out of comparisons (telemetry_events.unverified_reason = pinned).',
  columns: [
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'user_id', type: 'VARCHAR', notNull: true, doc: 'User.' },
    { name: 'variant', type: 'VARCHAR', doc: "'original' or a shadow; NULL when no longer pinned." },
    { name: 'source', type: 'VARCHAR', notNull: true, doc: 'operator or device.' },
    { name: 'reason', type: 'VARCHAR', doc: 'Why.' },
    { name: 'actor', type: 'VARCHAR', notNull: true, doc: "Operator token name or 'device:<userId>'." },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When.' },
  ],
  rows: (p) => [[p.itemId, p.userId, p.variant, p.source, p.reason, p.actor, p.at]],
};

export const SEGMENT_TABLES = [SEGMENT_MEMBERSHIPS, SEGMENT_EVALUATIONS, PINS] as unknown as TableSpec[];

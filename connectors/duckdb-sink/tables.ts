/**
 * The warehouse tables: their columns, keys and how one decoded topic record becomes rows.
 *
 * Pure: no DuckDB or Kafka here. `sink.ts` derives the DDL, the staging tables and the
 * `INSERT … SELECT … ON CONFLICT` statements from these specs, and docs/warehouse.md documents
 * the same columns (a unit test checks that every column below is documented there).
 *
 * Every table has a natural key so replaying a topic is idempotent:
 *  - `insert-once` tables keep the first row stored for a key (`ON CONFLICT DO NOTHING`): the
 *    same event delivered twice is stored once.
 *  - `upsert` tables let a later record replace the row (`ON CONFLICT DO UPDATE`): a catalog
 *    record re-lists every version, a re-emitted metric window carries late data.
 * Time columns are TIMESTAMP (UTC, millisecond precision); they are staged as epoch-ms numbers
 * and converted with `epoch_ms()` in the INSERT (stageType).
 */
import type { TopicNames } from '../../pipeline/config/config.ts';
import type { SchemaName } from '../../schemas/index.ts';
import type { SchemaTypes, DeadLetter } from '../../schemas/types.generated.ts';
import { RISK_TABLES } from './risk-tables.ts';
import type { ColumnSource } from './columnar.ts';
import { SEGMENT_TABLES } from './segment-tables.ts';

export type ColumnType = 'VARCHAR' | 'BIGINT' | 'INTEGER' | 'DOUBLE' | 'BOOLEAN' | 'BLOB' | 'TIMESTAMP';

export interface Column {
  name: string;
  type: ColumnType;
  /** NOT NULL in the table (key columns always are). */
  notNull?: boolean;
  doc: string;
}

/** A staged cell: TIMESTAMP cells are epoch milliseconds. */
export type Cell = string | number | boolean | Uint8Array | null;

/** Where a record came from; part of deterministic ids for the sink's own dead letters. */
export interface RecordMeta {
  topic: string;
  partition: number;
  offset: string;
}

export interface TableSpec<N extends SchemaName = SchemaName> {
  name: string;
  /** Source topic (config key) and its value schema; null for tables the sink fills itself. */
  source: { topic: keyof TopicNames; schema: N } | null;
  key: string[];
  mode: 'insert-once' | 'upsert';
  doc: string;
  columns: Column[];
  /**
   * TIMESTAMP column whose UTC date names the table's Hive partition in the Parquet export
   * (`<table>/date=YYYY-MM-DD/…`); null for small tables exported as one file.
   */
  partitionBy: string | null;
  /**
   * De-duplication without a primary key (telemetry_events): the sink keeps the recently stored
   * keys in memory (recent-ids.ts) and drops a repeated one before it is staged; `arrival` is the
   * TIMESTAMP column the index's horizon is measured on. Unset: the PRIMARY KEY de-duplicates.
   */
  recentDedup?: { arrival: string };
  /**
   * TIMESTAMP column the DuckDB retention of raw rows is measured on (rows older than the
   * retention are deleted from DuckDB once exported; their Parquet parts stay). Null: kept.
   */
  retentionBy?: string;
  /** Rows for one decoded record, cells in `columns` order. */
  rows: (value: SchemaTypes[N], meta: RecordMeta) => Cell[][];
  /**
   * One row per record, each column read from one field of it: the sink may then decode the Avro
   * body straight into column vectors (columnar.ts) instead of going through `rows()`, which it
   * must match cell for cell (columnar.test.ts). `fields[k]` feeds `columns[k]`.
   */
  fields?: ColumnSource[];
}

const json = (v: unknown): string => JSON.stringify(v);

function spec<N extends SchemaName>(s: TableSpec<N>): TableSpec<N> {
  return s;
}

export const ITEMS = spec({
  name: 'items',
  source: { topic: 'itemsCatalog', schema: 'catalog-entry' },
  key: ['item_id', 'version', 'variant'],
  mode: 'upsert',
  partitionBy: null,
  doc: 'The distribution catalog flattened: one row per item version and variant (original or shadow). A later catalog record for the item replaces the rows it lists.',
  columns: [
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item id from the manifest (reverse-DNS style).' },
    { name: 'version', type: 'VARCHAR', notNull: true, doc: 'Semver of the item version.' },
    { name: 'variant', type: 'VARCHAR', notNull: true, doc: "'original' or the shadow name." },
    { name: 'name', type: 'VARCHAR', notNull: true, doc: 'Human name of the item (latest manifest).' },
    { name: 'is_latest', type: 'BOOLEAN', notNull: true, doc: 'True for the version devices are served (the catalog latestVersion when the row was last written).' },
    { name: 'entry', type: 'VARCHAR', notNull: true, doc: 'Entry point path inside the archive.' },
    { name: 'sha256', type: 'VARCHAR', notNull: true, doc: 'Hex sha256 of the archive: blob key and HTTP ETag.' },
    { name: 'size_bytes', type: 'BIGINT', notNull: true, doc: 'Archive size in bytes.' },
    { name: 'files', type: 'INTEGER', notNull: true, doc: 'Number of files in the archive.' },
    { name: 'profile_version', type: 'BIGINT', doc: 'Profile version the shadow was built for; NULL for the original.' },
    { name: 'replacements', type: 'INTEGER', notNull: true, doc: 'Endpoint occurrences rewritten in the shadow copy (0 for the original).' },
    { name: 'manifest_json', type: 'VARCHAR', notNull: true, doc: 'The original manifest.json of this version (JSON text).' },
    { name: 'request_id', type: 'VARCHAR', doc: 'Ingest request that produced the version.' },
    { name: 'ingested_at', type: 'TIMESTAMP', notNull: true, doc: 'When the version was ingested.' },
    { name: 'updated_at', type: 'TIMESTAMP', notNull: true, doc: 'Last change of the catalog entry that wrote this row.' },
  ],
  rows: (e) =>
    e.versions.flatMap((v) =>
      v.variants.map((x) => [
        e.itemId, v.version, x.name, e.name, v.version === e.latestVersion, v.entry, x.sha256, x.size, x.files,
        x.profileVersion, x.replacements, v.manifestJson, v.requestId, v.ingestedAt, e.updatedAt,
      ]),
    ),
});

export const PROFILE_HISTORY = spec({
  name: 'profile_history',
  source: { topic: 'shadowProfiles', schema: 'shadow-profile' },
  key: ['item_id', 'profile_version'],
  mode: 'insert-once',
  partitionBy: 'updated_at',
  doc: 'Every shadow profile version ever seen, appended. The topic is compacted (it keeps only the latest per item), so this table is the history; a rebuild from the topic only recovers what compaction kept.',
  columns: [
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item the profile belongs to.' },
    { name: 'profile_version', type: 'BIGINT', notNull: true, doc: 'Monotonic profile version (the If-Match value).' },
    { name: 'state', type: 'VARCHAR', notNull: true, doc: "'active' or 'rolled_back'." },
    { name: 'seed', type: 'VARCHAR', notNull: true, doc: 'Bucketing seed.' },
    { name: 'holdout', type: 'DOUBLE', notNull: true, doc: 'Share 0..100 of users kept on the original.' },
    { name: 'item_version', type: 'VARCHAR', notNull: true, doc: 'Item version whose artifacts the profile serves.' },
    { name: 'original_sha256', type: 'VARCHAR', doc: 'Artifact of the original for item_version.' },
    { name: 'shadow_names', type: 'VARCHAR', notNull: true, doc: 'Shadow names in evaluation order, JSON array text.' },
    { name: 'shadows_json', type: 'VARCHAR', notNull: true, doc: 'Full shadow specs (instrumentation, endpoints, traffic, artifact, control, state, rollout plan and its state), JSON text.' },
    { name: 'schedule_json', type: 'VARCHAR', doc: 'Legacy timer schedule of profiles written before shadow-profile v3, JSON text; NULL since (schedules run as rollout plans, in shadows_json).' },
    { name: 'guardrail', type: 'BOOLEAN', notNull: true, doc: 'Roll back automatically when a guardrail alert fires.' },
    { name: 'updated_by', type: 'VARCHAR', notNull: true, doc: 'Actor of the change.' },
    { name: 'updated_at', type: 'TIMESTAMP', notNull: true, doc: 'When the change was made.' },
  ],
  rows: (p) => [[
    p.itemId, p.profileVersion, p.state, p.seed, p.holdout, p.itemVersion, p.original?.sha256 ?? null,
    json(p.shadows.map((s) => s.name)), json(p.shadows), p.schedule ? json(p.schedule) : null, p.guardrail, p.updatedBy, p.updatedAt,
  ]],
});

export const ASSIGNMENTS = spec({
  name: 'assignments',
  source: { topic: 'assignments', schema: 'assignment' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'ts',
  retentionBy: 'ts',
  doc: 'One exposure per resolve decision.',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Decision id.' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item resolved.' },
    { name: 'user_id', type: 'VARCHAR', notNull: true, doc: 'User the decision is for.' },
    { name: 'variant', type: 'VARCHAR', notNull: true, doc: "'original' or the shadow served." },
    { name: 'profile_version', type: 'BIGINT', notNull: true, doc: 'Profile version evaluated (0 without profile).' },
    { name: 'bucket', type: 'INTEGER', notNull: true, doc: 'Bucket 0..9999 of the user, -1 when no bucketing took place.' },
    { name: 'reason', type: 'VARCHAR', notNull: true, doc: 'assigned, control, not_in_share, no_match, holdout, rolled_back, no_profile, invalid_profile.' },
    { name: 'device_type', type: 'VARCHAR', doc: 'Device type used.' },
    { name: 'country', type: 'VARCHAR', doc: 'ISO country code used.' },
    { name: 'user_group', type: 'VARCHAR', doc: 'User group used.' },
    { name: 'app_version', type: 'VARCHAR', doc: 'App version used.' },
    { name: 'attributes_json', type: 'VARCHAR', notNull: true, doc: 'Custom attributes used, JSON object text.' },
    { name: 'derived_json', type: 'VARCHAR', notNull: true, doc: 'Attribute names derived from request headers, JSON array text.' },
    { name: 'resolver_id', type: 'VARCHAR', notNull: true, doc: 'Resolver process that decided.' },
    { name: 'ts', type: 'TIMESTAMP', notNull: true, doc: 'Decision time.' },
    { name: 'control_of', type: 'VARCHAR', doc: "For variant 'control': the shadow whose control cohort the user is in; NULL otherwise (and for decisions stored before assignment v2)." },
  ],
  rows: (a) => [[
    a.id, a.itemId, a.userId, a.variant, a.profileVersion, a.bucket, a.reason, a.deviceType, a.country, a.userGroup,
    a.appVersion, json(a.attributes), json(a.derived), a.resolverId, a.ts, a.controlOf ?? null,
  ]],
});

export const TELEMETRY_EVENTS = spec({
  name: 'telemetry_events',
  source: { topic: 'telemetryRaw', schema: 'telemetry-event' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'received_at',
  retentionBy: 'received_at',
  recentDedup: { arrival: 'received_at' },
  doc: 'Raw telemetry events. The event id is the key: a topic replay is never stored twice (stored offsets), and an event delivered twice by a retry (client or collector) is stored once when the copies arrive within the de-duplication horizon (PENUMBRA_DEDUP_HORIZON_MINUTES, 60) — no primary-key index, the sink remembers recent ids.',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Event id, unique per event.' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item that sent the event.' },
    { name: 'version', type: 'VARCHAR', notNull: true, doc: 'Item version running.' },
    { name: 'variant', type: 'VARCHAR', notNull: true, doc: "'original', 'control' (a shadow's control cohort: see control_of) or the shadow name." },
    { name: 'profile_version', type: 'BIGINT', notNull: true, doc: 'Profile version resolved with.' },
    { name: 'session_id', type: 'VARCHAR', notNull: true, doc: 'Session (tab) id.' },
    { name: 'user_id', type: 'VARCHAR', notNull: true, doc: 'User id.' },
    { name: 'type', type: 'VARCHAR', notNull: true, doc: 'perf, request, error, usage or session.' },
    { name: 'name', type: 'VARCHAR', notNull: true, doc: 'Metric, endpoint key, error message, point id or session phase.' },
    { name: 'ts', type: 'TIMESTAMP', notNull: true, doc: 'Event time (device clock, skew-corrected by the collector).' },
    { name: 'value', type: 'DOUBLE', doc: 'Numeric value: ms for perf, latency ms for request.' },
    { name: 'attrs_json', type: 'VARCHAR', notNull: true, doc: "String attributes (status, path, selector, stack), JSON object text: json_extract_string(attrs_json, '$.status')." },
    { name: 'sent_at', type: 'TIMESTAMP', notNull: true, doc: 'Device clock when the batch was sent.' },
    { name: 'received_at', type: 'TIMESTAMP', notNull: true, doc: 'Collector clock when the batch arrived.' },
    { name: 'control_of', type: 'VARCHAR', doc: "For variant 'control': the shadow whose control cohort the session belongs to; NULL otherwise (telemetry-event v2)." },
    { name: 'verified', type: 'BOOLEAN', doc: 'True when the batch carried a valid assignment token consistent with its item, user, variant and controlOf, for an item, variant and profile version the profile knows (the version may be older than the current one, never newer: pipeline/telemetry/attribution.ts); unverified events never enter comparisons, alerts or guardrails. NULL for rows stored before telemetry-event v2.' },
    { name: 'unverified_reason', type: 'VARCHAR', doc: 'Why the event is unverified: missing, malformed, unknown_key, bad_signature, expired, mismatch, unknown_item, unknown_variant, unknown_profile_version, pinned (a user pinned to a variant: self-chosen, kept out of comparisons); NULL when verified.' },
  ],
  rows: (e) => [[
    e.id, e.itemId, e.version, e.variant, e.profileVersion, e.sessionId, e.userId, e.type, e.name, e.ts, e.value,
    json(e.attrs), e.sentAt, e.receivedAt, e.controlOf ?? null, e.verified, e.unverifiedReason ?? null,
  ]],
  fields: [
    { field: 'id' }, { field: 'itemId' }, { field: 'version' }, { field: 'variant' }, { field: 'profileVersion' }, { field: 'sessionId' },
    { field: 'userId' }, { field: 'type' }, { field: 'name' }, { field: 'ts' }, { field: 'value' }, { field: 'attrs', json: true },
    { field: 'sentAt' }, { field: 'receivedAt' }, { field: 'controlOf' }, { field: 'verified' }, { field: 'unverifiedReason' },
  ],
});

export const METRIC_WINDOWS = spec({
  name: 'metric_windows',
  source: { topic: 'telemetryMetrics', schema: 'metric-window' },
  key: ['item_id', 'variant', 'window_size_ms', 'window_start'],
  mode: 'upsert',
  partitionBy: 'window_start',
  doc: "Windowed aggregates per item × variant over verified events only. Variant 'control' is one arm per item (the control cohorts of all its shadows pooled). A window re-emitted with late data replaces the earlier row (last record on the topic wins).",
  columns: [
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'variant', type: 'VARCHAR', notNull: true, doc: "'original', 'control' (the item's control cohorts pooled) or the shadow name." },
    { name: 'window_size_ms', type: 'BIGINT', notNull: true, doc: 'Window length in ms (10000 or 60000).' },
    { name: 'window_start', type: 'TIMESTAMP', notNull: true, doc: 'Inclusive window start (event time).' },
    { name: 'window_end', type: 'TIMESTAMP', notNull: true, doc: 'Exclusive window end.' },
    { name: 'events', type: 'BIGINT', notNull: true, doc: 'Events in the window.' },
    { name: 'sessions', type: 'BIGINT', notNull: true, doc: 'Unique sessions with at least one event.' },
    { name: 'users', type: 'BIGINT', notNull: true, doc: 'Unique users.' },
    { name: 'errors', type: 'BIGINT', notNull: true, doc: 'Error events.' },
    { name: 'error_sessions', type: 'BIGINT', notNull: true, doc: 'Sessions with at least one error.' },
    { name: 'error_rate', type: 'DOUBLE', notNull: true, doc: 'error_sessions / sessions.' },
    { name: 'requests', type: 'BIGINT', notNull: true, doc: 'Request events.' },
    { name: 'request_errors', type: 'BIGINT', notNull: true, doc: 'Requests with status >= 500 or failed.' },
    { name: 'rate', type: 'DOUBLE', notNull: true, doc: 'Events per second over the window length.' },
    { name: 'latency_count', type: 'BIGINT', notNull: true, doc: 'Number of request latencies.' },
    { name: 'latency_mean', type: 'DOUBLE', doc: 'Mean latency ms (NULL when none).' },
    { name: 'latency_p50', type: 'DOUBLE', doc: 'Median latency ms (linear interpolation, as quantile_cont).' },
    { name: 'latency_p95', type: 'DOUBLE', doc: '95th percentile latency ms.' },
    { name: 'latency_p99', type: 'DOUBLE', doc: '99th percentile latency ms.' },
    { name: 'latency_sum', type: 'DOUBLE', notNull: true, doc: 'Sum of latencies (for streamed Welch tests).' },
    { name: 'latency_sum_sq', type: 'DOUBLE', notNull: true, doc: 'Sum of squared latencies.' },
    { name: 'conversions_json', type: 'VARCHAR', notNull: true, doc: 'Per usage point {sessions, rate}, JSON object text.' },
    { name: 'perf_json', type: 'VARCHAR', notNull: true, doc: 'Per perf metric {count, mean, p95}, JSON object text.' },
    { name: 'late', type: 'BIGINT', notNull: true, doc: 'Events that arrived after the window closed.' },
    { name: 'emitted_at', type: 'TIMESTAMP', notNull: true, doc: 'Processor clock when this version of the window was emitted.' },
  ],
  rows: (w) => [[
    w.itemId, w.variant, w.windowSize, w.windowStart, w.windowEnd, w.events, w.sessions, w.users, w.errors, w.errorSessions,
    w.errorRate, w.requests, w.requestErrors, w.rate, w.latency.count, w.latency.mean, w.latency.p50, w.latency.p95,
    w.latency.p99, w.latency.sum, w.latency.sumSq, json(w.conversions), json(w.perf), w.late, w.emittedAt,
  ]],
});

export const ALERTS = spec({
  name: 'alerts',
  source: { topic: 'alerts', schema: 'alert' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'at',
  doc: 'Fired and resolved alerts; a fired record and its resolved record share incident_id.',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Alert record id.' },
    { name: 'incident_id', type: 'VARCHAR', notNull: true, doc: 'Shared by the fired and the resolved record.' },
    { name: 'rule_id', type: 'VARCHAR', notNull: true, doc: "Alert rule ('srm' and 'guardrail' for built-in checks)." },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'variant', type: 'VARCHAR', notNull: true, doc: 'Variant the alert is about.' },
    { name: 'metric', type: 'VARCHAR', notNull: true, doc: 'errorRate, latencyP95, conversion:<point>, srm, …' },
    { name: 'state', type: 'VARCHAR', notNull: true, doc: "'fired' or 'resolved'." },
    { name: 'value', type: 'DOUBLE', doc: 'Observed value.' },
    { name: 'threshold', type: 'DOUBLE', doc: 'Threshold of the rule.' },
    { name: 'baseline', type: 'DOUBLE', doc: "The control arm's value when the rule compares against it (vs_control; alerts written before issue 11 hold the original's)." },
    { name: 'message', type: 'VARCHAR', notNull: true, doc: 'Plain-language description.' },
    { name: 'window_end', type: 'TIMESTAMP', notNull: true, doc: 'End of the window that decided.' },
    { name: 'action', type: 'VARCHAR', doc: 'Automatic action taken: rolled_back, schedule_paused.' },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When the record was produced.' },
  ],
  rows: (a) => [[
    a.id, a.incidentId, a.ruleId, a.itemId, a.variant, a.metric, a.state, a.value, a.threshold, a.baseline, a.message,
    a.windowEnd, a.action, a.at,
  ]],
});

export const AUDIT = spec({
  name: 'audit',
  source: { topic: 'audit', schema: 'audit-entry' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'at',
  doc: 'Who changed what, with before/after state.',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Entry id.' },
    { name: 'item_id', type: 'VARCHAR', doc: 'Item affected, NULL for global changes.' },
    { name: 'actor', type: 'VARCHAR', notNull: true, doc: "Token name, or 'system:<component>'." },
    { name: 'role', type: 'VARCHAR', notNull: true, doc: 'viewer, operator, admin or system.' },
    { name: 'action', type: 'VARCHAR', notNull: true, doc: "ingest, shadow-config.put, rollback, …, '<action>.rejected'." },
    { name: 'outcome', type: 'VARCHAR', notNull: true, doc: 'accepted or rejected.' },
    { name: 'reason', type: 'VARCHAR', doc: 'Rejection reason or trigger of an automatic action.' },
    { name: 'before_json', type: 'VARCHAR', doc: 'State before, JSON text.' },
    { name: 'after_json', type: 'VARCHAR', doc: 'State after, JSON text.' },
    { name: 'request_id', type: 'VARCHAR', doc: 'HTTP request or command id.' },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When.' },
    { name: 'evidence_json', type: 'VARCHAR', doc: 'What an automated decision (rollout analysis, bandit reweighting) was decided on, JSON text; NULL otherwise (and for entries stored before evidence existed).' },
  ],
  rows: (a) => [[a.id, a.itemId, a.actor, a.role, a.action, a.outcome, a.reason, a.beforeJson, a.afterJson, a.requestId, a.at, a.evidenceJson ?? null]],
});

export const ROLLOUT_DECISIONS = spec({
  name: 'rollout_decisions',
  source: { topic: 'rolloutDecisions', schema: 'rollout-decision' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'at',
  doc: 'Every accepted decision about a rollout plan, a bandit, a shadow\'s state or a promotion — automated (system:rollout, system:bandit) or by an operator — with the evidence it was decided on (docs/rollouts.md).',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Decision id (command id and index).' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'shadow', type: 'VARCHAR', doc: 'Shadow the decision is about; NULL for bandit decisions.' },
    { name: 'kind', type: 'VARCHAR', notNull: true, doc: 'advance, rollback, hold, complete, start, pause, resume, skip, restart, shadow_rollback, shadow_activate, reweight, bandit_start|pause|resume|stop, promote, promotion_rollback.' },
    { name: 'rule', type: 'VARCHAR', doc: 'Rule of an automated decision (srm, guardrail, inconclusive_limit, insufficient_data, guardrail_unmeasured, passed, burn_in, thompson, stopped, alert; plan_complete on a promotion a completed plan started).' },
    { name: 'automated', type: 'BOOLEAN', notNull: true, doc: 'Decided by the analyzer rather than an operator.' },
    { name: 'actor', type: 'VARCHAR', notNull: true, doc: 'Who decided.' },
    { name: 'profile_version', type: 'BIGINT', notNull: true, doc: 'Profile version the decision produced.' },
    { name: 'step', type: 'INTEGER', doc: 'Plan step index after the decision.' },
    { name: 'percentage', type: 'DOUBLE', doc: 'Shadow share after the decision.' },
    { name: 'reason', type: 'VARCHAR', notNull: true, doc: 'One sentence.' },
    { name: 'evidence_json', type: 'VARCHAR', notNull: true, doc: 'Arm sizes, estimates, intervals, p-values and the rule (rollouts) or posteriors and weights (bandits), JSON text.' },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When.' },
  ],
  rows: (d) => [[d.id, d.itemId, d.shadow, d.kind, d.rule, d.automated, d.actor, d.profileVersion, d.step, d.percentage, d.reason, d.evidenceJson, d.at]],
});

/** The arms of a reweighting record (bandit/reweight.ts ReweightRecord), tolerant of other shapes. */
function banditArms(evidenceJson: string): { epoch: number | null; phase: string | null; arms: { arm: string; weight: number; pBest: number | null; sessions: number | null }[] } {
  try {
    const e = JSON.parse(evidenceJson) as { epoch?: unknown; phase?: unknown; arms?: unknown; weights?: unknown };
    const list = (Array.isArray(e.arms) ? e.arms : Array.isArray(e.weights) ? e.weights : []) as Record<string, unknown>[];
    const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
    return {
      epoch: num(e.epoch), phase: typeof e.phase === 'string' ? e.phase : null,
      arms: list.filter((a) => typeof a.arm === 'string' && typeof a.weight === 'number').map((a) => ({ arm: a.arm as string, weight: a.weight as number, pBest: num(a.pBest), sessions: num(a.sessions) })),
    };
  } catch {
    return { epoch: null, phase: null, arms: [] };
  }
}

export const BANDIT_WEIGHTS = spec({
  name: 'bandit_weights',
  source: { topic: 'rolloutDecisions', schema: 'rollout-decision' },
  key: ['decision_id', 'arm'],
  mode: 'insert-once',
  partitionBy: 'at',
  doc: 'The weight history of every bandit: one row per arm for each reweighting (and each start, with its equal weights), from the same decisions as rollout_decisions.',
  columns: [
    { name: 'decision_id', type: 'VARCHAR', notNull: true, doc: 'The rollout_decisions id.' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'epoch', type: 'BIGINT', doc: 'Reweighting number of the bandit run (0 at its start).' },
    { name: 'phase', type: 'VARCHAR', doc: 'burn_in, thompson or stopped; NULL at a start.' },
    { name: 'arm', type: 'VARCHAR', notNull: true, doc: 'Shadow name or control.' },
    { name: 'weight', type: 'DOUBLE', notNull: true, doc: 'Share of new users of the bandit\'s population, 0..1.' },
    { name: 'p_best', type: 'DOUBLE', doc: 'Posterior probability that the arm is best.' },
    { name: 'sessions', type: 'BIGINT', doc: 'Verified sessions of the arm since the bandit started.' },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When.' },
  ],
  rows: (d) => {
    if (d.kind !== 'reweight' && d.kind !== 'bandit_start' && d.kind !== 'bandit_stop') return [];
    const b = banditArms(d.evidenceJson);
    const epoch = d.kind === 'bandit_start' ? 0 : b.epoch;
    return b.arms.map((a) => [d.id, d.itemId, epoch, b.phase, a.arm, a.weight, a.pBest, a.sessions, d.at]);
  },
});

export const DEAD_LETTERS = spec({
  name: 'dead_letters',
  source: { topic: 'dlq', schema: 'dead-letter' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'at',
  doc: "Dead letters from penumbra.dlq, plus records the sink itself could not decode (processor 'warehouse-sink', id 'warehouse-sink:<topic>:<partition>:<offset>', so a replay stores them once).",
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Dead letter id.' },
    { name: 'source_topic', type: 'VARCHAR', doc: 'Topic the record came from (NULL for HTTP input).' },
    { name: 'partition', type: 'INTEGER', doc: 'Source partition.' },
    { name: 'offset', type: 'BIGINT', doc: 'Source offset.' },
    { name: 'key', type: 'BLOB', doc: 'Original key bytes.' },
    { name: 'value', type: 'BLOB', doc: 'Original value bytes, or only their first bytes when `value_truncated` (dead-letter.v2 keeps a bounded prefix).' },
    { name: 'reason', type: 'VARCHAR', notNull: true, doc: 'Human-readable reason.' },
    { name: 'error_code', type: 'VARCHAR', notNull: true, doc: 'Stable code: decode, validation, archive-rejected, …' },
    { name: 'processor', type: 'VARCHAR', notNull: true, doc: 'Component that dead-lettered it.' },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When it was dead-lettered.' },
    // dead-letter.v2 (issue 17): appended, so an older warehouse file gains them by ADD COLUMN IF NOT EXISTS (migrateSql); its old rows read NULL.
    { name: 'value_length', type: 'BIGINT', doc: 'Length in bytes of the WHOLE original value (NULL: no value, or dead-lettered before dead-letter.v2).' },
    { name: 'value_sha256', type: 'VARCHAR', doc: 'Hex SHA-256 of the whole original value, to match the row against its source (NULL: no value, or before v2).' },
    { name: 'value_truncated', type: 'BOOLEAN', doc: '`value` holds only a prefix of the original (`value_length` bytes long). NULL for rows stored before this column existed.' },
  ],
  rows: (d: DeadLetter) => [deadLetterRow(d)],
});

export function deadLetterRow(d: DeadLetter): Cell[] {
  return [d.id, d.sourceTopic, d.partition, d.offset, d.key, d.value, d.reason, d.errorCode, d.processor, d.at, d.valueLength ?? null, d.valueSha256 ?? null, d.valueTruncated ?? false];
}

/** Written by the sink in the same transaction as the rows: the source of truth for offsets. */
export const SINK_OFFSETS = spec({
  name: 'sink_offsets',
  source: null,
  key: ['topic', 'partition'],
  mode: 'upsert',
  partitionBy: null,
  doc: 'Next Kafka offset to read per topic-partition, committed in the same DuckDB transaction as the rows it covers. The sink seeks here on start and on every partition assignment.',
  columns: [
    { name: 'topic', type: 'VARCHAR', notNull: true, doc: 'Source topic.' },
    { name: 'partition', type: 'INTEGER', notNull: true, doc: 'Source partition.' },
    { name: 'next_offset', type: 'BIGINT', notNull: true, doc: 'Offset of the next record to store (last stored offset + 1).' },
    { name: 'updated_at', type: 'TIMESTAMP', notNull: true, doc: 'When the transaction that moved it committed.' },
    { name: 'last_tx', type: 'BIGINT', doc: 'Number of the sink transaction that moved it (the export watermark: rows carry the number of the transaction that stored them). NULL for rows written before exports were incremental.' },
  ],
  rows: () => [],
});

/** Tables fed from a topic, in the order they are created and exported. */
export const TOPIC_TABLES: TableSpec[] = [ITEMS, PROFILE_HISTORY, ASSIGNMENTS, TELEMETRY_EVENTS, METRIC_WINDOWS, ALERTS, AUDIT, ROLLOUT_DECISIONS, BANDIT_WEIGHTS, DEAD_LETTERS, ...RISK_TABLES, ...SEGMENT_TABLES] as TableSpec[];
export const ALL_TABLES: TableSpec[] = [...TOPIC_TABLES, SINK_OFFSETS as TableSpec];

/** What the SQL builders need of a spec (structural, so any TableSpec<N> fits). */
export type TableShape = Pick<TableSpec, 'name' | 'key' | 'mode' | 'columns' | 'source' | 'recentDedup'>;

const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;
export const quoteIdent = q;

/**
 * Internal column of every topic-fed table: the number of the sink transaction that stored (or
 * last replaced) the row. Exports copy only rows above the last exported number, which is what
 * makes them incremental; it is not part of the documented columns and never exported.
 */
export const SINK_TX = '_sink_tx';

/** Columns as stored: the documented ones, then `_sink_tx` for tables fed from a topic. */
export function storedColumns(t: TableShape): { name: string; type: ColumnType }[] {
  return t.source ? [...t.columns, { name: SINK_TX, type: 'BIGINT' as const }] : t.columns;
}

export function createTableSql(t: TableShape): string {
  const cols = t.columns.map((c) => `${q(c.name)} ${c.type}${c.notNull || t.key.includes(c.name) ? ' NOT NULL' : ''}`);
  if (t.source) cols.push(`${q(SINK_TX)} BIGINT NOT NULL DEFAULT 0`);
  // recentDedup tables de-duplicate in the sink (recent-ids.ts): no key index to maintain.
  if (!t.recentDedup) cols.push(`PRIMARY KEY (${t.key.map(q).join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${q(t.name)} (${cols.join(', ')})`;
}

/**
 * Columns added since a table was first created (a database written by an older Penumbra):
 * added at the end, nullable, so old rows read as NULL (`_sink_tx` 0: exported by the first
 * incremental export).
 */
export function migrateSql(t: TableShape): string[] {
  const out = t.columns.filter((c) => !t.key.includes(c.name)).map((c) => `ALTER TABLE ${q(t.name)} ADD COLUMN IF NOT EXISTS ${q(c.name)} ${c.type}`);
  if (t.source) out.push(`ALTER TABLE ${q(t.name)} ADD COLUMN IF NOT EXISTS ${q(SINK_TX)} BIGINT DEFAULT 0`);
  return out;
}

export const stageName = (t: TableShape): string => `_stage_${t.name}`;

/**
 * How a column is staged. BIGINT and TIMESTAMP (epoch ms) go in as DOUBLE: Avro longs are JS
 * numbers already (exact below 2^53), and appending a double needs no BigInt per cell — the
 * Appender calls are the sink's hottest JavaScript. The INSERT converts them back (stagedExpr).
 */
export function stageType(type: ColumnType): ColumnType {
  return type === 'BIGINT' || type === 'TIMESTAMP' ? 'DOUBLE' : type;
}

const stagedExpr = (c: { name: string; type: ColumnType }): string =>
  c.type === 'TIMESTAMP' ? `epoch_ms(${q(c.name)}::BIGINT)` : c.type === 'BIGINT' ? `${q(c.name)}::BIGINT` : q(c.name);

/** Staging twin: the table's columns (see stageType), no constraints, plus `_ord` (arrival order). */
export function createStageSql(t: TableShape): string {
  const cols = t.columns.map((c) => `${q(c.name)} ${stageType(c.type)}`);
  return `CREATE OR REPLACE TEMP TABLE ${q(stageName(t))} (${cols.join(', ')}, "_ord" INTEGER)`;
}

/**
 * The fast path of an insert-once table: every staged row into the table, stamped with
 * transaction `tx`; the primary key refuses the whole statement if any key is already stored
 * or repeated (then the sink redoes the chunk with mergeSql).
 */
export function insertSql(t: TableShape, tx: bigint | number): string {
  const names = t.columns.map((c) => q(c.name)).join(', ');
  return `INSERT INTO ${q(t.name)} (${names}, ${q(SINK_TX)}) SELECT ${t.columns.map(stagedExpr).join(', ')}, ${BigInt(tx)}::BIGINT FROM ${q(stageName(t))}`;
}

/**
 * Move the staged rows into the table, stamped with transaction `tx`, de-duplicating. Duplicates
 * inside the batch are collapsed first (the first arrival for insert-once tables, the last for
 * upserts) so ON CONFLICT only ever meets rows already stored by earlier transactions.
 */
export function mergeSql(t: TableShape, tx: bigint | number = 0): string {
  const names = [...t.columns.map((c) => q(c.name)), q(SINK_TX)].join(', ');
  const exprs = [...t.columns.map(stagedExpr), `${BigInt(tx)}::BIGINT`].join(', ');
  const order = t.mode === 'upsert' ? 'DESC' : 'ASC';
  const dedup = `QUALIFY row_number() OVER (PARTITION BY ${t.key.map(q).join(', ')} ORDER BY "_ord" ${order}) = 1`;
  const onConflict =
    t.mode === 'upsert'
      ? `ON CONFLICT (${t.key.map(q).join(', ')}) DO UPDATE SET ${[...t.columns.filter((c) => !t.key.includes(c.name)).map((c) => c.name), SINK_TX]
          .map((c) => `${q(c)} = excluded.${q(c)}`)
          .join(', ')}`
      : 'ON CONFLICT DO NOTHING';
  return `INSERT INTO ${q(t.name)} (${names}) SELECT ${exprs} FROM ${q(stageName(t))} ${dedup} ${onConflict}`;
}

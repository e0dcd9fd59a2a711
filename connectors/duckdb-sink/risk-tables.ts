/**
 * Warehouse tables of predictive shadowing (issue #13), in their own file so the feature's
 * tables sit together: change features per ingested version, risk scores, rollout outcomes
 * (the model's labels) and model versions. Same contract as tables.ts (documented column by
 * column in docs/warehouse.md; a unit test checks it).
 */
import type { TableSpec } from './tables.ts';

const json = (v: unknown): string => JSON.stringify(v);

export const CHANGE_FEATURES: TableSpec<'change-features'> = {
  name: 'change_features',
  source: { topic: 'changeFeatures', schema: 'change-features' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'computed_at',
  doc: 'What changed between the current version of an item and a newly ingested one, plus the item history (pipeline/change-features/README.md documents every field). One row per ingest that produced a version.',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Record id.' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'version', type: 'VARCHAR', notNull: true, doc: 'Newly ingested version.' },
    { name: 'previous_version', type: 'VARCHAR', doc: 'Version compared with; NULL for a first version.' },
    { name: 'version_bump', type: 'VARCHAR', notNull: true, doc: 'first, major, minor, patch, prerelease, same, downgrade or other.' },
    { name: 'request_id', type: 'VARCHAR', doc: 'Ingest request.' },
    { name: 'proactive', type: 'BOOLEAN', notNull: true, doc: 'Ingested proactively (goes out as a shadow).' },
    { name: 'computed_at', type: 'TIMESTAMP', notNull: true, doc: 'When the features were computed.' },
    { name: 'total_files', type: 'INTEGER', notNull: true, doc: 'Files in the new version (manifest excluded).' },
    { name: 'total_bytes', type: 'BIGINT', notNull: true, doc: 'Their bytes.' },
    { name: 'files_added', type: 'INTEGER', notNull: true, doc: 'Paths only in the new version.' },
    { name: 'files_removed', type: 'INTEGER', notNull: true, doc: 'Paths only in the previous version.' },
    { name: 'files_changed', type: 'INTEGER', notNull: true, doc: 'Paths in both with different bytes.' },
    { name: 'bytes_added', type: 'BIGINT', notNull: true, doc: 'Bytes of added files.' },
    { name: 'bytes_removed', type: 'BIGINT', notNull: true, doc: 'Bytes of removed files.' },
    { name: 'bytes_changed', type: 'BIGINT', notNull: true, doc: 'Bytes (new side) of changed files.' },
    { name: 'script_bytes', type: 'BIGINT', notNull: true, doc: 'Script bytes of the new version (files and inline scripts).' },
    { name: 'previous_script_bytes', type: 'BIGINT', notNull: true, doc: 'Script bytes of the previous version.' },
    { name: 'script_growth', type: 'DOUBLE', notNull: true, doc: '(script_bytes - previous_script_bytes) / max(previous_script_bytes, 1024).' },
    { name: 'script_files_added', type: 'INTEGER', notNull: true, doc: 'Added script files.' },
    { name: 'script_files_changed', type: 'INTEGER', notNull: true, doc: 'Changed script files and HTML pages with changed inline scripts.' },
    { name: 'new_origins_json', type: 'VARCHAR', notNull: true, doc: 'External origins not referenced before, JSON array text.' },
    { name: 'removed_origins_json', type: 'VARCHAR', notNull: true, doc: 'Origins no longer referenced, JSON array text.' },
    { name: 'new_endpoints_json', type: 'VARCHAR', notNull: true, doc: 'Endpoint URLs not referenced before, JSON array text.' },
    { name: 'removed_endpoints_json', type: 'VARCHAR', notNull: true, doc: 'Endpoint URLs no longer referenced, JSON array text.' },
    { name: 'origins_json', type: 'VARCHAR', notNull: true, doc: 'Every external origin of the new version, JSON array text.' },
    { name: 'manifest_changed_keys_json', type: 'VARCHAR', notNull: true, doc: 'Manifest keys added, removed or changed, JSON array text.' },
    { name: 'entry_changed', type: 'BOOLEAN', notNull: true, doc: 'The entry point changed.' },
    { name: 'manifest_endpoints_json', type: 'VARCHAR', notNull: true, doc: 'Manifest endpoint keys {added, removed, changed}, JSON object text.' },
    { name: 'prior_rollouts', type: 'INTEGER', notNull: true, doc: 'Earlier rollouts of the item with an outcome.' },
    { name: 'prior_regressions', type: 'INTEGER', notNull: true, doc: 'Of those, regressions.' },
    { name: 'last_outcome', type: 'VARCHAR', doc: 'regression or success of the last earlier rollout.' },
    { name: 'current_error_rate', type: 'DOUBLE', doc: 'Recent error-session rate of the current version.' },
    { name: 'current_sessions', type: 'BIGINT', notNull: true, doc: 'Sessions behind current_error_rate.' },
    { name: 'hours_since_previous', type: 'DOUBLE', doc: 'Hours since the current version was ingested.' },
    { name: 'inputs_json', type: 'VARCHAR', notNull: true, doc: "The model's named inputs, JSON object text (what the trainer reads)." },
  ],
  rows: (f) => [[
    f.id, f.itemId, f.version, f.previousVersion, f.versionBump, f.requestId, f.proactive, f.computedAt, f.totalFiles, f.totalBytes,
    f.filesAdded, f.filesRemoved, f.filesChanged, f.bytesAdded, f.bytesRemoved, f.bytesChanged, f.scriptBytes, f.previousScriptBytes,
    f.scriptGrowth, f.scriptFilesAdded, f.scriptFilesChanged, json(f.newOrigins), json(f.removedOrigins), json(f.newEndpoints),
    json(f.removedEndpoints), json(f.origins), json(f.manifestChangedKeys), f.entryChanged,
    json({ added: f.manifestEndpointsAdded, removed: f.manifestEndpointsRemoved, changed: f.manifestEndpointsChanged }),
    f.history.priorRollouts, f.history.priorRegressions, f.history.lastOutcome, f.history.currentErrorRate, f.history.currentSessions,
    f.hoursSincePrevious, json(f.inputs),
  ]],
};

export const RISK_SCORES: TableSpec<'risk-score'> = {
  name: 'risk_scores',
  source: { topic: 'riskScores', schema: 'risk-score' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'at',
  doc: 'Rollout-risk scores: at ingest from the change features, and updated with the rollout telemetry (pipeline/risk-model/README.md).',
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Score id.' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'version', type: 'VARCHAR', notNull: true, doc: 'Version scored.' },
    { name: 'shadow', type: 'VARCHAR', doc: 'Shadow carrying the version.' },
    { name: 'features_id', type: 'VARCHAR', doc: 'change_features.id scored.' },
    { name: 'phase', type: 'VARCHAR', notNull: true, doc: 'ingest or update.' },
    { name: 'source', type: 'VARCHAR', notNull: true, doc: 'model or prior.' },
    { name: 'model_version', type: 'BIGINT', doc: 'Model version; NULL for the prior.' },
    { name: 'probability', type: 'DOUBLE', notNull: true, doc: 'Probability of a regression.' },
    { name: 'low', type: 'DOUBLE', doc: 'Lower end of the 90 % interval (prior).' },
    { name: 'high', type: 'DOUBLE', doc: 'Upper end of the 90 % interval (prior).' },
    { name: 'explanation_json', type: 'VARCHAR', notNull: true, doc: 'Per-input log-odds contributions [{feature, value, contribution}], JSON text.' },
    { name: 'note', type: 'VARCHAR', notNull: true, doc: 'Plain-language summary.' },
    { name: 'evidence_json', type: 'VARCHAR', doc: 'Telemetry behind an update, JSON text.' },
    { name: 'at', type: 'TIMESTAMP', notNull: true, doc: 'When.' },
  ],
  rows: (s) => [[s.id, s.itemId, s.version, s.shadow, s.featuresId, s.phase, s.source, s.modelVersion, s.probability, s.low, s.high, json(s.explanation), s.note, s.evidenceJson, s.at]],
};

export const ROLLOUT_OUTCOMES: TableSpec<'rollout-outcome'> = {
  name: 'rollout_outcomes',
  source: { topic: 'riskOutcomes', schema: 'rollout-outcome' },
  key: ['id'],
  mode: 'insert-once',
  partitionBy: 'decided_at',
  doc: "How each version's rollout ended: the risk model's labels.",
  columns: [
    { name: 'id', type: 'VARCHAR', notNull: true, doc: 'Outcome id.' },
    { name: 'item_id', type: 'VARCHAR', notNull: true, doc: 'Item.' },
    { name: 'version', type: 'VARCHAR', notNull: true, doc: 'Version whose rollout ended.' },
    { name: 'shadow', type: 'VARCHAR', doc: 'Shadow that carried it.' },
    { name: 'outcome', type: 'VARCHAR', notNull: true, doc: 'regression or success.' },
    { name: 'cause', type: 'VARCHAR', notNull: true, doc: 'guardrail_rollback, analysis_rollback, operator_rollback, promoted, plan_done, superseded (schedule_done: written before schedules ran as rollout plans).' },
    { name: 'actor', type: 'VARCHAR', notNull: true, doc: 'Who made the ending change.' },
    { name: 'profile_version', type: 'BIGINT', notNull: true, doc: 'Profile version that ended it.' },
    { name: 'started_at', type: 'TIMESTAMP', doc: 'When the rollout began, when known.' },
    { name: 'decided_at', type: 'TIMESTAMP', notNull: true, doc: 'When it ended.' },
  ],
  rows: (o) => [[o.id, o.itemId, o.version, o.shadow, o.outcome, o.cause, o.actor, o.profileVersion, o.startedAt, o.decidedAt]],
};

export const RISK_MODELS: TableSpec<'risk-model'> = {
  name: 'risk_models',
  source: { topic: 'riskModels', schema: 'risk-model' },
  key: ['name', 'version'],
  mode: 'insert-once',
  partitionBy: null,
  doc: 'Every trained risk model version (the ONNX file and metadata are blobs).',
  columns: [
    { name: 'name', type: 'VARCHAR', notNull: true, doc: 'Model name.' },
    { name: 'version', type: 'BIGINT', notNull: true, doc: 'Model version.' },
    { name: 'kind', type: 'VARCHAR', notNull: true, doc: 'Estimator.' },
    { name: 'onnx_sha256', type: 'VARCHAR', notNull: true, doc: 'Blob key of the ONNX file.' },
    { name: 'metadata_sha256', type: 'VARCHAR', notNull: true, doc: 'Blob key of the metadata JSON.' },
    { name: 'features_json', type: 'VARCHAR', notNull: true, doc: 'Input names, JSON array text.' },
    { name: 'window_start', type: 'TIMESTAMP', notNull: true, doc: 'Oldest outcome the training data may hold.' },
    { name: 'window_end', type: 'TIMESTAMP', notNull: true, doc: 'When the training data was read.' },
    { name: 'training_rows', type: 'INTEGER', notNull: true, doc: 'Labelled rollouts trained on.' },
    { name: 'positives', type: 'INTEGER', notNull: true, doc: 'Regressions among them.' },
    { name: 'auc', type: 'DOUBLE', doc: 'Cross-validated ROC AUC.' },
    { name: 'brier', type: 'DOUBLE', doc: 'Cross-validated Brier score.' },
    { name: 'trained_by', type: 'VARCHAR', notNull: true, doc: 'Who trained it.' },
    { name: 'trained_at', type: 'TIMESTAMP', notNull: true, doc: 'When.' },
  ],
  rows: (m) => [[m.name, m.version, m.kind, m.onnxSha256, m.metadataSha256, json(m.features), m.windowStart, m.windowEnd, m.trainingRows, m.positives, m.auc, m.brier, m.trainedBy, m.trainedAt]],
};

export const RISK_TABLES = [CHANGE_FEATURES, ROLLOUT_OUTCOMES, RISK_SCORES, RISK_MODELS] as unknown as TableSpec[];

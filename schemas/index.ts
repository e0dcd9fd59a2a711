/**
 * Avro schemas of every topic, loaded from schemas/avro/<name>.v<N>.avsc. The highest version
 * of each name is the one we write; older versions stay in the folder so tests can prove each
 * change is BACKWARD compatible (new reader reads old data), the rule the registry enforces.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { TopicNames } from '../pipeline/config/config.ts';

export const SCHEMA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'avro');

export type SchemaName =
  | 'item-ingest-request'
  | 'catalog-entry'
  | 'shadow-profile'
  | 'shadow-command'
  | 'command-outcome'
  | 'resolver-status'
  | 'assignment'
  | 'telemetry-event'
  | 'metric-window'
  | 'alert'
  | 'alert-rule'
  | 'audit-entry'
  | 'dead-letter'
  | 'change-features'
  | 'risk-score'
  | 'rollout-outcome'
  | 'risk-model'
  | 'segment'
  | 'segment-status'
  | 'segment-membership'
  | 'pin'
  | 'pin-policy'
  | 'bandit-sticky'
  | 'rollout-decision'
  | 'item-comparisons';

/** Which schema each topic's values use (keys are plain UTF-8 strings). */
export const TOPIC_SCHEMAS: Record<keyof TopicNames, SchemaName> = {
  itemsIngest: 'item-ingest-request',
  itemsCatalog: 'catalog-entry',
  shadowProfiles: 'shadow-profile',
  shadowCommands: 'shadow-command',
  shadowOutcomes: 'command-outcome',
  resolvers: 'resolver-status',
  assignments: 'assignment',
  telemetryRaw: 'telemetry-event',
  telemetryMetrics: 'metric-window',
  telemetryByItem: 'telemetry-event',
  telemetryLive: 'metric-window',
  alerts: 'alert',
  alertRules: 'alert-rule',
  audit: 'audit-entry',
  dlq: 'dead-letter',
  changeFeatures: 'change-features',
  riskScores: 'risk-score',
  riskOutcomes: 'rollout-outcome',
  riskModels: 'risk-model',
  segments: 'segment',
  segmentStatus: 'segment-status',
  segmentMemberships: 'segment-membership',
  pins: 'pin',
  pinPolicies: 'pin-policy',
  banditSticky: 'bandit-sticky',
  rolloutDecisions: 'rollout-decision',
  comparisons: 'item-comparisons',
};

export interface SchemaFile {
  name: SchemaName;
  version: number;
  file: string;
  schema: avro.Schema & { name: string; namespace?: string };
}

export function listSchemaFiles(dir = SCHEMA_DIR): SchemaFile[] {
  return readdirSync(dir)
    .map((f) => /^(.+)\.v(\d+)\.avsc$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      name: m[1] as SchemaName,
      version: Number(m[2]),
      file: path.join(dir, m[0]),
      schema: JSON.parse(readFileSync(path.join(dir, m[0]), 'utf8')),
    }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
}

let latestCache: Map<SchemaName, SchemaFile> | null = null;

export function latestSchemas(): Map<SchemaName, SchemaFile> {
  if (!latestCache) {
    latestCache = new Map();
    for (const f of listSchemaFiles()) latestCache.set(f.name, f);
  }
  return latestCache;
}

export function schemaFor(name: SchemaName): SchemaFile {
  const s = latestSchemas().get(name);
  if (!s) throw new Error(`no Avro schema named ${name} in ${SCHEMA_DIR}`);
  return s;
}

const typeCache = new Map<SchemaName, avro.Type>();
/** avsc Type of the latest schema; unions are unwrapped (plain JS values, null for null). */
export function avroType(name: SchemaName): avro.Type {
  let t = typeCache.get(name);
  if (!t) {
    t = avro.Type.forSchema(schemaFor(name).schema as avro.Schema);
    typeCache.set(name, t);
  }
  return t;
}

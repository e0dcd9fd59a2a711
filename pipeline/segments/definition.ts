/**
 * Segment definitions (pure): the shape an operator sends to /api/v1/segments, its limits, and
 * the SQL text checks that need no database. Whether the SQL is one SELECT returning `user_id`
 * over the warehouse views is decided by DuckDB itself (sandbox.ts prepares it), because only
 * the engine's parser knows what a statement is.
 */
import { z } from 'zod';
import type { Segment } from '../../schemas/types.generated.ts';
import { SEGMENT_ID } from '../traffic-split/validate.ts';

export type { Segment };
/** Segment ids appear in targeting rules (`segment in [power-users]`), so they are slugs. */
export { SEGMENT_ID };
export const MAX_SQL_LENGTH = 20_000;
export const MAX_SEGMENTS = 100;
export const MAX_TIMEOUT_MS = 120_000;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_SCHEDULE_SECONDS = 300;

/** Deployment-wide limits (PENUMBRA_SEGMENT_* in the configuration). */
export interface SegmentLimits {
  /** Largest maxMembers a segment may ask for. */
  maxMembers: number;
  /** Members of all segments together that every resolver holds (8 bytes each). */
  totalMembers: number;
  /** Shortest scheduleSeconds. */
  minIntervalSeconds: number;
}

export const DEFAULT_SEGMENT_LIMITS: SegmentLimits = { maxMembers: 1_000_000, totalMembers: 4_000_000, minIntervalSeconds: 60 };

export function segmentInputSchema(limits: SegmentLimits) {
  return z
    .object({
      id: z.string().regex(SEGMENT_ID, 'lower-case letters, digits, _ and -, starting with a letter or digit, at most 64').describe('Segment id used in rules: segment in [<id>]'),
      name: z.string().trim().min(1, 'name the segment').max(200).describe('Human name'),
      description: z.string().max(2000).default('').describe('What the segment means'),
      sql: z
        .string()
        .max(MAX_SQL_LENGTH, `at most ${MAX_SQL_LENGTH} characters`)
        .transform(normaliseSql)
        .refine((s) => s.length > 0, 'give one SELECT returning a user_id column')
        .describe('One SELECT over the warehouse views (telemetry_events, assignments, metric_windows, alerts, …) returning a column user_id'),
      scheduleSeconds: z.number().int().min(limits.minIntervalSeconds, `at least ${limits.minIntervalSeconds} s (PENUMBRA_SEGMENT_MIN_INTERVAL_SECONDS)`).max(7 * 24 * 3600).default(Math.max(DEFAULT_SCHEDULE_SECONDS, limits.minIntervalSeconds)).describe('Seconds between evaluations'),
      timeoutMs: z.number().int().min(100).max(MAX_TIMEOUT_MS).default(DEFAULT_TIMEOUT_MS).describe('Time limit of one evaluation'),
      maxMembers: z.number().int().min(1).max(limits.maxMembers, `at most ${limits.maxMembers} (PENUMBRA_SEGMENT_MAX_MEMBERS)`).default(limits.maxMembers).describe('Size limit; more users keeps the last good membership'),
      enabled: z.boolean().default(true).describe('False pauses evaluation; the last membership stays in force'),
    })
    .strict();
}

export type SegmentInput = z.output<ReturnType<typeof segmentInputSchema>>;

/**
 * Trims whitespace and trailing semicolons: `SELECT …;` is what people paste, and the query is
 * embedded as a subquery (sql.ts), where a semicolon would be a syntax error.
 */
export function normaliseSql(sql: string): string {
  return sql.trim().replace(/(;\s*)+$/, '').trim();
}

/** What the API returns for a definition. */
export interface SegmentView {
  id: string;
  name: string;
  description: string;
  sql: string;
  scheduleSeconds: number;
  timeoutMs: number;
  maxMembers: number;
  enabled: boolean;
  updatedBy: string;
  updatedAt: number;
}

export function segmentView(s: Segment): SegmentView {
  const { deleted: _deleted, ...rest } = s;
  return rest;
}

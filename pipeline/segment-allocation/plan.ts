/**
 * Per-segment allocation of a bandit (issue 14 item 4): the model of `bandit.segments` and of
 * the per-cell state, pure.
 *
 * A **cell** is one value of one dimension: a device type, a country, or an SQL segment of
 * pipeline/segments. Each cell has its own arm weights, learned by Thompson sampling on the
 * sessions of the users allocated in that cell, and its own guardrail drops. Users in no cell
 * (and every user while a cell has no state) take the bandit's global weights — the bandit of
 * pipeline/bandit, unchanged. Who is in the experiment stays the arms' traffic shares' business.
 *
 * Decision (docs/segments.md): one dimension per bandit. A user is then in at most one cell
 * with an O(1) lookup for device type and country (one Map.get); for SQL segments, where a user
 * can be in several, the cells are in priority order and the first one the user is in wins
 * (at most MAX_CELLS membership lookups, each a hash probe).
 */
import { z } from 'zod';
import type { FieldIssue } from '../errors.ts';

export type SegmentDimension = 'deviceType' | 'country' | 'segment';

export interface SegmentSplit {
  by: SegmentDimension;
  /** Cell values in priority order. */
  cells: string[];
  /** Sessions every live arm needs in a cell before its weights leave equal shares (null: the bandit's). */
  burnInSessions: number | null;
}

export const MAX_CELLS = 16;

/**
 * The cell of every user in none of the listed cells. Decision: in per-segment mode the rest is
 * a cell like the others (its own weights, posteriors and guardrail cuts), so every user of the
 * bandit is allocated — and judged — by exactly one cell, and the global bandit's own
 * reweighting and guardrails stand aside (pipeline/rollout/analyzer.ts skips a bandit with
 * segments): a shadow that regresses in one cell must not be cut everywhere by a global
 * comparison that the regressing cell dominates.
 */
export const REST_CELL = '*';

export const segmentSplitSchema = z.strictObject({
  by: z.enum(['deviceType', 'country', 'segment'], { message: 'must be "deviceType", "country" or "segment"' }),
  cells: z.array(z.string().min(1, 'must not be empty').max(128)).min(1, 'at least one cell').max(MAX_CELLS, `at most ${MAX_CELLS} cells`),
  burnInSessions: z.number().int('must be a whole number').min(0).max(10_000_000).nullable().default(null),
});

/** Issues beyond the shape: duplicate cells. */
export function segmentSplitIssues(s: SegmentSplit, prefix: string): FieldIssue[] {
  const seen = new Set<string>();
  const issues: FieldIssue[] = [];
  s.cells.forEach((c, i) => {
    if (c === REST_CELL) issues.push({ path: `${prefix}/cells/${i}`, message: `"${REST_CELL}" is the cell of everyone else; it is always there` });
    if (seen.has(c)) issues.push({ path: `${prefix}/cells/${i}`, message: `duplicate cell "${c}"` });
    seen.add(c);
  });
  return issues;
}

/** A cell's runtime state (in BanditState.cells, changed only by commands). */
export interface CellState {
  cell: string;
  /** Per-segment reweightings of this cell so far. */
  epoch: number;
  /** Weight per arm, in armsOf(plan) order; dropped arms 0. */
  weights: { arm: string; weight: number }[];
  /** Arms cut off in this cell only. */
  dropped: { arm: string; epoch: number; reason: string }[];
  lastReweightAt: number | null;
  /** An operator's fixed weights: the automated mode leaves the cell alone until released. */
  override: { actor: string; reason: string | null; at: number } | null;
}

/** Cells at the start of a run: the global starting weights everywhere. */
export function startCells(split: SegmentSplit, weights: readonly { arm: string; weight: number }[]): CellState[] {
  return [...split.cells, REST_CELL].map((cell) => ({ cell, epoch: 0, weights: weights.map((w) => ({ ...w })), dropped: [], lastReweightAt: null, override: null }));
}

/** Human name of a cell, e.g. `deviceType=android`, `segment=power-users`. */
export function cellLabel(by: SegmentDimension, cell: string): string {
  return cell === REST_CELL ? `${by}=other` : `${by}=${cell}`;
}

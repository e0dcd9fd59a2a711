/**
 * The resolver's side of per-segment allocation (pure, hot path): which cell a user is in, and
 * that cell's weights, in O(1) and without allocating per resolve.
 *
 * `compiledCells(plan, state)` is computed once per BanditState object (the profile store hands
 * out a new object per accepted command) and cached in a WeakMap: a Map from cell value to cell
 * index for device type and country (one Map.get per resolve), the cells in priority order for
 * SQL segments (at most MAX_CELLS membership probes, each a hash lookup in the SegmentIndex), and
 * per cell the weights in allocation order with every arm the GLOBAL bandit dropped set to 0 (a
 * global drop wins in every cell at once, without waiting for a per-segment reweighting).
 */
import type { SegmentLookup, UserContext } from '../domain/types.ts';
import { armsOf, type BanditPlan, type BanditState } from '../bandit/plan.ts';
import { REST_CELL } from './plan.ts';

export interface CompiledCells {
  by: 'deviceType' | 'country' | 'segment';
  /** Listed cells (in priority order), then the rest cell `*` last. */
  names: readonly string[];
  /** How many of `names` are listed cells (the rest cell is at this index, or -1 when absent). */
  listed: number;
  rest: number;
  /** deviceType / country: cell value → index. */
  index: ReadonlyMap<string, number>;
  /** Per cell, weights in armsOf(plan) order (global drops zeroed). */
  weights: readonly (readonly { arm: string; weight: number }[])[];
}

const cache = new WeakMap<BanditState, CompiledCells | null>();

export function compiledCells(plan: BanditPlan, state: BanditState): CompiledCells | null {
  const hit = cache.get(state);
  if (hit !== undefined) return hit;
  let out: CompiledCells | null = null;
  const split = plan.segments;
  if (split && state.cells && state.cells.length > 0) {
    const arms = armsOf(plan);
    const globallyDropped = new Set(state.dropped.map((d) => d.arm));
    const byCell = new Map(state.cells.map((c) => [c.cell, c]));
    const listed = split.cells.filter((c) => byCell.has(c));
    const names = byCell.has(REST_CELL) ? [...listed, REST_CELL] : listed;
    out = {
      by: split.by,
      names,
      listed: listed.length,
      rest: byCell.has(REST_CELL) ? listed.length : -1,
      index: new Map(listed.map((c, i) => [c, i])),
      weights: names.map((c) => {
        const w = new Map(byCell.get(c)!.weights.map((x) => [x.arm, x.weight]));
        return arms.map((arm) => ({ arm, weight: globallyDropped.has(arm) ? 0 : w.get(arm) ?? 0 }));
      }),
    };
  }
  cache.set(state, out);
  return out;
}

/** Index of the user's cell: a listed cell, else the rest cell; -1 only without any cell state (global weights). */
export function cellIndexOf(c: CompiledCells, user: Pick<UserContext, 'userId' | 'deviceType' | 'country'>, segments: SegmentLookup | undefined): number {
  if (c.by === 'deviceType') return typeof user.deviceType === 'string' ? c.index.get(user.deviceType) ?? c.rest : c.rest;
  if (c.by === 'country') return typeof user.country === 'string' ? c.index.get(user.country) ?? c.rest : c.rest;
  if (segments === undefined || typeof user.userId !== 'string' || user.userId === '') return c.rest;
  // Priority order: the first listed segment the user is known to be in. Unknown (-1) is not in.
  for (let i = 0; i < c.listed; i++) if (segments.membership(c.names[i], user.userId) === 1) return i;
  return c.rest;
}

/** Whether `arm` takes users in `cell` (a cell the state does not know: the global answer stands). */
export function armLiveInCell(plan: BanditPlan, state: BanditState, cell: string, arm: string): boolean {
  const c = compiledCells(plan, state);
  if (!c) return true;
  const i = cell === REST_CELL ? c.rest : c.index.get(cell) ?? -1;
  if (i < 0) return true;
  const w = c.weights[i];
  for (let k = 0; k < w.length; k++) if (w[k].arm === arm) return w[k].weight > 0;
  return false;
}

/**
 * Sticky bandit assignments, in memory, as rebuilt from the compacted topic
 * `penumbra.bandit.sticky` (key `<itemId length>:<itemId>:<userId>`) that every resolver follows
 * from the beginning. The topic is the durable store; this index is each resolver's copy.
 *
 * Records carry the bandit's run (its startedAt): a newer run of an item's bandit starts with
 * nobody sticky, and records of an older run are ignored. Within a run, which record wins for one
 * user (the same answer in every resolver, whatever order the records arrive in):
 *  1. a record whose arm is live beats one whose arm was dropped (a dropped arm's users are
 *     re-assigned, and that re-assignment is the new sticky record);
 *  2. otherwise the EARLIER epoch wins — the user's first exposure. Two resolvers can only
 *     disagree for a new user who resolved on both within the moment a reweighting propagated;
 *     both then keep the first;
 *  3. same epoch, different arms (not produced by the pick, which is deterministic per epoch):
 *     the smaller arm name, so the rule is total.
 * `apply` reports `kept` when an arriving record lost to the one held: the caller re-publishes
 * the held record, so compaction (which keeps the LAST record per key) ends on the winner too.
 *
 * Memory: per user one Map entry keyed by the userId string with a small integer value (epoch
 * and an index into a per-item table of arm names). Measured (Node 20, one million 36-character
 * ids decoded from buffers as Kafka delivers them, `node --expose-gc`): ≈ 86 bytes of heap per
 * sticky user including the id string — about 86 MB per million users exposed to a bandit, in
 * every resolver. Only users who resolved into a bandit's population have an entry.
 */

export interface StickyRecord {
  itemId: string;
  userId: string;
  /** The bandit run (its startedAt): records of an earlier run of the item's bandit are stale. */
  run: number;
  arm: string;
  /** Bandit epoch (reweight count) of the weights the arm was picked with. */
  epoch: number;
  at: number;
  /** Cell of per-segment allocation whose weights picked the arm (pipeline/segment-allocation); null/absent = the global weights. */
  cell?: string | null;
}

export type ApplyOutcome = 'taken' | 'same' | 'kept' | 'stale';

/** Epoch, cell and arm index share one small integer (arms per item ≤ 1024; cells ≤ 31, 0 = none). */
const ARM_BITS = 1024;
const CELL_BITS = 32;

interface ItemTable {
  run: number;
  arms: string[];
  armIndex: Map<string, number>;
  /** Cell names; index 0 is "no cell" (the global weights). */
  cells: string[];
  users: Map<string, number>;
}

export function stickyKey(itemId: string, userId: string): string {
  return `${itemId.length}:${itemId}:${userId}`;
}

export class StickyIndex {
  private readonly items = new Map<string, ItemTable>();

  private table(itemId: string, run: number): ItemTable | null {
    const t = this.items.get(itemId);
    if (t && t.run > run) return null;
    if (t && t.run === run) return t;
    // A newer run of the item's bandit starts from nobody sticky.
    const fresh: ItemTable = { run, arms: [], armIndex: new Map(), cells: [''], users: new Map() };
    this.items.set(itemId, fresh);
    return fresh;
  }

  /** The user's sticky arm in bandit run `run`, if any. */
  get(itemId: string, userId: string, run: number): { arm: string; epoch: number } | undefined {
    const t = this.items.get(itemId);
    if (t === undefined || t.run !== run) return undefined;
    const v = t.users.get(userId);
    if (v === undefined) return undefined;
    return { arm: t.arms[v % ARM_BITS], epoch: Math.floor(v / ARM_BITS / CELL_BITS) };
  }

  /**
   * The cell a user's arm was picked in (null: the global weights; undefined: not sticky in run
   * `run`). The segment-allocation analyzer attributes the user's sessions to it.
   */
  cellOf(itemId: string, userId: string, run: number): string | null | undefined {
    const t = this.items.get(itemId);
    if (t === undefined || t.run !== run) return undefined;
    const v = t.users.get(userId);
    if (v === undefined) return undefined;
    const c = Math.floor(v / ARM_BITS) % CELL_BITS;
    return c === 0 ? null : t.cells[c];
  }

  /**
   * Folds a record in by the winner rule. `isLive(itemId, arm, cell)` says whether an arm can take
   * users now (not dropped, bandit not stopped).
   */
  apply(rec: StickyRecord, isLive: (itemId: string, arm: string, cell: string | null) => boolean): ApplyOutcome {
    const t = this.table(rec.itemId, rec.run);
    if (t === null) return 'stale';
    const held = this.get(rec.itemId, rec.userId, rec.run);
    if (held && held.arm === rec.arm && held.epoch === rec.epoch) return 'same';
    if (held) {
      // Per-segment allocation: an arm cut in the cell of a record is not live for that record.
      const heldLive = isLive(rec.itemId, held.arm, this.cellOf(rec.itemId, rec.userId, rec.run) ?? null);
      const recLive = isLive(rec.itemId, rec.arm, rec.cell ?? null);
      let take: boolean;
      if (heldLive !== recLive) take = recLive;
      else if (!heldLive) take = rec.epoch >= held.epoch; // both dead: keep the newest, it will be re-assigned anyway
      else if (rec.epoch !== held.epoch) take = rec.epoch < held.epoch;
      else take = rec.arm < held.arm;
      if (!take) return held.arm === rec.arm ? 'same' : 'kept';
    }
    let idx = t.armIndex.get(rec.arm);
    if (idx === undefined) {
      idx = t.arms.length;
      if (idx >= ARM_BITS) throw new RangeError(`more than ${ARM_BITS} distinct arm names for ${rec.itemId}`);
      t.arms.push(rec.arm);
      t.armIndex.set(rec.arm, idx);
    }
    let ci = 0;
    if (rec.cell) {
      ci = t.cells.indexOf(rec.cell);
      if (ci < 0) {
        ci = t.cells.length;
        if (ci >= CELL_BITS) ci = 0; // more cells than a plan can have: attribute to the global weights
        else t.cells.push(rec.cell);
      }
    }
    t.users.set(rec.userId, (rec.epoch * CELL_BITS + ci) * ARM_BITS + idx);
    return 'taken';
  }

  /** Sticky users of the item's bandit run `run`, per arm (for the API and tests). */
  counts(itemId: string, run: number): Record<string, number> {
    const t = this.items.get(itemId);
    const out: Record<string, number> = {};
    if (!t || t.run !== run) return out;
    for (const v of t.users.values()) {
      const arm = t.arms[v % ARM_BITS];
      out[arm] = (out[arm] ?? 0) + 1;
    }
    return out;
  }

  /** Sticky users of run `run` per cell (`''` = the global weights) and arm (per-segment allocation's view). */
  countsByCell(itemId: string, run: number): Record<string, Record<string, number>> {
    const t = this.items.get(itemId);
    const out: Record<string, Record<string, number>> = {};
    if (!t || t.run !== run) return out;
    for (const v of t.users.values()) {
      const arm = t.arms[v % ARM_BITS];
      const cell = t.cells[Math.floor(v / ARM_BITS) % CELL_BITS];
      const c = (out[cell] ??= {});
      c[arm] = (c[arm] ?? 0) + 1;
    }
    return out;
  }

  get size(): number {
    let n = 0;
    for (const t of this.items.values()) n += t.users.size;
    return n;
  }
}

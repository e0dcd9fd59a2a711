/**
 * One row of bench/results.json: ours vs a peer (or the raw limit) measured side by side in
 * the same run. `ratio` is ours ÷ peer, so read it with the unit's direction in mind
 * (higher-is-better for throughput, lower-is-better for latency/size).
 */
export interface BenchResult {
  name: string;
  unit: string;
  ours: number;
  peer: number | null;
  peerName: string | null;
  ratio: number | null;
  /** Free-form extra numbers (p50/p99, targets) shown in the table. */
  notes?: string;
}

export interface BenchOptions {
  quick: boolean;
}

/** Every bench/*.bench.ts exports `run` with this shape; bench/run.ts collects them. */
export type BenchModule = { run(opts: BenchOptions): Promise<BenchResult[]> };

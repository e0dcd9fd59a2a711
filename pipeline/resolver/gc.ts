/**
 * The resolver-only process's young-generation GC setting (issue 15 item 3, resolve p99): pure.
 *
 * V8 scavenges the young generation with helper threads (parallel scavenge) and the answers'
 * thread waits until the last helper is done. On a host with 2 cores or fewer those helpers only
 * get a core that the answers' thread, the load, the exposure worker and the broker already want,
 * so a descheduled helper stretches the whole pause. Measured under the resolve bench's load on
 * the shared 2-core machine (docs/scaling.md "Resolve, round 5"; bench/resolver-variants.ts, the
 * variants side by side in one run): with parallel scavenging off, the scavenge time fell in the
 * three runs that compared it alone (−34 %, −35 %, −18 %; mean pause 11.6 → 6.9, 8.9 → 5.4,
 * 6.7 → 5.8 ms); p99 52 → 49, 37 → 29 and 25.1 → 25.1 ms at load 12–26, within that load's
 * noise. With more cores the helpers have cores of their own, so `auto` keeps V8's default there.
 */
export type ParallelScavengeSetting = 'auto' | 'true' | 'false';

/** Whether to turn V8's parallel scavenge off for this process. */
export function parallelScavengeOff(setting: ParallelScavengeSetting, cores: number): boolean {
  return setting === 'false' || (setting === 'auto' && cores <= 2);
}

/**
 * Read-your-writes for state rebuilt from a followed topic: a route that has just produced a
 * change waits until the follower applied it, instead of answering with the old state.
 *
 * The in-memory stores (alert rules, segments, segment memberships, pins) call `wake()` after
 * each record they apply; `until(check)` resolves as soon as `check()` holds — at once when it
 * already does — or rejects with `<what> not visible yet` after `timeoutMs`, so a lost or slow
 * record becomes a clear error rather than a request that hangs.
 */
export class ChangeWaiters {
  private readonly waiters = new Set<{ check: () => boolean; resolve: () => void }>();

  constructor(private readonly what: string) {}

  until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { check, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.what} not visible yet`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Re-checks every waiter; called after each applied record (a copy: resolving edits the set). */
  wake(): void {
    if (this.waiters.size === 0) return;
    for (const w of [...this.waiters]) {
      if (w.check()) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }
}

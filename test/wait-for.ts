/** Polling helper shared by the integration tests (stream, fault tests). */

/** What `waitFor` polls: a value when ready; undefined, false, null or a throw mean "not yet". */
export type Probe<T> = () => Promise<T | undefined | false | null> | T | undefined | false | null;

/**
 * Calls `fn` every `everyMs` until it returns a value and resolves with it; after `timeoutMs`
 * rejects with an error naming `what` and the last error `fn` threw, if any.
 */
export async function waitFor<T>(what: string, fn: Probe<T>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false && v !== null) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Shared pieces of the fuzzers: run counts (FUZZ_RUNS scales every surface; default sizes keep
 * the whole fuzz folder at a few minutes on a 2-core machine), the response contract every
 * answer must meet, and a bounded-concurrency runner.
 */

/** Multiplier for every surface's run count: FUZZ_RUNS=0.1 for a smoke run, 3 for a long one. */
export function runs(base: number): number {
  const f = Number(process.env.FUZZ_RUNS ?? '1');
  return Math.max(1, Math.round(base * (Number.isFinite(f) && f > 0 ? f : 1)));
}

export interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * The contract of every HTTP answer: never a 5xx except 503 (a dependency is down, retry), and
 * every 4xx is problem+json whose `status` matches and whose `type` is one of ours. Returns a
 * description of the violation, or null.
 */
export function contractViolation(a: Answer): string | null {
  if (a.status >= 500 && a.status !== 503) return `status ${a.status}: ${a.body.slice(0, 300)}`;
  if (a.status >= 400) {
    if (!a.contentType.startsWith('application/problem+json')) return `${a.status} with content-type ${a.contentType}: ${a.body.slice(0, 200)}`;
    let p: { status?: unknown; type?: unknown; detail?: unknown };
    try {
      p = JSON.parse(a.body) as typeof p;
    } catch {
      return `${a.status} problem body is not JSON: ${a.body.slice(0, 200)}`;
    }
    if (p.status !== a.status) return `problem status ${String(p.status)} ≠ HTTP ${a.status}`;
    if (typeof p.type !== 'string' || !p.type.startsWith('https://penumbra.dev/problems/')) return `problem type ${String(p.type)}`;
    if (typeof p.detail !== 'string' || p.detail.length === 0) return 'problem without detail';
  }
  return null;
}

/** Run `task(i)` for i in [0, n) with at most `concurrency` in flight. */
export async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** A distinct documentation-range client address per request, so per-client rate limits (keyed on X-Forwarded-For from loopback) do not turn the run into 429s. */
export function clientIp(i: number): string {
  return `198.18.${(i >> 8) & 255}.${i & 255}`;
}

/**
 * Bounded questions to Kafka for health, lag and start-up checks.
 *
 * kafkajs clients retry (our client: 8 retries, up to 3 s apart), which is right for producing
 * and consuming but wrong for a health endpoint: with the broker down a health request used to
 * take ≈ 23 s, longer than any load balancer waits. Everything here asks once (retries: 0),
 * gives up at a deadline, and shares one in-flight question between concurrent callers so a
 * flood of health checks during an outage does not open a flood of connections.
 */
import type { Kafka } from 'kafkajs';
import { UnavailableError } from '../errors.ts';

/** Reject with `<what> timed out after <ms> ms` when `p` has not settled by then. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Callers arriving while a call is in flight get the same promise. The losing side of a
 * deadline keeps running in the background, and this is what stops it from piling up.
 */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  return () => (inFlight ??= fn().finally(() => (inFlight = null)));
}

/** An admin client that asks once; `kafka` should come from createProbeKafka (client.ts says why). */
export async function withAdmin<T>(kafka: Kafka, fn: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Number of brokers in the cluster, asked once. */
export function describeBrokers(kafka: Kafka): Promise<number> {
  return withAdmin(kafka, async (admin) => (await admin.describeCluster()).brokers.length);
}

/** The root cause text of a kafkajs error chain (ECONNREFUSED, not "Number of retries exceeded"). */
export function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; originalError?: unknown } | undefined;
  let msg = String(e?.message ?? err);
  for (let i = 0; i < 10 && e; i++) {
    if (e.message) msg = e.message;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return msg;
}

/**
 * Start-up check: can we reach any of `brokers`? Tries for up to `budgetMs` (a broker that is
 * still starting gets a chance), then throws one UnavailableError naming the brokers and the
 * variable that sets them, instead of kafkajs's error chain with stack frames.
 */
export async function assertKafkaReachable(kafka: Kafka, brokers: string[], budgetMs = 20_000): Promise<void> {
  const until = Date.now() + budgetMs;
  let last: unknown;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    try {
      await withDeadline(describeBrokers(kafka), 5000, 'Kafka metadata request');
      return;
    } catch (err) {
      last = err;
    }
    if (Date.now() + delay >= until) break;
    await new Promise((r) => setTimeout(r, delay));
  }
  throw new UnavailableError(
    `Kafka at ${brokers.join(', ')} is unreachable (${rootMessage(last)}) after ${Math.round(budgetMs / 1000)} s: ` +
      'start the local stack with `penumbra stack up`, or point KAFKA_BROKERS at a running broker',
    undefined,
    false,
  );
}

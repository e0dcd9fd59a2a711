/**
 * The assignment log: one Assignment record per resolve decision, produced to
 * penumbra.assignments (key: userId) off the request path.
 *
 * Writes: penumbra.assignments, in batches (every `flushMs` = 50 ms, or as soon as `maxBatch` =
 * 500 records wait). Guarantees: `enqueue` is O(1), never throws, never waits — a resolve must
 * not slow down or fail because Kafka is slow or gone. Delivery is at-least-once while the
 * process lives (a batch whose ack was lost is sent again; `id` lets readers dedupe). The queue
 * is bounded (`maxQueue` = 100k): when Kafka is unavailable we keep retrying the same batch with
 * capped exponential backoff, and once the queue is full the OLDEST records are dropped (fresh
 * exposures matter more than old ones) and counted in `stats().dropped` for health/metrics.
 */
import type { Assignment } from '../../schemas/types.generated.ts';

export interface AssignmentLogOptions<T = Assignment> {
  /** Deliver one batch; resolves once durably written (AvroProducer.send), throws otherwise. */
  send: (batch: T[]) => Promise<void>;
  flushMs?: number;
  maxBatch?: number;
  maxQueue?: number;
  /** First and largest retry delay after a failed send. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  onError?: (err: unknown, attempt: number) => void;
}

export interface AssignmentLogStats {
  /** Records waiting (queue + batch in flight). */
  depth: number;
  capacity: number;
  enqueued: number;
  sent: number;
  dropped: number;
  failures: number;
  /** Consecutive failed attempts of the current batch (0 when healthy). */
  retrying: number;
  lastError: string | null;
  lastSentAt: number | null;
}

/** Generic over the record so the sticky bandit log (pipeline/bandit) reuses the same queue. */
export class AssignmentLog<T = Assignment> {
  private readonly ring: (T | undefined)[];
  private head = 0;
  private size = 0;
  private inflight: T[] | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private attempt = 0;
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly capacity: number;
  private readonly counters = { enqueued: 0, sent: 0, dropped: 0, failures: 0, lastError: null as string | null, lastSentAt: null as number | null };
  private idle: (() => void)[] = [];

  constructor(private readonly opts: AssignmentLogOptions<T>) {
    this.flushMs = opts.flushMs ?? 50;
    this.maxBatch = opts.maxBatch ?? 500;
    this.capacity = opts.maxQueue ?? 100_000;
    this.ring = new Array(this.capacity);
  }

  /** Queue a record; never blocks, never throws. Drops the oldest queued record when full. */
  enqueue(rec: T): void {
    if (this.stopped) {
      this.counters.dropped++;
      return;
    }
    this.counters.enqueued++;
    if (this.size === this.capacity) {
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
      this.counters.dropped++;
    }
    this.ring[(this.head + this.size) % this.capacity] = rec;
    this.size++;
    if (this.inflight === null && this.retryTimer === null) {
      if (this.size >= this.maxBatch) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        setImmediate(() => this.flush());
      } else if (this.timer === null) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.flush();
        }, this.flushMs);
        this.timer.unref();
      }
    }
  }

  stats(): AssignmentLogStats {
    return {
      depth: this.size + (this.inflight?.length ?? 0),
      capacity: this.capacity,
      enqueued: this.counters.enqueued,
      sent: this.counters.sent,
      dropped: this.counters.dropped,
      failures: this.counters.failures,
      retrying: this.attempt,
      lastError: this.counters.lastError,
      lastSentAt: this.counters.lastSentAt,
    };
  }

  private take(): T[] {
    const n = Math.min(this.size, this.maxBatch);
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.ring[this.head]!;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
    }
    this.size -= n;
    return out;
  }

  private flush(): void {
    if (this.inflight !== null || this.retryTimer !== null) return;
    if (this.size === 0) {
      this.settleIdle();
      return;
    }
    this.inflight = this.take();
    this.deliver();
  }

  private deliver(): void {
    const batch = this.inflight!;
    this.opts.send(batch).then(
      () => {
        this.counters.sent += batch.length;
        this.counters.lastSentAt = Date.now();
        this.attempt = 0;
        this.inflight = null;
        // More waiting: go on at once if a full batch is ready, else on the normal tick.
        if (this.size >= this.maxBatch) setImmediate(() => this.flush());
        else if (this.size > 0 && this.timer === null) {
          this.timer = setTimeout(() => ((this.timer = null), this.flush()), this.flushMs);
          this.timer.unref();
        }
        else if (this.size === 0) this.settleIdle();
      },
      (err: unknown) => {
        this.counters.failures++;
        this.attempt++;
        this.counters.lastError = err instanceof Error ? err.message : String(err);
        this.opts.onError?.(err, this.attempt);
        if (this.stopped) {
          // Shutting down: give the batch up rather than retrying forever.
          this.counters.dropped += batch.length + this.size;
          this.inflight = null;
          this.size = 0;
          this.settleIdle();
          return;
        }
        const initial = this.opts.retryInitialMs ?? 100;
        const delay = Math.min(initial * 2 ** (this.attempt - 1), this.opts.retryMaxMs ?? 5000);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.deliver();
        }, delay);
        this.retryTimer.unref();
      },
    );
  }

  private settleIdle(): void {
    if (this.size === 0 && this.inflight === null) {
      const w = this.idle;
      this.idle = [];
      for (const r of w) r();
    }
  }

  /** Resolves once everything queued so far was sent (or `timeoutMs` passed). */
  drain(timeoutMs = 5000): Promise<boolean> {
    if (this.size === 0 && this.inflight === null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idle.push(() => (clearTimeout(t), resolve(true)));
      if (this.inflight === null && this.retryTimer === null) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        this.flush();
      }
    });
  }

  /** Flush what is queued (bounded by `timeoutMs`; not at all while failing), then refuse new records. */
  async stop(timeoutMs = 3000): Promise<void> {
    // While Kafka is known to be down, waiting would only delay the shutdown.
    if (this.attempt === 0) await this.drain(timeoutMs);
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = null;
  }
}

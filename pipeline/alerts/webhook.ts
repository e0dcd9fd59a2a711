/**
 * Optional webhook (PENUMBRA_WEBHOOK_URL): every alert record is POSTed as JSON. Best effort and
 * never in the way: `send` only enqueues (bounded queue, the oldest is dropped when full and
 * counted); one worker delivers in order with a timeout per attempt and a bounded number of
 * retries with exponential backoff on network errors, 429 and 5xx. A 4xx other than 429 is not
 * retried (the receiver refused the payload). Alerts are on penumbra.alerts regardless.
 */
export interface WebhookOptions {
  retries?: number;
  timeoutMs?: number;
  backoffMs?: number;
  maxQueue?: number;
}

export interface WebhookStats {
  sent: number;
  failed: number;
  dropped: number;
  retries: number;
  queued: number;
}

export class Webhook {
  readonly stats: WebhookStats = { sent: 0, failed: 0, dropped: 0, retries: 0, queued: 0 };
  private readonly queue: unknown[] = [];
  private running = false;
  private stopped = false;
  private readonly retries: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  private readonly maxQueue: number;

  constructor(readonly url: string, opts: WebhookOptions = {}) {
    this.retries = opts.retries ?? 3;
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxQueue = opts.maxQueue ?? 1000;
  }

  send(payload: unknown): void {
    if (this.stopped) return;
    if (this.queue.length >= this.maxQueue) {
      this.queue.shift();
      this.stats.dropped++;
    }
    this.queue.push(payload);
    this.stats.queued = this.queue.length;
    if (!this.running) void this.drain();
  }

  /** Resolves when the queue is empty (tests, shutdown). */
  async idle(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while ((this.running || this.queue.length > 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const payload = this.queue.shift();
        this.stats.queued = this.queue.length;
        if (await this.deliver(payload)) this.stats.sent++;
        else this.stats.failed++;
      }
    } finally {
      this.running = false;
    }
  }

  private async deliver(payload: unknown): Promise<boolean> {
    const body = JSON.stringify(payload);
    for (let attempt = 0; attempt <= this.retries && !this.stopped; attempt++) {
      if (attempt > 0) {
        this.stats.retries++;
        await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (attempt - 1)));
      }
      try {
        const res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'penumbra-alerts' }, body, signal: AbortSignal.timeout(this.timeoutMs) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        if (res.status !== 429 && res.status < 500) return false;
      } catch {
        /* network error or timeout: retry */
      }
    }
    return false;
  }
}

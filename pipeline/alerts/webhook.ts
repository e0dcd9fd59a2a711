/**
 * Optional webhook (PENUMBRA_WEBHOOK_URL): every alert record is POSTed as JSON. Best effort and
 * never in the way: `send` only enqueues (bounded queue, the oldest is dropped when full and
 * counted); one worker delivers in order with a timeout per attempt and a bounded number of
 * retries with exponential backoff on network errors, 429 and 5xx. A 4xx other than 429 is not
 * retried (the receiver refused the payload). Alerts are on penumbra.alerts regardless.
 *
 * Security (issue 17, item 7): redirects are not followed (`redirect: 'manual'`; a 3xx counts as
 * a refusal) — a receiver that redirects could otherwise point the alert body at an internal
 * address; and every body is signed: `X-Penumbra-Timestamp: <epoch seconds>` and
 * `X-Penumbra-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, with the secret
 * from PENUMBRA_WEBHOOK_SECRET, so a receiver can tell our alerts from forged ones and reject
 * replays older than its tolerance (`verifyWebhookSignature` is the reference check).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-penumbra-signature';
export const TIMESTAMP_HEADER = 'x-penumbra-timestamp';

export function signWebhookBody(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does: recompute, compare in constant time, refuse stale timestamps. */
export function verifyWebhookSignature(secret: string, headers: { signature?: string | null; timestamp?: string | null }, body: string, opts: { now?: number; toleranceSeconds?: number } = {}): boolean {
  const ts = Number(headers.timestamp);
  if (!Number.isInteger(ts) || !headers.signature) return false;
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(now - ts) > (opts.toleranceSeconds ?? 300)) return false;
  const want = Buffer.from(signWebhookBody(secret, ts, body));
  const got = Buffer.from(headers.signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

export interface WebhookOptions {
  /** HMAC key of the signature header (PENUMBRA_WEBHOOK_SECRET). */
  secret?: string;
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
  private readonly secret: string | undefined;

  constructor(readonly url: string, opts: WebhookOptions = {}) {
    this.retries = opts.retries ?? 3;
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxQueue = opts.maxQueue ?? 1000;
    this.secret = opts.secret;
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
        const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'penumbra-alerts' };
        if (this.secret) {
          const ts = Math.floor(Date.now() / 1000);
          headers[TIMESTAMP_HEADER] = String(ts);
          headers[SIGNATURE_HEADER] = signWebhookBody(this.secret, ts, body);
        }
        const res = await fetch(this.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        if (res.status >= 300 && res.status < 400) return false; // never followed, never retried
        if (res.status !== 429 && res.status < 500) return false;
      } catch {
        /* network error or timeout: retry */
      }
    }
    return false;
  }
}

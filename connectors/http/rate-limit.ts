/**
 * Per-client token-bucket rate limit for device-facing routes. In-memory and per process: the
 * point is to stop one misbehaving client from starving others on this instance, not global
 * quotas. Buckets are swept so memory stays bounded under many distinct clients.
 */
import type { RequestHandler } from 'express';
import { RateLimitedError } from '../../pipeline/errors.ts';

export function rateLimit(opts: { perSecond: number; burst: number; maxClients?: number }): RequestHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const maxClients = opts.maxClients ?? 100_000;
  return (req, _res, next) => {
    const key = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const now = Date.now();
    let b = buckets.get(key);
    if (!b) {
      if (buckets.size >= maxClients) buckets.clear();
      b = { tokens: opts.burst, at: now };
      buckets.set(key, b);
    }
    b.tokens = Math.min(opts.burst, b.tokens + ((now - b.at) / 1000) * opts.perSecond);
    b.at = now;
    if (b.tokens < 1) return next(new RateLimitedError(Math.ceil((1 - b.tokens) / opts.perSecond)));
    b.tokens -= 1;
    next();
  };
}

/**
 * GET /api/v1/stream — Server-Sent Events of the live hub (profile changes, metric windows,
 * comparisons of each shadow with its control arm, unverified-telemetry counts, alerts, resolver
 * versions, exposures). Viewer role, by header or — because
 * EventSource cannot send headers — by `?ticket=` from POST /api/v1/stream/ticket (single use,
 * 30 s; auth.ts says why a token never goes in the URL). Each connection has a bounded queue:
 * when a browser stops reading, its oldest events are dropped (and counted in a `dropped`
 * comment) rather than growing server memory; and each token holds at most `streamsPerToken`
 * connections at once (429 beyond), so one leaked viewer token cannot pin every socket.
 */
import { Router } from 'express';
import { RateLimitedError } from '../../pipeline/errors.ts';
import { z } from 'zod';
import type { LiveHub, LiveEvent } from '../../pipeline/live/hub.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { requireRole, STREAM_TICKET_TTL_MS, type Principal, type TokenStore } from './auth.ts';

export function createStreamRouter(deps: { hub: LiveHub; tokens: TokenStore; openapi: OpenApiRegistry; snapshot?: (itemId: string | null) => LiveEvent[]; streamsPerToken?: number }): Router {
  const r = Router();
  const perToken = deps.streamsPerToken ?? 8;
  // Open streams per principal name (a token's name is unique in the store).
  const open = new Map<string, number>();
  deps.openapi.add({ method: 'post', path: '/api/v1/stream/ticket', summary: `A single-use ticket (valid ${STREAM_TICKET_TTL_MS / 1000} s) for GET /api/v1/stream?ticket=…, which EventSource opens without headers`, auth: 'viewer', tags: ['live'], responses: { 200: '{ ticket, expiresAt }', 401: 'No token' } });
  r.post('/api/v1/stream/ticket', requireRole(deps.tokens, 'viewer'), (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(deps.tokens.issueTicket(res.locals.principal as Principal));
  });
  deps.openapi.add({ method: 'get', path: '/api/v1/stream', summary: 'Live Server-Sent Events: profile, metrics, comparison (each shadow vs its control), unverified (telemetry kept out of comparisons), alert, resolvers, exposures', auth: 'viewer', tags: ['live'], query: z.object({ itemId: z.string().optional(), ticket: z.string().optional().describe('From POST /api/v1/stream/ticket, instead of the Authorization header') }), responses: { 200: 'text/event-stream', 401: 'No token or ticket', 429: 'Too many open streams for this token' } });
  r.get('/api/v1/stream', requireRole(deps.tokens, 'viewer', { ticket: true }), (req, res) => {
    const who = (res.locals.principal as Principal).name;
    const n = open.get(who) ?? 0;
    if (n >= perToken) throw new RateLimitedError(5, `at most ${perToken} open streams per token (PENUMBRA_STREAMS_PER_TOKEN)`);
    open.set(who, n + 1);
    let closed = false;
    const release = () => {
      if (closed) return;
      closed = true;
      const left = (open.get(who) ?? 1) - 1;
      if (left > 0) open.set(who, left);
      else open.delete(who);
    };
    const itemId = typeof req.query.itemId === 'string' && req.query.itemId ? req.query.itemId : null;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 2000\n\n');
    let seq = 0;
    let dropped = 0;
    const MAX_PENDING = 1000;
    let pending = 0;
    const send = (e: LiveEvent) => {
      if (pending > MAX_PENDING) {
        dropped++;
        return;
      }
      pending++;
      const ok = res.write(`id: ${++seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`, () => pending--);
      if (!ok && dropped > 0) res.write(`: dropped ${dropped}\n\n`);
    };
    for (const e of deps.snapshot?.(itemId) ?? []) send(e);
    const unsub = deps.hub.subscribe(itemId, send);
    const ping = setInterval(() => res.write(': ping\n\n'), 15000);
    res.on('close', () => {
      clearInterval(ping);
      unsub();
      release();
    });
  });
  return r;
}

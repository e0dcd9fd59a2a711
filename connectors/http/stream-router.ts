/**
 * GET /api/v1/stream — Server-Sent Events of the live hub (profile changes, metric windows,
 * comparisons, alerts, resolver versions, exposures). Viewer role; EventSource cannot send
 * headers, so `?access_token=` is accepted on this route only. Each connection has a bounded
 * queue: when a browser stops reading, its oldest events are dropped (and counted in a
 * `dropped` comment) rather than growing server memory.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { LiveHub, LiveEvent } from '../../pipeline/live/hub.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { requireRole, type TokenStore } from './auth.ts';

export function createStreamRouter(deps: { hub: LiveHub; tokens: TokenStore; openapi: OpenApiRegistry; snapshot?: (itemId: string | null) => LiveEvent[] }): Router {
  const r = Router();
  deps.openapi.add({ method: 'get', path: '/api/v1/stream', summary: 'Live Server-Sent Events: profile, metrics, comparison, alert, resolvers, exposures', auth: 'viewer', tags: ['live'], query: z.object({ itemId: z.string().optional(), access_token: z.string().optional() }), responses: { 200: 'text/event-stream', 401: 'No token' } });
  r.get('/api/v1/stream', requireRole(deps.tokens, 'viewer'), (req, res) => {
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
    req.on('close', () => {
      clearInterval(ping);
      unsub();
    });
  });
  return r;
}

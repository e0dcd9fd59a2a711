/**
 * Version shadows wiring (issue #13, item 1): the operator's route to promote a version that went
 * out as a shadow. It is one door to THE promotion path (pipeline/promote, issue #12), which
 * every promotion takes — this route, `POST …/shadows/{shadow}/promote` and a rollout plan that
 * completes with `onComplete: promote` (pipeline/rollout's analyzer, in the processors' process):
 *
 *  - the version's untouched archive goes through the normal ingest core (never proactive) and the
 *    profile writer applies one `promote` command on the item's command topic — audited with its
 *    evidence, on the rollout timeline, and kept so `POST …/promotion/rollback` restores the
 *    previous original, control and shadows; the previous version stays in the catalog.
 *
 * The version shadow's plan lives in the profile (`shadows[i].rollout`, set by ingestProactive),
 * so any processors' process completes and promotes it — not only the one that ingested it.
 */
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { Feature } from '../app/features.ts';
import { requireRole, type Principal } from '../../connectors/http/auth.ts';
import { parseOr422 } from '../../connectors/http/validate.ts';
import { publicConfigView } from '../profiles/codec.ts';
import { promote } from '../promote/promote.ts';

export function versionShadowsFeature(): Feature {
  return async (ctx) => {
    const r = Router();
    const params = z.object({ itemId: z.string().min(1).max(128), version: z.string().min(1).max(64) });
    const body = z.object({ reason: z.string().max(500).optional() }).strict();
    ctx.openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/versions/{version}/promote', summary: 'Promote a version (typically one that went out as a version shadow): it becomes the original through the one promotion path (ingest core, an audited promote command; roll it back with POST /api/v1/items/{itemId}/promotion/rollback)', auth: 'operator', tags: ['items'], body, responses: { 200: 'Promoted: the catalog entry and the new profile', 404: 'Unknown item or version', 409: 'Already the original' } });
    r.post('/api/v1/items/:itemId/versions/:version/promote', requireRole(ctx.tokens, 'operator'), async (req, res: Response) => {
      const { itemId, version } = parseOr422(params, req.params, 'path', 'item and version');
      const { reason } = parseOr422(body, req.body ?? {}, '', 'body');
      const who = res.locals.principal as Principal;
      const out = await promote(ctx.ingest, { itemId, target: { version }, actor: { name: who.name, role: who.role }, requestId: res.locals.requestId as string, reason: reason ?? null });
      res.setHeader('ETag', `"${out.profile.profileVersion}"`);
      res.json({ itemId, version, profile: publicConfigView(out.profile), promoted: { shadow: out.shadow, from: out.from, fromVersion: out.fromVersion, itemVersion: out.itemVersion } });
    });
    return { router: r };
  };
}

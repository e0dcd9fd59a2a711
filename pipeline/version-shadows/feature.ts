/**
 * Version shadows wiring (issue #13, item 1): promotion of a version that went out as a shadow.
 *
 *  - By an operator: `POST /api/v1/items/{itemId}/versions/{version}/promote` (operator) ingests
 *    the version's untouched archive through the normal core (non-proactive): it becomes the
 *    original, the version shadow is dropped, the previous original stays addressable in the
 *    catalog (rolling the promotion back = promoting the previous version the same way).
 *  - By its plan: when the schedule carrying a version shadow's plan completes while the item is
 *    active and the plan's `onComplete` is `promote`, the processors' process does the same as
 *    actor `system:rollout-plan` (audited by the profile writer like any ingest).
 *
 * The plan's onComplete is known to the process that made the proactive ingest (`plans`, filled
 * by ingestProactive); until per-shadow plans live in the profile (issue 12), a plan completed in
 * a process that did not ingest the version is held for an operator.
 */
import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { Feature } from '../app/features.ts';
import { requireRole, type Principal } from '../../connectors/http/auth.ts';
import { parseOr422 } from '../../connectors/http/validate.ts';
import { publicConfigView } from '../profiles/codec.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { ORIGINAL, type ShadowProfile } from '../domain/types.ts';
import { ingestDigitalItem, type IngestDeps } from '../ingest/ingest-service.ts';
import type { CatalogStore } from '../ingest/catalog-store.ts';
import type { BlobStore } from '../../connectors/blob-store/blob-store.ts';
import { isVersionShadow, versionShadowName, versionPlans } from './version-shadow.ts';

export async function promoteVersion(d: { catalog: CatalogStore; blobs: BlobStore; ingest: IngestDeps; current: ShadowProfile | undefined }, itemId: string, version: string, actor: { name: string; role: string }, why: string) {
  const entry = d.catalog.get(itemId);
  const v = entry.versions.find((x) => x.version === version);
  if (!v) throw new NotFoundError(`item ${itemId} has no version ${version}`);
  if (d.current?.itemVersion === version) throw new ConflictError(`${itemId} ${version} is already the original`);
  const orig = v.variants.find((x) => x.name === ORIGINAL);
  if (!orig) throw new NotFoundError(`version ${version} of ${itemId} has no original archive`);
  const archive = await d.blobs.get(orig.sha256);
  return ingestDigitalItem(d.ingest, { archive, actor, requestId: `promote:${itemId}@${version}:${why}:${randomUUID().slice(0, 8)}`, proactive: false, expectItemId: itemId });
}

export function versionShadowsFeature(): Feature {
  return async (ctx) => {
    const deps = () => ({ catalog: ctx.catalog, blobs: ctx.blobs, ingest: ctx.ingest });
    const stops: (() => void)[] = [];
    if (ctx.processors) {
      const last = new Map<string, ShadowProfile>(ctx.profileStore.all().map((p) => [p.itemId, p]));
      const promoting = new Set<string>();
      stops.push(ctx.profileStore.onChange((p) => {
        const prev = last.get(p.itemId);
        last.set(p.itemId, p);
        const s = p.schedule;
        if (!prev || !s || s.status !== 'done' || prev.schedule?.status === 'done' || p.state !== 'active' || !isVersionShadow(s.shadow)) return;
        const key = `${p.itemId}@${s.shadow}`;
        const plan = versionPlans.get(key);
        if (!plan || plan.onComplete !== 'promote' || promoting.has(key)) return;
        const version = ctx.catalog.find(p.itemId)?.versions.find((v) => versionShadowName(v.version) === s.shadow)?.version;
        if (!version) return;
        promoting.add(key);
        promoteVersion({ ...deps(), current: p }, p.itemId, version, { name: 'system:rollout-plan', role: 'system' }, 'plan-complete')
          .then(() => ctx.log.info('version promoted by its plan', { itemId: p.itemId, version }))
          .catch((err) => ctx.log.warn('promotion by plan failed; an operator can promote', { itemId: p.itemId, version, err: String(err) }))
          .finally(() => {
            promoting.delete(key);
            versionPlans.delete(key);
          });
      }));
    }

    const r = Router();
    const params = z.object({ itemId: z.string().min(1).max(128), version: z.string().min(1).max(64) });
    ctx.openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/versions/{version}/promote', summary: 'Promote a version (typically one that went out as a version shadow): it becomes the original through the normal ingest path', auth: 'operator', tags: ['items'], responses: { 200: 'Promoted: the catalog entry and the new profile', 404: 'Unknown item or version', 409: 'Already the original' } });
    r.post('/api/v1/items/:itemId/versions/:version/promote', requireRole(ctx.tokens, 'operator'), async (req, res: Response) => {
      const { itemId, version } = parseOr422(params, req.params, 'path', 'item and version');
      const who = res.locals.principal as Principal;
      const out = await promoteVersion({ ...deps(), current: ctx.profiles.peek(itemId) }, itemId, version, { name: who.name, role: who.role }, 'operator');
      res.json({ itemId, version, profile: publicConfigView(out.profile) });
    });
    return { router: r, stop: async () => stops.forEach((s) => s()) };
  };
}

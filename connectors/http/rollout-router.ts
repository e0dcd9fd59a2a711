/**
 * Rollout plans, per-shadow rollback, bandits and promotion over HTTP (docs/rollouts.md).
 *
 * Reads (viewer): the plan view with its timeline, the profile history, the bandit with its
 * weight history. Writes (operator): every override is a command on the item's command topic —
 * the same path as the analyzer's automated decisions — so the profile writer serialises them,
 * audits them and publishes them on the timeline. Each answer waits for the writer's verdict
 * (read-your-writes): 200 with the new plan view, 409 for a no-op (e.g. pausing a paused plan),
 * 404 for an unknown item or shadow, 422 with field paths for bad input.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ShadowProfile } from '../../pipeline/domain/types.ts';
import { NotFoundError, ValidationError } from '../../pipeline/errors.ts';
import type { ProfileService } from '../../pipeline/profiles/profile-service.ts';
import { publicConfigView } from '../../pipeline/profiles/codec.ts';
import type { DecisionLog, DecisionView } from '../../pipeline/rollout/decision-log.ts';
import type { ProfileHistory } from '../../pipeline/rollout/history.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type Principal, type TokenStore } from './auth.ts';
import { putConfigSchema } from './items-router.ts';

const ITEM = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SHADOW = /^[a-z0-9][a-z0-9-]{0,62}$/;
const itemParam = z.object({ itemId: z.string().regex(ITEM, 'an item id') });
const shadowParam = itemParam.extend({ shadow: z.string().regex(SHADOW, 'a shadow name') });
const reasonBody = z.object({ reason: z.string().max(500).optional() });
const revertBody = reasonBody.extend({ profileVersion: z.number().int().min(1).describe('Profile version whose configuration of this shadow to restore (GET …/history)') });
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).optional() });
const PLAN_ACTIONS = ['pause', 'resume', 'skip', 'restart'] as const;
const BANDIT_ACTIONS = ['pause', 'resume', 'stop', 'restart'] as const;

export interface RolloutRouterDeps {
  profiles: ProfileService;
  decisions: DecisionLog;
  history: ProfileHistory;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  /** Builds and submits a configuration change (items-router putShadowConfig). */
  putConfig: (args: { itemId: string; ifMatch: number; body: z.infer<typeof putConfigSchema>; who: Principal; requestId: string; reason: string | null }) => Promise<ShadowProfile>;
  /** Promotes a shadow through the one promotion path (pipeline/promote: ingest path, one audited `promote` command). */
  promote: (args: { itemId: string; shadow: string; who: Principal; requestId: string; reason?: string | null }) => Promise<{ profile: ShadowProfile; from: 'shadow' | 'version'; itemVersion: string; fromVersion: string; replacements: number }>;
  /** Sticky users per arm of the item's current bandit run, as this process's resolver holds them. */
  stickyCounts?: (itemId: string, run: number) => Record<string, number>;
}

/** One shadow's plan and where it is. */
function planView(s: ShadowProfile['shadows'][number]) {
  return { name: s.name, state: s.state ?? 'active', percentage: s.traffic.percentage, control: s.control !== false, rollout: s.rollout ?? null, rolloutState: s.rolloutState ?? null };
}

export function rolloutView(p: ShadowProfile, timeline: DecisionView[]) {
  return {
    itemId: p.itemId, profileVersion: p.profileVersion, state: p.state, itemVersion: p.itemVersion,
    shadows: p.shadows.map(planView),
    bandit: p.bandit ?? null, banditState: p.banditState ?? null,
    promotion: p.promotion ? { shadow: p.promotion.shadow, fromItemVersion: p.promotion.fromItemVersion, toItemVersion: p.promotion.toItemVersion, by: p.promotion.by, at: p.promotion.at } : null,
    timeline,
  };
}

export function createRolloutRouter(deps: RolloutRouterDeps): Router {
  const r = Router();
  const { profiles, decisions, history, openapi } = deps;
  const viewer = requireRole(deps.tokens, 'viewer');
  const operator = requireRole(deps.tokens, 'operator');
  const who = (res: Response) => res.locals.principal as Principal;
  const rid = (res: Response) => res.locals.requestId as string;
  const shadowOf = (req: Request) => {
    const p = parseOr422(shadowParam, req.params, 'path', 'path');
    const prof = profiles.get(p.itemId);
    if (!prof.shadows.some((s) => s.name === p.shadow)) throw new NotFoundError(`item ${p.itemId} has no shadow named ${p.shadow}`);
    return p;
  };
  /** `wait`: the change always decides something (overrides), so its decision is awaited for the timeline. */
  const answer = async (res: Response, p: ShadowProfile, wait = true) => {
    if (wait) await decisions.reached(p.itemId, p.profileVersion);
    res.setHeader('ETag', `"${p.profileVersion}"`);
    res.json(rolloutView(p, decisions.query(p.itemId, { limit: 50 })));
  };

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/rollout', summary: 'Rollout plans, their state, the bandit, the last promotion and the decision timeline (newest first, with evidence)', auth: 'viewer', tags: ['rollout'], query: listQuery, responses: { 200: 'Plan view', 404: 'Unknown item' } });
  r.get('/api/v1/items/:itemId/rollout', viewer, (req, res) => {
    const { itemId } = parseOr422(itemParam, req.params, 'path', 'path');
    const q = parseOr422(listQuery, req.query, 'query', 'query');
    const p = profiles.get(itemId);
    res.setHeader('ETag', `"${p.profileVersion}"`);
    res.json(rolloutView(p, decisions.query(itemId, { limit: q.limit ?? 100 })));
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/shadows/{shadow}/rollout/{action}', summary: 'Override a rollout plan: pause (no advancing; guardrails still protect), resume, skip (next step now, without an analysis), restart (step 1, shadow active)', auth: 'operator', tags: ['rollout'], body: reasonBody, responses: { 200: 'Plan view after the override', 404: 'Unknown item or shadow', 409: 'Nothing to do (e.g. already paused)', 422: 'Unknown action or no plan' } });
  r.post('/api/v1/items/:itemId/shadows/:shadow/rollout/:action', operator, async (req, res) => {
    const { itemId, shadow } = shadowOf(req);
    const action = String(req.params.action);
    if (!(PLAN_ACTIONS as readonly string[]).includes(action)) throw new ValidationError(`unknown action ${action}`, [{ path: 'path/action', message: `one of ${PLAN_ACTIONS.join(', ')}` }]);
    const body = parseOr422(reasonBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await profiles.submit({ itemId, kind: 'rollout_control', ifMatch: null, payload: { shadow, action }, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/shadows/{shadow}/rollback', summary: 'Roll back one shadow: its users (and its control cohort\'s) get the original, the other shadows keep running', auth: 'operator', tags: ['rollout'], body: reasonBody, responses: { 200: 'Plan view', 404: 'Unknown item or shadow', 409: 'Already rolled back' } });
  r.post('/api/v1/items/:itemId/shadows/:shadow/rollback', operator, async (req, res) => {
    const { itemId, shadow } = shadowOf(req);
    const body = parseOr422(reasonBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await profiles.submit({ itemId, kind: 'shadow_rollback', ifMatch: null, payload: { shadow }, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/shadows/{shadow}/activate', summary: 'Re-activate a shadow rolled back on its own, at its configured share (a plan stays as it is; restart it to rerun it)', auth: 'operator', tags: ['rollout'], body: reasonBody, responses: { 200: 'Plan view', 404: 'Unknown item or shadow', 409: 'Already active' } });
  r.post('/api/v1/items/:itemId/shadows/:shadow/activate', operator, async (req, res) => {
    const { itemId, shadow } = shadowOf(req);
    const body = parseOr422(reasonBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await profiles.submit({ itemId, kind: 'shadow_activate', ifMatch: null, payload: { shadow }, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/history', summary: 'Profile versions with each shadow\'s configuration (from the audit log), newest first', auth: 'viewer', tags: ['rollout'], query: listQuery, responses: { 200: 'Versions', 404: 'Unknown item' } });
  r.get('/api/v1/items/:itemId/history', viewer, (req, res) => {
    const { itemId } = parseOr422(itemParam, req.params, 'path', 'path');
    const q = parseOr422(listQuery, req.query, 'query', 'query');
    profiles.get(itemId);
    res.json({ itemId, versions: history.list(itemId, q.limit ?? 50) });
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/shadows/{shadow}/revert', summary: 'Revert one shadow\'s configuration (instrumentation, endpoints, traffic, control, plan) to the one it had at an earlier profile version; artifacts are rebuilt as for a PUT', auth: 'operator', tags: ['rollout'], body: revertBody, responses: { 200: 'Plan view', 404: 'Unknown item, shadow or version', 409: 'Changed meanwhile', 422: 'The old configuration no longer validates' } });
  r.post('/api/v1/items/:itemId/shadows/:shadow/revert', operator, async (req, res) => {
    const { itemId, shadow } = shadowOf(req);
    const body = parseOr422(revertBody, req.body ?? {}, '', 'body');
    const old = history.shadowAt(itemId, body.profileVersion, shadow);
    if (!old) throw new NotFoundError(`no configuration of ${shadow} at profile version ${body.profileVersion} in the history of ${itemId}`);
    const cur = profiles.get(itemId);
    const view = publicConfigView(cur);
    // The current configuration with this one shadow replaced; read-only parts dropped.
    const shadows = view.shadows.map(({ artifact: _a, rolloutState: _s, ...s }) => {
      if (s.name !== shadow) return s;
      const { artifact: _oa, rolloutState: _os, ...o } = old as typeof old & { artifact?: unknown; rolloutState?: unknown };
      return { ...o, rollout: (o.rollout as unknown) ?? null };
    });
    const next = await deps.putConfig({ itemId, ifMatch: cur.profileVersion, body: { shadows }, who: who(res), requestId: rid(res), reason: body.reason ?? `revert ${shadow} to its configuration at profile version ${body.profileVersion}` });
    // A revert decides something only when it changes the plan: answered without waiting.
    await answer(res, next, false);
  });

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/bandit', summary: 'The bandit: plan, state (weights, drops), weight history from its reweightings, sticky users per arm in this process', auth: 'viewer', tags: ['rollout'], query: listQuery, responses: { 200: 'Bandit view', 404: 'Unknown item or no bandit' } });
  r.get('/api/v1/items/:itemId/bandit', viewer, (req, res) => {
    const { itemId } = parseOr422(itemParam, req.params, 'path', 'path');
    const q = parseOr422(listQuery, req.query, 'query', 'query');
    const p = profiles.get(itemId);
    if (!p.bandit || !p.banditState) throw new NotFoundError(`item ${itemId} has no bandit`);
    const run = p.banditState.startedAt;
    const history = decisions
      .query(itemId, { kinds: ['reweight', 'bandit_start', 'bandit_stop', 'bandit_pause', 'bandit_resume'], limit: q.limit ?? 200 })
      .filter((d) => d.at >= run)
      .map((d) => {
        const ev = d.evidence as { epoch?: number; phase?: string; arms?: { arm: string; weight: number; pBest: number; sessions: number }[]; weights?: { arm: string; weight: number }[] } | null;
        const weights = ev?.arms?.map((a) => ({ arm: a.arm, weight: a.weight, pBest: a.pBest, sessions: a.sessions })) ?? ev?.weights?.map((w) => ({ ...w, pBest: null, sessions: null })) ?? [];
        return { at: d.at, kind: d.kind, epoch: ev?.epoch ?? null, phase: ev?.phase ?? null, weights, reason: d.reason };
      });
    res.json({ itemId, bandit: p.bandit, state: p.banditState, history, sticky: deps.stickyCounts?.(itemId, run) ?? null });
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/bandit/{action}', summary: 'Override the bandit: pause (freeze weights), resume, stop (its users get the original), restart (equal weights, nobody sticky)', auth: 'operator', tags: ['rollout'], body: reasonBody, responses: { 200: 'Plan view', 404: 'Unknown item', 409: 'Nothing to do', 422: 'Unknown action or no bandit' } });
  r.post('/api/v1/items/:itemId/bandit/:action', operator, async (req, res) => {
    const { itemId } = parseOr422(itemParam, req.params, 'path', 'path');
    const action = String(req.params.action);
    if (!(BANDIT_ACTIONS as readonly string[]).includes(action)) throw new ValidationError(`unknown action ${action}`, [{ path: 'path/action', message: `one of ${BANDIT_ACTIONS.join(', ')}` }]);
    const body = parseOr422(reasonBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await profiles.submit({ itemId, kind: 'bandit_control', ifMatch: null, payload: { action }, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/shadows/{shadow}/promote', summary: 'Promote a shadow: its endpoint changes (no instrumentation) become the original as a new item version built through the ingest path — for a version shadow (v-…), that version becomes the original, exactly as POST /api/v1/items/{itemId}/versions/{version}/promote; the previous original is kept for a rollback of the promotion', auth: 'operator', tags: ['rollout'], body: reasonBody, responses: { 201: 'Promoted: plan view and the new item version', 404: 'Unknown item or shadow', 409: 'Changed meanwhile, or already the original', 422: 'The promoted archive does not validate' } });
  r.post('/api/v1/items/:itemId/shadows/:shadow/promote', operator, async (req, res) => {
    const { itemId, shadow } = shadowOf(req);
    const body = parseOr422(reasonBody, req.body ?? {}, '', 'body');
    const out = await deps.promote({ itemId, shadow, who: who(res), requestId: rid(res), reason: body.reason ?? null });
    await decisions.reached(itemId, out.profile.profileVersion);
    res.status(201).setHeader('ETag', `"${out.profile.profileVersion}"`);
    res.json({ ...rolloutView(out.profile, decisions.query(itemId, { limit: 50 })), promoted: { shadow, from: out.from, fromVersion: out.fromVersion, itemVersion: out.itemVersion, replacements: out.replacements } });
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/promotion/rollback', summary: 'Roll back the last promotion: the previous original and shadows return, the promoted shadow stays rolled back', auth: 'operator', tags: ['rollout'], body: reasonBody, responses: { 200: 'Plan view', 404: 'Unknown item', 409: 'No promotion to roll back' } });
  r.post('/api/v1/items/:itemId/promotion/rollback', operator, async (req, res) => {
    const { itemId } = parseOr422(itemParam, req.params, 'path', 'path');
    const body = parseOr422(reasonBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await profiles.submit({ itemId, kind: 'promotion_rollback', ifMatch: null, payload: {}, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });

  return r;
}

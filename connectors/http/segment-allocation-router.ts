/**
 * Per-segment allocation of a bandit over HTTP (pipeline/segment-allocation/README.md).
 *
 * GET (viewer): every cell's weights, drops, override, the evidence of its last reweighting
 * (arm sizes, posteriors, P(best), guardrail results) and its sticky users per arm in this
 * process. PUT/DELETE (operator): an override of one cell is a `bandit_control` command
 * (`cell_override`) on the item's command topic — the path the analyzer's automated
 * reweightings take — so it is serialised, audited and on the timeline. Answers wait for the
 * writer's verdict: 200 with the view, 404 unknown item/cell, 409 nothing to do, 422 bad weights.
 */
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { ShadowProfile } from '../../pipeline/domain/types.ts';
import { NotFoundError } from '../../pipeline/errors.ts';
import type { ProfileService } from '../../pipeline/profiles/profile-service.ts';
import type { DecisionLog } from '../../pipeline/rollout/decision-log.ts';
import type { CellRecord, SegmentReweightRecord } from '../../pipeline/segment-allocation/decide.ts';
import { cellLabel } from '../../pipeline/segment-allocation/plan.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type Principal, type TokenStore } from './auth.ts';

const ITEM = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const itemParam = z.object({ itemId: z.string().regex(ITEM, 'an item id') });
const cellParam = itemParam.extend({ cell: z.string().min(1).max(128) });
const overrideBody = z.strictObject({
  weights: z.record(z.string(), z.number().min(0, 'must be ≥ 0').finite()).describe('Arm → weight (normalised to sum 1); arms left out get 0'),
  reason: z.string().max(500).optional(),
});
const releaseBody = z.object({ reason: z.string().max(500).optional() });

export interface SegmentAllocationRouterDeps {
  profiles: ProfileService;
  /** The rollout feature's decision log (timeline), or null when it is not running. */
  decisions: () => DecisionLog | null;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  /** Sticky users per cell ('' = global weights) and arm of the item's bandit run, in this process. */
  stickyByCell?: (itemId: string, run: number) => Record<string, Record<string, number>>;
}

export function segmentAllocationView(p: ShadowProfile, decisions: DecisionLog | null, sticky: Record<string, Record<string, number>> | null) {
  const b = p.bandit;
  const st = p.banditState;
  if (!b || !st) throw new NotFoundError(`item ${p.itemId} has no bandit`);
  if (!b.segments || !st.cells) throw new NotFoundError(`the bandit of ${p.itemId} has no per-segment allocation (bandit.segments)`);
  const run = st.startedAt;
  // The newest automated record of each cell (the evidence the console shows next to its weights).
  const latest = new Map<string, CellRecord & { at: number }>();
  const history: { at: number; rule: string | null; automated: boolean; actor: string; reason: string; cells: string[] }[] = [];
  for (const d of decisions?.query(p.itemId, { kinds: ['reweight'], limit: 200 }) ?? []) {
    if (d.at < run) continue;
    const ev = d.evidence as Partial<SegmentReweightRecord> & { scope?: string; cell?: string } | null;
    if (ev?.scope !== 'segments') continue;
    history.push({ at: d.at, rule: d.rule, automated: d.automated, actor: d.actor, reason: d.reason, cells: ev.cells ? ev.cells.map((c) => c.cell) : ev.cell ? [ev.cell] : [] });
    for (const c of ev.cells ?? []) if (!latest.has(c.cell)) latest.set(c.cell, { ...c, at: d.at });
  }
  return {
    itemId: p.itemId, profileVersion: p.profileVersion, by: b.segments.by, metric: b.metric, better: b.better, status: st.status, run,
    burnInSessions: b.segments.burnInSessions ?? b.burnInSessions, reweightSeconds: b.reweightSeconds,
    global: { epoch: st.epoch, weights: st.weights, dropped: st.dropped, sticky: sticky?.[''] ?? null },
    cells: st.cells.map((c) => {
      const ev = latest.get(c.cell);
      return {
        ...c, label: cellLabel(b.segments!.by, c.cell), sticky: sticky?.[c.cell] ?? null,
        evidence: ev ? { at: ev.at, epoch: ev.epoch, phase: ev.phase, seed: ev.seed, draws: ev.draws, arms: ev.arms, guardrails: ev.guardrails, drops: ev.drops, sentence: ev.sentence } : null,
      };
    }),
    history,
  };
}

export function createSegmentAllocationRouter(deps: SegmentAllocationRouterDeps): Router {
  const r = Router();
  const viewer = requireRole(deps.tokens, 'viewer');
  const operator = requireRole(deps.tokens, 'operator');
  const who = (res: Response) => res.locals.principal as Principal;
  const rid = (res: Response) => res.locals.requestId as string;
  const view = (p: ShadowProfile) => segmentAllocationView(p, deps.decisions(), p.banditState ? deps.stickyByCell?.(p.itemId, p.banditState.startedAt) ?? null : null);
  const answer = async (res: Response, p: ShadowProfile) => {
    await deps.decisions()?.reached(p.itemId, p.profileVersion);
    res.setHeader('ETag', `"${p.profileVersion}"`);
    res.json(view(p));
  };

  deps.openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/bandit/segments', summary: 'Per-segment allocation of the bandit: each cell\'s weights, drops, override, the evidence of its last reweighting (arm sizes, posteriors, P(best), guardrails) and sticky users per arm', auth: 'viewer', tags: ['rollout'], responses: { 200: 'Per-segment view', 404: 'Unknown item, no bandit or no per-segment allocation' } });
  r.get('/api/v1/items/:itemId/bandit/segments', viewer, (req, res) => {
    const { itemId } = parseOr422(itemParam, req.params, 'path', 'path');
    res.json(view(deps.profiles.get(itemId)));
  });

  deps.openapi.add({ method: 'put', path: '/api/v1/items/{itemId}/bandit/segments/{cell}', summary: 'Override one cell: fixed weights for its new users; the automated per-segment reweighting leaves the cell alone until released (DELETE)', auth: 'operator', tags: ['rollout'], body: overrideBody, responses: { 200: 'Per-segment view', 404: 'Unknown item or cell', 422: 'Invalid weights' } });
  r.put('/api/v1/items/:itemId/bandit/segments/:cell', operator, async (req, res) => {
    const { itemId, cell } = parseOr422(cellParam, req.params, 'path', 'path');
    const body = parseOr422(overrideBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await deps.profiles.submit({ itemId, kind: 'bandit_control', ifMatch: null, payload: { action: 'cell_override', cell, weights: body.weights }, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });

  deps.openapi.add({ method: 'delete', path: '/api/v1/items/{itemId}/bandit/segments/{cell}', summary: 'Release an overridden cell back to the automated per-segment allocation', auth: 'operator', tags: ['rollout'], body: releaseBody, responses: { 200: 'Per-segment view', 404: 'Unknown item or cell', 409: 'The cell is not overridden' } });
  r.delete('/api/v1/items/:itemId/bandit/segments/:cell', operator, async (req, res) => {
    const { itemId, cell } = parseOr422(cellParam, req.params, 'path', 'path');
    const body = parseOr422(releaseBody, req.body ?? {}, '', 'body');
    const w = who(res);
    await answer(res, await deps.profiles.submit({ itemId, kind: 'bandit_control', ifMatch: null, payload: { action: 'cell_override', cell, weights: null }, actor: w.name, role: w.role, reason: body.reason ?? null, commandId: rid(res) }));
  });
  return r;
}

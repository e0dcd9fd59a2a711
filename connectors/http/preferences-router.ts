/**
 * Preferences over HTTP (pipeline/preferences): pins and pin policies.
 *
 * Operator routes (Bearer token):
 * - `GET /api/v1/items/{itemId}/pins?userId=&limit=` (viewer) → `{ pins, count, policy }`
 * - `PUT /api/v1/items/{itemId}/pins/{userId}` (operator) `{ variant, reason? }` → the pin;
 *   variant is `original` or a shadow of the item's profile (422 otherwise)
 * - `DELETE /api/v1/items/{itemId}/pins/{userId}` (operator) → 204
 * - `GET|PUT /api/v1/items/{itemId}/pin-policy` (viewer | operator)
 *   `{ deviceOptOut, deviceOptIn: [shadow…] }`: what devices may pin themselves to
 *
 * Device route (no operator token; rate-limited like resolve):
 * - `PUT /api/v1/preferences` `{ itemId, userId, token, variant | null }`: the user's own pin,
 *   authenticated by the assignment token resolve handed the device
 *   (pipeline/assignment-token: HS256, item and user must match, not expired). `original` opts
 *   out, a shadow listed in the policy's `deviceOptIn` opts in, `null` removes the device's
 *   own pin. A device can never change an operator's pin (409).
 *
 * Each change is one produce call with the pin (penumbra.pins, key '<itemId>/<userId>') and its
 * audit entry (actor: token name, or `device:<userId>` with role `device`); the answer waits
 * until this process's PinStore shows it (read-your-writes).
 */
import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { TopicNames } from '../../pipeline/config/config.ts';
import type { AvroProducer } from '../../pipeline/kafka/client.ts';
import { AuthError, ConflictError, NotFoundError, PenumbraError, UnavailableError, ValidationError } from '../../pipeline/errors.ts';
import type { Pin, PinPolicy } from '../../schemas/types.generated.ts';
import type { ProfileStore } from '../../pipeline/profiles/profile-store.ts';
import { ORIGINAL } from '../../pipeline/domain/types.ts';
import { pinKey, type PinStore } from '../../pipeline/preferences/pin-store.ts';
import { DEFAULT_POLICY, deviceRefusal } from '../../pipeline/preferences/pin.ts';
import { verifyAssignment, type KeyRing } from '../../pipeline/assignment-token/token.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type Principal, type TokenStore } from './auth.ts';
import { rateLimit, type DeviceLimits } from './rate-limit.ts';

const ITEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const itemParam = z.string().regex(ITEM_ID, 'an item id (letters, digits, . _ -)');
const userParam = z.string().min(1).max(256);
const variantName = z.string().min(1).max(256);

const pinInput = z.object({
  variant: variantName.describe('original (opt out of experiments) or a shadow name (opt in)'),
  reason: z.string().max(500).optional().describe('Why (kept in the pin and the audit log)'),
}).strict();
const policyInput = z.object({
  deviceOptOut: z.boolean().default(true).describe('Devices may pin themselves to original'),
  deviceOptIn: z.array(variantName).max(64).default([]).describe('Shadows devices may opt into'),
}).strict();
const deviceInput = z.object({
  itemId: itemParam,
  userId: userParam,
  token: z.string().min(1).max(2048).describe('The assignment token resolve returned for this item and user'),
  variant: variantName.nullable().describe('original, a shadow the policy allows, or null to remove your pin'),
}).strict();
const listQuery = z.object({ userId: userParam.optional(), limit: z.coerce.number().int().min(1).max(5000).optional() });

export interface PreferencesRouterDeps {
  pins: PinStore;
  profiles: ProfileStore;
  producer: AvroProducer;
  topics: TopicNames;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  limits: DeviceLimits;
  /** Assignment-token key ring; null = the device route answers 503 (no keys configured). */
  keys: () => KeyRing | null;
  maxPins: number;
  visibleWithinMs?: number;
  now?: () => number;
}

export function createPreferencesRouter(deps: PreferencesRouterDeps): Router {
  const r = Router();
  const viewer = requireRole(deps.tokens, 'viewer');
  const operator = requireRole(deps.tokens, 'operator');
  const who = (res: Response): Principal => res.locals.principal as Principal;
  const now = deps.now ?? Date.now;
  const shadowsOf = (itemId: string): string[] => deps.profiles.get(itemId)?.shadows.map((s) => s.name) ?? [];

  async function write(res: Response, pin: Pin, before: Pin | undefined, role: string, action: string): Promise<void> {
    await deps.producer.send([
      { topic: deps.topics.pins, key: pinKey(pin.itemId, pin.userId), value: pin },
      {
        topic: deps.topics.audit,
        key: pin.itemId,
        value: {
          id: randomUUID(), itemId: pin.itemId, actor: pin.actor, role, action, outcome: 'accepted', reason: pin.reason,
          beforeJson: before ? JSON.stringify(pinView(before)) : null, afterJson: pin.variant === null ? null : JSON.stringify(pinView(pin)), evidenceJson: null,
          requestId: (res.locals.requestId as string | undefined) ?? null, at: pin.at,
        },
      },
    ]);
    await visible(() => (deps.pins.get(pin.itemId, pin.userId)?.at ?? -1) >= pin.at || (pin.variant === null && deps.pins.get(pin.itemId, pin.userId) === undefined));
  }

  async function visible(check: () => boolean): Promise<void> {
    try {
      await deps.pins.waitUntil(check, deps.visibleWithinMs ?? 10_000);
    } catch {
      throw new UnavailableError('the change is stored in Kafka but not visible in this process yet; retry the read shortly');
    }
  }

  function checkBudget(itemId: string, userId: string): void {
    if (!deps.pins.get(itemId, userId) && deps.pins.size >= deps.maxPins) {
      throw new PenumbraError('pin-limit', `every resolver holds at most ${deps.maxPins} pins (PENUMBRA_PINS_MAX); remove some first`, { status: 409 });
    }
  }

  deps.openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/pins', summary: 'Users pinned to a variant of the item, newest first, and the item\'s pin policy', auth: 'viewer', tags: ['preferences'], query: listQuery, responses: { 200: '{ pins, count, policy }', 401: 'No token', 422: 'Bad query' } });
  r.get('/api/v1/items/:itemId/pins', viewer, (req, res) => {
    const itemId = parseOr422(itemParam, req.params.itemId, 'itemId', 'item id');
    const q = parseOr422(listQuery, req.query, 'query', 'pins query');
    const pins = q.userId ? [deps.pins.get(itemId, q.userId)].filter((p): p is Pin => p !== undefined) : deps.pins.list(itemId, q.limit ?? 1000);
    res.json({ itemId, pins: pins.map(pinView), count: deps.pins.countFor(itemId), policy: policyView(itemId, deps.pins.policy(itemId)) });
  });

  deps.openapi.add({ method: 'put', path: '/api/v1/items/{itemId}/pins/{userId}', summary: 'Pin a user to a variant: wins over every rule, not over rollback (audited)', auth: 'operator', tags: ['preferences'], body: pinInput, responses: { 200: 'The pin', 401: 'No token', 403: 'Needs operator', 404: 'Unknown item', 409: 'Pin budget exhausted', 422: 'Unknown variant' } });
  r.put('/api/v1/items/:itemId/pins/:userId', operator, async (req, res) => {
    const itemId = parseOr422(itemParam, req.params.itemId, 'itemId', 'item id');
    const userId = parseOr422(userParam, req.params.userId, 'userId', 'user id');
    const body = parseOr422(pinInput, req.body, '', 'pin');
    if (!deps.profiles.get(itemId)) throw new NotFoundError(`item ${itemId} has no shadow profile`);
    const shadows = shadowsOf(itemId);
    if (body.variant !== ORIGINAL && !shadows.includes(body.variant)) {
      throw new ValidationError('unknown variant', [{ path: 'variant', message: `original or one of the item's shadows (${shadows.join(', ') || 'none'})` }]);
    }
    checkBudget(itemId, userId);
    const before = deps.pins.get(itemId, userId);
    const pin: Pin = { itemId, userId, variant: body.variant, source: 'operator', reason: body.reason ?? null, actor: who(res).name, at: Math.max(now(), (before?.at ?? 0) + 1) };
    await write(res, pin, before, who(res).role, 'pin.set');
    res.json(pinView(pin));
  });

  deps.openapi.add({ method: 'delete', path: '/api/v1/items/{itemId}/pins/{userId}', summary: 'Remove a user\'s pin (audited)', auth: 'operator', tags: ['preferences'], responses: { 204: 'Removed', 401: 'No token', 403: 'Needs operator', 404: 'No pin' } });
  r.delete('/api/v1/items/:itemId/pins/:userId', operator, async (req, res) => {
    const itemId = parseOr422(itemParam, req.params.itemId, 'itemId', 'item id');
    const userId = parseOr422(userParam, req.params.userId, 'userId', 'user id');
    const before = deps.pins.get(itemId, userId);
    if (!before) throw new NotFoundError(`user ${userId} has no pin on ${itemId}`);
    await write(res, { itemId, userId, variant: null, source: 'operator', reason: null, actor: who(res).name, at: Math.max(now(), before.at + 1) }, before, who(res).role, 'pin.remove');
    res.status(204).end();
  });

  deps.openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/pin-policy', summary: 'What devices may pin themselves to', auth: 'viewer', tags: ['preferences'], responses: { 200: 'The policy', 401: 'No token' } });
  r.get('/api/v1/items/:itemId/pin-policy', viewer, (req, res) => {
    const itemId = parseOr422(itemParam, req.params.itemId, 'itemId', 'item id');
    res.json(policyView(itemId, deps.pins.policy(itemId)));
  });

  deps.openapi.add({ method: 'put', path: '/api/v1/items/{itemId}/pin-policy', summary: 'Set what devices may pin themselves to (audited)', auth: 'operator', tags: ['preferences'], body: policyInput, responses: { 200: 'The policy', 401: 'No token', 403: 'Needs operator', 404: 'Unknown item', 422: 'Unknown shadow' } });
  r.put('/api/v1/items/:itemId/pin-policy', operator, async (req, res) => {
    const itemId = parseOr422(itemParam, req.params.itemId, 'itemId', 'item id');
    const body = parseOr422(policyInput, req.body, '', 'pin policy');
    if (!deps.profiles.get(itemId)) throw new NotFoundError(`item ${itemId} has no shadow profile`);
    const shadows = shadowsOf(itemId);
    const unknown = body.deviceOptIn.map((v, i) => [v, i] as const).filter(([v]) => !shadows.includes(v));
    if (unknown.length > 0) throw new ValidationError('unknown shadow', unknown.map(([v, i]) => ({ path: `deviceOptIn/${i}`, message: `the item has no shadow "${v}"` })));
    const before = deps.pins.policy(itemId);
    const p = who(res);
    const policy: PinPolicy = { itemId, deviceOptOut: body.deviceOptOut, deviceOptIn: [...new Set(body.deviceOptIn)], updatedBy: p.name, updatedAt: Math.max(now(), (before?.updatedAt ?? 0) + 1) };
    await deps.producer.send([
      { topic: deps.topics.pinPolicies, key: itemId, value: policy },
      {
        topic: deps.topics.audit, key: itemId,
        value: {
          id: randomUUID(), itemId, actor: p.name, role: p.role, action: 'pin-policy.put', outcome: 'accepted', reason: null,
          beforeJson: before ? JSON.stringify(policyView(itemId, before)) : null, afterJson: JSON.stringify(policyView(itemId, policy)), evidenceJson: null,
          requestId: (res.locals.requestId as string | undefined) ?? null, at: policy.updatedAt,
        },
      },
    ]);
    await visible(() => (deps.pins.policy(itemId)?.updatedAt ?? -1) >= policy.updatedAt);
    res.json(policyView(itemId, policy));
  });

  deps.openapi.add({ method: 'put', path: '/api/v1/preferences', summary: 'Device: opt out of experiments or into a beta, authenticated by the assignment token (audited)', auth: 'none', tags: ['preferences', 'device'], body: deviceInput, responses: { 200: 'The pin ({ variant: null } when removed)', 401: 'Token missing, forged, expired or for another item/user', 409: 'An operator pinned this user, or the pin budget is exhausted', 422: 'Variant not allowed by the item\'s policy', 429: 'Too many requests', 503: 'No assignment keys configured' } });
  r.put('/api/v1/preferences', rateLimit(deps.limits.resolve, deps.limits.identity), async (req, res) => {
    const body = parseOr422(deviceInput, req.body, '', 'preference');
    const keys = deps.keys();
    if (!keys) throw new UnavailableError('assignment tokens are not configured on this server', undefined, false);
    const v = verifyAssignment(body.token, keys, now(), { itemId: body.itemId, userId: body.userId });
    if (!v.ok) throw new AuthError('unauthorized', `assignment token refused (${v.reason}): ${v.detail}`);
    const existing = deps.pins.get(body.itemId, body.userId);
    const refusal = deviceRefusal(body.variant, deps.pins.policy(body.itemId), shadowsOf(body.itemId), existing);
    if (refusal) {
      if (existing && existing.source !== 'device') throw new ConflictError(refusal.message);
      throw new ValidationError('preference not allowed', [{ path: refusal.field, message: refusal.message }]);
    }
    if (body.variant === null && !existing) {
      res.json({ itemId: body.itemId, userId: body.userId, variant: null });
      return;
    }
    if (body.variant !== null) checkBudget(body.itemId, body.userId);
    const pin: Pin = {
      itemId: body.itemId, userId: body.userId, variant: body.variant, source: 'device', reason: body.variant === null ? null : body.variant === ORIGINAL ? 'opted out' : 'opted in',
      actor: `device:${body.userId}`, at: Math.max(now(), (existing?.at ?? 0) + 1),
    };
    await write(res, pin, existing, 'device', body.variant === null ? 'pin.remove' : 'pin.set');
    res.json(pinView(pin));
  });

  return r;
}

export function pinView(p: Pin) {
  return { itemId: p.itemId, userId: p.userId, variant: p.variant, source: p.source, reason: p.reason, actor: p.actor, at: p.at };
}

function policyView(itemId: string, p: PinPolicy | undefined) {
  return p ? { itemId, deviceOptOut: p.deviceOptOut, deviceOptIn: p.deviceOptIn, updatedBy: p.updatedBy, updatedAt: p.updatedAt } : { itemId, ...DEFAULT_POLICY, updatedBy: null, updatedAt: null };
}

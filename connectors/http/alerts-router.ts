/**
 * Alert rules and alerts over HTTP.
 *
 * - `GET /api/v1/alert-rules` (viewer) → `{ rules }` from the in-memory RuleStore;
 * - `POST /api/v1/alert-rules` (operator) → 201 + the rule; `PUT /api/v1/alert-rules/{id}`
 *   (operator) replaces it; `DELETE /api/v1/alert-rules/{id}` (operator) → 204 and a record with
 *   `deleted: true` on the compacted topic. Bodies are zod-validated (422 with field paths).
 *   Each change is one produce call carrying the rule record (penumbra.alert.rules, key id) and
 *   its audit entry (penumbra.audit: who, before, after); the answer waits until this process's
 *   follower has applied the change (read-your-writes).
 * - `GET /api/v1/alerts?itemId=&state=&limit=` (viewer) → `{ alerts }`, newest first, from the
 *   bounded ring fed by penumbra.alerts.
 */
import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { TopicNames } from '../../pipeline/config/config.ts';
import type { AvroProducer } from '../../pipeline/kafka/client.ts';
import { NotFoundError, UnavailableError } from '../../pipeline/errors.ts';
import type { AlertRule } from '../../schemas/types.generated.ts';
import { METRIC_PATTERN } from '../../pipeline/alerts/rules.ts';
import { ruleView, type RuleStore } from '../../pipeline/alerts/rule-store.ts';
import type { AlertLog } from '../../pipeline/alerts/alert-log.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type Principal, type TokenStore } from './auth.ts';

const ITEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const DIRECTIONS = { absolute: ['above', 'below'], vs_control: ['increase', 'decrease'] } as const;

export const alertRuleInputSchema = z
  .object({
    itemId: z.string().regex(ITEM_ID, 'an item id (letters, digits, . _ -)').nullable().default(null).describe('Item the rule watches; null for every item'),
    name: z.string().trim().min(1, 'name the rule').max(200).describe('Human name'),
    metric: z
      .string()
      .regex(METRIC_PATTERN, 'one of errorRate, requestErrorRate, latencyMean, latencyP95, latencyP99, conversion:<point>, perfMean:<name>, perfP95:<name> (e.g. perfP95:lcp)')
      .describe('Metric judged on each 10 s window; perfMean:/perfP95:<name> watch a page timing or web vital (lcp, inp, cls, ttfb, fcp, load …)'),
    comparison: z
      .enum(['absolute', 'vs_control', 'vs_original'])
      .describe('absolute: the shadow value; vs_control: shadow minus its control arm (relative for latency and perf, points for rates). vs_original is a deprecated alias of vs_control, stored as vs_control'),
    direction: z
      .enum(['above', 'below', 'increase', 'decrease'])
      .optional()
      .describe('Which way is a breach: above | below for absolute rules (default above), increase | decrease for vs_control rules (default increase)'),
    kind: z.enum(['threshold', 'ewma']).default('threshold').describe('threshold: a fixed limit; ewma: an anomaly against the metric\'s own exponentially weighted baseline'),
    threshold: z.number().finite().describe('threshold kind: the limit (for increase/decrease the size of the change, ≥ 0); ewma kind: the z-score limit (> 0)'),
    ewma: z
      .object({
        alpha: z.number().gt(0).max(1).default(0.1).describe('Smoothing factor (0, 1]'),
        warmup: z.number().int().min(0).max(10_000).default(10).describe('Judged windows before anything can breach'),
        minStd: z.number().finite().min(0).default(0).describe('Floor of the baseline standard deviation'),
      })
      .strict()
      .nullable()
      .default(null)
      .describe('EWMA parameters (kind ewma only; null: the defaults)'),
    minSample: z.number().int().min(0).max(1_000_000_000).default(20).describe('Sessions (rates), requests (latency) or perf values needed in a window before the rule judges'),
    forWindows: z.number().int().min(1).max(360).default(1).describe('Consecutive 10 s windows in breach before firing'),
    guardrail: z.boolean().default(false).describe('Roll the item back when this fires and the item has guardrail on'),
  })
  .strict()
  .superRefine((r, ctx) => {
    const cmp = r.comparison === 'absolute' ? 'absolute' : 'vs_control';
    if (r.direction && !(DIRECTIONS[cmp] as readonly string[]).includes(r.direction)) {
      ctx.addIssue({ code: 'custom', path: ['direction'], message: `${cmp} rules take ${DIRECTIONS[cmp].join(' or ')}` });
    }
    if (r.kind === 'ewma' && !(r.threshold > 0)) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'an ewma rule needs a z-score limit > 0' });
    if (r.kind === 'threshold' && cmp === 'vs_control' && r.threshold < 0) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'the size of the change (≥ 0): pick direction decrease for a drop' });
    }
    if (r.kind === 'threshold' && r.ewma !== null) ctx.addIssue({ code: 'custom', path: ['ewma'], message: 'only for kind ewma' });
  })
  .transform((r) => {
    const comparison = r.comparison === 'absolute' ? ('absolute' as const) : ('vs_control' as const);
    return { ...r, comparison, direction: r.direction ?? DIRECTIONS[comparison][0] };
  });

const idParam = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/);
const alertsQuery = z.object({
  itemId: z.string().max(128).optional(),
  state: z.enum(['fired', 'resolved']).optional(),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
});

export interface AlertsRouterDeps {
  rules: RuleStore;
  alerts: AlertLog;
  producer: AvroProducer;
  topics: TopicNames;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  /** How long a change may take to come back through the follower (default 10 s). */
  visibleWithinMs?: number;
}

export function createAlertsRouter(deps: AlertsRouterDeps): Router {
  const r = Router();
  const viewer = requireRole(deps.tokens, 'viewer');
  const operator = requireRole(deps.tokens, 'operator');
  const who = (res: Response): Principal => res.locals.principal as Principal;

  /** Produce the rule record and its audit entry together, then wait until the store shows it. */
  async function write(res: Response, action: 'create' | 'update' | 'delete', before: AlertRule | null, after: AlertRule): Promise<void> {
    const p = who(res);
    await deps.producer.send([
      { topic: deps.topics.alertRules, key: after.id, value: after },
      {
        topic: deps.topics.audit,
        key: after.itemId ?? '-',
        value: {
          id: randomUUID(), itemId: after.itemId ?? before?.itemId ?? null, actor: p.name, role: p.role, action: `alert-rule.${action}`, outcome: 'accepted',
          reason: null, beforeJson: before ? JSON.stringify(ruleView(before)) : null, afterJson: after.deleted ? null : JSON.stringify(ruleView(after)),
          evidenceJson: null, requestId: (res.locals.requestId as string | undefined) ?? null, at: after.updatedAt,
        },
      },
    ]);
    try {
      await deps.rules.waitUntil(() => {
        const cur = deps.rules.get(after.id);
        return after.deleted ? cur === undefined || cur.updatedAt > after.updatedAt : (cur?.updatedAt ?? -1) >= after.updatedAt;
      }, deps.visibleWithinMs ?? 10_000);
    } catch {
      throw new UnavailableError(`the alert rule change is stored in Kafka but not visible in this process yet; retry the read shortly`);
    }
  }

  const stamp = (): number => Date.now();

  deps.openapi.add({ method: 'get', path: '/api/v1/alert-rules', summary: 'Alert rules', auth: 'viewer', tags: ['alerts'], responses: { 200: '{ rules }', 401: 'No token' } });
  r.get('/api/v1/alert-rules', viewer, (_req, res) => {
    res.json({ rules: deps.rules.all().map(ruleView) });
  });

  deps.openapi.add({ method: 'post', path: '/api/v1/alert-rules', summary: 'Create an alert rule (audited)', auth: 'operator', tags: ['alerts'], body: alertRuleInputSchema, responses: { 201: 'The rule', 401: 'No token', 403: 'Needs operator', 422: 'Invalid rule (field paths)', 503: 'Kafka unavailable' } });
  r.post('/api/v1/alert-rules', operator, async (req, res) => {
    const input = parseOr422(alertRuleInputSchema, req.body, '', 'alert rule');
    const rule: AlertRule = { id: randomUUID(), ...input, deleted: false, updatedBy: who(res).name, updatedAt: stamp() };
    await write(res, 'create', null, rule);
    res.status(201).setHeader('Location', `/api/v1/alert-rules/${rule.id}`).json(ruleView(rule));
  });

  deps.openapi.add({ method: 'put', path: '/api/v1/alert-rules/{id}', summary: 'Replace an alert rule (audited)', auth: 'operator', tags: ['alerts'], body: alertRuleInputSchema, responses: { 200: 'The rule', 401: 'No token', 403: 'Needs operator', 404: 'Unknown rule', 422: 'Invalid rule (field paths)' } });
  r.put('/api/v1/alert-rules/:id', operator, async (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'rule id');
    const before = deps.rules.get(id);
    if (!before) throw new NotFoundError(`alert rule ${id} does not exist`);
    const input = parseOr422(alertRuleInputSchema, req.body, '', 'alert rule');
    const rule: AlertRule = { id, ...input, deleted: false, updatedBy: who(res).name, updatedAt: Math.max(stamp(), before.updatedAt + 1) };
    await write(res, 'update', before, rule);
    res.json(ruleView(rule));
  });

  deps.openapi.add({ method: 'delete', path: '/api/v1/alert-rules/{id}', summary: 'Delete an alert rule (audited)', auth: 'operator', tags: ['alerts'], responses: { 204: 'Deleted', 401: 'No token', 403: 'Needs operator', 404: 'Unknown rule' } });
  r.delete('/api/v1/alert-rules/:id', operator, async (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'rule id');
    const before = deps.rules.get(id);
    if (!before) throw new NotFoundError(`alert rule ${id} does not exist`);
    const tomb: AlertRule = { ...before, deleted: true, updatedBy: who(res).name, updatedAt: Math.max(stamp(), before.updatedAt + 1) };
    await write(res, 'delete', before, tomb);
    res.status(204).end();
  });

  deps.openapi.add({ method: 'get', path: '/api/v1/alerts', summary: 'Recent fired and resolved alerts, newest first', auth: 'viewer', tags: ['alerts'], query: alertsQuery, responses: { 200: '{ alerts }', 401: 'No token', 422: 'Bad query' } });
  r.get('/api/v1/alerts', viewer, (req, res) => {
    const q = parseOr422(alertsQuery, req.query, 'query', 'alerts query');
    res.json({ alerts: deps.alerts.query(q) });
  });

  return r;
}

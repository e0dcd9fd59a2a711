/**
 * Device-facing resolve and launch routes, and the operator views of resolvers and exposures.
 *
 * GET /api/v1/resolve and GET /launch/{itemId} answer from memory only (Resolver over the
 * ProfileStore/CatalogStore) and never wait on Kafka: the assignment record is queued. They take
 * no token, are rate limited per client and validated with the zod schemas below (422 with
 * field paths). Unknown items are not an error to the device: the answer is the original.
 */
import { Router, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Resolver, ResolveRequest } from '../../pipeline/resolver/resolver.ts';
import type { ResolverRegistry, ExposureView } from '../../pipeline/resolver/resolver-registry.ts';
import { NotFoundError, ValidationError, type FieldIssue } from '../../pipeline/errors.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { requireRole, type TokenStore } from './auth.ts';
import { rateLimit, defaultDeviceLimits, type DeviceLimits } from './rate-limit.ts';
import { zodIssues } from './validate.ts';
import { contentBaseFor } from './content-origin.ts';

export interface ResolverRouterDeps {
  resolver: Resolver;
  registry: ResolverRegistry;
  exposures: (itemId: string) => ExposureView;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  /** Per-client limits; `resolve` is shared with the raw fast path (resolve-fast-path.ts). */
  limits?: DeviceLimits;
  /** Base URL of the item-pages origin; /launch redirects there (content-origin.ts). */
  contentUrl?: () => string;
}

const ITEM_ID = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'item id: letters, digits, . _ - (max 128)');
const attrs = {
  deviceType: z.string().min(1).max(32).optional().describe('android, ios, windows, macos, linux, chromeos, …; derived from Sec-CH-UA-Platform / User-Agent when absent'),
  country: z.string().min(1).max(8).optional().describe('ISO country code; derived from CF-IPCountry, CloudFront-Viewer-Country, X-Vercel-IP-Country, X-Country-Code when absent'),
  userGroup: z.string().min(1).max(64).optional(),
  appVersion: z.string().min(1).max(64).optional(),
};
const USER_ID = z.string().min(1).max(256);
export const resolveQuerySchema = z.object({ itemId: ITEM_ID, userId: USER_ID, ...attrs });
export const launchQuerySchema = z.object({ userId: USER_ID.optional().describe('Defaults to the penumbra_uid cookie, or a new id set as that cookie'), ...attrs });
const ATTR_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
const MAX_ATTRS = 32;
const exposuresQuery = z.object({ itemId: ITEM_ID });

export const UID_COOKIE = 'penumbra_uid';
const UID_RE = new RegExp(`(?:^|;\\s*)${UID_COOKIE}=([A-Za-z0-9_-]{8,128})`);

/** Custom attributes from `attr.<name>=` parameters (Express's simple query parser keeps the dots). */
function customAttributes(query: Record<string, unknown>, issues: FieldIssue[]): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  let n = 0;
  for (const k in query) {
    if (!k.startsWith('attr.')) continue;
    const name = k.slice(5);
    const v = query[k];
    if (!ATTR_NAME.test(name)) issues.push({ path: `query/${k}`, message: 'attribute name: letters, digits, _ - . (max 64)' });
    else if (typeof v !== 'string') issues.push({ path: `query/${k}`, message: 'must be given once' });
    else if (v.length > 256) issues.push({ path: `query/${k}`, message: 'at most 256 characters' });
    else if (++n > MAX_ATTRS) issues.push({ path: `query/${k}`, message: `at most ${MAX_ATTRS} custom attributes` });
    else (out ??= {})[name] = v;
  }
  return out;
}

function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, unknown>): { q: z.infer<T>; attributes: Record<string, string> | undefined } {
  const issues: FieldIssue[] = [];
  const r = schema.safeParse(query);
  if (!r.success) issues.push(...zodIssues(r.error, 'query'));
  const attributes = customAttributes(query, issues);
  if (issues.length > 0) throw new ValidationError('resolve query is invalid', issues);
  return { q: (r as { data: z.infer<T> }).data, attributes };
}

function deviceHeaders(res: Response): void {
  // Decisions change with every config change and differ per user: never cache them.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Access-Control-Allow-Origin', '*');
}

export function createResolverRouter(deps: ResolverRouterDeps): Router {
  const r = Router();
  const { resolver, openapi } = deps;
  const limits = deps.limits ?? defaultDeviceLimits();
  const limited = rateLimit(limits.resolve, limits.identity);
  const viewer = requireRole(deps.tokens, 'viewer');

  openapi.add({
    method: 'get', path: '/api/v1/resolve', auth: 'none', tags: ['device'], query: resolveQuerySchema,
    summary: 'Which variant this user runs (original, a shadow, or control: the original instrumented like the shadow in controlOf), from memory, with a signed assignment token to send as the telemetry batch\'s `token`. Custom attributes: attr.<name>=<value>. Unknown items answer the original with profileVersion 0.',
    responses: { 200: '{ itemId, variant, controlOf? (control only), artifactUrl, launchUrl, profileVersion, reason, bucket, derived, token, tokenExpiresAt (epoch ms) }', 422: 'Invalid query (field paths)', 429: 'Rate limited' },
  });
  r.options('/api/v1/resolve', (_req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Methods', 'GET, OPTIONS');
    res.setHeader('Access-Control-Max-Age', '86400');
    res.status(204).end();
  });
  r.get('/api/v1/resolve', (req, res, next) => {
    deviceHeaders(res);
    next();
  }, limited, (req, res) => {
    const { q, attributes } = parseQuery(resolveQuerySchema, req.query as Record<string, unknown>);
    const answer = resolver.resolve({ ...q, attributes }, req.headers);
    // Written directly: res.json would also hash the body for an ETag nobody may use (no-store).
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(answer));
  });

  openapi.add({
    method: 'get', path: '/launch/{itemId}', auth: 'none', tags: ['device'], query: launchQuerySchema,
    summary: 'Resolve (same logic and assignment record as /api/v1/resolve), then 302 to the variant launchUrl with ?penumbra_uid=<user>&penumbra_token=<assignment token> (the injected library keeps both). Without userId the penumbra_uid cookie keeps a browser in its bucket.',
    responses: { 302: 'Redirect to /d/{itemId}/{version}/{variant}/{entry}', 404: 'Item unknown or has nothing to launch', 422: 'Invalid query', 429: 'Rate limited' },
  });
  r.get('/launch/:itemId', limited, (req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-store');
    const query = req.query as Record<string, unknown>;
    const { q, attributes } = parseQuery(launchQuerySchema, query);
    const itemId = ITEM_ID.safeParse(req.params.itemId);
    if (!itemId.success) throw new ValidationError('item id is invalid', zodIssues(itemId.error, 'path/itemId'));
    let userId = q.userId;
    if (userId === undefined) {
      userId = UID_RE.exec(req.headers.cookie ?? '')?.[1];
      if (userId === undefined) {
        userId = randomUUID();
        const secure = req.secure ? '; Secure' : '';
        res.append('Set-Cookie', `${UID_COOKIE}=${userId}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax${secure}`);
      }
    }
    const request: ResolveRequest = { ...q, itemId: itemId.data, userId, attributes };
    const answer = resolver.resolve(request, req.headers);
    if (answer.launchUrl === null) throw new NotFoundError(`item ${itemId.data} has nothing to launch (unknown item or catalog not loaded)`);
    // The injected library reports telemetry under this user id, so it joins the assignment, and
    // sends the token with every batch, so the collector can verify what it claims.
    res.redirect(302, `${contentBaseFor(deps.contentUrl?.() ?? '', itemId.data)}${answer.launchUrl}?penumbra_uid=${encodeURIComponent(userId)}&penumbra_token=${encodeURIComponent(answer.token)}`);
  });

  openapi.add({ method: 'get', path: '/api/v1/resolvers', auth: 'viewer', tags: ['ops'], summary: 'Resolver processes and the profile version of each item they serve (stale = no heartbeat for 15 s)', responses: { 200: '{ resolvers: [{ resolverId, host, pid, versions, at, stale }] }', 401: 'No token' } });
  r.get('/api/v1/resolvers', viewer, (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ resolvers: deps.registry.list() });
  });

  openapi.add({ method: 'get', path: '/api/v1/exposures', auth: 'viewer', tags: ['ops'], query: exposuresQuery, summary: 'Exposures per variant for the item\'s current profile version (from penumbra.assignments)', responses: { 200: '{ itemId, profileVersion, counts, total, since }', 401: 'No token', 422: 'Invalid query' } });
  r.get('/api/v1/exposures', viewer, (req, res) => {
    const r2 = exposuresQuery.safeParse(req.query);
    if (!r2.success) throw new ValidationError('exposures query is invalid', zodIssues(r2.error, 'query'));
    res.setHeader('Cache-Control', 'no-store');
    res.json(deps.exposures(r2.data.itemId));
  });

  return r;
}

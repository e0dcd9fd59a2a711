/**
 * Operator routes for items and their shadow profiles, plus the device routes that serve
 * artifacts (download, unpacked CDN-like origin, runtime config).
 */
import { Router, type Request, type Response } from 'express';
import path from 'node:path';
import { z } from 'zod';
import type { BlobStore } from '../blob-store/blob-store.ts';
import type { CatalogStore } from '../../pipeline/ingest/catalog-store.ts';
import { withVersion } from '../../pipeline/ingest/catalog-store.ts';
import { ingestDigitalItem, buildControl, buildShadow, needsControl, type IngestDeps } from '../../pipeline/ingest/ingest-service.ts';
import type { ProfileService } from '../../pipeline/profiles/profile-service.ts';
import { publicConfigView } from '../../pipeline/profiles/codec.ts';
import { parseShadowConfigs } from '../../pipeline/shadowing/shadow-config.ts';
import { controlInstrumentation } from '../../pipeline/shadowing/control.ts';
import { readArchiveBuffer, detectFormat } from '../../pipeline/shadowing/archive.ts';
import type { ItemManifest, ShadowProfile, ShadowSpec } from '../../pipeline/domain/types.ts';
import { CONTROL, ORIGINAL } from '../../pipeline/domain/types.ts';
import { NotFoundError, PreconditionRequiredError, ValidationError } from '../../pipeline/errors.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { requireRole, type Principal, type TokenStore } from './auth.ts';
import { parseBandit } from '../../pipeline/bandit/plan.ts';
import { parseUpload } from './multipart.ts';
import { parseOr422 } from './validate.ts';
import { FileCache } from './file-cache.ts';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { rateLimit, defaultDeviceLimits, type DeviceLimits } from './rate-limit.ts';
import { servedOnContentOrigin } from './content-origin.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json', '.woff': 'font/woff', '.woff2': 'font/woff2', '.wasm': 'application/wasm',
};

export interface ItemsRouterDeps {
  catalog: CatalogStore;
  profiles: ProfileService;
  blobs: BlobStore;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  ingest: IngestDeps;
  maxUploadBytes: number;
  publishCatalog: IngestDeps['publishCatalog'];
  /**
   * Per-client limits of the unauthenticated device routes (PENUMBRA_RATE_*; defaults in
   * pipeline/config). A page load fetches tens of files, so /d/ is generous; an artifact is a
   * blob read of up to the upload limit, so artifacts are tight; the library refreshes runtime
   * config every 30 s per device, leaving room for a few hundred devices behind one NAT address.
   */
  limits?: DeviceLimits;
  /** Bytes of single /d/ files kept in memory (PENUMBRA_FILE_CACHE_BYTES). */
  fileCacheBytes?: number;
}

const ruleSchema = z.object({
  attribute: z.string(), op: z.enum(['in', 'not_in', 'equals', 'not_equals', 'semver', 'regex']),
  values: z.array(z.string()).optional(), value: z.string().optional(), range: z.string().optional(), pattern: z.string().optional(),
});
export const shadowConfigSchema = z.object({
  name: z.string().describe('Shadow (variant) name'),
  instrumentation: z.object({
    capture: z.object({ performance: z.boolean(), errors: z.boolean(), usage: z.boolean() }).partial().optional(),
    points: z.array(z.object({ id: z.string(), selector: z.string(), event: z.string() })).optional(),
    sampleRate: z.number().min(0).max(1).optional(),
  }).optional(),
  endpoints: z.record(z.string(), z.string()).optional(),
  traffic: z.object({ percentage: z.number(), match: z.enum(['all', 'any']).optional(), rules: z.array(ruleSchema).optional() }).optional(),
  control: z.boolean().optional().describe('Equally sized control cohort (variant control: the original, instrumented alike, no endpoint rewrites); default true. A shadow with a control takes its share twice (one shadow: at most 50 %)'),
});
export const putConfigSchema = z.object({
  shadows: z.array(z.unknown()).describe('Shadow configs (see shadowConfigSchema); validated against the item manifest'),
  state: z.enum(['active', 'rolled_back']).optional(),
  holdout: z.number().min(0).max(100).optional(),
  guardrail: z.boolean().optional(),
  schedule: z.object({ shadow: z.string(), steps: z.array(z.object({ percentage: z.number().min(0).max(100), holdSeconds: z.number().int().min(1).max(30 * 86400) })).min(1).max(100) }).nullable().optional()
    .describe('Deprecated: a timer ramp; becomes the named shadow\'s rollout plan (no guardrails). Use shadows[].rollout'),
  bandit: z.unknown().optional().describe('Bandit among the shadows (docs/rollouts.md); null removes it, absent keeps it'),
});
const itemIdParam = z.object({ itemId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/) });
const variantQuery = z.object({ variant: z.string().min(1).max(64), version: z.string().max(64).optional() });
const runtimeQuery = variantQuery.extend({
  controlOf: z.string().min(1).max(64).optional().describe('For variant control: the shadow whose control cohort the session is in (from its assignment token)'),
});
const actionBody = z.object({ reason: z.string().max(500).optional() });

function actor(res: Response): Principal {
  return res.locals.principal as Principal;
}

function itemIdOf(req: Request): string {
  return parseOr422(itemIdParam, req.params, 'path', 'item id').itemId;
}

export function itemView(catalog: CatalogStore, profiles: ProfileService, itemId: string) {
  const e = catalog.get(itemId);
  const p = profiles.peek(itemId);
  // Mobile (update bundle) or web, from the manifest of the version the profile serves.
  const served = e.versions.find((v) => v.version === (p?.itemVersion ?? e.latestVersion)) ?? e.versions[e.versions.length - 1];
  const servedManifest = served ? (JSON.parse(served.manifestJson) as ItemManifest) : undefined;
  const mobile = servedManifest?.runtimeVersion !== undefined;
  return {
    itemId: e.itemId,
    name: e.name,
    kind: mobile ? 'mobile' : 'web',
    platforms: mobile ? (servedManifest?.platforms ?? []) : ['web'],
    runtimeVersion: mobile ? servedManifest!.runtimeVersion! : null,
    updateUrl: mobile ? `/api/v1/expo/${encodeURIComponent(e.itemId)}/manifest` : null,
    latestVersion: e.latestVersion,
    state: p?.state ?? 'active',
    profileVersion: p?.profileVersion ?? 0,
    updatedAt: e.updatedAt,
    versions: e.versions.map((v) => ({
      version: v.version,
      entry: v.entry,
      ingestedAt: v.ingestedAt,
      manifest: JSON.parse(v.manifestJson) as ItemManifest,
      variants: v.variants.map((x) => ({ ...x, artifactUrl: `/api/v1/items/${encodeURIComponent(e.itemId)}/artifacts/${encodeURIComponent(x.name)}?version=${encodeURIComponent(v.version)}`, launchUrl: `/d/${encodeURIComponent(e.itemId)}/${encodeURIComponent(v.version)}/${encodeURIComponent(x.name)}/${v.entry}` })),
    })),
    shadows: (p?.shadows ?? []).map((s) => ({ name: s.name, percentage: s.traffic.percentage, rules: s.traffic.rules.length })),
  };
}

/** The first bytes of a stream (to tell zip from gzip) and the stream to read the rest from. */
async function firstBytes(stream: Readable): Promise<{ bytes: Buffer; rest: Readable }> {
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  const bytes = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Buffer);
  return { bytes, rest: Readable.from({ [Symbol.asyncIterator]: () => it }) };
}

/**
 * PUT shadow-config's change, shared with the routes that derive a configuration (a revert to an
 * earlier version, pipeline/rollout): validate against the manifest, build the artifacts the
 * change needs, submit `put_config`, publish the catalog's variants. Returns the new profile.
 */
export async function putShadowConfig(
  deps: Pick<ItemsRouterDeps, 'catalog' | 'profiles' | 'blobs' | 'ingest' | 'publishCatalog'>,
  args: { itemId: string; ifMatch: number; body: z.infer<typeof putConfigSchema>; who: Principal; requestId: string; reason?: string | null },
): Promise<ShadowProfile> {
  const { catalog, profiles, blobs } = deps;
  const { itemId, ifMatch, body, who, requestId, reason } = args;
  const current = profiles.get(itemId);
  const entry = catalog.get(itemId);
  const ver = entry.versions.find((v) => v.version === current.itemVersion) ?? entry.versions[entry.versions.length - 1];
  const manifest = JSON.parse(ver.manifestJson) as ItemManifest;
  const configs = parseShadowConfigs(body.shadows, manifest, { pathPrefix: 'shadows', planLimits: deps.ingest.planLimits });
  const bandit = body.bandit === undefined || body.bandit === null ? body.bandit : parseBandit(body.bandit, configs, deps.ingest.banditLimits);
  // Instrumentation and traffic changes need no new artifact (the library reads runtime
  // config); a new shadow or changed endpoint overrides do: build only those.
  const needBuild = configs.filter((c) => {
    const old = current.shadows.find((s) => s.name === c.name);
    return !old?.artifact || JSON.stringify(old.endpoints) !== JSON.stringify(c.endpoints);
  });
  const shadows: ShadowSpec[] = configs.map((c) => ({ ...c, artifact: current.shadows.find((s) => s.name === c.name)?.artifact }));
  // A control switched on where the item version has no control artifact yet gets one built,
  // exactly like a new shadow (the control artifact does not depend on the shadows' configs).
  const buildCtl = needsControl(configs) && !(current.controlArtifact && ver.variants.some((v) => v.name === CONTROL));
  let newVariants: { name: string; sha256: string; size: number; files: number; replacements: number }[] = [];
  let controlArtifact: { sha256: string; size: number } | undefined;
  if (needBuild.length > 0 || buildCtl) {
    const origRef = ver.variants.find((v) => v.name === ORIGINAL)!;
    const origBytes = await blobs.get(origRef.sha256);
    const tree = await readArchiveBuffer(origBytes);
    const library = await deps.ingest.library();
    const rnLibrary = tree.manifest.runtimeVersion !== undefined ? await deps.ingest.rnLibrary?.() : undefined;
    const format = detectFormat(origBytes) ?? 'zip';
    const ctx = { library, rnLibrary, publicUrl: deps.ingest.publicUrl, profileVersion: ifMatch + 1 };
    newVariants = await Promise.all(needBuild.map(async (c) => {
      const b = await buildShadow(tree, c, format, ctx);
      const info = await blobs.put(b.bytes);
      shadows.find((s) => s.name === c.name)!.artifact = info;
      return { name: c.name, ...info, files: b.files, replacements: b.report.totalReplacements };
    }));
    if (buildCtl) {
      const b = await buildControl(tree, format, ctx);
      controlArtifact = await blobs.put(b.bytes);
      newVariants.push({ name: CONTROL, ...controlArtifact, files: b.files, replacements: 0 });
    }
  }
  const next = await profiles.submit({
    itemId, kind: 'put_config', ifMatch,
    payload: { shadows, state: body.state, holdout: body.holdout, guardrail: body.guardrail, schedule: body.schedule, bandit, ...(controlArtifact ? { controlArtifact } : {}) },
    actor: who.name, role: who.role, reason: reason ?? null, commandId: requestId,
  });
  const shadowVariants = ver.variants.filter((v) => v.name !== ORIGINAL && v.name !== CONTROL);
  if (newVariants.length > 0 || configs.length !== shadowVariants.length) {
    const variant = (name: string, ref: { sha256: string; size: number }) => {
      const built = newVariants.find((v) => v.name === name);
      const old = ver.variants.find((v) => v.name === name);
      return { name, sha256: ref.sha256, size: ref.size, files: built?.files ?? old?.files ?? 0, profileVersion: next.profileVersion, replacements: built?.replacements ?? old?.replacements ?? 0 };
    };
    const variants = [
      ver.variants.find((v) => v.name === ORIGINAL)!,
      ...next.shadows.map((s) => variant(s.name, s.artifact!)),
      ...(next.controlArtifact ? [variant(CONTROL, next.controlArtifact)] : []),
    ];
    const updated = withVersion(catalog.find(itemId), itemId, entry.name, { ...ver, variants }, Date.now());
    await deps.publishCatalog(updated);
    catalog.apply(updated);
  }
  return next;
}

export function createItemsRouter(deps: ItemsRouterDeps): Router {
  const r = Router();
  const { catalog, profiles, blobs, tokens, openapi } = deps;
  const viewer = requireRole(tokens, 'viewer');
  const operator = requireRole(tokens, 'operator');
  const files = new FileCache((sha256) => blobs.get(sha256).then((b) => readArchiveBuffer(b)), deps.fileCacheBytes);
  const limits = deps.limits ?? defaultDeviceLimits();
  const limited = (b: DeviceLimits['files']) => rateLimit(b, limits.identity);

  openapi.add({ method: 'post', path: '/api/v1/items', summary: 'Ingest an item archive with optional shadow config(s)', auth: 'operator', tags: ['items'], bodyContentType: 'multipart/form-data', body: z.object({ item: z.string().describe('The .zip or .tar.gz archive (binary)'), shadowConfig: z.string().optional().describe('JSON: one shadow config or an array'), proactive: z.enum(['true', 'false']).optional().describe('[#13] true: the new version goes out as a risk-sized shadow of the current one instead of replacing it; default true when the item already has an active original and this is another version'), rollout: z.string().optional().describe('[#13] JSON: explicit rollout plan fields for a proactive version (steps, analysisSeconds, minSessionsPerArm, guardrails, maxInconclusive, onComplete); the risk mapping fills the rest') }), responses: { 201: 'Ingested; catalog entry, profile, per-shadow rewrite reports, risk score, and for a proactive version its shadow, plan and sizing', 401: 'No token', 403: 'Role too low', 413: 'Archive too large', 422: 'Archive or shadow config refused (reason and field paths)' } });
  r.post('/api/v1/items', operator, async (req, res) => {
    const up = await parseUpload(req, deps.maxUploadBytes);
    const who = actor(res);
    const result = await ingestDigitalItem(deps.ingest, { archive: up.item, shadowConfig: up.shadowConfig, actor: who, requestId: res.locals.requestId as string, proactive: up.proactive, rollout: up.rollout });
    res.status(201).location(`/api/v1/items/${encodeURIComponent(result.entry.itemId)}`).json({
      item: itemView(catalog, profiles, result.entry.itemId),
      profile: publicConfigView(result.profile),
      reports: result.reports,
      risk: result.risk ? { featuresId: result.risk.featuresId, ...result.risk.score } : null,
      proactive: result.proactive ?? false,
      ...(result.proactive ? { versionShadow: result.versionShadow, plan: result.plan, sizing: result.sizing } : {}),
    });
  });

  openapi.add({ method: 'get', path: '/api/v1/items', summary: 'List the catalog', auth: 'viewer', tags: ['items'], query: z.object({ q: z.string().optional() }), responses: { 200: 'Items', 401: 'No token' } });
  r.get('/api/v1/items', viewer, (req, res) => {
    const q = typeof req.query.q === 'string' ? req.query.q.toLowerCase() : '';
    const items = catalog.list().filter((e) => !q || e.itemId.toLowerCase().includes(q) || e.name.toLowerCase().includes(q));
    res.json({ items: items.map((e) => itemView(catalog, profiles, e.itemId)) });
  });

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}', summary: 'One catalog item with versions and variants', auth: 'viewer', tags: ['items'], responses: { 200: 'Item', 404: 'Unknown item' } });
  r.get('/api/v1/items/:itemId', viewer, (req, res) => {
    res.json(itemView(catalog, profiles, itemIdOf(req)));
  });

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/shadow-config', summary: 'Current shadow profile (ETag = profile version)', auth: 'viewer', tags: ['config'], responses: { 200: 'Profile', 404: 'Unknown item' } });
  r.get('/api/v1/items/:itemId/shadow-config', viewer, (req, res) => {
    const p = profiles.get(itemIdOf(req));
    res.setHeader('ETag', `"${p.profileVersion}"`);
    res.json(publicConfigView(p));
  });

  openapi.add({ method: 'put', path: '/api/v1/items/{itemId}/shadow-config', summary: 'Replace the shadow configuration (If-Match: profile version)', auth: 'operator', tags: ['config'], body: putConfigSchema, responses: { 200: 'New profile', 404: 'Unknown item', 409: 'Stale If-Match (changed by someone else)', 422: 'Invalid config (field paths)', 428: 'If-Match missing' } });
  r.put('/api/v1/items/:itemId/shadow-config', operator, async (req, res) => {
    const itemId = itemIdOf(req);
    const ifMatchRaw = req.headers['if-match'];
    if (!ifMatchRaw) throw new PreconditionRequiredError('PUT shadow-config needs If-Match: <profileVersion> (from GET shadow-config ETag)');
    const ifMatch = Number(String(ifMatchRaw).replace(/^W\//, '').replace(/"/g, ''));
    if (!Number.isInteger(ifMatch) || ifMatch < 0) throw new ValidationError('If-Match must be a profile version number', [{ path: 'header/If-Match', message: 'not an integer version' }]);
    const body = parseOr422(putConfigSchema, req.body, '', 'shadow-config body');
    const next = await putShadowConfig(deps, { itemId, ifMatch, body, who: actor(res), requestId: res.locals.requestId as string });
    res.setHeader('ETag', `"${next.profileVersion}"`);
    res.json(publicConfigView(next));
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/rollback', summary: 'One-click rollback: all traffic to the original, durably', auth: 'operator', tags: ['config'], body: actionBody, responses: { 200: 'Rolled-back profile', 404: 'Unknown item' } });
  r.post('/api/v1/items/:itemId/rollback', operator, async (req, res) => {
    const itemId = itemIdOf(req);
    const body = parseOr422(actionBody, req.body ?? {}, '', 'rollback body');
    const who = actor(res);
    const p = await profiles.submit({ itemId, kind: 'rollback', ifMatch: null, payload: {}, actor: who.name, role: who.role, reason: body.reason ?? 'operator rollback', commandId: res.locals.requestId as string });
    res.setHeader('ETag', `"${p.profileVersion}"`);
    res.json(publicConfigView(p));
  });

  openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/activate', summary: 'Turn shadows back on after a rollback (explicit change)', auth: 'operator', tags: ['config'], body: actionBody, responses: { 200: 'Active profile', 404: 'Unknown item' } });
  r.post('/api/v1/items/:itemId/activate', operator, async (req, res) => {
    const itemId = itemIdOf(req);
    const body = parseOr422(actionBody, req.body ?? {}, '', 'activate body');
    const who = actor(res);
    const p = await profiles.submit({ itemId, kind: 'activate', ifMatch: null, payload: {}, actor: who.name, role: who.role, reason: body.reason ?? null, commandId: res.locals.requestId as string });
    res.setHeader('ETag', `"${p.profileVersion}"`);
    res.json(publicConfigView(p));
  });

  // ---- device-facing -------------------------------------------------------------------

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/artifacts/{variant}', summary: 'Download an artifact (immutable, ETag = sha256)', auth: 'none', tags: ['device'], query: z.object({ version: z.string().optional() }), responses: { 200: 'Archive bytes', 304: 'Not modified', 404: 'Unknown item/variant', 429: 'Too many requests from this client' } });
  r.get('/api/v1/items/:itemId/artifacts/:variant', limited(limits.artifacts), async (req, res) => {
    const itemId = itemIdOf(req);
    const version = typeof req.query.version === 'string' ? req.query.version : undefined;
    const v = catalog.version(itemId, version);
    const variant = v.variants.find((x) => x.name === req.params.variant);
    if (!variant) throw new NotFoundError(`item ${itemId} ${v.version} has no variant ${req.params.variant}`);
    const etag = `"${variant.sha256}"`;
    res.setHeader('ETag', etag);
    // Content-addressed: the bytes behind this ETag never change.
    res.setHeader('Cache-Control', version ? 'public, max-age=31536000, immutable' : 'public, max-age=60');
    if (req.headers['if-none-match'] === etag) return void res.status(304).end();
    // Streamed from the blob store: an artifact may be as large as the upload limit, and reading
    // it whole per request let a few concurrent downloads hold gigabytes (issue 17, item 4).
    const { stream, size } = await blobs.stream(variant.sha256);
    const head = await firstBytes(stream);
    const zip = detectFormat(head.bytes) === 'zip';
    res.setHeader('Content-Type', zip ? 'application/zip' : 'application/gzip');
    res.setHeader('Content-Length', String(size));
    res.setHeader('Content-Disposition', `attachment; filename="${itemId}-${v.version}-${variant.name}.${zip ? 'zip' : 'tar.gz'}"`);
    res.write(head.bytes);
    await pipeline(head.rest, res).catch(() => undefined); // a client that goes away is not an error
  });

  openapi.add({ method: 'get', path: '/d/{itemId}/{version}/{variant}/{file}', summary: 'Unpacked variant files, served like a CDN origin', auth: 'none', tags: ['device'], responses: { 200: 'File', 404: 'No such file (no directory listing)', 429: 'Too many requests from this client' } });
  r.get(/^\/d\/([^/]+)\/([^/]+)\/([^/]+)\/(.*)$/, (req, _res, next) => {
    // Item pages only on the content listener (content-origin.ts): never on the API's origin,
    // whatever form the request target took.
    next(servedOnContentOrigin(req) ? undefined : new NotFoundError('item pages are served on the content origin only'));
  }, limited(limits.files), async (req, res) => {
    const params = req.params as unknown as Record<string, string>;
    // The router has already percent-decoded the captures; decoding again would turn a file
    // literally named `a%25b` into `a%b` and a stray `%` into a 500.
    const [itemId, version, variantName, rest] = [0, 1, 2, 3].map((i) => params[i] ?? '');
    const v = catalog.version(itemId, version);
    const variant = v.variants.find((x) => x.name === variantName);
    if (!variant) throw new NotFoundError(`no variant ${variantName}`);
    // Normalise and confine: the tree holds only validated relative paths, and we look up by
    // exact key, so `..` or absolute paths can never reach outside the variant.
    const rel = path.posix.normalize(rest === '' ? v.entry : rest);
    if (rel.startsWith('..') || rel.startsWith('/')) throw new NotFoundError('no such file');
    const file = await files.get(variant.sha256, rel);
    if (!file) throw new NotFoundError(`no file ${rel} in ${itemId} ${version} ${variantName}`);
    res.setHeader('Content-Type', CONTENT_TYPES[path.posix.extname(rel).toLowerCase()] ?? 'application/octet-stream');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Reached on the content origin only (content-origin.ts says why). Public files: any page
    // may load them with CORS (module scripts, SRI-checked scripts, fonts).
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('ETag', `"${variant.sha256.slice(0, 16)}-${rel.length}-${file.length}"`);
    res.end(file);
  });

  openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/runtime-config', summary: 'Live instrumentation config read by the injected library. variant=control gets the instrumentation of the shadow in controlOf (or the union over every shadow with a control) and the original endpoints', auth: 'none', tags: ['device'], query: runtimeQuery, responses: { 200: 'Runtime config', 404: 'Unknown item', 422: 'Bad query', 429: 'Too many requests from this client' } });
  r.get('/api/v1/items/:itemId/runtime-config', limited(limits.runtimeConfig), (req, res) => {
    const itemId = itemIdOf(req);
    const q = parseOr422(runtimeQuery, req.query, 'query', 'runtime-config query');
    const p = profiles.peek(itemId);
    if (!p) throw new NotFoundError(`item ${itemId} has no profile`);
    const entry = catalog.find(itemId);
    const manifest = entry ? (JSON.parse(entry.versions.find((v) => v.version === p.itemVersion)?.manifestJson ?? '{}') as ItemManifest) : undefined;
    // The control measures like its shadow but talks to the original's servers (no overrides).
    const ctl = q.variant === CONTROL ? controlInstrumentation(p.shadows, q.controlOf) : null;
    const s = ctl ? { instrumentation: ctl.instrumentation, endpoints: {} as Record<string, string> } : p.shadows.find((x) => x.name === q.variant);
    const enabled = (ctl ? ctl.enabled : Boolean(s)) && p.state === 'active';
    res.setHeader('Access-Control-Allow-Origin', '*');
    // Short max-age: points and sampling must change live, yet a fleet must not hammer us.
    res.setHeader('Cache-Control', 'public, max-age=5, stale-while-revalidate=25');
    // Header values must be Latin-1: encode the (arbitrary) variant name.
    res.setHeader('ETag', `"${p.profileVersion}-${encodeURIComponent(q.variant)}${q.controlOf ? `-${encodeURIComponent(q.controlOf)}` : ''}"`);
    res.json({
      itemId, variant: q.variant, ...(ctl && q.controlOf ? { controlOf: q.controlOf } : {}), profileVersion: p.profileVersion, enabled,
      sampleRate: s?.instrumentation.sampleRate ?? 0,
      capture: s?.instrumentation.capture ?? { performance: false, errors: false, usage: false },
      points: s?.instrumentation.points ?? [],
      endpoints: { ...(manifest?.endpoints ?? {}), ...(s?.endpoints ?? {}) },
      refreshSeconds: 30, flushIntervalMs: 2000, maxBatch: 50,
    });
  });

  return r;
}

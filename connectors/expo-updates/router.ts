/**
 * Expo Updates protocol v1 server for update bundles (pipeline/mobile): the update URL an app's
 * `updates.url` points at, and the immutable asset URLs its manifests name.
 *
 *   GET /api/v1/expo/{itemId}/manifest                 manifest or directive (multipart/mixed, or
 *                                                       application/expo+json / json for manifests)
 *   GET /api/v1/expo/{itemId}/assets/{sha256}/{path}   a file of one variant archive (sha256 =
 *                                                       the archive's; never changes), gzip/br
 *
 * Reads memory only (ProfileStore, CatalogStore, an LRU of unpacked variant archives from the
 * blob store) and never waits on Kafka: the split goes through the same Resolver as
 * /api/v1/resolve — platform as deviceType, runtimeVersion/channel/platform as custom
 * attributes, the device id as userId — so the exposure is queued on penumbra.assignments, the
 * decision is deterministic and ramps are monotone. The pure protocol (headers, choice, encoding,
 * signing) is pipeline/mobile/protocol.ts.
 */
import { Router, type Request, type Response } from 'express';
import zlib from 'node:zlib';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { BlobStore } from '../blob-store/blob-store.ts';
import type { CatalogStore } from '../../pipeline/ingest/catalog-store.ts';
import type { ProfileStore } from '../../pipeline/profiles/profile-store.ts';
import type { Resolver } from '../../pipeline/resolver/resolver.ts';
import type { ItemManifest } from '../../pipeline/domain/types.ts';
import { NotFoundError } from '../../pipeline/errors.ts';
import { readArchiveBuffer, type ItemTree } from '../../pipeline/shadowing/archive.ts';
import { readExpoLayout, type ExpoLayout, type ExpoPlatform } from '../../pipeline/mobile/expo-layout.ts';
import { assetContentType, buildExpoManifest, expoAssetHash, type ExpoManifest } from '../../pipeline/mobile/expo-manifest.ts';
import { checkSignatureRequest, chooseAnswer, encodeAnswer, newDeviceId, parseExpoRequest, USER_ID_HEADER, type EncodedResponse } from '../../pipeline/mobile/protocol.ts';
import type { CodeSigningKey } from '../../pipeline/mobile/signing.ts';
import { claimsFor, signAssignment, type KeyRing } from '../../pipeline/assignment-token/token.ts';
import type { OpenApiRegistry } from '../http/openapi.ts';
import { rateLimit, defaultDeviceLimits, keyOf, type DeviceLimits } from '../http/rate-limit.ts';
import { parseOr422 } from '../http/validate.ts';

export interface ExpoRouterDeps {
  resolver: Resolver;
  profiles: ProfileStore;
  catalog: CatalogStore;
  blobs: BlobStore;
  openapi: OpenApiRegistry;
  /** Base URL apps reach Penumbra at (asset URLs are absolute); read per request. */
  publicUrl: () => string;
  signingKey: CodeSigningKey | null;
  /** Assignment token key ring (pipeline/assignment-token); null = no token in manifests. */
  assignmentKeys: KeyRing | null;
  /** Token lifetime; an app keeps running an update for days, so longer than web's (7 days). */
  tokenTtlSeconds?: number;
  /**
   * Per-client limits (connectors/http/rate-limit.ts): an update check is a resolve
   * (PENUMBRA_RATE_RESOLVE, buckets shared with /resolve), assets are files (PENUMBRA_RATE_FILES).
   */
  limits?: DeviceLimits;
  now?: () => number;
}

export const EXPO_TOKEN_TTL_SECONDS = 7 * 24 * 3600;

const ITEM_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const itemParam = z.object({ itemId: z.string().regex(ITEM_ID_RE) });
const assetParams = z.object({ itemId: itemParam.shape.itemId, sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the variant archive sha256') });

interface VariantView {
  tree: ItemTree;
  layout: ExpoLayout;
  /** Memoised base64url SHA-256 per path; content types per path (from metadata.json). */
  hashes: Map<string, string>;
  types: Map<string, string>;
  compressed: Map<string, Buffer>;
  /**
   * Manifests of this archive without `extra` (the only per-device part), by platform, item,
   * variant and the URL base: everything in them — update id, asset hashes, keys, URLs — is a
   * function of those and the archive's bytes, so it is built once, not per update check.
   * `prefix` is its JSON text up to where `,"extra":…}` follows.
   */
  built: Map<string, { manifest: Omit<ExpoManifest, 'extra'>; prefix: string }>;
}

/** Parsed manifest.json per catalog version object (a new catalog entry brings new objects). */
const parsedManifests = new WeakMap<object, ItemManifest>();
function manifestOf(version: { manifestJson: string }): ItemManifest {
  let m = parsedManifests.get(version);
  if (m === undefined) parsedManifests.set(version, (m = JSON.parse(version.manifestJson) as ItemManifest));
  return m;
}

/** Unpacked variant archives by sha256 (small LRU: a fleet asks for the same few variants). */
class VariantCache {
  private readonly map = new Map<string, Promise<VariantView>>();
  constructor(private readonly blobs: BlobStore, private readonly max = 16) {}
  private readonly ready = new Map<string, VariantView>();
  /** The view if it is loaded already (no LRU bump): the fast path answers only from memory. */
  peek(sha256: string): VariantView | undefined {
    return this.map.has(sha256) ? this.ready.get(sha256) : undefined;
  }
  get(sha256: string, platforms: readonly string[]): Promise<VariantView> {
    let v = this.map.get(sha256);
    if (v) {
      this.map.delete(sha256);
      this.map.set(sha256, v);
      return v;
    }
    v = this.blobs.get(sha256).then(async (bytes) => {
      const tree = await readArchiveBuffer(bytes);
      const layout = readExpoLayout(tree.files, platforms);
      const types = new Map<string, string>();
      for (const p of Object.values(layout.platforms)) {
        types.set(p.bundle, 'application/javascript');
        for (const a of p.assets) types.set(a.path, assetContentType(a.ext));
      }
      const view: VariantView = { tree, layout, hashes: new Map(), types, compressed: new Map(), built: new Map() };
      if (this.map.get(sha256) === v) this.ready.set(sha256, view);
      return view;
    });
    v.catch(() => this.map.delete(sha256));
    this.map.set(sha256, v);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.ready.delete(oldest);
    }
    return v;
  }
}

function send(res: Response, status: number, headers: Record<string, string>, body: Buffer): void {
  res.status(status);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('content-length', String(body.length));
  res.end(body);
}

const EXPO_PREFIX = '/api/v1/expo/';
const MANIFEST_SUFFIX = '/manifest';

export function createExpoUpdatesRouter(deps: ExpoRouterDeps): { router: Router; fastPath: (req: IncomingMessage, res: ServerResponse) => boolean } {
  const r = Router();
  const cache = new VariantCache(deps.blobs);
  const limits = deps.limits ?? defaultDeviceLimits();
  const now = deps.now ?? Date.now;
  const ttl = deps.tokenTtlSeconds ?? EXPO_TOKEN_TTL_SECONDS;

  deps.openapi.add({
    method: 'get', path: '/api/v1/expo/{itemId}/manifest', auth: 'none', tags: ['device', 'mobile'],
    summary: 'Expo Updates protocol v1 update URL: the assigned variant\'s manifest, or a rollBackToEmbedded / noUpdateAvailable directive',
    responses: { 200: 'multipart/mixed (manifest or directive part) or application/expo+json manifest', 400: 'Missing or invalid expo-* request header (field named)', 404: 'Unknown item, or not an update bundle', 406: 'Protocol version, accept or signature expectation this server cannot meet', 429: 'Too many requests from this client' },
  });
  /**
   * Everything an update check needs that has no side effect: the request headers, the item,
   * the version the profile serves. Throws the 400/404/406 problems.
   */
  const prepare = (headers: IncomingHttpHeaders, itemId: string, query: { userId?: unknown }) => {
    const request = parseExpoRequest(headers, query);
    checkSignatureRequest(request.expectSignature, deps.signingKey);
    const entry = deps.catalog.find(itemId);
    if (!entry) throw new NotFoundError(`no item ${itemId}`);
    const profile = deps.profiles.get(itemId);
    const itemVersion = profile?.itemVersion ?? entry.latestVersion;
    const version = entry.versions.find((v) => v.version === itemVersion);
    const manifest = version ? manifestOf(version) : undefined;
    if (!version || manifest?.runtimeVersion === undefined) throw new NotFoundError(`${itemId} ${itemVersion} is not an update bundle (its manifest has no runtimeVersion)`);
    const platforms = manifest.platforms ?? [];
    // A split only covers apps that can run the bundle: same runtime version, a bundle for the
    // platform. Others keep what they run, and no exposure is logged for them.
    const runnable = request.runtimeVersion === manifest.runtimeVersion && (platforms as string[]).includes(request.platform);
    return { itemId, request, profile, itemVersion, version, manifest: manifest as ItemManifest & { runtimeVersion: string }, platforms, runnable, userId: request.userId ?? newDeviceId() };
  };
  type Prepared = ReturnType<typeof prepare>;

  /** The resolver's decision (logs the exposure) and the variant served. Only for runnable apps. */
  const decide = (p: Prepared, headers: IncomingHttpHeaders) => {
    const attributes: Record<string, string> = { runtimeVersion: p.request.runtimeVersion, platform: p.request.platform };
    if (p.request.channel !== undefined) attributes.channel = p.request.channel;
    const answer = deps.resolver.resolve({ itemId: p.itemId, userId: p.userId, deviceType: p.request.platform, attributes }, headers);
    const v = p.version.variants.find((x) => x.name === answer.variant) ?? p.version.variants.find((x) => x.name === 'original');
    return { answer, v };
  };
  type Decision = ReturnType<typeof decide>;

  /** The answer's bytes, from memory only. */
  const build = (p: Prepared, d: Decision | null, view: VariantView | null): EncodedResponse => {
    const { itemId, request, userId, version, manifest } = p;
    const base = deps.publicUrl().replace(/\/+$/, '');
    let built: ExpoManifest | null = null;
    let builtJson: string | undefined;
    let variant: string | null = null;
    if (d !== null && d.v && view !== null) {
      const { answer, v } = d;
      variant = v.name;
      const penumbra: Record<string, unknown> = { itemId, version: p.itemVersion, variant: v.name, profileVersion: answer.profileVersion, userId };
      const controlOf = (answer as { controlOf?: string }).controlOf;
      if (controlOf !== undefined) penumbra.controlOf = controlOf;
      // A resolver that signs its answers (issue 11) hands over its own token — the same proof
      // /resolve gives web devices; otherwise it is signed here with the configured ring.
      const signed = answer as { token?: unknown; tokenExpiresAt?: unknown };
      if (v.name !== answer.variant) {
        /* served another variant than assigned (artifact missing): no token, telemetry unverified */
      } else if (typeof signed.token === 'string' && typeof signed.tokenExpiresAt === 'number') {
        penumbra.token = signed.token;
        penumbra.tokenExpiresAt = signed.tokenExpiresAt;
      } else if (deps.assignmentKeys && deps.assignmentKeys.length > 0) {
        const claims = claimsFor({ itemId, userId, variant: v.name, profileVersion: answer.profileVersion, ...(controlOf !== undefined ? { controlOf } : {}) }, now(), ttl);
        penumbra.token = signAssignment(claims, deps.assignmentKeys);
        penumbra.tokenExpiresAt = claims.exp * 1000;
      }
      // What the library needs to refresh the token later (instrumentation-rn README).
      penumbra.refreshUrl = `${base}/api/v1/expo/${encodeURIComponent(itemId)}/manifest`;
      penumbra.refreshHeaders = {
        'expo-protocol-version': '1', accept: 'application/expo+json', 'expo-platform': request.platform, 'expo-runtime-version': request.runtimeVersion,
        [USER_ID_HEADER]: userId, ...(request.channel !== undefined ? { 'expo-channel-name': request.channel } : {}),
      };
      const createdAt = new Date(version.ingestedAt).toISOString();
      const key = `${request.platform}\u0000${itemId}\u0000${v.name}\u0000${base}\u0000${manifest.runtimeVersion}\u0000${createdAt}`;
      let fixed = view.built.get(key);
      if (fixed === undefined) {
        const { extra: _none, ...m } = buildExpoManifest({
          itemId, variant: v.name, variantSha256: v.sha256, platform: request.platform as ExpoPlatform, layout: view.layout, files: view.tree.files,
          runtimeVersion: manifest.runtimeVersion, createdAt,
          assetUrl: (fp) => `${base}/api/v1/expo/${encodeURIComponent(itemId)}/assets/${v.sha256}/${fp.split('/').map(encodeURIComponent).join('/')}`,
          extra: {},
          hash: (fp, b) => {
            let h = view.hashes.get(fp);
            if (h === undefined) view.hashes.set(fp, (h = expoAssetHash(b)));
            return h;
          },
        });
        // `extra` is the manifest's last key: the JSON is this prefix, `,"extra":`, extra, `}`.
        fixed = { manifest: m, prefix: JSON.stringify(m).slice(0, -1) };
        // Bounded by platforms × variants × public URLs seen; a variant archive's view is in an LRU.
        if (view.built.size < 64) view.built.set(key, fixed);
      }
      const extra = { ...(view.tree.manifest.extra ?? {}), penumbra };
      built = { ...fixed.manifest, extra };
      builtJson = `${fixed.prefix},"extra":${JSON.stringify(extra)}}`;
    }
    const answer = chooseAnswer({
      rolledBack: p.profile?.state === 'rolled_back',
      rolledBackAt: new Date(p.profile?.updatedAt ?? now()).toISOString(),
      manifest: built, currentUpdateId: request.currentUpdateId, embeddedUpdateId: request.embeddedUpdateId,
    });
    const filters: Record<string, string> = { item: itemId };
    if (answer.kind === 'manifest' && variant !== null) filters.variant = variant;
    return encodeAnswer({ answer, request, filters, serverHeaders: { [USER_ID_HEADER]: userId }, signingKey: deps.signingKey, manifestJson: builtJson });
  };

  r.get('/api/v1/expo/:itemId/manifest', rateLimit(limits.resolve, limits.identity), async (req: Request, res: Response) => {
    // The regex is the schema's; zod runs only to word the 422 of a bad id.
    const itemId = ITEM_ID_RE.test(req.params.itemId as string) ? (req.params.itemId as string) : parseOr422(itemParam, req.params, 'path', 'item id').itemId;
    const p = prepare(req.headers, itemId, req.query as { userId?: unknown });
    const d = p.runnable ? decide(p, req.headers) : null;
    const view = d?.v ? await cache.get(d.v.sha256, p.platforms) : null;
    const encoded = build(p, d, view);
    send(res, encoded.status, encoded.headers, encoded.body);
  });

  /**
   * The same route in front of Express (mounted by feature.ts like /resolve's fast path): Express
   * walks every router of the app before this one, which cost more than the answer itself. It
   * answers only what the Express route would answer 200 from memory — valid headers, a
   * multipart answer, the variant archives already unpacked, a client under its rate limit — and
   * returns false for anything else, before any side effect, so the Express route (one
   * definition of behaviour, problems and all) takes it. Same headers as the Express answer.
   */
  const fastPath = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url;
    if (req.method !== 'GET' || !url || !url.startsWith(EXPO_PREFIX) || !url.endsWith(MANIFEST_SUFFIX)) return false;
    const itemId = url.slice(EXPO_PREFIX.length, url.length - MANIFEST_SUFFIX.length);
    if (!ITEM_ID_RE.test(itemId)) return false;
    let p: Prepared;
    try {
      p = prepare(req.headers, itemId, {});
    } catch {
      return false;
    }
    if (p.request.format !== 'multipart') return false;
    let loading = false;
    if (p.runnable) {
      for (const v of p.version.variants) {
        if (cache.peek(v.sha256) === undefined) {
          loading = true;
          void cache.get(v.sha256, p.platforms).catch(() => {});
        }
      }
    }
    if (loading) return false;
    // The Express route's limiter, same buckets: an empty bucket falls through to its 429.
    if (limits.resolve.spec.perSecond > 0 && !(req.headers.authorization && limits.identity.isService(req)) && limits.resolve.take(keyOf(req, limits.identity)) > 0) return false;
    const d = p.runnable ? decide(p, req.headers) : null;
    const encoded = build(p, d, d?.v ? cache.peek(d.v.sha256)! : null);
    const incoming = req.headers['x-request-id'];
    res.writeHead(encoded.status, {
      ...encoded.headers,
      'content-length': String(encoded.body.length),
      'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'SAMEORIGIN',
      'X-Request-Id': typeof incoming === 'string' && /^[A-Za-z0-9._-]{8,80}$/.test(incoming) ? incoming : randomUUID(),
    });
    res.end(encoded.body);
    return true;
  };

  deps.openapi.add({
    method: 'get', path: '/api/v1/expo/{itemId}/assets/{sha256}/{path}', auth: 'none', tags: ['device', 'mobile'],
    summary: 'A launch asset or asset of an update (immutable; gzip or br by accept-encoding)',
    responses: { 200: 'Asset bytes', 304: 'Not modified', 404: 'No such variant or file', 429: 'Too many requests from this client' },
  });
  r.get(/^\/api\/v1\/expo\/([^/]+)\/assets\/([^/]+)\/(.+)$/, rateLimit(limits.files, limits.identity), async (req: Request, res: Response) => {
    const params = req.params as unknown as Record<string, string>;
    const { itemId, sha256 } = parseOr422(assetParams, { itemId: params[0], sha256: params[1] }, 'path', 'asset path');
    const filePath = params[2];
    const entry = deps.catalog.find(itemId);
    const version = entry?.versions.find((v) => v.variants.some((x) => x.sha256 === sha256));
    // Only archives of this item are served: a sha256 of another item's blob is not found here.
    if (!entry || !version) throw new NotFoundError(`no variant ${sha256} of ${itemId}`);
    const manifest = JSON.parse(version.manifestJson) as ItemManifest;
    const view = await cache.get(sha256, manifest.platforms ?? []);
    const type = view.types.get(filePath);
    const bytes = view.tree.files.get(filePath);
    // Only files a manifest can name (bundles and listed assets): not manifest.json and the like.
    if (!bytes || type === undefined) throw new NotFoundError(`no asset ${filePath} in ${itemId} ${sha256.slice(0, 12)}`);
    const etag = `"${sha256.slice(0, 16)}-${expoAssetHash(bytes).slice(0, 16)}"`;
    res.setHeader('cache-control', 'public, max-age=31536000, immutable');
    res.setHeader('etag', etag);
    res.setHeader('vary', 'accept-encoding');
    res.setHeader('x-content-type-options', 'nosniff');
    // Served from the API origin: never let a browser run an asset as a page.
    res.setHeader('content-security-policy', "default-src 'none'; sandbox");
    res.setHeader('content-type', type);
    if (req.headers['if-none-match'] === etag) return void res.status(304).end();
    const accept = String(req.headers['accept-encoding'] ?? '');
    const enc = /\bbr\b/.test(accept) ? 'br' : /\bgzip\b/.test(accept) ? 'gzip' : null;
    if (enc === null || bytes.length < 256) return void send(res, 200, {}, bytes);
    const key = `${enc}:${filePath}`;
    let body = view.compressed.get(key);
    if (body === undefined) {
      body = enc === 'br' ? zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9 } }) : zlib.gzipSync(bytes, { level: 9 });
      view.compressed.set(key, body);
    }
    send(res, 200, { 'content-encoding': enc }, body);
  });
  return { router: r, fastPath };
}

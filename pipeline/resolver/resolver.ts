/**
 * The resolver: which variant a device runs, answered from memory only.
 *
 * Reads: the ProfileStore (compiled profile per version, rebuilt from penumbra.shadow.profiles
 * or the on-disk snapshot) and the CatalogStore (item version → entry file). Writes: one
 * Assignment per decision into the AssignmentLog queue (never awaited). Guarantees: never
 * throws for an unknown item or a bad profile — the device gets the original (contract:
 * "an unknown item or a bad profile → original, never an error to the device"); the decision
 * is exactly trafficSplit(user, compiledFor(itemId)).
 *
 * Every answer carries a signed assignment token (pipeline/assignment-token: item, user,
 * variant, controlOf, profile version, expiry) that the device sends with its telemetry, so the
 * collector can tell attributable events from self-declared ones. One HMAC per resolve, except
 * that a token for the same claims is reused for up to a minute (token-cache.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Assignment, CatalogEntry } from '../../schemas/types.generated.ts';
import { DEFAULT_TOKEN_TTL_SECONDS, type KeyRing } from '../assignment-token/token.ts';
import { SignedTokenCache } from './token-cache.ts';
import { CONTROL, ORIGINAL, type SegmentLookup, type ShadowProfile, type SplitDecision, type UserContext } from '../domain/types.ts';
import { trafficSplit } from '../traffic-split/traffic-split.ts';
import { pinnedDecision } from '../preferences/pin.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import type { CatalogStore } from '../ingest/catalog-store.ts';
import { deriveAttributes, type Derivation, type HeaderBag } from './derive.ts';
import { assignBandit } from '../bandit/assign.ts';
import { cellIndexOf, compiledCells } from '../segment-allocation/cells.ts';
import type { StickyFeed } from '../bandit/sticky-feed.ts';

export interface ResolveRequest {
  itemId: string;
  userId: string;
  deviceType?: string;
  country?: string;
  userGroup?: string;
  appVersion?: string;
  /** Custom attributes (`attr.<name>=` in the query). */
  attributes?: Record<string, string>;
}

export interface ResolveAnswer {
  itemId: string;
  variant: string;
  /** Only for variant `control`: the shadow whose control cohort the user is in. */
  controlOf?: string;
  artifactUrl: string | null;
  launchUrl: string | null;
  profileVersion: number;
  reason: SplitDecision['reason'];
  bucket: number;
  derived: Derivation;
  /** Signed assignment token for telemetry batches (`token` field); HS256 JWS. */
  token: string;
  /** When the token expires, epoch ms (resolve again before, or telemetry turns unverified). */
  tokenExpiresAt: number;
}

interface Urls {
  artifactUrl: string | null;
  launchUrl: string | null;
}

/** Device-facing URLs of one variant of one item version (same shapes as the items router). */
export function variantUrls(itemId: string, itemVersion: string, variant: string, entry: string | undefined): Urls {
  const id = encodeURIComponent(itemId);
  const ver = encodeURIComponent(itemVersion);
  const v = encodeURIComponent(variant);
  return {
    artifactUrl: `/api/v1/items/${id}/artifacts/${v}?version=${ver}`,
    launchUrl: entry === undefined ? null : `/d/${id}/${ver}/${v}/${entry}`,
  };
}

/** URL strings per variant, rebuilt only when the profile or catalog entry object changes. */
interface UrlCacheEntry {
  profile: ShadowProfile | undefined;
  catalog: CatalogEntry | undefined;
  urls: Map<string, Urls>;
  /**
   * The answer JSON up to `"profileVersion":N,"reason":` per variant (and controlOf), with its
   * UTF-8 length: everything in it is fixed by the profile and catalog entry this cache entry
   * belongs to, so /resolve writes only the per-user tail (reason, bucket, derived, token) per
   * request.
   */
  prefixes: Map<string, { text: string; bytes: number }>;
}

const NO_URLS: Urls = { artifactUrl: null, launchUrl: null };

/** One request's decision (Resolver.decide), everything the answer and its JSON are made of. */
interface Decided {
  variant: string;
  controlOf: string | undefined;
  reason: SplitDecision['reason'];
  bucket: number;
  urls: Urls;
  profileVersion: number;
  derived: Derivation;
  token: string;
  exp: number;
  cache: UrlCacheEntry | undefined;
}

/** JSON of a Derivation: 3 × 5 possible texts (each attribute absent or one of its sources), kept once. */
const derivedTexts = new Map<string, Map<string, string>>();
function derivedJson(d: Derivation): string {
  const a = d.deviceType ?? '';
  const b = d.country ?? '';
  let inner = derivedTexts.get(a);
  if (inner === undefined) derivedTexts.set(a, (inner = new Map()));
  let text = inner.get(b);
  // Sources are the fixed header names of derive.ts, so the map cannot grow past them.
  if (text === undefined) inner.set(b, (text = JSON.stringify(d)));
  return text;
}

export interface AssignmentSink {
  enqueue(a: Assignment): void;
}

export class Resolver {
  private readonly urlCache = new Map<string, UrlCacheEntry>();
  /** Signed tokens reused up to `tokenReuseSeconds` for the same claims (token-cache.ts). */
  readonly tokens: SignedTokenCache;

  constructor(
    private readonly deps: {
      profiles: ProfileStore; catalog: CatalogStore; log: AssignmentSink; resolverId: string;
      /** Assignment-token key ring (first key signs). */
      keys: KeyRing;
      /** Token lifetime, seconds (default 24 h: pipeline/assignment-token). */
      tokenTtlSeconds?: number;
      /** How long a signed token is reused for the same claims (default 60 s; 0 signs every answer). */
      tokenReuseSeconds?: number;
      /** Sticky bandit assignments (pipeline/bandit/sticky-feed.ts); without it bandits are not applied. */
      bandit?: Pick<StickyFeed, 'index' | 'publish'>;
      now?: () => number;
      /** Behavioural segment memberships (pipeline/segments); without it every segment is unknown. */
      segments?: SegmentLookup;
      /** Pinned variants (pipeline/preferences): a pin wins over every rule, never over a rollback. */
      pins?: { variantFor(itemId: string, userId: string): string | undefined };
    },
  ) {
    this.tokens = new SignedTokenCache(deps.tokenReuseSeconds ?? 60);
  }

  /** Decide, queue the assignment record, answer. `headers` fill deviceType/country when absent. */
  resolve(req: ResolveRequest, headers: HeaderBag = {}): ResolveAnswer {
    const d = this.decide(req, headers);
    return {
      itemId: req.itemId, variant: d.variant, ...(d.controlOf !== undefined ? { controlOf: d.controlOf } : {}), artifactUrl: d.urls.artifactUrl, launchUrl: d.urls.launchUrl,
      profileVersion: d.profileVersion, reason: d.reason, bucket: d.bucket, derived: d.derived, token: d.token, tokenExpiresAt: d.exp * 1000,
    };
  }

  /**
   * UTF-8 length of the last resolveJson answer (its Content-Length), so the fast path does not
   * scan the body again: the cached prefix's byte length is measured once, and the per-user tail
   * is ASCII only (reason, numbers, derived header names, the base64url token).
   */
  lastJsonBytes = 0;

  /**
   * resolve() as JSON text: byte-for-byte JSON.stringify(resolve(req, headers)) (resolver.test.ts
   * and resolve-fast-path.test.ts hold that), written from a cached per-variant prefix (see
   * UrlCacheEntry.prefixes) plus the per-user tail — the device route's answer without building
   * and serialising the answer object per request. Sets `lastJsonBytes`.
   */
  resolveJson(req: ResolveRequest, headers: HeaderBag = {}): string {
    const d = this.decide(req, headers);
    const cache = d.cache;
    if (cache === undefined) {
      const body = JSON.stringify(this.answerOf(req.itemId, d));
      this.lastJsonBytes = Buffer.byteLength(body);
      return body;
    }
    const k = d.controlOf === undefined ? d.variant : `${d.variant}\u0000${d.controlOf}`;
    let prefix = cache.prefixes.get(k);
    if (prefix === undefined) {
      const j = JSON.stringify;
      const ctl = d.controlOf !== undefined ? `,"controlOf":${j(d.controlOf)}` : '';
      const text = `{"itemId":${j(req.itemId)},"variant":${j(d.variant)}${ctl},"artifactUrl":${j(d.urls.artifactUrl)},"launchUrl":${j(d.urls.launchUrl)},"profileVersion":${j(d.profileVersion)},"reason":`;
      prefix = { text, bytes: Buffer.byteLength(text) };
      // Bounded by the profile's variants (plus control per shadow); a new profile starts afresh.
      if (cache.prefixes.size < 64) cache.prefixes.set(k, prefix);
    }
    // reason: a fixed set of plain words; bucket, tokenExpiresAt: integers; token: base64url and dots.
    const tail = `"${d.reason}","bucket":${d.bucket},"derived":${derivedJson(d.derived)},"token":"${d.token}","tokenExpiresAt":${d.exp * 1000}}`;
    this.lastJsonBytes = prefix.bytes + tail.length;
    return prefix.text + tail;
  }

  private answerOf(itemId: string, d: Decided): ResolveAnswer {
    return {
      itemId, variant: d.variant, ...(d.controlOf !== undefined ? { controlOf: d.controlOf } : {}), artifactUrl: d.urls.artifactUrl, launchUrl: d.urls.launchUrl,
      profileVersion: d.profileVersion, reason: d.reason, bucket: d.bucket, derived: d.derived, token: d.token, tokenExpiresAt: d.exp * 1000,
    };
  }

  /**
   * The decision of one request, written into `this.scratch` (one object per resolver, reused:
   * decide runs synchronously and both callers read it before anything else can decide) —
   * issue 15 item 3: the resolve path allocated a decision wrapper, an answer object and its
   * spread per request, garbage for every answer.
   */
  private decide(req: ResolveRequest, headers: HeaderBag): Decided {
    // Both attributes given (the common device request): nothing to derive from headers.
    let deviceType = req.deviceType;
    let country = req.country;
    let derived: Derivation;
    let derivedNames: string[];
    if (deviceType !== undefined && country !== undefined) {
      derived = {};
      derivedNames = [];
    } else {
      const r = deriveAttributes(req, headers);
      deviceType = r.deviceType;
      country = r.country;
      derived = r.derived;
      derivedNames = [];
      if (derived.deviceType) derivedNames.push('deviceType');
      if (derived.country) derivedNames.push('country');
    }
    const user: UserContext = { userId: req.userId, deviceType, country, userGroup: req.userGroup, appVersion: req.appVersion, attributes: req.attributes };
    const { itemId } = req;
    const profile = this.deps.profiles.get(itemId);
    const compiled = this.deps.profiles.compiledFor(itemId);
    // A pin (pipeline/preferences) wins over every rule and over a bandit, never over a rollback.
    const pinned = this.deps.pins === undefined ? undefined : pinnedDecision(this.deps.pins.variantFor(itemId, req.userId), compiled);
    let decision: SplitDecision = pinned ?? trafficSplit(user, compiled, this.deps.segments);
    // A bandit decides WHICH arm for users the split put in its population (pipeline/bandit).
    if (!pinned && profile?.bandit && profile.banditState && this.deps.bandit) {
      // Per-segment allocation (pipeline/segment-allocation): the user's cell brings its own weights.
      const cells = profile.bandit.segments ? compiledCells(profile.bandit, profile.banditState) : null;
      const ci = cells ? cellIndexOf(cells, user, this.deps.segments) : -1;
      const b = assignBandit({ itemId, userId: req.userId, seed: profile.seed || itemId, plan: profile.bandit, state: profile.banditState, sticky: this.deps.bandit.index, decision, now: this.deps.now?.() ?? Date.now(), cellName: ci >= 0 ? cells!.names[ci] : null, cellWeights: ci >= 0 ? cells!.weights[ci] : null });
      if (b) {
        if (b.record) this.deps.bandit.publish(b.record);
        decision =
          b.variant === CONTROL ? { variant: CONTROL, bucket: decision.bucket, reason: 'control', controlOf: b.controlOf }
          : b.variant === ORIGINAL ? { variant: ORIGINAL, bucket: decision.bucket, reason: 'not_in_share' }
          : { variant: b.variant, bucket: decision.bucket, reason: 'assigned' };
      }
    }
    const profileVersion = profile?.profileVersion ?? 0;
    const cache = this.cacheFor(itemId, profile);
    const urls = cache === undefined ? NO_URLS : this.urlsFor(cache, itemId, profile, decision.variant);
    const now = this.deps.now?.() ?? Date.now();
    const controlOf = decision.controlOf;
    const iat = Math.floor(now / 1000);
    const t = this.tokens.token({ itemId, userId: req.userId, variant: decision.variant, controlOf, profileVersion }, iat, this.deps.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS, this.deps.keys);
    this.deps.log.enqueue({
      id: randomUUID(),
      itemId,
      userId: req.userId,
      variant: decision.variant,
      profileVersion,
      bucket: decision.bucket,
      reason: decision.reason,
      controlOf: controlOf ?? null,
      deviceType: deviceType ?? null,
      country: country ?? null,
      userGroup: req.userGroup ?? null,
      appVersion: req.appVersion ?? null,
      attributes: req.attributes ?? {},
      derived: derivedNames,
      resolverId: this.deps.resolverId,
      ts: now,
    });
    const d = this.scratch;
    d.variant = decision.variant;
    d.controlOf = controlOf;
    d.reason = decision.reason;
    d.bucket = decision.bucket;
    d.urls = urls;
    d.profileVersion = profileVersion;
    d.derived = derived;
    d.token = t.token;
    d.exp = t.exp;
    d.cache = cache;
    return d;
  }

  private readonly scratch: Decided = { variant: '', controlOf: undefined, reason: 'no_profile', bucket: -1, urls: NO_URLS, profileVersion: 0, derived: {}, token: '', exp: 0, cache: undefined };

  /** The cache entry of a known item (rebuilt when its profile or catalog entry object changes). */
  private cacheFor(itemId: string, profile: ShadowProfile | undefined): UrlCacheEntry | undefined {
    const entry = this.deps.catalog.find(itemId);
    // Unknown items are not cached: device-supplied ids must not grow memory.
    if (profile === undefined && entry === undefined) return undefined;
    let c = this.urlCache.get(itemId);
    if (!c || c.profile !== profile || c.catalog !== entry) {
      c = { profile, catalog: entry, urls: new Map(), prefixes: new Map() };
      this.urlCache.set(itemId, c);
    }
    return c;
  }

  private urlsFor(c: UrlCacheEntry, itemId: string, profile: ShadowProfile | undefined, variant: string): Urls {
    const entry = c.catalog;
    let u = c.urls.get(variant);
    if (u === undefined) {
      // The profile pins the item version its artifacts belong to; with no profile (an item
      // ingested but not yet profiled) the catalog's latest version serves the original.
      const itemVersion = profile?.itemVersion ?? (variant === ORIGINAL ? entry?.latestVersion : undefined);
      if (itemVersion === undefined) u = NO_URLS;
      else u = variantUrls(itemId, itemVersion, variant, entry?.versions.find((v) => v.version === itemVersion)?.entry);
      c.urls.set(variant, u);
    }
    return u;
  }
}

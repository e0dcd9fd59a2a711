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
   * The answer JSON up to `"profileVersion":N` per variant (and controlOf): everything in it is
   * fixed by the profile and catalog entry this cache entry belongs to, so /resolve writes only
   * the per-user tail (reason, bucket, derived, token) per request.
   */
  prefixes: Map<string, string>;
}

const NO_URLS: Urls = { artifactUrl: null, launchUrl: null };

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
    return this.decide(req, headers).answer;
  }

  /**
   * resolve() as JSON text: byte-for-byte JSON.stringify(resolve(req, headers)) (resolver.test.ts
   * holds that), written from a cached per-variant prefix (see UrlCacheEntry.prefixes) plus the
   * per-user tail — the device route's answer without serialising the whole object per request.
   */
  resolveJson(req: ResolveRequest, headers: HeaderBag = {}): string {
    const { answer: a, cache } = this.decide(req, headers);
    if (cache === undefined) return JSON.stringify(a);
    const j = JSON.stringify;
    const k = a.controlOf === undefined ? a.variant : `${a.variant}\u0000${a.controlOf}`;
    let prefix = cache.prefixes.get(k);
    if (prefix === undefined) {
      const ctl = a.controlOf !== undefined ? `,"controlOf":${j(a.controlOf)}` : '';
      prefix = `{"itemId":${j(a.itemId)},"variant":${j(a.variant)}${ctl},"artifactUrl":${j(a.artifactUrl)},"launchUrl":${j(a.launchUrl)},"profileVersion":${j(a.profileVersion)}`;
      // Bounded by the profile's variants (plus control per shadow); a new profile starts afresh.
      if (cache.prefixes.size < 64) cache.prefixes.set(k, prefix);
    }
    return `${prefix},"reason":${j(a.reason)},"bucket":${j(a.bucket)},"derived":${j(a.derived)},"token":${j(a.token)},"tokenExpiresAt":${j(a.tokenExpiresAt)}}`;
  }

  private decide(req: ResolveRequest, headers: HeaderBag): { answer: ResolveAnswer; cache: UrlCacheEntry | undefined } {
    const { deviceType, country, derived } = deriveAttributes(req, headers);
    const user: UserContext = { userId: req.userId, deviceType, country, userGroup: req.userGroup, appVersion: req.appVersion, attributes: req.attributes };
    const { itemId } = req;
    const profile = this.deps.profiles.get(itemId);
    const compiled = this.deps.profiles.compiledFor(itemId);
    // A pin (pipeline/preferences) wins over every rule and over a bandit, never over a rollback.
    const pinned = pinnedDecision(this.deps.pins?.variantFor(itemId, req.userId), compiled);
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
    const derivedNames: string[] = [];
    if (derived.deviceType) derivedNames.push('deviceType');
    if (derived.country) derivedNames.push('country');
    const now = this.deps.now?.() ?? Date.now();
    const controlOf = decision.controlOf;
    const iat = Math.floor(now / 1000);
    const { token, exp } = this.tokens.token({ itemId, userId: req.userId, variant: decision.variant, controlOf, profileVersion }, iat, this.deps.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS, this.deps.keys);
    this.deps.log.enqueue({
      id: randomUUID(),
      itemId,
      userId: req.userId,
      variant: decision.variant,
      profileVersion,
      bucket: decision.bucket,
      reason: decision.reason,
      controlOf: decision.controlOf ?? null,
      deviceType: deviceType ?? null,
      country: country ?? null,
      userGroup: req.userGroup ?? null,
      appVersion: req.appVersion ?? null,
      attributes: req.attributes ?? {},
      derived: derivedNames,
      resolverId: this.deps.resolverId,
      ts: now,
    });
    const answer: ResolveAnswer = {
      itemId, variant: decision.variant, ...(controlOf !== undefined ? { controlOf } : {}), artifactUrl: urls.artifactUrl, launchUrl: urls.launchUrl,
      profileVersion, reason: decision.reason, bucket: decision.bucket, derived, token, tokenExpiresAt: exp * 1000,
    };
    return { answer, cache };
  }

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

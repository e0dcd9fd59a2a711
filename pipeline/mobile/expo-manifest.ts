/**
 * Building the Expo Updates v1 manifest body of one variant for one platform (spec "Manifest
 * Body"). Pure: the caller gives the variant's files and how asset URLs look.
 *
 * - `id` is a UUID derived from the variant's bytes: SHA-256 of (variant archive sha256,
 *   platform), formatted as an RFC 9562 version-8 UUID. The same bytes always give the same id
 *   (so a client already running it gets `noUpdateAvailable`), other bytes another id.
 * - asset `hash` is the base64url SHA-256 of the served bytes; `key` of an asset is its file name
 *   in the export (Metro's content hash, which the bundle uses to find it); the launch asset's
 *   key is `bundle-<sha256 prefix>`.
 * - `metadata` carries `item` and `variant`: the server's `expo-manifest-filters` names them, so
 *   a client never launches a stored update of another variant than the one it was assigned.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ExpoLayout, ExpoPlatform } from './expo-layout.ts';

export interface ExpoAsset {
  hash: string;
  key: string;
  contentType: string;
  fileExtension?: string;
  url: string;
}

export interface ExpoManifest {
  id: string;
  createdAt: string;
  runtimeVersion: string;
  launchAsset: ExpoAsset;
  assets: ExpoAsset[];
  metadata: Record<string, string>;
  extra: Record<string, unknown>;
}

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp',
  svg: 'image/svg+xml', ico: 'image/x-icon', ttf: 'font/ttf', otf: 'font/otf', woff: 'font/woff', woff2: 'font/woff2',
  json: 'application/json', js: 'application/javascript', mp3: 'audio/mpeg', wav: 'audio/wav', m4a: 'audio/mp4',
  aac: 'audio/aac', mp4: 'video/mp4', mov: 'video/quicktime', html: 'text/html', txt: 'text/plain', pdf: 'application/pdf',
};

export function assetContentType(ext: string): string {
  return CONTENT_TYPES[ext.toLowerCase()] ?? 'application/octet-stream';
}

/** base64url SHA-256, the asset `hash` of the spec. */
export function expoAssetHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('base64url');
}

/** RFC 9562 UUIDv8 from the first 16 bytes of SHA-256(name). */
export function uuidFromSha256(name: string): string {
  const b = createHash('sha256').update(name).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80; // version 8
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The update id of a variant archive on a platform. */
export function expoUpdateId(variantSha256: string, platform: ExpoPlatform): string {
  return uuidFromSha256(`penumbra-expo-update\0${variantSha256}\0${platform}`);
}

export interface BuildManifestInput {
  itemId: string;
  variant: string;
  variantSha256: string;
  platform: ExpoPlatform;
  layout: ExpoLayout;
  files: Map<string, Buffer>;
  runtimeVersion: string;
  /** ISO 8601; the item version's ingest time. */
  createdAt: string;
  /** URL of a file of this variant (absolute). */
  assetUrl: (filePath: string) => string;
  extra: Record<string, unknown>;
  /** Memoised hash of a file of this variant (the router caches per variant). */
  hash?: (filePath: string, bytes: Buffer) => string;
}

export function buildExpoManifest(input: BuildManifestInput): ExpoManifest {
  const p = input.layout.platforms[input.platform];
  if (!p) throw new Error(`variant has no ${input.platform} bundle`);
  const hashOf = input.hash ?? ((_p: string, b: Buffer) => expoAssetHash(b));
  const file = (fp: string): Buffer => {
    const b = input.files.get(fp);
    if (!b) throw new Error(`variant has no file ${fp}`);
    return b;
  };
  const bundleHash = hashOf(p.bundle, file(p.bundle));
  const seen = new Set<string>();
  const assets: ExpoAsset[] = [];
  for (const a of p.assets) {
    // An asset listed twice (several densities can share bytes) is downloaded once.
    if (seen.has(a.path)) continue;
    seen.add(a.path);
    const asset: ExpoAsset = { hash: hashOf(a.path, file(a.path)), key: path.posix.basename(a.path), contentType: assetContentType(a.ext), url: input.assetUrl(a.path) };
    if (a.ext !== '') asset.fileExtension = `.${a.ext}`;
    assets.push(asset);
  }
  return {
    id: expoUpdateId(input.variantSha256, input.platform),
    createdAt: input.createdAt,
    runtimeVersion: input.runtimeVersion,
    launchAsset: { hash: bundleHash, key: `bundle-${Buffer.from(bundleHash, 'base64url').toString('hex').slice(0, 32)}`, contentType: 'application/javascript', url: input.assetUrl(p.bundle) },
    assets,
    metadata: { item: input.itemId, variant: input.variant },
    extra: input.extra,
  };
}

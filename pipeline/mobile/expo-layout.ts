/**
 * The Expo export layout of an update bundle (what `npx expo export --no-bytecode` writes):
 *
 *   metadata.json   { "version": 0, "bundler": "metro",
 *                     "fileMetadata": { "ios":     { "bundle": "_expo/static/js/ios/index-….js",
 *                                                    "assets": [ { "path": "assets/<md5>", "ext": "png" } ] },
 *                                       "android": { … } } }
 *   the per-platform JS bundles and the assets they list
 *   manifest.json   Penumbra's item manifest with `runtimeVersion` and `platforms` (pipeline/shadowing/manifest.ts)
 *
 * Pure: validates a collected file map, never reads anything. Refusals are ArchiveRejectedError
 * with stable reasons (README.md in this folder). A Hermes bytecode bundle is refused: a shadow
 * is made by prepending the instrumentation to the bundle's JavaScript, which bytecode is not.
 */
import { z } from 'zod';
import { ArchiveRejectedError } from '../errors.ts';
import { isNormalRelativePath } from '../shadowing/manifest.ts';
// Defined with the domain types: pipeline/shadowing/manifest.ts needs it while this module (which
// imports manifest.ts) may still be initialising — an import cycle must not see it uninitialised.
import { EXPO_PLATFORMS } from '../domain/types.ts';

export { EXPO_PLATFORMS };
export const METADATA_PATH = 'metadata.json';
export type ExpoPlatform = (typeof EXPO_PLATFORMS)[number];

/** First four bytes of every Hermes bytecode file (the HBC magic, little-endian 0x1F1903C103BC1FC6). */
export const HERMES_MAGIC = Buffer.from([0xc6, 0x1f, 0xbc, 0x03]);
/** The export flag that makes Expo write plain JavaScript bundles. */
export const PLAIN_JS_EXPORT = 'npx expo export --no-bytecode';

export interface ExpoAssetRef {
  /** Path inside the archive, e.g. `assets/4f1d…`. */
  path: string;
  /** Extension without the dot, e.g. `png`. */
  ext: string;
}

export interface ExpoPlatformFiles {
  bundle: string;
  assets: ExpoAssetRef[];
}

export interface ExpoLayout {
  platforms: Partial<Record<ExpoPlatform, ExpoPlatformFiles>>;
}

const relPath = z.string().max(1024).refine(isNormalRelativePath, 'must be a relative path inside the archive (no ./, ../ or leading /)');
const platformSchema = z.object({
  bundle: relPath,
  assets: z.array(z.object({ path: relPath, ext: z.string().regex(/^[A-Za-z0-9]{0,16}$/, 'extension: letters and digits, max 16') })).max(10_000).default([]),
});
const metadataSchema = z.object({
  version: z.literal(0, { message: 'metadata.json version must be 0 (the Expo export format)' }),
  bundler: z.string().max(64).optional(),
  fileMetadata: z.record(z.string(), z.unknown()),
});

export function isHermesBytecode(buf: Buffer): boolean {
  return buf.length >= 4 && buf.subarray(0, 4).equals(HERMES_MAGIC);
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Validate the Expo layout for the manifest's platforms and return it. `platforms` must each
 * have a bundle in metadata.json; every bundle and listed asset must be a file of the archive;
 * bundles must be plain UTF-8 JavaScript.
 */
export function readExpoLayout(files: Map<string, Buffer>, platforms: readonly string[]): ExpoLayout {
  const bytes = files.get(METADATA_PATH);
  if (!bytes) {
    throw new ArchiveRejectedError('expo-metadata-missing', `an update bundle (manifest.json with runtimeVersion) needs ${METADATA_PATH} at the root, as written by ${PLAIN_JS_EXPORT}`, [
      { path: 'metadata', message: 'missing' },
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fatalUtf8.decode(bytes));
  } catch (err) {
    throw new ArchiveRejectedError('expo-metadata-invalid', `${METADATA_PATH} is not valid UTF-8 JSON`, [{ path: 'metadata', message: (err as Error).message }]);
  }
  const meta = metadataSchema.safeParse(raw);
  if (!meta.success) {
    throw new ArchiveRejectedError('expo-metadata-invalid', `${METADATA_PATH} is invalid`, meta.error.issues.map((i) => ({ path: ['metadata', ...i.path.map(String)].join('/'), message: i.message })));
  }
  const layout: ExpoLayout = { platforms: {} };
  for (const platform of platforms) {
    const entry = meta.data.fileMetadata[platform];
    if (entry === undefined) {
      throw new ArchiveRejectedError('expo-platform-missing', `manifest.json lists platform ${platform} but ${METADATA_PATH} has no bundle for it`, [
        { path: `metadata/fileMetadata/${platform}`, message: 'missing' },
      ]);
    }
    const p = platformSchema.safeParse(entry);
    if (!p.success) {
      throw new ArchiveRejectedError('expo-metadata-invalid', `${METADATA_PATH}: fileMetadata.${platform} is invalid`, p.error.issues.map((i) => ({ path: ['metadata', 'fileMetadata', platform, ...i.path.map(String)].join('/'), message: i.message })));
    }
    const bundle = files.get(p.data.bundle);
    if (!bundle) {
      throw new ArchiveRejectedError('entry-missing', `${platform} bundle ${p.data.bundle} is not in the archive`, [{ path: `metadata/fileMetadata/${platform}/bundle`, message: `no file ${p.data.bundle}` }]);
    }
    if (isHermesBytecode(bundle)) {
      throw new ArchiveRejectedError(
        'hermes-bytecode',
        `${p.data.bundle} is Hermes bytecode; Penumbra instruments JavaScript. Export plain JS bundles with \`${PLAIN_JS_EXPORT}\` (Hermes compiles them on the device)`,
        [{ path: `metadata/fileMetadata/${platform}/bundle`, message: 'Hermes bytecode (magic c6 1f bc 03); export with --no-bytecode' }],
      );
    }
    try {
      fatalUtf8.decode(bundle);
    } catch {
      throw new ArchiveRejectedError('expo-bundle-invalid', `${p.data.bundle} is neither JavaScript (UTF-8) nor Hermes bytecode`, [{ path: `metadata/fileMetadata/${platform}/bundle`, message: 'not UTF-8 text' }]);
    }
    for (const [i, a] of p.data.assets.entries()) {
      if (!files.has(a.path)) {
        throw new ArchiveRejectedError('expo-asset-missing', `${platform} asset ${a.path} is listed in ${METADATA_PATH} but not in the archive`, [
          { path: `metadata/fileMetadata/${platform}/assets/${i}/path`, message: `no file ${a.path}` },
        ]);
      }
    }
    layout.platforms[platform as ExpoPlatform] = p.data;
  }
  return layout;
}

/**
 * `manifest.json` of an item archive: zod schema and validation of the collected file tree.
 *
 * Contract (docs/ARCHITECTURE.md, "Digital item archive"):
 *   { "id", "version", "name", "entry", "endpoints": { name: absolute http(s) URL } }
 * Field issues carry paths rooted at `manifest/` (e.g. `manifest/endpoints/api`) so the HTTP
 * layer can point the uploader at the exact field.
 */
import { z } from 'zod';
import { EXPO_PLATFORMS, type ItemManifest } from '../domain/types.ts';
import { ArchiveRejectedError, type FieldIssue } from '../errors.ts';
import { readExpoLayout } from '../mobile/expo-layout.ts';

export const MANIFEST_PATH = 'manifest.json';
/** A manifest is a few hundred bytes; anything past this is not a manifest. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

/** Reverse-DNS-ish item id, e.g. `com.example.notes`. */
export const ITEM_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Endpoint keys are identifiers shadows refer to (`endpoints.api`). */
export const ENDPOINT_KEY_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Strict SemVer 2.0.0 (the regex published on semver.org): no `v` prefix, no loose forms. */
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const ENTRY_EXT_RE = /\.(html?|m?js)$/i;
const MAX_URL_LENGTH = 2048;
const MAX_ENDPOINTS = 64;

/**
 * Why an endpoint URL is unacceptable, or null. Shared with shadow-config validation so the
 * manifest and the overrides follow one rule: absolute http(s), no credentials, bounded length.
 */
export function endpointUrlProblem(value: string): string | null {
  if (value.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an absolute http(s) URL';
  // Credentials in a URL would be copied into every shadow asset in clear text.
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (/\s/.test(value)) return 'must not contain whitespace';
  // Endpoint URLs are substituted verbatim into HTML, JS and JSON of every shadow: characters that
  // can end a string or a tag there would let a config inject script (stored XSS) or break JSON.
  if (/["'<>`\\]/.test(value)) return 'must not contain quotes, angle brackets, backticks or backslashes';
  // Inside a JS template literal `${` starts an expression (and `}` ends one); inside a JS or CSS
  // comment `*/` ends it and what follows runs as code (issue 17, item 7).
  if (value.includes('${') || value.includes('}')) return 'must not contain ${ or } (template literal syntax)';
  if (value.includes('*/')) return 'must not contain */ (ends a comment in JS and CSS)';
  return null;
}

const endpointUrl = z.string().superRefine((v, ctx) => {
  const problem = endpointUrlProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A relative POSIX path in normal form: no `.`/`..`/empty segments, no leading slash. */
export function isNormalRelativePath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

export const manifestSchema = z.object({
  id: z.string().regex(ITEM_ID_RE, 'must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (e.g. com.example.notes)'),
  version: z.string().max(256).regex(SEMVER_RE, 'must be a SemVer 2.0.0 version such as 1.4.0'),
  name: z.string().trim().min(1, 'must not be empty').max(200),
  entry: z
    .string()
    .max(1024)
    .refine(isNormalRelativePath, 'must be a relative path inside the archive (no ./, ../ or leading /)')
    .refine((e) => ENTRY_EXT_RE.test(e), 'must be an .html/.htm page or a .js/.mjs module'),
  endpoints: z
    .record(z.string().regex(ENDPOINT_KEY_RE, 'endpoint names must match ^[A-Za-z][A-Za-z0-9_-]{0,63}$'), endpointUrl)
    .refine((r) => Object.keys(r).length <= MAX_ENDPOINTS, `at most ${MAX_ENDPOINTS} endpoints`)
    .optional(),
});

/**
 * An update bundle (Expo export layout, pipeline/mobile/README.md) is told apart by its
 * `runtimeVersion`: it then needs `platforms` and no `entry` (each platform's bundle, named in
 * metadata.json, is its entry). `extra` is handed to apps in the Expo manifest's `extra`.
 */
export const expoManifestSchema = manifestSchema.extend({
  entry: manifestSchema.shape.entry.optional(),
  runtimeVersion: z.string().trim().min(1, 'must not be empty').max(255).regex(/^[\x20-\x7e]+$/, 'printable ASCII only (it travels in the expo-runtime-version header)'),
  platforms: z
    .array(z.enum(EXPO_PLATFORMS))
    .min(1, 'at least one of ios, android')
    .refine((p) => new Set(p).size === p.length, 'platforms must be unique'),
  extra: z.record(z.string(), z.unknown()).optional(),
});

/** zod issues → FieldIssue with `/`-joined paths under `prefix`. */
export function zodIssues(error: z.ZodError, prefix: string): FieldIssue[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter((s) => s !== '').join('/'),
    message: i.message,
  }));
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Parse and validate manifest bytes; throws ArchiveRejectedError(`manifest-invalid`). */
export function parseManifest(bytes: Buffer): ItemManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ArchiveRejectedError('manifest-invalid', `manifest.json is larger than ${MAX_MANIFEST_BYTES} bytes`, [
      { path: 'manifest', message: 'too large' },
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fatalUtf8.decode(bytes));
  } catch (err) {
    throw new ArchiveRejectedError('manifest-invalid', 'manifest.json is not valid UTF-8 JSON', [
      { path: 'manifest', message: (err as Error).message },
    ]);
  }
  const expo = typeof raw === 'object' && raw !== null && 'runtimeVersion' in raw;
  const parsed = (expo ? expoManifestSchema : manifestSchema).safeParse(raw);
  if (!parsed.success) {
    throw new ArchiveRejectedError('manifest-invalid', 'manifest.json is invalid', zodIssues(parsed.error, 'manifest'));
  }
  const { endpoints, ...rest } = parsed.data as ItemManifest;
  return endpoints === undefined ? rest : { ...rest, endpoints };
}

/**
 * Turn a collected file map into an ItemTree view: the manifest must be at the root and the entry
 * must be one of the files. `files` keeps manifest.json itself (its raw bytes).
 */
export function manifestFromFiles(files: Map<string, Buffer>): ItemManifest {
  const bytes = files.get(MANIFEST_PATH);
  if (!bytes) {
    // A common mistake is zipping the folder instead of its contents; say where we saw one.
    const nested = [...files.keys()].sort().find((p) => p.endsWith(`/${MANIFEST_PATH}`));
    throw new ArchiveRejectedError(
      'manifest-missing',
      nested
        ? `manifest.json must be at the archive root (found ${nested}; archive the folder's contents, not the folder)`
        : 'manifest.json is missing from the archive root',
      [{ path: 'manifest', message: 'missing' }],
    );
  }
  const manifest = parseManifest(bytes);
  if (manifest.runtimeVersion !== undefined) {
    // Update bundle: metadata.json, bundles and assets are checked; the first platform's bundle
    // is the entry (what the catalog lists), unless the manifest names one of the bundles.
    const layout = readExpoLayout(files, manifest.platforms ?? []);
    const bundles = Object.values(layout.platforms).map((p) => p.bundle);
    if (manifest.entry !== undefined && !bundles.includes(manifest.entry)) {
      throw new ArchiveRejectedError('entry-missing', `entry ${manifest.entry} is not one of the platform bundles in metadata.json`, [
        { path: 'manifest/entry', message: `must be one of ${bundles.join(', ')} (or be left out)` },
      ]);
    }
    return { ...manifest, entry: manifest.entry ?? bundles[0] };
  }
  if (!files.has(manifest.entry)) {
    throw new ArchiveRejectedError('entry-missing', `entry ${manifest.entry} is not in the archive`, [
      { path: 'manifest/entry', message: `no file ${manifest.entry} in the archive` },
    ]);
  }
  return manifest;
}

/**
 * applyExpoShadow: the shadow of an update bundle (Expo export layout). Pure, like
 * applyShadowConfig of pipeline/shadowing (same identity checks, same endpoint rewriter, same
 * determinism), but for React Native:
 *
 * - each platform bundle gets `globalThis.__PENUMBRA__={…identity, platform};` and the React
 *   Native flavour of the library (connectors/instrumentation-rn) **prepended on its first line**,
 *   so every other line of the bundle keeps its number (source maps stay valid past line 1);
 * - endpoint base URLs are rewritten in every text asset and bundle (as for web items) and in the
 *   string values of the manifest's `extra` (which apps receive as the Expo manifest's `extra`);
 * - `metadata.json` and binary assets are copied unchanged; `manifest.json` is regenerated with
 *   the merged endpoints, the rewritten `extra` and `shadow: { name, profileVersion }`;
 * - `__penumbra/identity.json` records the identity (for humans and tools; apps do not load it).
 *
 * The control arm (original + instrumentation, no rewrites) is the same call with empty
 * endpoint overrides.
 */
import type { ShadowConfig } from '../domain/types.ts';
import { ArchiveRejectedError, ValidationError } from '../errors.ts';
import type { ItemTree } from '../shadowing/archive.ts';
import { MANIFEST_PATH } from '../shadowing/manifest.ts';
import {
  checkContext, endpointRewrites, IDENTITY_JSON, RESERVED_DIR, rewriteText, TEXT_EXTENSIONS, scriptSafeJson,
  type ApplyContext, type Rewrite, type ShadowManifest, type ShadowReport,
} from '../shadowing/apply.ts';
import { readExpoLayout, type ExpoPlatform } from './expo-layout.ts';

const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Rewrite endpoint URLs in every string of a JSON value (keys untouched). */
export function rewriteJsonStrings(value: unknown, rewrites: Rewrite[]): { value: unknown; replacements: number } {
  let replacements = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const r = rewriteText(v, rewrites);
      replacements += r.replacements;
      return r.text;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { value: walk(value), replacements };
}

/** What is prepended to a bundle: one line, no newline, so the bundle's line numbers stay. */
export function rnPrelude(identity: Record<string, unknown>, librarySource: string): string {
  const lib = librarySource.replace(/\s+$/, '');
  if (/[\r\n\u2028\u2029]/.test(lib)) throw new ValidationError('the React Native library must be a single line (minified) so bundle line numbers stay');
  return `globalThis.__PENUMBRA__=${scriptSafeJson(identity)};${lib}${lib.endsWith(';') ? '' : ';'}`;
}

export function applyExpoShadow(item: ItemTree, config: ShadowConfig, ctx: ApplyContext): { tree: ItemTree; report: ShadowReport } {
  const m = item.manifest;
  if (m.runtimeVersion === undefined) throw new ValidationError(`${m.id} ${m.version} is not an update bundle (no runtimeVersion)`);
  const paths = [...item.files.keys()].sort(byPath);
  const reserved = paths.find((p) => p.split('/')[0].toLowerCase() === RESERVED_DIR);
  if (reserved !== undefined) {
    throw new ArchiveRejectedError('reserved-path', `${reserved}: the folder ${RESERVED_DIR}/ is reserved for instrumentation`, [{ path: reserved, message: 'reserved path' }]);
  }
  checkContext(item, config, ctx);
  const layout = readExpoLayout(item.files, m.platforms ?? []);
  const bundles = new Map<string, ExpoPlatform>();
  for (const [platform, p] of Object.entries(layout.platforms)) bundles.set(p.bundle, platform as ExpoPlatform);

  const identity = {
    itemId: ctx.identity.itemId,
    version: ctx.identity.version,
    variant: ctx.identity.variant,
    profileVersion: ctx.identity.profileVersion,
    runtimeConfigUrl: ctx.runtimeConfigUrl,
    telemetryUrl: ctx.telemetryUrl,
  };
  const originalEndpoints = m.endpoints ?? {};
  const rewrites = endpointRewrites(originalEndpoints, config.endpoints);
  const files = new Map<string, Buffer>();
  const report: ShadowReport = { files: [], injectedPages: [], totalReplacements: 0, skippedNonUtf8: [], warnings: [] };
  const count = (p: string, n: number) => {
    if (n === 0) return;
    report.files.push({ path: p, replacements: n });
    report.totalReplacements += n;
  };

  for (const p of paths) {
    if (p === MANIFEST_PATH) continue; // regenerated below
    const original = item.files.get(p) as Buffer;
    const platform = bundles.get(p);
    const dot = p.lastIndexOf('.');
    const isText = platform !== undefined || (dot > p.lastIndexOf('/') && TEXT_EXTENSIONS.includes(p.slice(dot).toLowerCase()));
    if (!isText) {
      files.set(p, Buffer.from(original));
      continue;
    }
    let text: string;
    try {
      text = fatalUtf8.decode(original);
    } catch {
      // readExpoLayout has already refused non-UTF-8 bundles; other text assets stay as they are.
      report.skippedNonUtf8.push(p);
      files.set(p, Buffer.from(original));
      continue;
    }
    const rw = rewriteText(text, rewrites);
    count(p, rw.replacements);
    text = rw.text;
    if (platform !== undefined) {
      const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
      text = bom + rnPrelude({ ...identity, platform }, ctx.library.source) + text.slice(bom.length);
      report.injectedPages.push(p);
    }
    files.set(p, Buffer.from(text, 'utf8'));
  }

  files.set(IDENTITY_JSON, Buffer.from(JSON.stringify({ ...identity, library: ctx.library.fileName }, null, 2) + '\n', 'utf8'));

  const manifestRaw = JSON.parse(new TextDecoder().decode(item.files.get(MANIFEST_PATH) ?? Buffer.from(JSON.stringify(m)))) as Record<string, unknown>;
  const endpoints = { ...originalEndpoints, ...config.endpoints };
  const shadow = { name: config.name, profileVersion: ctx.identity.profileVersion };
  const manifestOut: Record<string, unknown> = { ...manifestRaw, shadow };
  if (Object.keys(endpoints).length > 0 || m.endpoints !== undefined) manifestOut.endpoints = endpoints;
  let extra = m.extra;
  if (extra !== undefined) {
    const r = rewriteJsonStrings(extra, rewrites);
    extra = r.value as Record<string, unknown>;
    manifestOut.extra = extra;
    count(`${MANIFEST_PATH}#extra`, r.replacements);
  }
  files.set(MANIFEST_PATH, Buffer.from(JSON.stringify(manifestOut, null, 2) + '\n', 'utf8'));
  const manifest: ShadowManifest = { ...m, endpoints, shadow, ...(extra !== undefined ? { extra } : {}) };
  if (Object.keys(endpoints).length === 0 && m.endpoints === undefined) delete (manifest as Partial<ShadowManifest>).endpoints;

  report.files.sort((a, b) => byPath(a.path, b.path));
  report.injectedPages.sort(byPath);
  return { tree: { manifest, files: new Map([...files.entries()].sort(([a], [b]) => byPath(a, b))) }, report };
}

/**
 * The control arm of an update bundle: the original bundles with the React Native library
 * prepended and no endpoint rewrites (issue 11's control, mobile flavour). `ctx.identity.variant`
 * names the arm (`control`).
 */
export function applyExpoControl(item: ItemTree, ctx: ApplyContext): { tree: ItemTree; report: ShadowReport } {
  const config: ShadowConfig = {
    name: ctx.identity.variant,
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
    endpoints: {},
    traffic: { percentage: 0, match: 'all', rules: [] },
  };
  return applyExpoShadow(item, config, ctx);
}

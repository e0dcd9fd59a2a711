/**
 * Promotion: a shadow's changes become the new original.
 *
 * `promotedTree` (pure, deterministic) takes the original item tree and the shadow's config and
 * returns the tree of the promoted original: the shadow's endpoint rewrites applied to every text
 * asset exactly as the shadow build does (pipeline/shadowing/apply.ts — same rewrite rules), and
 * NO instrumentation (no library, no identity, nothing under __penumbra/); the manifest gets the
 * new version, the merged endpoints and `promotedFrom` { version, shadow }.
 *
 * `promoteShadow` (I/O) builds that archive and hands it to the normal ingest path
 * (ingestDigitalItem) with `promote`, which validates it like any upload, rebuilds the other
 * shadows and the control on top of it, stores the blobs, asks the profile writer for a
 * `promote` (which keeps the previous original, control and shadows in the profile so the
 * promotion can be rolled back) and publishes the catalog entry — the previous version stays
 * addressable in the catalog.
 */
import type { ItemManifest, ShadowConfig } from '../domain/types.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { detectFormat, readArchiveBuffer, writeArchive, type ItemTree } from '../shadowing/archive.ts';
import { endpointRewrites, rewriteText, TEXT_EXTENSIONS } from '../shadowing/apply.ts';
import { MANIFEST_PATH } from '../shadowing/manifest.ts';
import { ingestDigitalItem, type IngestDeps, type IngestResult } from '../ingest/ingest-service.ts';

/** Version of a promotion: SemVer build metadata naming the shadow and the profile version it came from. */
export function promotedVersion(itemVersion: string, shadow: string, profileVersion: number): string {
  const tag = `${shadow}.p${profileVersion}`;
  return itemVersion.includes('+') ? `${itemVersion}.${tag}` : `${itemVersion}+${tag}`;
}

function decodeUtf8(buf: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    return null;
  }
}

export function promotedTree(item: ItemTree, cfg: Pick<ShadowConfig, 'name' | 'endpoints'>, version: string): { tree: ItemTree; replacements: number } {
  const declared = item.manifest.endpoints ?? {};
  for (const key of Object.keys(cfg.endpoints)) {
    if (!Object.hasOwn(declared, key)) throw new ValidationError('cannot promote the shadow', [{ path: `endpoints/${key}`, message: `the manifest declares no endpoint "${key}"` }]);
  }
  const rewrites = endpointRewrites(declared, cfg.endpoints);
  const files = new Map<string, Buffer>();
  let replacements = 0;
  for (const [p, bytes] of [...item.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (p === MANIFEST_PATH) continue;
    const dot = p.lastIndexOf('.');
    const ext = dot >= 0 ? p.slice(dot).toLowerCase() : '';
    const text = TEXT_EXTENSIONS.includes(ext) ? decodeUtf8(bytes) : null;
    if (text === null) {
      files.set(p, Buffer.from(bytes));
      continue;
    }
    const rw = rewriteText(text, rewrites);
    replacements += rw.replacements;
    files.set(p, rw.replacements > 0 ? Buffer.from(rw.text, 'utf8') : Buffer.from(bytes));
  }
  const endpoints = { ...declared, ...cfg.endpoints };
  const raw = JSON.parse(new TextDecoder().decode(item.files.get(MANIFEST_PATH) ?? Buffer.from(JSON.stringify(item.manifest)))) as Record<string, unknown>;
  const manifest: ItemManifest = { ...item.manifest, version, ...(item.manifest.endpoints ? { endpoints } : {}) };
  files.set(MANIFEST_PATH, Buffer.from(JSON.stringify({ ...raw, version, ...(item.manifest.endpoints ? { endpoints } : {}), promotedFrom: { version: item.manifest.version, shadow: cfg.name } }, null, 2) + '\n', 'utf8'));
  return { tree: { manifest, files: new Map([...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) }, replacements };
}

/** Promote `shadow` of `itemId` through the ingest path; returns the ingest result. */
export async function promoteShadow(deps: IngestDeps, input: { itemId: string; shadow: string; actor: { name: string; role: string }; requestId: string }): Promise<IngestResult & { fromVersion: string; replacements: number }> {
  const current = deps.profiles.peek(input.itemId);
  if (!current) throw new NotFoundError(`item ${input.itemId} has no shadow profile`);
  const spec = current.shadows.find((s) => s.name === input.shadow);
  if (!spec) throw new NotFoundError(`item ${input.itemId} has no shadow named ${input.shadow}`);
  if (!current.original) throw new NotFoundError(`item ${input.itemId} has no original artifact for ${current.itemVersion}`);
  const bytes = await deps.blobs.get(current.original.sha256);
  const format = detectFormat(bytes) ?? 'zip';
  const tree = await readArchiveBuffer(bytes, deps.limits);
  const version = promotedVersion(current.itemVersion, input.shadow, current.profileVersion);
  const { tree: promoted, replacements } = promotedTree(tree, spec, version);
  const archive = await writeArchive(promoted, format);
  const result = await ingestDigitalItem(deps, { archive, actor: input.actor, requestId: input.requestId, expectItemId: input.itemId, promote: { shadow: input.shadow } });
  return { ...result, fromVersion: current.itemVersion, replacements };
}

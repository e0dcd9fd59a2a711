/**
 * Promotion: a shadow's changes become the new original.
 *
 * `promotedTree` (pure, deterministic) takes the original item tree and the shadow's config and
 * returns the tree of the promoted original: the shadow's endpoint rewrites applied to every text
 * asset exactly as the shadow build does (pipeline/shadowing/apply.ts — same rewrite rules), and
 * NO instrumentation (no library, no identity, nothing under __penumbra/); the manifest gets the
 * new version, the merged endpoints and `promotedFrom` { version, shadow }.
 *
 * `promote` (I/O) is the ONE promotion path — the shadow route, the version route of
 * pipeline/version-shadows and a plan's `onComplete: promote` all call it. It builds that archive
 * (or, for a version shadow, takes the version's untouched archive) and hands it to the normal
 * ingest path (ingestDigitalItem) with `promote`, which validates it like any upload, rebuilds
 * the other shadows and the control on top of it, stores the blobs, asks the profile writer for a
 * `promote` command (which keeps the previous original, control and shadows in the profile so the
 * promotion can be rolled back, and audits it with its evidence) and publishes the catalog entry
 * — the previous version stays addressable in the catalog.
 */
import { ORIGINAL, type ItemManifest, type ShadowConfig } from '../domain/types.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { detectFormat, readArchiveBuffer, writeArchive, type ItemTree } from '../shadowing/archive.ts';
import { endpointRewrites, rewriteText, TEXT_EXTENSIONS } from '../shadowing/apply.ts';
import { MANIFEST_PATH } from '../shadowing/manifest.ts';
import { ingestDigitalItem, type IngestDeps, type IngestResult } from '../ingest/ingest-service.ts';
import { isVersionShadow, versionShadowName } from '../version-shadows/version-shadow.ts';

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

export interface PromoteInput {
  itemId: string;
  /**
   * What becomes the original: a shadow (its endpoint changes on the served version; a VERSION
   * shadow's own version), or a version of the catalog by number (the version-shadows route).
   */
  target: { shadow: string } | { version: string };
  actor: { name: string; role: string };
  requestId: string;
  /** Why (an operator's reason, or the completed plan's sentence); appended to the audit reason. */
  reason?: string | null;
  /** What an automated promotion was decided on (the plan's completing decision), kept in its evidence. */
  evidence?: Record<string, unknown> | null;
}

export interface PromoteResult extends IngestResult {
  /** `shadow`: the shadow's changes were applied to the served version; `version`: an ingested version's untouched archive. */
  from: 'shadow' | 'version';
  /** The shadow promoted (for a version: its version shadow's name, whether or not it is running). */
  shadow: string;
  fromVersion: string;
  itemVersion: string;
  replacements: number;
}

/**
 * THE promotion (one path for every caller: the shadow route, the version route, a completed
 * plan): build or pick the archive that becomes the original and hand it to the ingest core with
 * `promote`, so the profile writer applies ONE `promote` command on the item's command topic —
 * audited with its evidence, kept for a rollback of the promotion (POST …/promotion/rollback).
 *
 *  - A shadow with endpoint changes: `promotedTree` of the served original (new build version).
 *  - A version shadow (`v-…`, pipeline/version-shadows), or a version named directly: that
 *    version's untouched archive from the catalog (its own version number).
 */
export async function promote(deps: IngestDeps, input: PromoteInput): Promise<PromoteResult> {
  const current = deps.profiles.peek(input.itemId);
  if (!current) throw new NotFoundError(`item ${input.itemId} has no shadow profile`);
  const entry = deps.catalog.find(input.itemId);
  let version: string | null = null;
  let shadow: string;
  if ('version' in input.target) {
    version = input.target.version;
    if (!entry?.versions.some((v) => v.version === version)) throw new NotFoundError(`item ${input.itemId} has no version ${version}`);
    shadow = versionShadowName(version);
  } else {
    shadow = input.target.shadow;
    if (!current.shadows.some((s) => s.name === shadow)) throw new NotFoundError(`item ${input.itemId} has no shadow named ${shadow}`);
    // A version shadow carries another version: promoting it promotes that version.
    if (isVersionShadow(shadow)) {
      version = entry?.versions.find((v) => v.version !== current.itemVersion && versionShadowName(v.version) === shadow)?.version ?? null;
      if (version === null && versionShadowName(current.itemVersion) === shadow) throw new ConflictError(`${input.itemId} ${current.itemVersion} (shadow ${shadow}) is already the original`);
    }
  }
  const promoteArg = { shadow, from: version !== null ? ('version' as const) : ('shadow' as const), reason: input.reason ?? null, evidence: input.evidence ?? null };
  if (version !== null) {
    if (current.itemVersion === version) throw new ConflictError(`${input.itemId} ${version} is already the original`);
    const orig = entry!.versions.find((v) => v.version === version)!.variants.find((x) => x.name === ORIGINAL);
    if (!orig) throw new NotFoundError(`version ${version} of ${input.itemId} has no original archive`);
    const archive = await deps.blobs.get(orig.sha256);
    const result = await ingestDigitalItem(deps, { archive, actor: input.actor, requestId: input.requestId, expectItemId: input.itemId, proactive: false, promote: promoteArg });
    return { ...result, from: 'version', shadow, fromVersion: current.itemVersion, itemVersion: result.profile.itemVersion, replacements: 0 };
  }
  const spec = current.shadows.find((s) => s.name === shadow)!;
  if (!current.original) throw new NotFoundError(`item ${input.itemId} has no original artifact for ${current.itemVersion}`);
  const bytes = await deps.blobs.get(current.original.sha256);
  const format = detectFormat(bytes) ?? 'zip';
  const tree = await readArchiveBuffer(bytes, deps.limits);
  const newVersion = promotedVersion(current.itemVersion, shadow, current.profileVersion);
  const { tree: promoted, replacements } = promotedTree(tree, spec, newVersion);
  const archive = await writeArchive(promoted, format);
  const result = await ingestDigitalItem(deps, { archive, actor: input.actor, requestId: input.requestId, expectItemId: input.itemId, proactive: false, promote: promoteArg });
  return { ...result, from: 'shadow', shadow, fromVersion: current.itemVersion, itemVersion: result.profile.itemVersion, replacements };
}

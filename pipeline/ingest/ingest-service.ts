/**
 * ingestDigitalItem — the one core behind REST upload, the CLI and the penumbra.items.ingest
 * topic (SEED.md's pseudocode, step by step):
 *   1. validate the archive (untrusted: limits, traversal, bombs, manifest) — pipeline/shadowing
 *   2. validate the shadow config(s) against the manifest, or carry over the current ones
 *   3. build each shadow copy: library injected, endpoints rewritten, deterministic archive;
 *      and, when a shadow has a control cohort, the control: the original with the library
 *      injected and no endpoint rewrites (one for every shadow's control)
 *   4. store original (bytes unchanged), shadows and control in the content-addressed blob store
 *   5. hand the artifacts to the profile writer (`new_version`), which bumps the profile
 *   6. publish the catalog entry (all versions stay addressable)
 * Nothing is stored when validation fails: blobs are written only after every check passed.
 */
import type { BlobStore } from '../../connectors/blob-store/blob-store.ts';
import { readArchiveBuffer, writeArchive, detectFormat, type ArchiveLimits, type ItemTree } from '../shadowing/archive.ts';
import { parseShadowConfigs } from '../shadowing/shadow-config.ts';
import { applyControl, applyShadowConfig, type ShadowReport } from '../shadowing/apply.ts';
import { applyExpoControl, applyExpoShadow } from '../mobile/rn-shadow.ts';
import type { ShadowConfig, ShadowProfile, ShadowSpec } from '../domain/types.ts';
import { CONTROL, ORIGINAL } from '../domain/types.ts';
import type { CatalogEntry, CatalogVariant } from '../../schemas/types.generated.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import type { CatalogStore } from './catalog-store.ts';
import { withVersion } from './catalog-store.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import { ingestProactive, isProactive, isVersionShadow } from '../version-shadows/version-shadow.ts';
import type { PlanLimits } from '../rollout/plan.ts';
import type { BanditLimits } from '../bandit/plan.ts';

export interface IngestDeps {
  blobs: BlobStore;
  catalog: CatalogStore;
  profiles: ProfileService;
  library: () => Promise<{ fileName: string; source: string }>;
  /** The React Native library, prepended to update bundles' JS (pipeline/mobile). */
  rnLibrary?: () => Promise<{ fileName: string; source: string }>;
  publicUrl: string;
  limits?: Partial<ArchiveLimits>;
  publishCatalog: (entry: CatalogEntry) => Promise<void>;
  /**
   * [#13] Change assessment, set by the risk feature (pipeline/risk-model/feature.ts): computes
   * the change features and risk score of the new version before anything is stored, and
   * publishes them once the ingest succeeded. Failing here never fails the ingest (it logs and
   * returns null); absent in processes without the feature.
   */
  assess?: (a: { tree: ItemTree; requestId: string; proactive: boolean }) => Promise<ChangeAssessment | null>;
  /** Limits of rollout plans and bandits in shadow configs (configuration). */
  planLimits?: PlanLimits;
  banditLimits?: BanditLimits;
}

/** How a proactive version's plan was sized (pipeline/risk-plan `SizedBy`). */
export interface SizedByLike {
  probability: number;
  source: 'model' | 'prior' | 'operator';
  modelVersion: number | null;
  tier: string | null;
  overridden: string[];
}

/** What the risk feature hands back to the ingest core (pipeline/risk-model/assessor.ts). */
export interface ChangeAssessment {
  featuresId: string;
  score: { probability: number; source: 'model' | 'prior'; modelVersion: number | null; note: string };
  /** Publish the change-features record and the score (after the ingest succeeded); a proactive ingest adds its shadow and plan. */
  publish(extra?: { shadow: string; proactive: boolean; plan: unknown; sizing: string; sizedBy?: SizedByLike; by?: string }): Promise<void>;
}

export interface IngestInput {
  archive: Buffer;
  /** Parsed JSON of the shadowConfig field; undefined keeps the item's current shadows. */
  shadowConfig?: unknown;
  actor: { name: string; role: string };
  requestId: string;
  /** When set (topic ingest), the manifest id must equal it. */
  expectItemId?: string;
  /** Appended to the audited reason (topic ingest: the record's unverified submittedBy). */
  note?: string;
  /**
   * [#13] Proactive: the new version goes out as a shadow of the current one with a risk-sized
   * rollout instead of replacing it (pipeline/version-shadows). Undefined = the default: proactive
   * when the item already has an active original and this is another version.
   */
  proactive?: boolean;
  /** [#13] Operator's explicit rollout plan fields for a proactive version (the risk mapping fills the rest). */
  rollout?: Record<string, unknown>;
  /**
   * A promotion (pipeline/promote, the one promotion path): the archive is the promoted
   * original; the profile writer gets a `promote` command naming the shadow (it keeps what the
   * promotion replaces; its evidence is audited) instead of `new_version`, and the promoted
   * shadow is not carried over. Never proactive.
   */
  promote?: PromoteRequest;
}

/** What the ingest core passes to the profile writer's `promote` command (rollout/transitions.ts PromotePayload). */
export interface PromoteRequest {
  shadow: string;
  /** `shadow`: the shadow's changes applied to the served version; `version`: another ingested version's archive. */
  from: 'shadow' | 'version';
  reason?: string | null;
  /** What an automated promotion was decided on; null for an operator's. */
  evidence?: Record<string, unknown> | null;
}

export interface IngestResult {
  entry: CatalogEntry;
  profile: ShadowProfile;
  reports: Record<string, ShadowReport>;
  /** [#13] The new version's change assessment (null without the risk feature). */
  risk: ChangeAssessment | null;
  /** [#13] Set when the version went out as a shadow: its name, plan and why it is sized so. */
  proactive?: boolean;
  versionShadow?: string;
  plan?: unknown;
  sizing?: string;
}

export function runtimeConfigUrl(publicUrl: string, itemId: string, variant: string): string {
  return `${publicUrl}/api/v1/items/${encodeURIComponent(itemId)}/runtime-config?variant=${encodeURIComponent(variant)}`;
}

/**
 * Build one shadow archive (pure apart from the library input). Deterministic. Update bundles
 * (manifest with runtimeVersion) get the React Native library prepended to their bundles
 * (pipeline/mobile/rn-shadow.ts); web items the browser library.
 */
export async function buildShadow(tree: ItemTree, cfg: ShadowConfig, format: 'zip' | 'tar.gz', ctx: { library: { fileName: string; source: string }; rnLibrary?: { fileName: string; source: string }; publicUrl: string; profileVersion: number }) {
  const expo = tree.manifest.runtimeVersion !== undefined;
  if (expo && !ctx.rnLibrary) throw new ValidationError(`${tree.manifest.id} is an update bundle but no React Native library is configured`);
  const { tree: shadowTree, report } = (expo ? applyExpoShadow : applyShadowConfig)(tree, cfg, {
    library: expo ? ctx.rnLibrary! : ctx.library,
    identity: { itemId: tree.manifest.id, version: tree.manifest.version, variant: cfg.name, profileVersion: ctx.profileVersion },
    runtimeConfigUrl: runtimeConfigUrl(ctx.publicUrl, tree.manifest.id, cfg.name),
    telemetryUrl: `${ctx.publicUrl}/api/v1/telemetry`,
  });
  const bytes = await writeArchive(shadowTree, format);
  return { bytes, report, files: shadowTree.files.size };
}

/**
 * The control arm's archive: the original with the instrumentation and no endpoint rewrites
 * (pipeline/shadowing applyControl; update bundles: pipeline/mobile applyExpoControl with the React
 * Native library). Deterministic.
 */
export async function buildControl(tree: ItemTree, format: 'zip' | 'tar.gz', ctx: { library: { fileName: string; source: string }; rnLibrary?: { fileName: string; source: string }; publicUrl: string; profileVersion: number }) {
  const expo = tree.manifest.runtimeVersion !== undefined;
  if (expo && !ctx.rnLibrary) throw new ValidationError(`${tree.manifest.id} is an update bundle but no React Native library is configured`);
  const { tree: controlTree, report } = (expo ? applyExpoControl : applyControl)(tree, {
    library: expo ? ctx.rnLibrary! : ctx.library,
    identity: { itemId: tree.manifest.id, version: tree.manifest.version, variant: CONTROL, profileVersion: ctx.profileVersion },
    runtimeConfigUrl: runtimeConfigUrl(ctx.publicUrl, tree.manifest.id, CONTROL),
    telemetryUrl: `${ctx.publicUrl}/api/v1/telemetry`,
  });
  const bytes = await writeArchive(controlTree, format);
  return { bytes, report, files: controlTree.files.size };
}

/** Any shadow with a control cohort (absent `control` means on) needs the control artifact. */
export function needsControl(shadows: readonly { control?: boolean }[]): boolean {
  return shadows.some((s) => s.control !== false);
}

function stripArtifacts(shadows: ShadowSpec[]): ShadowConfig[] {
  return shadows.map(({ artifact: _a, ...s }) => s);
}

export async function ingestDigitalItem(deps: IngestDeps, input: IngestInput): Promise<IngestResult> {
  const format = detectFormat(input.archive) ?? 'zip';
  const tree = await readArchiveBuffer(input.archive, deps.limits);
  const manifest = tree.manifest;
  if (input.expectItemId && input.expectItemId !== manifest.id) {
    throw new ValidationError(`record key/itemId ${input.expectItemId} does not match manifest id ${manifest.id}`, [{ path: 'itemId', message: 'does not match manifest.json id' }]);
  }
  const current0 = deps.profiles.peek(manifest.id);
  const proactive = !input.promote && isProactive(input.proactive, current0, manifest.version);
  const risk = deps.assess ? await deps.assess({ tree, requestId: input.requestId, proactive }) : null;
  if (proactive && current0) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await ingestProactive(deps, input, tree, deps.profiles.peek(manifest.id) ?? current0, risk);
      } catch (err) {
        if (err instanceof ConflictError && attempt < 2) continue;
        throw err;
      }
    }
  }
  const library = await deps.library();
  const rnLibrary = manifest.runtimeVersion !== undefined ? await deps.rnLibrary?.() : undefined;

  for (let attempt = 0; ; attempt++) {
    const current = deps.profiles.peek(manifest.id);
    const configs = input.shadowConfig !== undefined
      ? parseShadowConfigs(input.shadowConfig, manifest, { planLimits: deps.planLimits })
      : stripArtifacts(current?.shadows ?? [])
          .filter((s) => s.name !== input.promote?.shadow)
          .filter((s) => !isVersionShadow(s.name) && Object.keys(s.endpoints).every((k) => manifest.endpoints && k in manifest.endpoints));
    const profileVersion = (current?.profileVersion ?? 0) + 1;
    const built = await Promise.all(configs.map((c) => buildShadow(tree, c, format, { library, rnLibrary, publicUrl: deps.publicUrl, profileVersion })));
    const control = needsControl(configs) ? await buildControl(tree, format, { library, rnLibrary, publicUrl: deps.publicUrl, profileVersion }) : null;
    // All checks passed: now (and only now) write blobs.
    const original = await deps.blobs.put(input.archive);
    const shadows: ShadowSpec[] = [];
    const variants: CatalogVariant[] = [{ name: ORIGINAL, sha256: original.sha256, size: original.size, files: tree.files.size, profileVersion: null, replacements: 0 }];
    const reports: Record<string, ShadowReport> = {};
    for (const [i, b] of built.entries()) {
      const info = await deps.blobs.put(b.bytes);
      shadows.push({ ...configs[i], artifact: info });
      variants.push({ name: configs[i].name, sha256: info.sha256, size: info.size, files: b.files, profileVersion, replacements: b.report.totalReplacements });
      reports[configs[i].name] = b.report;
    }
    let controlArtifact: ShadowProfile['controlArtifact'];
    if (control) {
      controlArtifact = await deps.blobs.put(control.bytes);
      variants.push({ name: CONTROL, sha256: controlArtifact.sha256, size: controlArtifact.size, files: control.files, profileVersion, replacements: 0 });
      reports[CONTROL] = control.report;
    }
    let profile: ShadowProfile;
    try {
      profile = await deps.profiles.submit({
        itemId: manifest.id,
        kind: input.promote ? 'promote' : 'new_version',
        ifMatch: current?.profileVersion ?? 0,
        payload: {
          itemVersion: manifest.version, original, shadows, ...(controlArtifact ? { controlArtifact } : {}),
          ...(input.promote ? { shadow: input.promote.shadow, from: input.promote.from, evidence: input.promote.evidence ?? null } : {}),
        },
        actor: input.actor.name,
        role: input.actor.role,
        reason: input.promote
          ? `promote ${input.promote.from === 'version' ? `version ${manifest.version} (shadow ${input.promote.shadow})` : `${input.promote.shadow} as ${manifest.version}`} (${input.requestId})${input.promote.reason ? `: ${input.promote.reason}` : ''}`
          : `ingest ${manifest.version} (${input.requestId})${input.note ? ` ${input.note}` : ''}`,
      });
    } catch (err) {
      // Someone changed the profile meanwhile: rebuild against the new version once more.
      if (err instanceof ConflictError && attempt < 2) continue;
      throw err;
    }
    const entry = withVersion(deps.catalog.find(manifest.id), manifest.id, manifest.name, {
      version: manifest.version,
      entry: manifest.entry,
      manifestJson: JSON.stringify(manifest),
      ingestedAt: Date.now(),
      requestId: input.requestId,
      variants,
    }, Date.now());
    await deps.publishCatalog(entry);
    deps.catalog.apply(entry);
    await risk?.publish();
    return { entry, profile, reports, risk };
  }
}

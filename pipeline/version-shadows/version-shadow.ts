/**
 * Version shadows (issue #13, item 1): a proactive ingest does not replace the item's original.
 * The new version becomes a shadow of the current one — its own archive, instrumented like the
 * item's other shadows — with a rollout sized by its risk (pipeline/risk-plan), and is promoted
 * only by that rollout finishing (onComplete: promote) or by an operator.
 *
 * How it is carried: the shadow is added with a put_config command (one writer per item, audited
 * with the sizing in its reason) with the risk-sized plan as its rollout plan (`rollout`,
 * pipeline/rollout: guardrails judged against its control cohort — the served version with the
 * same instrumentation — advance, hold or roll this shadow back) and the item's guardrail on.
 * The catalog lists the shadow's artifact (and the control's, when the served version had none)
 * under the CURRENT version (that is what resolve, launch and the artifact route serve), and the
 * new version as a further catalog version whose `original` is the untouched archive — what a
 * promotion ingests. Promotion is THE promotion path (pipeline/promote): by the plan's
 * `onComplete: promote` (system:rollout) or an operator.
 */
import type { ItemTree } from '../shadowing/archive.ts';
import { detectFormat, readArchiveBuffer } from '../shadowing/archive.ts';
import type { CatalogEntry, CatalogVariant } from '../../schemas/types.generated.ts';
import type { InstrumentationConfig, ShadowConfig, ShadowProfile, ShadowSpec } from '../domain/types.ts';
import { CONTROL, ORIGINAL } from '../domain/types.ts';
import { ValidationError } from '../errors.ts';
import { buildControl, buildShadow, type ChangeAssessment, type IngestDeps, type IngestInput, type IngestResult } from '../ingest/ingest-service.ts';
import { describeSizing, parsePlanOverride, planForRisk, type SizedPlan } from '../risk-plan/size.ts';
import { parsePlan, type RolloutPlan } from '../rollout/plan.ts';

export const VERSION_SHADOW_PREFIX = 'v-';

/** Shadow name of a version: `v-` + the version in the shadow-name alphabet (dots and + become -). */
export function versionShadowName(version: string): string {
  return `${VERSION_SHADOW_PREFIX}${version.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}`.slice(0, 63);
}

export function isVersionShadow(name: string): boolean {
  return name.startsWith(VERSION_SHADOW_PREFIX);
}

/**
 * Whether an ingest is proactive: the caller's explicit choice, else the default — proactive when
 * the item already has an active original and the archive is another version than the one served.
 */
export function isProactive(explicit: boolean | undefined, current: ShadowProfile | undefined, version: string): boolean {
  if (explicit !== undefined) return explicit && current !== undefined && current.itemVersion !== version;
  return current !== undefined && current.state === 'active' && current.original !== undefined && current.itemVersion !== version;
}

const DEFAULT_INSTRUMENTATION: InstrumentationConfig = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };

/**
 * The version shadow's config: the item's current instrumentation (first shadow's), no endpoint
 * rewrites, and always a control cohort (`control: true`, issue 11): the served version with the
 * same instrumentation is the only fair baseline for a new version — the original sends no
 * telemetry, and the live risk update (pipeline/risk-model) and the guardrails compare against it.
 */
export function versionShadowConfig(name: string, current: ShadowProfile, share: number): ShadowConfig {
  const like = current.shadows.find((s) => !isVersionShadow(s.name));
  return { name, instrumentation: like ? structuredClone(like.instrumentation) : structuredClone(DEFAULT_INSTRUMENTATION), endpoints: {}, traffic: { percentage: share, match: 'all', rules: [] }, control: true };
}

/**
 * Whether the served version still needs its control artifact for a version shadow's control
 * cohort: the profile has none, or the catalog's served version does not list it (pure).
 */
export function needsControlArtifact(current: ShadowProfile, entry: CatalogEntry | undefined): boolean {
  const served = entry?.versions.find((v) => v.version === current.itemVersion);
  return !current.controlArtifact || !served?.variants.some((v) => v.name === CONTROL);
}

/** IngestInput's `rollout`: the operator's explicit plan fields (any subset, validated here). */
export type ProactiveInput = IngestInput;

/**
 * The sized plan as the shadow's rollout plan (pipeline/rollout), validated like an operator's —
 * with this deployment's limits (an operator's analysisSeconds below
 * PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS is refused with the field at fault).
 */
export function rolloutOf(plan: SizedPlan, limits?: IngestDeps['planLimits']): RolloutPlan {
  return parsePlan({ ...plan, steps: [...plan.steps], guardrails: plan.guardrails.map((g) => ({ ...g })) }, 'rollout', { hasControl: true, limits });
}

export async function ingestProactive(deps: IngestDeps, input: ProactiveInput, tree: ItemTree, current: ShadowProfile, risk: ChangeAssessment | null): Promise<IngestResult & { proactive: true; versionShadow: string; plan: SizedPlan; sizing: string }> {
  const manifest = tree.manifest;
  if (manifest.id !== current.itemId) throw new ValidationError('item mismatch', [{ path: 'item', message: 'manifest id differs from the profile' }]);
  const name = versionShadowName(manifest.version);
  const score = risk?.score ?? { probability: 0.2, source: 'prior' as const, modelVersion: null };
  const { plan, sizedBy } = planForRisk(score, parsePlanOverride(input.rollout));
  const sizing = describeSizing(sizedBy, plan);
  const format = detectFormat(input.archive) ?? 'zip';
  const library = await deps.library();
  const cfg = versionShadowConfig(name, current, plan.steps[0]);
  // An update bundle (React Native / Expo, docs/mobile.md) is instrumented with the RN library.
  const rnLibrary = manifest.runtimeVersion !== undefined ? await deps.rnLibrary?.() : undefined;
  const built = await buildShadow(tree, cfg, format, { library, rnLibrary, publicUrl: deps.publicUrl, profileVersion: current.profileVersion + 1 });
  const rollout = rolloutOf(plan, deps.planLimits);
  // Its control arm is the served version with the same instrumentation — the item's one control
  // artifact (ingest-service buildControl). An item whose original was ingested without shadows
  // has none yet: build it from the served original, exactly as a PUT switching a control on does.
  let control: { ref: { sha256: string; size: number }; files: number } | null = null;
  if (needsControlArtifact(current, deps.catalog.find(manifest.id))) {
    if (!current.original) throw new ValidationError(`item ${current.itemId} has no original to build the control arm from`, [{ path: 'item', message: 'no original artifact' }]);
    const servedBytes = await deps.blobs.get(current.original.sha256);
    const servedTree = await readArchiveBuffer(servedBytes, deps.limits);
    const servedRn = servedTree.manifest.runtimeVersion !== undefined ? await deps.rnLibrary?.() : undefined;
    const b = await buildControl(servedTree, detectFormat(servedBytes) ?? 'zip', { library, rnLibrary: servedRn, publicUrl: deps.publicUrl, profileVersion: current.profileVersion + 1 });
    control = { ref: await deps.blobs.put(b.bytes), files: b.files };
  }
  const raw = await deps.blobs.put(input.archive);
  const art = await deps.blobs.put(built.bytes);
  // Replacing an earlier candidate of the same or another version: one version shadow at a time.
  const others: ShadowSpec[] = current.shadows.filter((s) => !isVersionShadow(s.name));
  const profile = await deps.profiles.submit({
    itemId: manifest.id,
    kind: 'put_config',
    ifMatch: current.profileVersion,
    payload: { shadows: [...others, { ...cfg, artifact: art, rollout }], state: 'active', guardrail: true, ...(control ? { controlArtifact: control.ref } : {}) },
    actor: input.actor.name,
    role: input.actor.role,
    reason: `proactive ingest of ${manifest.version} as shadow ${name} (${input.requestId}): ${sizing}`,
  });
  const entry = catalogWithCandidate(deps.catalog.find(manifest.id), current, {
    version: manifest.version, entry: manifest.entry, manifestJson: JSON.stringify(manifest), ingestedAt: Date.now(), requestId: input.requestId,
    variants: [{ name: ORIGINAL, sha256: raw.sha256, size: raw.size, files: tree.files.size, profileVersion: null, replacements: 0 }],
  }, { name, sha256: art.sha256, size: art.size, files: built.files, profileVersion: profile.profileVersion, replacements: built.report.totalReplacements }, Date.now(),
  control ? { name: CONTROL, sha256: control.ref.sha256, size: control.ref.size, files: control.files, profileVersion: profile.profileVersion, replacements: 0 } : undefined);
  await deps.publishCatalog(entry);
  deps.catalog.apply(entry);
  await risk?.publish({ shadow: name, proactive: true, plan, sizing, sizedBy, by: input.actor.name });
  return { entry, profile, reports: { [name]: built.report }, risk, proactive: true, versionShadow: name, plan, sizing };
}

/**
 * The catalog after a proactive ingest (pure): the candidate version is listed (its original is
 * the untouched archive) without becoming `latestVersion`, and the version shadow's artifact is a
 * variant of the version devices are served — with the control artifact when one was built for
 * it (`controlVariant` replaces an earlier `control` variant; absent keeps it).
 */
export function catalogWithCandidate(entry: CatalogEntry | undefined, current: ShadowProfile, candidate: CatalogEntry['versions'][number], shadowVariant: CatalogVariant, now: number, controlVariant?: CatalogVariant): CatalogEntry {
  if (!entry) throw new ValidationError(`item ${current.itemId} is not in the catalog`, [{ path: 'item', message: 'no catalog entry' }]);
  const served = (variants: CatalogVariant[]): CatalogVariant[] => {
    const kept = variants.filter((x) => !isVersionShadow(x.name) && !(controlVariant && x.name === CONTROL));
    return controlVariant ? [...kept, shadowVariant, controlVariant] : [...kept, shadowVariant];
  };
  const versions = entry.versions
    .filter((v) => v.version !== candidate.version)
    .map((v) => (v.version === current.itemVersion ? { ...v, variants: served(v.variants) } : v));
  versions.push(candidate);
  return { ...entry, versions, updatedAt: Math.max(now, entry.updatedAt + 1) };
}

/**
 * The history generator's pure half: seeded release histories of generated items whose
 * regressions depend on their change features in a KNOWN way. GENERATED DATA — every figure
 * computed from it says so.
 *
 * Each item starts from the `shop` golden fixture (pipeline/change-features/fixtures/shop/v1)
 * and gets a chain of versions; each version is the previous one with random, seeded edits:
 * added files (HTML/JS/CSS/JSON), a removed file, script growth, calls to new external origins,
 * manifest endpoint changes, a major bump. The change features of (previous, next) are computed
 * by the real extractor (computeChangeFeatures), and the version is bad with probability
 *
 *   P(bad) = σ(TRUTH.intercept + Σ TRUTH.weights[k] · inputs[k])
 *
 * over the model inputs named in TRUTH (README.md states it). A bad version's shadow sends
 * `errors=+BAD_ERROR_PP pp` through the simulator; a good one behaves like the baseline. So the
 * rollout outcome (guardrail rollback or a clean finish) is decided by the real pipeline, and
 * only the probability of a regression is known — as it would be in life, labels carry noise.
 */
import semver from 'semver';
import { Prng } from '../simulator/prng.ts';
import type { ItemTree } from '../shadowing/archive.ts';
import type { ItemManifest } from '../domain/types.ts';
import { computeChangeFeatures, NO_HISTORY, type ChangeFeatures } from '../change-features/features.ts';
import { versionFiles } from '../change-features/fixtures.ts';
import { versionShadowName } from '../version-shadows/version-shadow.ts';

/** The ground truth: log-odds of a bad version from model inputs (pipeline/change-features). */
export const TRUTH = Object.freeze({
  intercept: -3.6,
  weights: Object.freeze({ new_origins: 1.4, script_growth: 1.3, manifest_endpoints_changed: 1.1, major_bump: 1.2, log_files_changed: 0.4 } as Record<string, number>),
});

/** Error-session increase of a bad version, percentage points (baseline 2 %). */
export const BAD_ERROR_PP = 60;

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function trueRisk(inputs: Record<string, number>): number {
  let z = TRUTH.intercept;
  for (const [k, w] of Object.entries(TRUTH.weights)) z += w * (inputs[k] ?? 0);
  return sigmoid(z);
}

export interface GeneratedVersion {
  itemId: string;
  /** 0 = the first version (no rollout: it becomes the original). */
  index: number;
  version: string;
  tree: ItemTree;
  /** Features against the previous version with no history (the truth ignores history). */
  features: ChangeFeatures | null;
  risk: number;
  bad: boolean;
  /** Its version shadow's name (unique per item and version, so effects can target it). */
  shadow: string;
  edits: string[];
}

export interface GeneratedItem {
  itemId: string;
  versions: GeneratedVersion[];
}

const FILLER = 'const pad = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => x * 2);\n';

function js(rng: Prng, bytes: number): string {
  let s = `// generated module ${rng.int(0, 1e9)}\n`;
  while (s.length < bytes) s += FILLER;
  return s;
}

/** One edited version of `prev` (pure given the rng). */
function edit(rng: Prng, prev: ItemTree, nextVersion: string, k: number): { tree: ItemTree; edits: string[] } {
  const files = new Map(prev.files);
  const manifest: ItemManifest = { ...prev.manifest, version: nextVersion, endpoints: { ...(prev.manifest.endpoints ?? {}) } };
  const edits: string[] = [];
  const nAdd = rng.int(0, 3);
  for (let i = 0; i < nAdd; i++) {
    const kind = rng.pick(['html', 'js', 'css', 'json'] as const);
    const p = `gen/v${k}-${i}.${kind}`;
    const size = Math.round(rng.logNormal(2000, 1));
    files.set(p, Buffer.from(kind === 'js' ? js(rng, size) : kind === 'json' ? JSON.stringify({ pad: 'x'.repeat(size) }) : `/* ${'x'.repeat(size)} */`));
    edits.push(`add ${p}`);
  }
  const removable = [...files.keys()].filter((p) => p.startsWith('gen/'));
  if (removable.length && rng.bernoulli(0.3)) {
    const p = rng.pick(removable);
    files.delete(p);
    edits.push(`remove ${p}`);
  }
  if (rng.bernoulli(0.7)) {
    // Script growth relative to the current app.js: mostly small, sometimes a big rewrite.
    const cur = files.get('js/app.js')!.toString('utf8');
    const growth = rng.bernoulli(0.2) ? rng.float() * 2 : rng.float() * 0.3;
    files.set('js/app.js', Buffer.from(cur + js(rng, Math.round(Math.max(cur.length, 1024) * growth))));
    edits.push(`grow js/app.js ×${(1 + growth).toFixed(2)}`);
  }
  if (rng.bernoulli(0.3)) {
    const n = rng.int(1, 2);
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`fetch("https://svc${rng.int(0, 9999)}.thirdparty${k}.example/v1/data");`);
    files.set(`gen/origins-${k}.js`, Buffer.from(lines.join('\n')));
    edits.push(`call ${n} new origin(s)`);
  }
  if (rng.bernoulli(0.15)) {
    manifest.endpoints![`svc${k}`] = `https://svc${k}.example.com/v1`;
    edits.push(`manifest endpoint svc${k}`);
  }
  const tree: ItemTree = { manifest, files };
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest, null, 1)));
  return { tree, edits };
}

/** Item `i`'s first version (the `shop` fixture under the item's own id). Versions carry build metadata `+g<i>[.r<k>]` so each item's version shadows have names of their own. */
export function firstVersion(seed: string, i: number, prefix = 'hist'): GeneratedVersion {
  const base = versionFiles('shop', 'v1');
  const itemId = `gen.${prefix}.i${i}`;
  const m0 = { ...(JSON.parse(base.get('manifest.json')!.toString('utf8')) as ItemManifest), id: itemId, name: `Generated ${i}`, version: `1.0.0+g${i}` };
  const files0 = new Map(base);
  files0.set('manifest.json', Buffer.from(JSON.stringify(m0, null, 1)));
  return { itemId, index: 0, version: m0.version, tree: { manifest: m0, files: files0 }, features: null, risk: 0, bad: false, shadow: '', edits: [] };
}

/**
 * Version `k` of item `i`, edited from `prev` — the version the pipeline serves when it is made
 * (the last promoted one), so the truth is a function of exactly the diff the pipeline sees.
 * Seeded by (seed, i, k): the same history replays the same versions.
 */
export function nextVersion(seed: string, i: number, k: number, prev: ItemTree): GeneratedVersion {
  const rng = new Prng(`${seed}/item/${i}/version/${k}`);
  const major = rng.bernoulli(0.15);
  const core = semver.inc(prev.manifest.version.split('+')[0], major ? 'major' : rng.bernoulli(0.5) ? 'minor' : 'patch')!;
  // Build metadata names the item and the round: a version rolled back and then re-made from the
  // same base would otherwise get the same number (and the same shadow name) again.
  const version = `${core}+g${i}.r${k}`;
  const { tree, edits } = edit(rng, prev, version, k);
  const features = computeChangeFeatures(prev, tree, NO_HISTORY, 0);
  const risk = trueRisk(features.inputs);
  return { itemId: prev.manifest.id, index: k, version, tree, features, risk, bad: rng.float() < risk, shadow: versionShadowName(version), edits: major ? ['major bump', ...edits] : edits };
}

/**
 * `items` items with `versionsPerItem` versions each, every version edited from the one before
 * (as if each had been promoted), seeded. runHistory instead edits each version from what the
 * pipeline serves at that moment.
 */
export function generateHistory(seed: string, items: number, versionsPerItem: number, prefix = 'hist'): GeneratedItem[] {
  const out: GeneratedItem[] = [];
  for (let i = 0; i < items; i++) {
    const versions = [firstVersion(seed, i, prefix)];
    for (let k = 1; k < versionsPerItem; k++) versions.push(nextVersion(seed, i, k, versions[k - 1].tree));
    out.push({ itemId: versions[0].itemId, versions });
  }
  return out;
}

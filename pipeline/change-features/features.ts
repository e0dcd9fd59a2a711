/**
 * Change features: what changed between the current version of an item and a newly ingested
 * one, plus the item's own history — the inputs of the rollout-risk model (pipeline/risk-model).
 *
 * Pure: two ItemTrees (the unpacked, validated archives) and a HistoryInputs the caller supplies
 * go in, a ChangeFeatures comes out. No I/O, no clock (the caller passes `computedAt`), so golden
 * archive pairs pin every field (features.test.ts, fixtures/). README.md documents each field.
 *
 * `modelInputs()` turns a record into the named numeric vector the model sees. It is the ONE
 * place that transformation lives: the record carries its output (`inputs`) onto the topic and
 * into the warehouse, and the Python trainer reads those columns as they are — so training and
 * serving can never disagree on, say, a log scale.
 */
import semver from 'semver';
import type { ItemTree } from '../shadowing/archive.ts';
import { TEXT_EXTENSIONS } from '../shadowing/apply.ts';

/** What the caller knows about the item's past (from its history store; see README). */
export interface HistoryInputs {
  /** Earlier versions of this item whose rollout reached an outcome (in the history window). */
  priorRollouts: number;
  /** Of those, how many ended in a regression (guardrail rollback or failed analysis). */
  priorRegressions: number;
  /** Outcome of the most recent earlier rollout: 'regression', 'success' or null when none. */
  lastOutcome: 'regression' | 'success' | null;
  /** Error-session rate of the current version over the recent window, or null without data. */
  currentErrorRate: number | null;
  /** Sessions behind `currentErrorRate` (0 without data). */
  currentSessions: number;
  /** Epoch ms the current version was ingested, or null for a first version. */
  currentIngestedAt: number | null;
}

export const NO_HISTORY: HistoryInputs = Object.freeze({
  priorRollouts: 0, priorRegressions: 0, lastOutcome: null, currentErrorRate: null, currentSessions: 0, currentIngestedAt: null,
}) as HistoryInputs;

export type VersionBump = 'first' | 'major' | 'minor' | 'patch' | 'prerelease' | 'same' | 'downgrade' | 'other';

export interface ChangeFeatures {
  itemId: string;
  version: string;
  /** Version the new one is compared with (the current original), null for a first version. */
  previousVersion: string | null;
  versionBump: VersionBump;
  computedAt: number;
  // ---- files and bytes (manifest.json excluded: it has its own fields) ----
  totalFiles: number;
  totalBytes: number;
  filesAdded: number;
  filesRemoved: number;
  filesChanged: number;
  bytesAdded: number;
  bytesRemoved: number;
  /** Bytes of the changed files in the new version. */
  bytesChanged: number;
  // ---- scripts (.js/.mjs files plus inline <script> bodies of HTML pages) ----
  scriptBytes: number;
  previousScriptBytes: number;
  /** (scriptBytes − previousScriptBytes) / max(previousScriptBytes, 1024). */
  scriptGrowth: number;
  scriptFilesAdded: number;
  scriptFilesChanged: number;
  // ---- external origins and endpoints found in HTML, JS, CSS and JSON/config files ----
  origins: string[];
  newOrigins: string[];
  removedOrigins: string[];
  endpoints: string[];
  newEndpoints: string[];
  removedEndpoints: string[];
  // ---- manifest ----
  /** Top-level manifest keys whose value differs (added, removed or changed), sorted; `version` excluded. */
  manifestChangedKeys: string[];
  entryChanged: boolean;
  manifestEndpointsAdded: string[];
  manifestEndpointsRemoved: string[];
  manifestEndpointsChanged: string[];
  // ---- the item's history, as supplied ----
  history: HistoryInputs;
  /** Hours between the current version's ingest and `computedAt` (null for a first version). */
  hoursSincePrevious: number | null;
  /** modelInputs(this): the model's view (README: "Model inputs"). */
  inputs: Record<string, number>;
}

const SCRIPT_EXT = ['.js', '.mjs', '.cjs'];
const ext = (p: string): string => {
  const i = p.lastIndexOf('.');
  return i < 0 ? '' : p.slice(i).toLowerCase();
};
const isText = (p: string): boolean => TEXT_EXTENSIONS.includes(ext(p));
const isScript = (p: string): boolean => SCRIPT_EXT.includes(ext(p));
const isHtml = (p: string): boolean => ext(p) === '.html' || ext(p) === '.htm';

/**
 * Origins that appear in markup without being contacted (XML namespaces, DTDs): counting them
 * would make every SVG "talk to" w3.org.
 */
export const IGNORED_ORIGINS: ReadonlySet<string> = new Set(['http://www.w3.org', 'https://www.w3.org', 'http://www.w3.org:80', 'http://xmlns.com', 'http://purl.org', 'http://schema.org', 'https://schema.org']);

// scheme://host[:port][/path]; the path stops at whitespace, quotes, brackets, backslashes, `?` and `#`.
const URL_RE = /\bhttps?:\/\/[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d{1,5})?(?:\/[^\s"'`<>()[\]{}\\?#,;]*)?/g;

/** Origins and endpoints (origin + path, no query or fragment, no trailing slash) in a text. */
export function findUrls(text: string): { origins: Set<string>; endpoints: Set<string> } {
  const origins = new Set<string>();
  const endpoints = new Set<string>();
  for (const m of text.matchAll(URL_RE)) {
    let u: URL;
    try {
      u = new URL(m[0]);
    } catch {
      continue;
    }
    const origin = u.origin.toLowerCase();
    if (IGNORED_ORIGINS.has(origin)) continue;
    origins.add(origin);
    const p = u.pathname.replace(/[.:]+$/, '').replace(/\/+$/, '');
    endpoints.add(`${origin}${p}`);
  }
  return { origins, endpoints };
}

/** Bytes inside inline `<script>` elements (those without `src`) of an HTML page. */
export function inlineScriptBytes(html: string): number {
  let n = 0;
  const re = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;
  for (const m of html.matchAll(re)) {
    if (/\ssrc\s*=/i.test(` ${m[1]}`)) continue;
    n += Buffer.byteLength(m[2], 'utf8');
  }
  return n;
}

interface Scan {
  files: Map<string, Buffer>;
  scriptBytes: number;
  origins: Set<string>;
  endpoints: Set<string>;
}

function scan(tree: ItemTree): Scan {
  const files = new Map([...tree.files].filter(([p]) => p !== 'manifest.json'));
  let scriptBytes = 0;
  const origins = new Set<string>();
  const endpoints = new Set<string>();
  for (const [p, b] of files) {
    if (isScript(p)) scriptBytes += b.length;
    if (!isText(p)) continue;
    const text = b.toString('utf8');
    if (isHtml(p)) scriptBytes += inlineScriptBytes(text);
    const f = findUrls(text);
    for (const o of f.origins) origins.add(o);
    for (const e of f.endpoints) endpoints.add(e);
  }
  // The manifest's declared endpoints are the item's own server contract: they count too.
  for (const url of Object.values(tree.manifest.endpoints ?? {})) {
    const f = findUrls(url);
    for (const o of f.origins) origins.add(o);
    for (const e of f.endpoints) endpoints.add(e);
  }
  return { files, scriptBytes, origins, endpoints };
}

const sorted = (s: Iterable<string>): string[] => [...s].sort();
const minus = (a: Set<string>, b: Set<string>): string[] => sorted([...a].filter((x) => !b.has(x)));

export function versionBump(previous: string | null, next: string): VersionBump {
  if (previous === null) return 'first';
  const a = semver.valid(previous);
  const b = semver.valid(next);
  if (!a || !b) return 'other';
  const c = semver.compare(b, a);
  if (c === 0) return 'same';
  if (c < 0) return 'downgrade';
  const d = semver.diff(a, b);
  if (d === 'major' || d === 'premajor') return 'major';
  if (d === 'minor' || d === 'preminor') return 'minor';
  if (d === 'patch' || d === 'prepatch') return 'patch';
  return 'prerelease';
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function manifestDiff(prev: Record<string, unknown>, next: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  keys.delete('version');
  return sorted([...keys].filter((k) => canonical(prev[k]) !== canonical(next[k])));
}

/**
 * The change from `previous` (the current original; null for a first version) to `next`.
 * `manifestJson` of each side is read from its `manifest.json` bytes (every key counts, not only
 * the ones Penumbra understands).
 */
export function computeChangeFeatures(previous: ItemTree | null, next: ItemTree, history: HistoryInputs, computedAt: number): ChangeFeatures {
  const n = scan(next);
  const p = previous ? scan(previous) : null;
  let filesAdded = 0;
  let filesRemoved = 0;
  let filesChanged = 0;
  let bytesAdded = 0;
  let bytesRemoved = 0;
  let bytesChanged = 0;
  let scriptFilesAdded = 0;
  let scriptFilesChanged = 0;
  let totalBytes = 0;
  for (const [path, b] of n.files) {
    totalBytes += b.length;
    const old = p?.files.get(path);
    if (!p) continue;
    if (!old) {
      filesAdded++;
      bytesAdded += b.length;
      if (isScript(path)) scriptFilesAdded++;
    } else if (!old.equals(b)) {
      filesChanged++;
      bytesChanged += b.length;
      if (isScript(path) || (isHtml(path) && inlineScriptBytes(old.toString('utf8')) !== inlineScriptBytes(b.toString('utf8')))) scriptFilesChanged++;
    }
  }
  if (p) {
    for (const [path, b] of p.files) {
      if (!n.files.has(path)) {
        filesRemoved++;
        bytesRemoved += b.length;
      }
    }
  }
  const nextManifest = JSON.parse(next.files.get('manifest.json')?.toString('utf8') ?? JSON.stringify(next.manifest)) as Record<string, unknown>;
  const prevManifest = previous ? (JSON.parse(previous.files.get('manifest.json')?.toString('utf8') ?? JSON.stringify(previous.manifest)) as Record<string, unknown>) : null;
  const ne = next.manifest.endpoints ?? {};
  const pe = previous?.manifest.endpoints ?? {};
  const previousScriptBytes = p?.scriptBytes ?? 0;
  const f: Omit<ChangeFeatures, 'inputs'> = {
    itemId: next.manifest.id,
    version: next.manifest.version,
    previousVersion: previous?.manifest.version ?? null,
    versionBump: versionBump(previous?.manifest.version ?? null, next.manifest.version),
    computedAt,
    totalFiles: n.files.size,
    totalBytes,
    filesAdded,
    filesRemoved,
    filesChanged,
    bytesAdded,
    bytesRemoved,
    bytesChanged,
    scriptBytes: n.scriptBytes,
    previousScriptBytes,
    scriptGrowth: p ? round6((n.scriptBytes - previousScriptBytes) / Math.max(previousScriptBytes, 1024)) : 0,
    scriptFilesAdded,
    scriptFilesChanged,
    origins: sorted(n.origins),
    newOrigins: p ? minus(n.origins, p.origins) : [],
    removedOrigins: p ? minus(p.origins, n.origins) : [],
    endpoints: sorted(n.endpoints),
    newEndpoints: p ? minus(n.endpoints, p.endpoints) : [],
    removedEndpoints: p ? minus(p.endpoints, n.endpoints) : [],
    manifestChangedKeys: prevManifest ? manifestDiff(prevManifest, nextManifest) : [],
    entryChanged: previous ? previous.manifest.entry !== next.manifest.entry : false,
    manifestEndpointsAdded: previous ? sorted(Object.keys(ne).filter((k) => !(k in pe))) : [],
    manifestEndpointsRemoved: previous ? sorted(Object.keys(pe).filter((k) => !(k in ne))) : [],
    manifestEndpointsChanged: previous ? sorted(Object.keys(ne).filter((k) => k in pe && pe[k] !== ne[k])) : [],
    history: { ...history },
    hoursSincePrevious: history.currentIngestedAt === null ? null : round6(Math.max(0, computedAt - history.currentIngestedAt) / 3_600_000),
  };
  return { ...f, inputs: modelInputs(f) };
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;
const log1p = (x: number): number => round6(Math.log1p(Math.max(0, x)));
const clip = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/**
 * The model's inputs, by name (README "Model inputs" gives each one's reason). Heavy-tailed
 * counts and byte sizes are log-scaled (log1p; bytes in KiB) so one huge asset does not dominate
 * a linear model; ratios are clipped. The history's regression share is smoothed with one
 * pseudo-rollout of each outcome ((k + 1) / (n + 2)) so a single past rollout is not read as 0 % or 100 %.
 */
export function modelInputs(f: Omit<ChangeFeatures, 'inputs'>): Record<string, number> {
  const h = f.history;
  const first = f.previousVersion === null ? 1 : 0;
  return {
    first_version: first,
    log_files_added: log1p(f.filesAdded),
    log_files_removed: log1p(f.filesRemoved),
    log_files_changed: log1p(f.filesChanged),
    log_kib_added: log1p(f.bytesAdded / 1024),
    log_kib_removed: log1p(f.bytesRemoved / 1024),
    log_kib_changed: log1p(f.bytesChanged / 1024),
    script_growth: round6(clip(f.scriptGrowth, -1, 10)),
    log_script_files_touched: log1p(f.scriptFilesAdded + f.scriptFilesChanged),
    new_origins: f.newOrigins.length,
    removed_origins: f.removedOrigins.length,
    log_new_endpoints: log1p(f.newEndpoints.length),
    log_removed_endpoints: log1p(f.removedEndpoints.length),
    manifest_keys_changed: f.manifestChangedKeys.length,
    manifest_endpoints_changed: f.manifestEndpointsAdded.length + f.manifestEndpointsRemoved.length + f.manifestEndpointsChanged.length,
    entry_changed: f.entryChanged ? 1 : 0,
    major_bump: f.versionBump === 'major' ? 1 : 0,
    prior_rollouts: log1p(h.priorRollouts),
    prior_regression_share: round6((h.priorRegressions + 1) / (h.priorRollouts + 2)),
    last_outcome_regression: h.lastOutcome === 'regression' ? 1 : 0,
    current_error_rate: h.currentErrorRate === null ? 0 : round6(clip(h.currentErrorRate, 0, 1)),
  };
}

/** Names of modelInputs() in order: the column order of the trainer's default feature list. */
export const MODEL_INPUT_NAMES: readonly string[] = Object.freeze(Object.keys(modelInputs(computeChangeFeatures(null, {
  manifest: { id: 'x', version: '1.0.0', name: 'x', entry: 'index.html' },
  files: new Map([['manifest.json', Buffer.from('{}')]]),
}, NO_HISTORY, 0))));

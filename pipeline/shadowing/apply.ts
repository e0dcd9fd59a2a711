/**
 * applyShadowConfig: the pure core that turns an item tree into its shadow tree.
 *
 * Reads: an ItemTree (from readArchive), one validated ShadowConfig, the instrumentation library
 * bytes and the shadow's identity. Writes nothing: it returns a new tree and a report.
 * Guarantees: the input tree and its buffers are never mutated; the same inputs give the same
 * tree (iteration in sorted path order, no clocks, no randomness), so writeArchive of it is
 * byte-identical run after run. Rules are documented in README.md in this folder.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { CONTROL, type ItemManifest, type ShadowConfig } from '../domain/types.ts';
import { ArchiveRejectedError, ValidationError } from '../errors.ts';
import type { ItemTree } from './archive.ts';
import { MANIFEST_PATH } from './manifest.ts';

/** Folder every shadow gets; items may not ship anything under it. */
export const RESERVED_DIR = '__penumbra';
export const IDENTITY_JSON = `${RESERVED_DIR}/identity.json`;
export const IDENTITY_MODULE = `${RESERVED_DIR}/identity.js`;

/** Assets whose text is searched for endpoint URLs. */
export const TEXT_EXTENSIONS = ['.html', '.htm', '.js', '.mjs', '.css', '.json', '.map', '.txt', '.svg', '.webmanifest'];
const HTML_EXT_RE = /\.html?$/i;
const JS_ENTRY_RE = /\.m?js$/i;
const LIBRARY_FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.m?js$/;

export interface ShadowIdentity {
  itemId: string;
  version: string;
  variant: string;
  profileVersion: number;
}

export interface ApplyContext {
  /** The instrumentation library; fileName carries its version, e.g. `penumbra-instrument-1.0.0.js`. */
  library: { fileName: string; source: string };
  identity: ShadowIdentity;
  runtimeConfigUrl: string;
  telemetryUrl: string;
}

export interface ShadowReport {
  /** Files whose endpoint URLs were rewritten, sorted by path. */
  files: { path: string; replacements: number }[];
  /** HTML pages that received the identity and library script tags, sorted. */
  injectedPages: string[];
  totalReplacements: number;
  /** Text assets left untouched because they are not valid UTF-8 (no injection, no rewrite). */
  skippedNonUtf8: string[];
  /** Things the operator should know (e.g. a `<base href>` that changes relative paths). */
  warnings: string[];
}

/** The rewritten manifest: the original fields, merged endpoints and the shadow's name. */
export type ShadowManifest = ItemManifest & { shadow: { name: string; profileVersion: number } };

function decodeUtf8(buf: Buffer): string | null {
  try {
    // TextDecoder drops a leading BOM by default; keep it so unchanged regions stay byte-identical.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    return null;
  }
}

const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const ext = (p: string): string => path.posix.extname(p).toLowerCase();

/** Relative URL from a file to a target path, always starting with `./` or `../`. */
function relativeUrl(fromFile: string, target: string): string {
  const rel = path.posix.relative(path.posix.dirname(fromFile), target);
  return rel.startsWith('../') ? rel : `./${rel}`;
}

/**
 * JSON that is safe inside an inline `<script>` (and a JS module): `<`, `>`, `&` and the JS line
 * terminators U+2028/2029 are escaped, so `</script>` or `<!--` in a value cannot end the script.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function sriSha384(bytes: Buffer): string {
  return `sha384-${createHash('sha384').update(bytes).digest('base64')}`;
}

// ---------------------------------------------------------------------------------------------
// HTML insertion point

/** Elements whose content is raw text: a `<script` inside them is not a tag. */
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes', 'plaintext']);

export interface HtmlLandmarks {
  firstScript: number | null;
  headClose: number | null;
  /** End (just after `>`) of the `<head>` / `<html>` start tags and of the doctype. */
  headOpenEnd: number | null;
  htmlOpenEnd: number | null;
  doctypeEnd: number | null;
  hasBase: boolean;
  hasCspMeta: boolean;
}

/**
 * A small tolerant HTML scanner: skips comments, doctype/processing instructions, quoted
 * attribute values and raw-text element content, and records where the landmarks are.
 */
export function scanHtml(html: string): HtmlLandmarks {
  const lm: HtmlLandmarks = {
    firstScript: null,
    headClose: null,
    headOpenEnd: null,
    htmlOpenEnd: null,
    doctypeEnd: null,
    hasBase: false,
    hasCspMeta: false,
  };
  const lower = html.toLowerCase();
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) break;
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (html[lt + 1] === '!' || html[lt + 1] === '?') {
      const end = html.indexOf('>', lt);
      i = end < 0 ? html.length : end + 1;
      if (lower.startsWith('<!doctype', lt) && lm.doctypeEnd === null) lm.doctypeEnd = i;
      continue;
    }
    const closing = html[lt + 1] === '/';
    const m = /^[a-zA-Z][a-zA-Z0-9-]*/.exec(html.slice(lt + (closing ? 2 : 1), lt + (closing ? 2 : 1) + 32));
    if (!m) {
      i = lt + 1;
      continue;
    }
    const tag = m[0].toLowerCase();
    // Find the end of the tag, honouring quoted attribute values.
    let j = lt + (closing ? 2 : 1) + m[0].length;
    let quote: string | null = null;
    for (; j < html.length; j++) {
      const ch = html[j];
      if (quote) {
        if (ch === quote) quote = null;
      } else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '>') break;
    }
    const tagEnd = Math.min(j + 1, html.length);
    if (closing) {
      if (tag === 'head' && lm.headClose === null) lm.headClose = lt;
      i = tagEnd;
      continue;
    }
    const attrs = lower.slice(lt, tagEnd);
    if (tag === 'script' && lm.firstScript === null) lm.firstScript = lt;
    if (tag === 'head' && lm.headOpenEnd === null) lm.headOpenEnd = tagEnd;
    if (tag === 'html' && lm.htmlOpenEnd === null) lm.htmlOpenEnd = tagEnd;
    if (tag === 'base' && /\shref\s*=/.test(attrs)) lm.hasBase = true;
    if (tag === 'meta' && /http-equiv\s*=\s*["']?content-security-policy/.test(attrs)) lm.hasCspMeta = true;
    i = tagEnd;
    if (RAW_TEXT.has(tag)) {
      const close = lower.indexOf(`</${tag}`, i);
      i = close < 0 ? html.length : close;
    }
  }
  return lm;
}

/**
 * Where the instrumentation goes: before the first `<script`; else at the end of `<head>`; else
 * just after `<head>`, `<html>` or the doctype; else at the start (after a BOM).
 */
export function injectionPoint(html: string): number {
  const lm = scanHtml(html);
  return (
    lm.firstScript ?? lm.headClose ?? lm.headOpenEnd ?? lm.htmlOpenEnd ?? lm.doctypeEnd ?? (html.startsWith('\uFEFF') ? 1 : 0)
  );
}

// ---------------------------------------------------------------------------------------------
// Endpoint rewriting

export interface Rewrite {
  from: string;
  to: string;
}

/**
 * Base-URL pairs to replace. Trailing slashes are stripped from both sides, so a base matches
 * with or without one and whatever follows (`/notes`, `/`, `?q`) is kept. Each pair also gets
 * its JSON-escaped form (`https:\/\/…`) as written by some JSON encoders. Declared endpoints that
 * are NOT overridden are kept as identity pairs: if one is longer than an overridden base (a
 * `cdn` at `…/v1/static` under an `api` at `…/v1`), longest-first matching leaves it alone.
 * Returns [] when nothing is overridden to a different URL.
 */
export function endpointRewrites(original: Record<string, string>, overrides: Record<string, string>): Rewrite[] {
  const pairs = new Map<string, { to: string; key: string }>();
  let changes = 0;
  for (const key of Object.keys(original).sort()) {
    const from = original[key].replace(/\/+$/, '');
    const to = (Object.hasOwn(overrides, key) ? overrides[key] : original[key]).replace(/\/+$/, '');
    if (from === '') continue;
    const existing = pairs.get(from);
    if (existing !== undefined && existing.to !== to) {
      throw new ValidationError('two endpoints share a base URL but would be rewritten differently', [
        { path: `endpoints/${key}`, message: `${from} is also the base of endpoint "${existing.key}" (→ ${existing.to})` },
      ]);
    }
    if (from !== to) changes += 1;
    pairs.set(from, { to, key });
  }
  if (changes === 0) return [];
  const out: Rewrite[] = [];
  for (const [from, { to }] of pairs) {
    out.push({ from, to });
    out.push({ from: from.replace(/\//g, '\\/'), to: to.replace(/\//g, '\\/') });
  }
  // Longest first: at any position the longest base wins, so `…/v1/static` beats `…/v1`.
  return out.sort((a, b) => b.from.length - a.from.length || byPath(a.from, b.from));
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Replace every base in one left-to-right pass (replaced text is never rescanned, so an override
 * that contains another base is not rewritten twice). A match must end at a URL boundary: the
 * next character may not continue a host or path segment (`[A-Za-z0-9._~%:@+-]`), so
 * `https://api.example.com/v1` does not touch `…/v10` or `https://api.example.com.evil`.
 */
export function rewriteText(text: string, rewrites: Rewrite[]): { text: string; replacements: number } {
  if (rewrites.length === 0) return { text, replacements: 0 };
  const map = new Map(rewrites.map((r) => [r.from, r.to]));
  const re = new RegExp(`(?:${rewrites.map((r) => escapeRe(r.from)).join('|')})(?![A-Za-z0-9._~%:@+\\-])`, 'g');
  let replacements = 0;
  const out = text.replace(re, (m) => {
    const to = map.get(m) ?? m;
    if (to !== m) replacements += 1; // identity pairs only shield longer bases
    return to;
  });
  return { text: out, replacements };
}

// ---------------------------------------------------------------------------------------------

export function checkContext(item: ItemTree, config: ShadowConfig, ctx: ApplyContext): void {
  const issues = [];
  if (!LIBRARY_FILE_RE.test(ctx.library.fileName)) {
    issues.push({ path: 'library/fileName', message: 'must be a plain versioned file name such as penumbra-instrument-1.0.0.js' });
  }
  const id = ctx.identity;
  // A mismatch would attribute telemetry to the wrong item or variant.
  if (id.itemId !== item.manifest.id) issues.push({ path: 'identity/itemId', message: `must be the manifest id ${item.manifest.id}` });
  if (id.version !== item.manifest.version) {
    issues.push({ path: 'identity/version', message: `must be the manifest version ${item.manifest.version}` });
  }
  if (id.variant !== config.name) issues.push({ path: 'identity/variant', message: `must be the shadow name ${config.name}` });
  if (!Number.isSafeInteger(id.profileVersion) || id.profileVersion < 0) {
    issues.push({ path: 'identity/profileVersion', message: 'must be a non-negative integer' });
  }
  const declared = item.manifest.endpoints ?? {};
  for (const key of Object.keys(config.endpoints)) {
    if (!Object.hasOwn(declared, key)) issues.push({ path: `endpoints/${key}`, message: `the manifest declares no endpoint "${key}"` });
  }
  if (issues.length > 0) throw new ValidationError('cannot build the shadow', issues);
}

/** Build the shadow tree of `item` for `config`. Pure: see the file header. */
export function applyShadowConfig(item: ItemTree, config: ShadowConfig, ctx: ApplyContext): { tree: ItemTree; report: ShadowReport } {
  const paths = [...item.files.keys()].sort(byPath);
  const reserved = paths.find((p) => p.split('/')[0].toLowerCase() === RESERVED_DIR);
  if (reserved !== undefined) {
    throw new ArchiveRejectedError('reserved-path', `${reserved}: the folder ${RESERVED_DIR}/ is reserved for instrumentation`, [
      { path: reserved, message: 'reserved path' },
    ]);
  }
  checkContext(item, config, ctx);

  const libPath = `${RESERVED_DIR}/${ctx.library.fileName}`;
  const libBytes = Buffer.from(ctx.library.source, 'utf8');
  const integrity = sriSha384(libBytes);
  const runtime = {
    itemId: ctx.identity.itemId,
    version: ctx.identity.version,
    variant: ctx.identity.variant,
    profileVersion: ctx.identity.profileVersion,
    runtimeConfigUrl: ctx.runtimeConfigUrl,
    telemetryUrl: ctx.telemetryUrl,
  };
  const runtimeJson = scriptSafeJson(runtime);

  const originalEndpoints = item.manifest.endpoints ?? {};
  const rewrites = endpointRewrites(originalEndpoints, config.endpoints);
  const entry = item.manifest.entry;
  const jsEntry = JS_ENTRY_RE.test(entry);

  const files = new Map<string, Buffer>();
  const report: ShadowReport = { files: [], injectedPages: [], totalReplacements: 0, skippedNonUtf8: [], warnings: [] };

  for (const p of paths) {
    const original = item.files.get(p) as Buffer;
    if (p === MANIFEST_PATH) continue; // regenerated below
    const e = ext(p);
    const isHtml = HTML_EXT_RE.test(p);
    const isText = TEXT_EXTENSIONS.includes(e);
    if (!isText) {
      files.set(p, Buffer.from(original)); // copy: the shadow never aliases the item's buffers
      continue;
    }
    let text = decodeUtf8(original);
    if (text === null) {
      report.skippedNonUtf8.push(p);
      if (isHtml || (jsEntry && p === entry)) report.warnings.push(`${p}: not UTF-8, left without instrumentation`);
      files.set(p, Buffer.from(original));
      continue;
    }
    const rw = rewriteText(text, rewrites);
    text = rw.text;
    if (rw.replacements > 0) {
      report.files.push({ path: p, replacements: rw.replacements });
      report.totalReplacements += rw.replacements;
    }
    if (isHtml) {
      const lm = scanHtml(text);
      if (lm.hasBase) report.warnings.push(`${p}: <base href> changes how the relative library path resolves`);
      if (lm.hasCspMeta) report.warnings.push(`${p}: a Content-Security-Policy meta tag may block the inline identity script`);
      const at = injectionPoint(text);
      const tags =
        `<script>window.__PENUMBRA__=${runtimeJson};</script>` +
        `<script src="${relativeUrl(p, libPath)}" integrity="${integrity}" crossorigin="anonymous"></script>`;
      text = text.slice(0, at) + tags + text.slice(at);
      report.injectedPages.push(p);
    }
    if (jsEntry && p === entry) {
      // Identity first, then the library; both before any of the entry's own imports run.
      const imports =
        `import ${JSON.stringify(relativeUrl(p, IDENTITY_MODULE))};\n` + `import ${JSON.stringify(relativeUrl(p, libPath))};\n`;
      text = insertAtModuleStart(text, imports);
    }
    files.set(p, Buffer.from(text, 'utf8'));
  }

  // Instrumentation files.
  files.set(libPath, libBytes);
  files.set(IDENTITY_JSON, Buffer.from(JSON.stringify(runtime, null, 2) + '\n', 'utf8'));
  if (jsEntry) files.set(IDENTITY_MODULE, Buffer.from(`globalThis.__PENUMBRA__ = ${runtimeJson};\n`, 'utf8'));

  // Manifest: keep the uploader's other fields, merge endpoints, mark the shadow.
  const manifestRaw = JSON.parse(new TextDecoder().decode(item.files.get(MANIFEST_PATH) ?? Buffer.from(JSON.stringify(item.manifest))));
  const endpoints = { ...originalEndpoints, ...config.endpoints };
  const manifest: ShadowManifest = { ...item.manifest, endpoints, shadow: { name: config.name, profileVersion: ctx.identity.profileVersion } };
  const manifestOut: Record<string, unknown> = { ...manifestRaw, endpoints, shadow: manifest.shadow };
  if (Object.keys(endpoints).length === 0 && item.manifest.endpoints === undefined) {
    delete manifestOut.endpoints;
    delete (manifest as Partial<ShadowManifest>).endpoints;
  }
  files.set(MANIFEST_PATH, Buffer.from(JSON.stringify(manifestOut, null, 2) + '\n', 'utf8'));

  report.files.sort((a, b) => byPath(a.path, b.path));
  const sorted = new Map([...files.entries()].sort(([a], [b]) => byPath(a, b)));
  return { tree: { manifest, files: sorted }, report };
}

/**
 * The control arm's tree (issue 11): the ORIGINAL item with the same instrumentation library and
 * identity injection as a shadow (variant `control`), and no endpoint rewrites — so its telemetry
 * is measured exactly like a shadow's while it talks to the original's servers. One artifact
 * serves every shadow's control cohort: nothing in it depends on a shadow (points and sampling
 * come from the runtime config, the shadow a session belongs to from its assignment token).
 * Pure, deterministic, input never mutated — applyShadowConfig with an empty override map.
 */
export function applyControl(item: ItemTree, ctx: ApplyContext): { tree: ItemTree; report: ShadowReport } {
  if (ctx.identity.variant !== CONTROL) {
    throw new ValidationError('cannot build the control', [{ path: 'identity/variant', message: `must be ${CONTROL}` }]);
  }
  const config: ShadowConfig = {
    name: CONTROL,
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
    endpoints: {},
    traffic: { percentage: 0, match: 'all', rules: [] },
  };
  return applyShadowConfig(item, config, ctx);
}

/** Insert module-level imports after a BOM and a hashbang line, which must stay first. */
function insertAtModuleStart(text: string, imports: string): string {
  let at = text.startsWith('\uFEFF') ? 1 : 0;
  if (text.startsWith('#!', at)) {
    const nl = text.indexOf('\n', at);
    at = nl < 0 ? text.length : nl + 1;
    if (nl < 0) imports = `\n${imports}`;
  }
  return text.slice(0, at) + imports + text.slice(at);
}

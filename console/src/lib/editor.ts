/**
 * The config editor's model: a draft of the PUT body built from the current shadow-config
 * view, edit helpers (rules, points, endpoints), local validation that uses the
 * same field paths as the server's 422 (`shadows/0/traffic/rules/1/range`), and the diff
 * against the loaded profile that is shown before saving.
 */
import type { FieldError, ConflictInfo } from './api.ts';
import type { PutShadowConfig, RuleOp, ShadowConfig, ShadowConfigView, TrafficRule } from './types.ts';
import { diffJson, type DiffEntry } from './diff.ts';
import { fmtTime } from './format.ts';

export const STANDARD_ATTRIBUTES = ['deviceType', 'country', 'userGroup', 'appVersion'] as const;
export const ATTRIBUTE_LABELS: Record<string, string> = { deviceType: 'Device type', country: 'Country', userGroup: 'User group', appVersion: 'App version', custom: 'Custom attribute' };
export const OPS: { op: RuleOp; label: string }[] = [
  { op: 'in', label: 'is one of' },
  { op: 'not_in', label: 'is not one of' },
  { op: 'equals', label: 'equals' },
  { op: 'not_equals', label: 'does not equal' },
  { op: 'semver', label: 'matches semver range' },
  { op: 'regex', label: 'matches regex' },
];
export type ValueKind = 'values' | 'value' | 'range' | 'pattern';
export function valueKind(op: RuleOp): ValueKind {
  return op === 'in' || op === 'not_in' ? 'values' : op === 'semver' ? 'range' : op === 'regex' ? 'pattern' : 'value';
}
export function isStandardAttribute(a: string): boolean { return (STANDARD_ATTRIBUTES as readonly string[]).includes(a); }

export interface EndpointRow { key: string; url: string }
/** A shadow as edited: endpoints as ordered rows so keys can be renamed in place. */
export type ShadowDraft = Omit<ShadowConfig, 'endpoints'> & { endpointRows: EndpointRow[] };
export interface EditorDraft {
  shadows: ShadowDraft[];
  state: 'active' | 'rolled_back';
  /** Not edited here (the guardrail flag is the Rollout tab's); carried through unchanged so a save never clears them. */
  holdout?: unknown;
  guardrail?: unknown;
}

const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

export function shadowToDraft(s: ShadowConfig): ShadowDraft {
  const { endpoints, ...rest } = clone(s) as ShadowConfig & { artifact?: unknown; rolloutState?: unknown; rollout?: unknown };
  // Read-only, or the Rollout tab's: a config save sends no plan, which keeps the current one.
  delete (rest as { artifact?: unknown }).artifact;
  delete (rest as { rolloutState?: unknown }).rolloutState;
  delete (rest as { rollout?: unknown }).rollout;
  return {
    ...rest,
    instrumentation: {
      capture: { ...{ performance: true, errors: true, usage: true }, ...rest.instrumentation?.capture },
      points: rest.instrumentation?.points ?? [],
      sampleRate: rest.instrumentation?.sampleRate ?? 1,
    },
    traffic: { percentage: rest.traffic?.percentage ?? 0, match: rest.traffic?.match ?? 'all', rules: rest.traffic?.rules ?? [] },
    endpointRows: Object.entries(endpoints ?? {}).map(([key, url]) => ({ key, url })),
  };
}

export function toDraft(view: ShadowConfigView): EditorDraft {
  return {
    shadows: (view.shadows ?? []).map(shadowToDraft),
    state: view.state ?? 'active',
    holdout: clone(view.holdout),
    guardrail: clone(view.guardrail),
  };
}

export function draftToShadow(d: ShadowDraft): ShadowConfig {
  const { endpointRows, ...rest } = clone(d);
  const endpoints: Record<string, string> = {};
  for (const r of endpointRows) if (r.key.trim()) endpoints[r.key.trim()] = r.url.trim();
  return { ...rest, traffic: { ...rest.traffic, rules: rest.traffic.rules.map(cleanRule) }, endpoints };
}

/** Only the value field that the op uses is sent. */
export function cleanRule(r: TrafficRule): TrafficRule {
  const k = valueKind(r.op);
  const out: TrafficRule = { attribute: r.attribute, op: r.op };
  if (k === 'values') out.values = (r.values ?? []).map((v) => v.trim()).filter(Boolean);
  else out[k] = r[k] ?? '';
  return out;
}

export function toPutBody(d: EditorDraft): PutShadowConfig {
  // No `schedule`: timer ramps are rollout plans now (edited in the Rollout tab, kept by a save here).
  const body: PutShadowConfig = { shadows: d.shadows.map(draftToShadow), state: d.state };
  if (d.holdout != null) body.holdout = clone(d.holdout);
  if (d.guardrail != null) body.guardrail = clone(d.guardrail);
  return body;
}

/** The PUT body that would re-save the loaded view unchanged: the "before" of the diff. */
export function viewToPutBody(view: ShadowConfigView): PutShadowConfig {
  return toPutBody(toDraft(view));
}

export function draftDiff(view: ShadowConfigView, d: EditorDraft): DiffEntry[] {
  return diffJson(viewToPutBody(view), toPutBody(d));
}

export function newShadow(existing: readonly { name: string }[]): ShadowDraft {
  let n = existing.length + 1;
  while (existing.some((s) => s.name === `shadow-${n}`)) n++;
  return {
    name: `shadow-${n}`,
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
    traffic: { percentage: 0, match: 'all', rules: [] },
    endpointRows: [],
  };
}

export function newRule(attribute = 'deviceType'): TrafficRule {
  return attribute === 'appVersion' ? { attribute, op: 'semver', range: '>=1.0.0' } : { attribute, op: 'in', values: [] };
}

/** Change the op and carry the value over to the field the new op uses. */
export function withOp(r: TrafficRule, op: RuleOp): TrafficRule {
  const from = valueKind(r.op), to = valueKind(op);
  if (from === to) return { ...r, op };
  const current = from === 'values' ? (r.values ?? []).join(', ') : (r[from] ?? '');
  const next: TrafficRule = { attribute: r.attribute, op };
  if (to === 'values') next.values = splitList(current);
  else next[to] = current;
  return next;
}

export function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Share left for the original when every shadow takes its percentage. */
export function originalShare(shadows: readonly { traffic: { percentage: number } }[]): number {
  return Math.max(0, 100 - shadows.reduce((a, s) => a + (Number(s.traffic.percentage) || 0), 0));
}

function isUrl(s: string): boolean {
  try { const u = new URL(s); return u.protocol === 'http:' || u.protocol === 'https:'; } catch { return false; }
}

/** Local checks before the PUT (the server re-validates; its 422 paths have the same shape). */
export function validateDraft(d: EditorDraft): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  d.shadows.forEach((s, i) => {
    const p = `shadows/${i}`;
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(s.name)) errs.push({ path: `${p}/name`, message: 'Use letters, digits, dot, dash or underscore (max 63)' });
    else if (s.name === 'original') errs.push({ path: `${p}/name`, message: '“original” is reserved' });
    else if (names.has(s.name)) errs.push({ path: `${p}/name`, message: 'Shadow names must be unique' });
    names.add(s.name);
    const pct = Number(s.traffic.percentage);
    if (!Number.isFinite(pct) || pct < 0 || pct > 100) errs.push({ path: `${p}/traffic/percentage`, message: 'Between 0 and 100' });
    const sr = Number(s.instrumentation.sampleRate);
    if (!Number.isFinite(sr) || sr < 0 || sr > 1) errs.push({ path: `${p}/instrumentation/sampleRate`, message: 'Between 0 and 1' });
    s.traffic.rules.forEach((r, j) => {
      const rp = `${p}/traffic/rules/${j}`;
      if (!r.attribute.trim()) errs.push({ path: `${rp}/attribute`, message: 'Name the attribute' });
      const k = valueKind(r.op);
      if (k === 'values' && (r.values ?? []).filter((v) => v.trim()).length === 0) errs.push({ path: `${rp}/values`, message: 'List at least one value' });
      if (k === 'value' && !(r.value ?? '').trim()) errs.push({ path: `${rp}/value`, message: 'Enter a value' });
      if (k === 'range' && !/^[\s\d.x*^~<>=|-]+$/i.test(r.range ?? '')) errs.push({ path: `${rp}/range`, message: 'Enter a semver range like >=1.2.0 <2' });
      if (k === 'pattern') {
        try { new RegExp(r.pattern ?? ''); if (!(r.pattern ?? '').trim()) throw new Error('empty'); } catch { errs.push({ path: `${rp}/pattern`, message: 'Not a valid regular expression' }); }
      }
    });
    const ids = new Set<string>();
    s.instrumentation.points.forEach((pt, j) => {
      const pp = `${p}/instrumentation/points/${j}`;
      if (!pt.id.trim()) errs.push({ path: `${pp}/id`, message: 'Give the point an id' });
      else if (ids.has(pt.id)) errs.push({ path: `${pp}/id`, message: 'Point ids must be unique' });
      ids.add(pt.id);
      if (!pt.selector.trim()) errs.push({ path: `${pp}/selector`, message: 'CSS selector required' });
      if (!pt.event.trim()) errs.push({ path: `${pp}/event`, message: 'Event required (e.g. click)' });
    });
    s.endpointRows.forEach((r, j) => {
      if (!r.key.trim() && !r.url.trim()) return;
      if (!r.key.trim()) errs.push({ path: `${p}/endpoints/${j}/key`, message: 'Key required' });
      if (!isUrl(r.url.trim())) errs.push({ path: `${p}/endpoints/${j}/url`, message: 'An http(s) URL' });
    });
  });
  const total = d.shadows.reduce((a, s) => a + (Number(s.traffic.percentage) || 0), 0);
  if (total > 100) errs.push({ path: 'shadows', message: `Shares add up to ${total}%; at most 100%` });
  return errs;
}

/** Messages for exactly this path (or, with `deep`, anything below it). */
export function errorsAt(errs: readonly FieldError[], path: string, deep = false): string[] {
  return errs.filter((e) => e.path === path || (deep && e.path.startsWith(path + '/'))).map((e) => e.message);
}

/** Endpoint row errors come back from the server keyed by endpoint key; map them to rows. */
export function serverErrorsToDraftPaths(errs: readonly FieldError[], d: EditorDraft): FieldError[] {
  return errs.map((e) => {
    const m = /^shadows\/(\d+)\/endpoints\/([^/]+)$/.exec(e.path);
    if (!m) return e;
    const row = d.shadows[Number(m[1])]?.endpointRows.findIndex((r) => r.key === decodeURIComponent(m[2])) ?? -1;
    return row >= 0 ? { ...e, path: `shadows/${m[1]}/endpoints/${row}/url` } : e;
  });
}

export function conflictMessage(c: ConflictInfo | undefined): string {
  if (!c) return 'Someone else changed this configuration since you loaded it.';
  const who = c.updatedBy ? `changed by ${c.updatedBy}` : 'changed by someone else';
  const when = c.updatedAt !== undefined ? ` at ${fmtTime(c.updatedAt)}` : '';
  const ver = c.profileVersion !== undefined ? ` (now profile version ${c.profileVersion})` : '';
  return `This configuration was ${who}${when}${ver}. Reload to see their change, then re-apply yours.`;
}

/**
 * Structural diff of two JSON values, for "what will change" before a save and the audit
 * log's before/after. Arrays of objects with a `name` (shadows) or `id` (points, rules with
 * ids) are matched by that key, so reordering or inserting one shadow does not show every
 * later one as changed; other arrays are compared by index.
 */
export type DiffKind = 'added' | 'removed' | 'changed';
export interface DiffEntry { path: (string | number)[]; kind: DiffKind; before?: unknown; after?: unknown }

function isObj(v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v); }

function uniqueKeyed(arr: unknown[], k: string): boolean {
  if (!arr.every((x) => isObj(x) && typeof x[k] === 'string')) return false;
  return new Set(arr.map((x) => (x as Record<string, unknown>)[k])).size === arr.length;
}
/** The identity key shared by both arrays of objects, if any (empty arrays adopt the other's). */
function commonKey(a: unknown[], b: unknown[]): 'name' | 'id' | null {
  if (a.length + b.length === 0) return null;
  for (const k of ['name', 'id'] as const) if (uniqueKeyed(a, k) && uniqueKeyed(b, k)) return k;
  return null;
}

export function diffJson(before: unknown, after: unknown, path: (string | number)[] = []): DiffEntry[] {
  if (before === undefined && after === undefined) return [];
  if (before === undefined) return [{ path, kind: 'added', after }];
  if (after === undefined) return [{ path, kind: 'removed', before }];
  if (Array.isArray(before) && Array.isArray(after)) {
    const k = commonKey(before, after);
    if (k) {
      const out: DiffEntry[] = [];
      const bm = new Map(before.map((x) => [(x as Record<string, string>)[k], x]));
      const am = new Map(after.map((x) => [(x as Record<string, string>)[k], x]));
      for (const [id, b] of bm) out.push(...diffJson(b, am.get(id), [...path, id]));
      for (const [id, a] of am) if (!bm.has(id)) out.push({ path: [...path, id], kind: 'added', after: a });
      return out;
    }
    const out: DiffEntry[] = [];
    const n = Math.max(before.length, after.length);
    for (let i = 0; i < n; i++) out.push(...diffJson(before[i], after[i], [...path, i]));
    return out;
  }
  if (isObj(before) && isObj(after)) {
    const out: DiffEntry[] = [];
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) out.push(...diffJson(before[key], after[key], [...path, key]));
    return out;
  }
  if (Object.is(before, after)) return [];
  if (before === null && after === null) return [];
  return [{ path, kind: 'changed', before, after }];
}

/** `shadows › checkout-v2 › traffic › percentage` (keys by name are readable as-is). */
export function formatPath(path: (string | number)[]): string {
  return path.length === 0 ? '(whole value)' : path.map((p) => (typeof p === 'number' ? `#${p + 1}` : p)).join(' › ');
}

export function formatValue(v: unknown): string {
  if (v === undefined) return '—';
  if (typeof v === 'string') return JSON.stringify(v);
  const s = JSON.stringify(v);
  return s.length > 120 ? s.slice(0, 117) + '…' : s;
}

/** One readable line per change: `traffic › percentage: 10 → 20`. */
export function describeDiff(entries: DiffEntry[]): string[] {
  return entries.map((e) => {
    const p = formatPath(e.path);
    if (e.kind === 'added') return `${p}: added ${formatValue(e.after)}`;
    if (e.kind === 'removed') return `${p}: removed (was ${formatValue(e.before)})`;
    return `${p}: ${formatValue(e.before)} → ${formatValue(e.after)}`;
  });
}

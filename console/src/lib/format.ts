/** Display formatting shared by all views (plain functions, no locale surprises in tests). */

const num = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmtNumber(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return digits === 2 ? num.format(n) : new Intl.NumberFormat('en-US', { maximumFractionDigits: digits }).format(n);
}
export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : int.format(n);
}
/** A rate in [0,1] as a percentage. */
export function fmtRate(r: number | null | undefined, digits = 2): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—';
  return `${(r * 100).toFixed(digits)}%`;
}
/** A share already in percent (0–100). */
export function fmtPercent(p: number | null | undefined, digits = 1): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  return `${Number(p.toFixed(digits))}%`;
}
/** A difference of two rates, in percentage points with a sign. */
export function fmtPp(d: number | null | undefined, digits = 2): string {
  if (d === null || d === undefined || !Number.isFinite(d)) return '—';
  const v = d * 100;
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(digits)} pp`;
}
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (Math.abs(ms) >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  if (Math.abs(ms) >= 100) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}
export function fmtSignedMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return `${ms > 0 ? '+' : ms < 0 ? '−' : '±'}${fmtMs(Math.abs(ms))}`;
}
export function fmtBytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return '—';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = b, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
/** p-values: "p < 0.001" below that, else 3 significant digits. */
export function fmtP(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return 'p = —';
  if (p < 0.001) return 'p < 0.001';
  return `p = ${Number(p.toPrecision(2))}`;
}
export function toMillis(t: number | string | null | undefined): number | null {
  if (t === null || t === undefined) return null;
  if (typeof t === 'number') return Number.isFinite(t) ? t : null;
  const n = Date.parse(t);
  return Number.isFinite(n) ? n : null;
}
function pad(n: number): string { return String(n).padStart(2, '0'); }
/** `2025-11-26 14:03:12` in local time (operators read logs side by side). */
export function fmtTime(t: number | string | null | undefined): string {
  const ms = toMillis(t);
  if (ms === null) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fmtClock(t: number | string | null | undefined): string {
  const ms = toMillis(t);
  if (ms === null) return '—';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fmtAgo(t: number | string | null | undefined, now: number = Date.now()): string {
  const ms = toMillis(t);
  if (ms === null) return '—';
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
export function shortSha(sha: string | null | undefined): string { return sha ? sha.slice(0, 12) : '—'; }
export function stateLabel(state: string): string { return state === 'rolled_back' ? 'Rolled back' : state === 'active' ? 'Active' : state; }

/**
 * Turns a server Comparison (a shadow vs its control arm) into badges and plain-language
 * sentences. The baseline is the control cohort drawn for the shadow — the original item,
 * instrumented like the shadow — never the untouched original.
 *
 * "Significant" means the ALWAYS-VALID 95 % interval (the server's sequential test) excludes 0:
 * it stays valid however often the dashboard is looked at, unlike a p < 0.05 re-tested on every
 * refresh. The server's verdicts are used when present; otherwise one is derived from
 * `significant` (or, for older servers, the p-value at α = 0.05) and the good direction (lower
 * latency / timings / error rate, higher conversion). Every field is optional: only what exists
 * is described.
 */
import type { Comparison, MeanTest, PropTest, Verdict } from './types.ts';
import { fmtMs, fmtNumber, fmtP, fmtPp, fmtSignedMs } from './format.ts';

export const ALPHA = 0.05;
export type Tone = 'good' | 'bad' | 'neutral' | 'warn';
export interface Badge { key: string; label: string; verdict: Verdict | 'srm' | 'ok' | 'none'; tone: Tone; text: string; sentence: string }

/** What "significant" means on this dashboard (shown next to the badges). */
export const SIGNIFICANCE_NOTE =
  'A result is called better or worse only when its always-valid 95 % interval excludes zero (a sequential test: watching it continuously does not inflate false alarms). The baseline is each shadow’s control arm.';

/** Web vitals the library reports as perf events, with their display names. */
export const WEB_VITALS: Record<string, string> = { lcp: 'LCP (largest contentful paint)', inp: 'INP (interaction to next paint)', cls: 'CLS (cumulative layout shift)' };
export const isUnitless = (perfName: string): boolean => perfName === 'cls';

function derive(t: { significant?: boolean; p?: number; diff?: number }, lowerIsBetter: boolean): Verdict {
  const { diff } = t;
  if (diff === undefined || !Number.isFinite(diff) || diff === 0) return 'inconclusive';
  const sig = t.significant ?? (t.p !== undefined && Number.isFinite(t.p) && t.p < ALPHA);
  if (!sig) return 'inconclusive';
  return (diff < 0) === lowerIsBetter ? 'better' : 'worse';
}
const toneOf = (v: Verdict): Tone => (v === 'better' ? 'good' : v === 'worse' ? 'bad' : 'neutral');
const verdictWord = (v: Verdict): string => (v === 'better' ? 'Better' : v === 'worse' ? 'Worse' : 'Inconclusive');

function ciText(ci: [number, number] | undefined, f: (x: number) => string): string {
  return ci && ci.length === 2 && Number.isFinite(ci[0]) && Number.isFinite(ci[1]) ? `, always-valid 95% CI ${f(ci[0])} to ${f(ci[1])}` : '';
}
const tail = (v: Verdict) => (v === 'inconclusive' ? ' — not enough evidence yet to call a difference.' : v === 'better' ? ' — a real improvement.' : ' — a real regression.');

function meanSentence(variant: string, what: string, t: MeanTest, v: Verdict, unitless: boolean): string {
  if (t.diff === undefined || !Number.isFinite(t.diff)) return `${variant}: no ${what} difference computed yet.`;
  const f = unitless ? (x: number) => `${x > 0 ? '+' : x < 0 ? '−' : '±'}${fmtNumber(Math.abs(x), 3)}` : fmtSignedMs;
  const size = unitless ? fmtNumber(Math.abs(t.diff), 3) : fmtMs(Math.abs(t.diff));
  const dir = unitless ? (t.diff > 0 ? 'higher' : 'lower') : t.diff > 0 ? 'slower' : 'faster';
  const head = t.diff === 0 ? `${variant} has the same mean ${what} as its control` : `${variant}'s mean ${what} is ${size} ${dir} than its control's`;
  return `${head} (${fmtP(t.p)}${ciText(t.ci, f)})${tail(v)}`;
}

function propSentence(variant: string, what: string, t: PropTest, v: Verdict): string {
  if (t.diff === undefined || !Number.isFinite(t.diff)) return `${variant}: no ${what} difference computed yet.`;
  const more = t.diff > 0 ? 'higher' : t.diff < 0 ? 'lower' : 'the same';
  const rel = t.relativeLift ?? t.lift;
  const lift = rel !== undefined && rel !== null && Number.isFinite(rel) && t.diff !== 0 ? ` (${rel > 0 ? '+' : '−'}${Math.abs(rel * 100).toFixed(1)}% relative)` : '';
  const head = t.diff === 0 ? `${variant} has the same ${what} as its control` : `${variant} has a ${what} ${fmtPp(Math.abs(t.diff)).replace(/^[+−±]/, '')} ${more} than its control${lift}`;
  return `${head} (${fmtP(t.p)}${ciText(t.ci, fmtPp)})${tail(v)}`;
}

/** Badges for one shadow, in a stable order: SRM first (it invalidates the rest). */
export function comparisonBadges(variant: string, c: Comparison | undefined | null): Badge[] {
  if (!c) return [];
  const out: Badge[] = [];
  if (c.srm && (c.srm.flagged !== undefined || c.srm.p !== undefined)) {
    const flagged = c.srm.flagged ?? (c.srm.p !== undefined && c.srm.p < 0.001);
    out.push(flagged
      ? { key: 'srm', label: 'SRM', verdict: 'srm', tone: 'warn', text: 'Sample ratio mismatch',
          sentence: `The traffic split for ${variant} does not match its configured share (${fmtP(c.srm.p)}), so the other results may be biased — check targeting and exposure logging before trusting them.` }
      : { key: 'srm', label: 'SRM', verdict: 'ok', tone: 'good', text: 'Split OK',
          sentence: `The observed traffic split for ${variant} matches its configured share (${fmtP(c.srm.p)}).` });
  }
  if (c.hasBaseline === false) {
    out.push({ key: 'baseline', label: 'Baseline', verdict: 'none', tone: 'warn', text: 'No baseline', sentence: c.noBaseline?.message ?? `No baseline for ${variant}: nothing is compared.` });
    return out;
  }
  if (c.latency) {
    const v = c.verdicts?.latency ?? c.latency.verdict ?? derive(c.latency, true);
    out.push({ key: 'latency', label: 'Latency', verdict: v, tone: toneOf(v), text: `Latency: ${verdictWord(v)}`, sentence: meanSentence(variant, 'request latency', c.latency, v, false) });
  }
  for (const [name, t] of Object.entries(c.perf ?? {})) {
    const v = c.verdicts?.[`perf:${name}`] ?? t.verdict ?? derive(t, true);
    const label = WEB_VITALS[name]?.split(' ')[0] ?? name;
    out.push({ key: `perf:${name}`, label, verdict: v, tone: toneOf(v), text: `${label}: ${verdictWord(v)}`, sentence: meanSentence(variant, WEB_VITALS[name] ?? `“${name}” timing`, t, v, isUnitless(name)) });
  }
  if (c.errorRate) {
    const v = c.verdicts?.errorRate ?? c.errorRate.verdict ?? derive(c.errorRate, true);
    out.push({ key: 'errorRate', label: 'Error rate', verdict: v, tone: toneOf(v), text: `Error rate: ${verdictWord(v)}`, sentence: propSentence(variant, 'error rate', c.errorRate, v) });
  }
  for (const [point, t] of Object.entries(c.conversions ?? {})) {
    const v = c.verdicts?.[`conversion:${point}`] ?? c.verdicts?.[point] ?? t.verdict ?? derive(t, false);
    out.push({ key: `conversion:${point}`, label: `Conversion ${point}`, verdict: v, tone: toneOf(v), text: `“${point}” conversion: ${verdictWord(v)}`, sentence: propSentence(variant, `“${point}” conversion`, t, v) });
  }
  return out;
}

/** Both arms' sizes in words: "control arm: 120 sessions · shadow: 118 sessions". */
export function armSizes(c: Comparison | undefined | null): string | null {
  if (!c?.sessions) return null;
  return `Baseline: control arm, ${c.sessions.control.toLocaleString('en-US')} sessions · shadow ${c.sessions.shadow.toLocaleString('en-US')} sessions`;
}

/** One headline for the shadow: the server's sentence, else the worst finding, else a summary. */
export function headline(variant: string, c: Comparison | undefined | null): string {
  if (!c) return `No comparison for ${variant} yet — waiting for enough traffic.`;
  if (c.sentence) return c.sentence;
  if (c.hasBaseline === false) return c.noBaseline?.message ?? `No baseline for ${variant}: nothing is compared.`;
  const badges = comparisonBadges(variant, c);
  const srm = badges.find((b) => b.verdict === 'srm');
  if (srm) return srm.sentence;
  const worse = badges.filter((b) => b.verdict === 'worse');
  if (worse.length > 0) return `${variant} is worse than its control on ${worse.map((b) => b.label.toLowerCase()).join(', ')}.`;
  const better = badges.filter((b) => b.verdict === 'better');
  if (better.length > 0) return `${variant} is better than its control on ${better.map((b) => b.label.toLowerCase()).join(', ')}, and no metric is worse.`;
  return badges.length > 0 ? `No significant difference between ${variant} and its control yet.` : `No comparison for ${variant} yet — waiting for enough traffic.`;
}

/**
 * Turns a server Comparison (shadow vs original) into badges and plain-language sentences.
 * Uses the server's verdicts when present; otherwise derives one from the p-value (α = 0.05)
 * and the direction that is good for the metric (lower latency / error rate, higher
 * conversion). Every field is optional: only what exists is described.
 */
import type { Comparison, MeanTest, PropTest, Verdict } from './types.ts';
import { fmtMs, fmtP, fmtPp, fmtSignedMs } from './format.ts';

export const ALPHA = 0.05;
export type Tone = 'good' | 'bad' | 'neutral' | 'warn';
export interface Badge { key: string; label: string; verdict: Verdict | 'srm' | 'ok'; tone: Tone; text: string; sentence: string }

function derive(p: number | undefined, diff: number | undefined, lowerIsBetter: boolean): Verdict {
  if (p === undefined || diff === undefined || !Number.isFinite(p) || !Number.isFinite(diff) || p >= ALPHA || diff === 0) return 'inconclusive';
  return (diff < 0) === lowerIsBetter ? 'better' : 'worse';
}
const toneOf = (v: Verdict): Tone => (v === 'better' ? 'good' : v === 'worse' ? 'bad' : 'neutral');
const verdictWord = (v: Verdict): string => (v === 'better' ? 'Better' : v === 'worse' ? 'Worse' : 'Inconclusive');

function ciText(ci: [number, number] | undefined, f: (x: number) => string): string {
  return ci && ci.length === 2 && Number.isFinite(ci[0]) && Number.isFinite(ci[1]) ? `, 95% CI ${f(ci[0])} to ${f(ci[1])}` : '';
}

function latencySentence(variant: string, t: MeanTest, v: Verdict): string {
  if (t.diff === undefined) return `${variant}: no latency difference computed yet.`;
  const dir = t.diff > 0 ? 'slower' : t.diff < 0 ? 'faster' : 'as fast as';
  const head = t.diff === 0 ? `${variant} is as fast as the original` : `${variant} is ${fmtMs(Math.abs(t.diff))} ${dir} than the original on average`;
  const tail = v === 'inconclusive' ? ' — not enough evidence yet to call a difference.' : v === 'better' ? ' — a real improvement.' : ' — a real regression.';
  return `${head} (${fmtP(t.p)}${ciText(t.ci, fmtSignedMs)})${tail}`;
}

function propSentence(variant: string, what: string, t: PropTest, v: Verdict): string {
  if (t.diff === undefined) return `${variant}: no ${what} difference computed yet.`;
  const more = t.diff > 0 ? 'higher' : t.diff < 0 ? 'lower' : 'the same';
  const lift = t.lift !== undefined && Number.isFinite(t.lift) && t.diff !== 0 ? ` (${t.lift > 0 ? '+' : '−'}${Math.abs(t.lift * 100).toFixed(1)}% relative)` : '';
  const head = t.diff === 0 ? `${variant} has the same ${what} as the original` : `${variant} has a ${what} ${fmtPp(Math.abs(t.diff)).replace(/^[+−±]/, '')} ${more} than the original${lift}`;
  const tail = v === 'inconclusive' ? ' — not enough evidence yet to call a difference.' : v === 'better' ? ' — a real improvement.' : ' — a real regression.';
  return `${head} (${fmtP(t.p)}${ciText(t.ci, fmtPp)})${tail}`;
}

/** Badges for one shadow variant, in a stable order: SRM first (it invalidates the rest). */
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
  if (c.latency) {
    const v = c.verdicts?.latency ?? derive(c.latency.p, c.latency.diff, true);
    out.push({ key: 'latency', label: 'Latency', verdict: v, tone: toneOf(v), text: `Latency: ${verdictWord(v)}`, sentence: latencySentence(variant, c.latency, v) });
  }
  if (c.errorRate) {
    const v = c.verdicts?.errorRate ?? derive(c.errorRate.p, c.errorRate.diff, true);
    out.push({ key: 'errorRate', label: 'Error rate', verdict: v, tone: toneOf(v), text: `Error rate: ${verdictWord(v)}`, sentence: propSentence(variant, 'error rate', c.errorRate, v) });
  }
  for (const [point, t] of Object.entries(c.conversions ?? {})) {
    const v = c.verdicts?.[`conversion:${point}`] ?? c.verdicts?.[point] ?? derive(t.p, t.diff, false);
    out.push({ key: `conversion:${point}`, label: `Conversion ${point}`, verdict: v, tone: toneOf(v), text: `“${point}” conversion: ${verdictWord(v)}`, sentence: propSentence(variant, `“${point}” conversion`, t, v) });
  }
  return out;
}

/** One headline for the variant: the server's sentence, else the worst finding, else a summary. */
export function headline(variant: string, c: Comparison | undefined | null): string {
  if (!c) return `No comparison for ${variant} yet — waiting for enough traffic.`;
  if (c.sentence) return c.sentence;
  const badges = comparisonBadges(variant, c);
  const srm = badges.find((b) => b.verdict === 'srm');
  if (srm) return srm.sentence;
  const worse = badges.filter((b) => b.verdict === 'worse');
  if (worse.length > 0) return `${variant} is worse than the original on ${worse.map((b) => b.label.toLowerCase()).join(', ')}.`;
  const better = badges.filter((b) => b.verdict === 'better');
  if (better.length > 0) return `${variant} is better than the original on ${better.map((b) => b.label.toLowerCase()).join(', ')}, and no metric is worse.`;
  return badges.length > 0 ? `No significant difference between ${variant} and the original yet.` : `No comparison for ${variant} yet — waiting for enough traffic.`;
}

/**
 * Shadow vs original on cumulative totals: Welch's t-test on request latency, two-proportion
 * z-tests on the session error rate and on each usage point's conversion rate, a verdict per
 * metric and one plain-language sentence for the console.
 *
 * Verdict rule (per metric): `inconclusive` unless the test is valid and p < ALPHA; then the
 * direction decides — lower latency / error rate is `better`, higher conversion is `better`.
 * Latency is compared on the MEAN: the cumulative aggregate keeps count/sum/sumSq (mergeable),
 * which supports a t-test; exact cumulative percentiles would need every value.
 */
import { cumulativeTotals, type CumulativeAggregate, type VariantTotals } from '../windows/cumulative.ts';
import { summaryFromSums, twoProportionZTest, welchTTest, type WelchResult, type ZResult } from './hypothesis.ts';

/** Significance level of the verdicts. */
export const ALPHA = 0.05;

export type Verdict = 'better' | 'worse' | 'inconclusive';

export interface Comparison {
  itemId: string;
  original: string;
  shadow: string;
  /** Welch test of shadow − original mean latency (ms). */
  latency: WelchResult;
  /** z-test of shadow − original share of sessions with ≥ 1 error. */
  errorRate: ZResult;
  /** Per usage point: z-test of shadow − original share of sessions that hit it. */
  conversions: Record<string, ZResult>;
  verdict: { latency: Verdict; errorRate: Verdict; conversions: Record<string, Verdict> };
  sentence: string;
}

function verdictOf(valid: boolean, p: number, diff: number, higherIsBetter: boolean): Verdict {
  if (!valid || !(p < ALPHA) || diff === 0) return 'inconclusive';
  return diff > 0 === higherIsBetter ? 'better' : 'worse';
}

const isAggregate = (x: CumulativeAggregate | VariantTotals): x is CumulativeAggregate => x.sessions instanceof Map;

function pct(rel: number): string {
  const v = Math.round(rel * 1000) / 10;
  return `${v >= 0 ? '+' : ''}${v}%`;
}

function fmtP(p: number): string {
  return p < 0.001 ? 'p<0.001' : `p=${p.toFixed(3)}`;
}

function pp(diff: number): string {
  const v = Math.round(diff * 1000) / 10;
  return `${v >= 0 ? '+' : ''}${v} pp`;
}

export function compareVariants(
  originalIn: CumulativeAggregate | VariantTotals,
  shadowIn: CumulativeAggregate | VariantTotals,
): Comparison {
  const original = isAggregate(originalIn) ? cumulativeTotals(originalIn) : originalIn;
  const shadow = isAggregate(shadowIn) ? cumulativeTotals(shadowIn) : shadowIn;

  const latency = welchTTest(
    summaryFromSums(shadow.latency.count, shadow.latency.sum, shadow.latency.sumSq),
    summaryFromSums(original.latency.count, original.latency.sum, original.latency.sumSq),
  );
  const errorRate = twoProportionZTest(shadow.errorSessions, shadow.sessions, original.errorSessions, original.sessions);
  const points = [...new Set([...Object.keys(original.conversions), ...Object.keys(shadow.conversions)])].sort();
  const conversions: Record<string, ZResult> = Object.fromEntries(
    points.map((pt) => [pt, twoProportionZTest(shadow.conversions[pt] ?? 0, shadow.sessions, original.conversions[pt] ?? 0, original.sessions)]),
  );
  const verdict = {
    latency: verdictOf(latency.valid, latency.p, latency.diff, false),
    errorRate: verdictOf(errorRate.valid, errorRate.p, errorRate.diff, false),
    conversions: Object.fromEntries(points.map((pt) => [pt, verdictOf(conversions[pt].valid, conversions[pt].p, conversions[pt].diff, true)])) as Record<
      string,
      Verdict
    >,
  };

  const findings: string[] = [];
  if (verdict.latency !== 'inconclusive') {
    findings.push(`${verdict.latency === 'worse' ? 'slower' : 'faster'}: mean latency ${pct(latency.relativeDiff)} (${fmtP(latency.p)})`);
  }
  if (verdict.errorRate !== 'inconclusive') {
    findings.push(`${verdict.errorRate === 'worse' ? 'more' : 'fewer'} error sessions: ${pp(errorRate.diff)} (${fmtP(errorRate.p)})`);
  }
  for (const pt of points) {
    const v = verdict.conversions[pt];
    if (v !== 'inconclusive') {
      findings.push(`${v === 'better' ? 'more' : 'fewer'} "${pt}" conversions: ${pp(conversions[pt].diff)} (${fmtP(conversions[pt].p)})`);
    }
  }
  const sentence =
    findings.length > 0
      ? `Shadow ${shadow.variant} vs ${original.variant}: ${findings.join('; ')}.`
      : `No significant difference yet between shadow ${shadow.variant} and ${original.variant} ` +
        `(${shadow.sessions} vs ${original.sessions} sessions).`;

  return { itemId: shadow.itemId, original: original.variant, shadow: shadow.variant, latency, errorRate, conversions, verdict, sentence };
}

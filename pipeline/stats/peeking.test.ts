/**
 * A/A simulation with continuous peeking (generated data, seeded): why the live verdicts use the
 * sequential method. In every replication both arms draw from the SAME distribution, the data
 * arrive in small batches and the comparison is looked at after every batch — as an operator
 * watching the dashboard does. A replication is a false positive if ANY look called a difference.
 *
 * - fixed-horizon tests (Welch / two-proportion z at p < 0.05) re-tested at every look exceed the
 *   nominal 5 % many times over (the well-known peeking problem);
 * - the always-valid sequence (sequential.ts) stays at or below 5 %.
 *
 * Workload: 1,000 replications per metric, 100 looks of 25 new observations per arm (2,500 per
 * arm at the end); latency ~ log-normal(median 200 ms, σ 0.5), error sessions ~ Bernoulli(0.05).
 * The measured rates are printed (and quoted in pipeline/stats/README.md).
 */
import { Prng } from '../simulator/prng.ts';
import { summaryFromSums, twoProportionZTest, welchPValue } from './hypothesis.ts';
import { sequentialMeanDiff, sequentialProportionDiff, SEQUENTIAL_ALPHA } from './sequential.ts';

const REPLICATIONS = 1000;
const LOOKS = 100;
const BATCH = 25;

interface Rates {
  fixed: number;
  sequential: number;
}

function aaMeans(seed: string): Rates {
  const prng = new Prng(seed);
  let fixedHits = 0;
  let seqHits = 0;
  for (let r = 0; r < REPLICATIONS; r++) {
    const arms = [{ n: 0, sum: 0, sumSq: 0 }, { n: 0, sum: 0, sumSq: 0 }];
    let fixedHit = false;
    let seqHit = false;
    for (let look = 0; look < LOOKS; look++) {
      for (const a of arms) {
        for (let i = 0; i < BATCH; i++) {
          const x = prng.logNormal(200, 0.5);
          a.n++;
          a.sum += x;
          a.sumSq += x * x;
        }
      }
      const s = summaryFromSums(arms[0].n, arms[0].sum, arms[0].sumSq);
      const c = summaryFromSums(arms[1].n, arms[1].sum, arms[1].sumSq);
      if (!fixedHit && welchPValue(s, c).p < SEQUENTIAL_ALPHA) fixedHit = true;
      if (!seqHit && sequentialMeanDiff(s, c).significant) seqHit = true;
    }
    if (fixedHit) fixedHits++;
    if (seqHit) seqHits++;
  }
  return { fixed: fixedHits / REPLICATIONS, sequential: seqHits / REPLICATIONS };
}

function aaProportions(seed: string): Rates {
  const prng = new Prng(seed);
  let fixedHits = 0;
  let seqHits = 0;
  for (let r = 0; r < REPLICATIONS; r++) {
    const x = [0, 0];
    let n = 0;
    let fixedHit = false;
    let seqHit = false;
    for (let look = 0; look < LOOKS; look++) {
      for (let i = 0; i < BATCH; i++) {
        if (prng.bernoulli(0.05)) x[0]++;
        if (prng.bernoulli(0.05)) x[1]++;
      }
      n += BATCH;
      if (!fixedHit && twoProportionZTest(x[0], n, x[1], n).p < SEQUENTIAL_ALPHA) fixedHit = true;
      if (!seqHit && sequentialProportionDiff(x[0], n, x[1], n).significant) seqHit = true;
    }
    if (fixedHit) fixedHits++;
    if (seqHit) seqHits++;
  }
  return { fixed: fixedHits / REPLICATIONS, sequential: seqHits / REPLICATIONS };
}

describe('A/A with continuous peeking (1,000 seeded replications, generated data)', () => {
  test('difference in means (latency): sequential ≤ α, fixed-horizon Welch exceeds it', () => {
    const r = aaMeans('aa-peeking-latency');
    console.log(`A/A latency, ${REPLICATIONS} replications × ${LOOKS} looks: false-positive rate fixed-horizon ${r.fixed}, sequential ${r.sequential} (α = ${SEQUENTIAL_ALPHA})`);
    expect(r.sequential).toBeLessThanOrEqual(SEQUENTIAL_ALPHA);
    expect(r.fixed).toBeGreaterThan(SEQUENTIAL_ALPHA);
  });

  test('difference in proportions (error rate): sequential ≤ α, fixed-horizon z-test exceeds it', () => {
    const r = aaProportions('aa-peeking-errors');
    console.log(`A/A error rate, ${REPLICATIONS} replications × ${LOOKS} looks: false-positive rate fixed-horizon ${r.fixed}, sequential ${r.sequential} (α = ${SEQUENTIAL_ALPHA})`);
    expect(r.sequential).toBeLessThanOrEqual(SEQUENTIAL_ALPHA);
    expect(r.fixed).toBeGreaterThan(SEQUENTIAL_ALPHA);
  });
});

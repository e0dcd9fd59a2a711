/**
 * Holm's step-down correction (Holm 1979), pure. Given m p-values, sort them ascending
 * p(1) ≤ … ≤ p(m); the adjusted value of the k-th is max_{j ≤ k} min(1, (m − j + 1)·p(j)), and a
 * hypothesis is rejected when its adjusted p-value is at most α (Holm's p(k) ≤ α/(m − k + 1)). This controls the family-wise
 * error rate — the chance of ANY false "regression here" among all segments × metrics — at α
 * under any dependence between the tests (segments overlap: a user is in several), which is
 * why it is used rather than Benjamini–Hochberg (FDR, and only under independence or positive
 * dependence). Fed with always-valid p-values it keeps that guarantee at any stopping time,
 * because each always-valid p-value is a valid p-value whenever it is read.
 *
 * NaN p-values (a cell without enough data) are not tests: they get NaN and do not count in m.
 * Golden values: golden/holm.json from statsmodels' multipletests(method="holm").
 */
export interface HolmResult {
  adjusted: number[];
  reject: boolean[];
  /** Tests that counted (finite p-values). */
  m: number;
}

export function holm(pValues: readonly number[], alpha = 0.05): HolmResult {
  const idx = pValues.map((p, i) => [p, i] as const).filter(([p]) => Number.isFinite(p));
  idx.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const m = idx.length;
  const adjusted = pValues.map(() => Number.NaN);
  let running = 0;
  for (let k = 0; k < m; k++) {
    const [p, i] = idx[k];
    running = Math.max(running, Math.min(1, (m - k) * p));
    adjusted[i] = running;
  }
  return { adjusted, reject: adjusted.map((a) => Number.isFinite(a) && a <= alpha), m };
}

"""The pipeline's statistics, for notebooks — same definitions as pipeline/stats/README.md.

Every function mirrors its TypeScript twin in pipeline/stats (hypothesis.ts, compare.ts) line by
line, with scipy for the distributions (the TypeScript side is pinned against scipy to 1e-9 by
pipeline/stats/golden). test/notebooks.int.test.ts checks the notebooks' results against the
TypeScript functions on the same sums.

Conventions (README): ``diff`` is FIRST minus SECOND (the shadow is passed first); p-values are
two-sided; intervals are 95 %; not computable → ``valid: False`` and NaN.
"""
from __future__ import annotations

import math

from scipy import stats as _st

CONFIDENCE = 0.95
ALPHA = 0.05
SRM_P_THRESHOLD = 0.001
NAN = float("nan")


def summary_from_sums(n: int, total: float, sum_sq: float) -> dict:
    """mean = sum/n, variance = max(0, (sumSq − n·mean²)/(n − 1)); NaN variance below 2 values."""
    if n == 0:
        return {"n": 0, "mean": NAN, "variance": NAN}
    mean = total / n
    variance = max(0.0, (sum_sq - n * mean * mean) / (n - 1)) if n > 1 else NAN
    return {"n": n, "mean": mean, "variance": variance}


def welch_t_test(a: dict, b: dict) -> dict:
    """Welch's t-test of mean(a) − mean(b) on summaries {n, mean, variance}."""
    diff = a["mean"] - b["mean"]
    relative = NAN if b["mean"] == 0 else diff / b["mean"]
    if not (a["n"] >= 2 and b["n"] >= 2) or not math.isfinite(a["variance"]) or not math.isfinite(b["variance"]):
        return {"valid": False, "t": NAN, "df": NAN, "p": NAN, "diff": diff if a["n"] > 0 and b["n"] > 0 else NAN,
                "ci": [NAN, NAN], "se": NAN, "relativeDiff": relative}
    va = a["variance"] / a["n"]
    vb = b["variance"] / b["n"]
    se2 = va + vb
    if se2 == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return {"valid": True, "t": t, "df": a["n"] + b["n"] - 2, "p": 1.0 if diff == 0 else 0.0, "diff": diff,
                "ci": [diff, diff], "se": 0.0, "relativeDiff": relative}
    se = math.sqrt(se2)
    t = diff / se
    df = (se2 * se2) / ((va * va) / (a["n"] - 1) + (vb * vb) / (b["n"] - 1))
    p = float(2 * _st.t.sf(abs(t), df))
    crit = float(_st.t.ppf(1 - (1 - CONFIDENCE) / 2, df))
    return {"valid": True, "t": t, "df": df, "p": p, "diff": diff, "ci": [diff - crit * se, diff + crit * se],
            "se": se, "relativeDiff": relative}


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> dict:
    """z-test of x1/n1 − x2/n2 (pooled z, unpooled Wald CI)."""
    if not (n1 > 0 and n2 > 0) or x1 < 0 or x2 < 0 or x1 > n1 or x2 > n2:
        return {"valid": False, "z": NAN, "p": NAN, "diff": NAN, "ci": [NAN, NAN],
                "p1": x1 / n1 if n1 > 0 else NAN, "p2": x2 / n2 if n2 > 0 else NAN, "relativeLift": NAN}
    p1 = x1 / n1
    p2 = x2 / n2
    diff = p1 - p2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = 0.0 if se0 == 0 else diff / se0
    p = 1.0 if se0 == 0 else float(2 * _st.norm.sf(abs(z)))
    crit = float(_st.norm.ppf(1 - (1 - CONFIDENCE) / 2))
    se_w = math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2)
    return {"valid": True, "z": z, "p": p, "diff": diff, "ci": [diff - crit * se_w, diff + crit * se_w],
            "p1": p1, "p2": p2, "relativeLift": NAN if p2 == 0 else diff / p2}


def srm_chi_square(observed: dict, expected_shares: dict) -> dict:
    """Pearson χ² of observed counts against shares (normalised); flagged at p < 0.001."""
    variants = sorted(set(expected_shares) | set(observed))
    share_total = sum(max(0.0, expected_shares.get(v, 0)) for v in variants)
    total = sum(observed.get(v, 0) for v in variants)
    expected = {}
    chi = 0.0
    k = 0
    for v in variants:
        share = max(0.0, expected_shares.get(v, 0)) / share_total if share_total > 0 else 0.0
        e = total * share
        o = observed.get(v, 0)
        expected[v] = e
        if share > 0:
            k += 1
            if e > 0:
                chi += ((o - e) * (o - e)) / e
        elif o > 0:
            chi = math.inf
    df = max(k - 1, 0)
    if total == 0 or (df == 0 and chi != math.inf):
        return {"chiSquare": 0.0, "df": df, "p": 1.0, "mismatch": False, "total": total, "expected": expected}
    p = 0.0 if chi == math.inf else float(_st.chi2.sf(chi, df))
    return {"chiSquare": chi, "df": df, "p": p, "mismatch": p < SRM_P_THRESHOLD, "total": total, "expected": expected}


def verdict_of(valid: bool, p: float, diff: float, higher_is_better: bool) -> str:
    if not valid or not (p < ALPHA) or diff == 0:
        return "inconclusive"
    return "better" if (diff > 0) == higher_is_better else "worse"


def _pct(rel: float) -> str:
    v = _js_round(rel * 1000) / 10
    return f"{'+' if v >= 0 else ''}{_num(v)}%"


def _pp(diff: float) -> str:
    v = _js_round(diff * 1000) / 10
    return f"{'+' if v >= 0 else ''}{_num(v)} pp"


def _fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _js_round(x: float) -> int:
    return math.floor(x + 0.5)  # Math.round: halves up


def _num(v: float) -> str:
    return str(int(v)) if v == int(v) else str(v)


def compare_variants(original: dict, shadow: dict) -> dict:
    """Shadow vs original on cumulative totals, as pipeline/stats/compare.ts.

    Totals: {variant, sessions, errorSessions, latency: {count, sum, sumSq}, conversions: {point: sessions}}.
    """
    latency = welch_t_test(
        summary_from_sums(shadow["latency"]["count"], shadow["latency"]["sum"], shadow["latency"]["sumSq"]),
        summary_from_sums(original["latency"]["count"], original["latency"]["sum"], original["latency"]["sumSq"]),
    )
    error_rate = two_proportion_z_test(shadow["errorSessions"], shadow["sessions"], original["errorSessions"], original["sessions"])
    points = sorted(set(original["conversions"]) | set(shadow["conversions"]))
    conversions = {pt: two_proportion_z_test(shadow["conversions"].get(pt, 0), shadow["sessions"],
                                             original["conversions"].get(pt, 0), original["sessions"]) for pt in points}
    verdict = {
        "latency": verdict_of(latency["valid"], latency["p"], latency["diff"], False),
        "errorRate": verdict_of(error_rate["valid"], error_rate["p"], error_rate["diff"], False),
        "conversions": {pt: verdict_of(c["valid"], c["p"], c["diff"], True) for pt, c in conversions.items()},
    }
    findings = []
    if verdict["latency"] != "inconclusive":
        findings.append(f"{'slower' if verdict['latency'] == 'worse' else 'faster'}: mean latency {_pct(latency['relativeDiff'])} ({_fmt_p(latency['p'])})")
    if verdict["errorRate"] != "inconclusive":
        findings.append(f"{'more' if verdict['errorRate'] == 'worse' else 'fewer'} error sessions: {_pp(error_rate['diff'])} ({_fmt_p(error_rate['p'])})")
    for pt in points:
        v = verdict["conversions"][pt]
        if v != "inconclusive":
            findings.append(f"{'more' if v == 'better' else 'fewer'} \"{pt}\" conversions: {_pp(conversions[pt]['diff'])} ({_fmt_p(conversions[pt]['p'])})")
    if findings:
        sentence = f"Shadow {shadow['variant']} vs {original['variant']}: {'; '.join(findings)}."
    else:
        sentence = (f"No significant difference yet between shadow {shadow['variant']} and {original['variant']} "
                    f"({shadow['sessions']} vs {original['sessions']} sessions).")
    return {"original": original["variant"], "shadow": shadow["variant"], "latency": latency, "errorRate": error_rate,
            "conversions": conversions, "verdict": verdict, "sentence": sentence}


# ---- per-variant intervals (descriptive; the tests above compare variants) --------------------

def mean_ci(n: int, mean: float, variance: float) -> list:
    """95 % t interval of a mean: mean ± t_{0.975, n−1} · sqrt(variance / n)."""
    if n < 2 or not math.isfinite(variance):
        return [NAN, NAN]
    half = float(_st.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1)) * math.sqrt(variance / n)
    return [mean - half, mean + half]


def wilson_ci(x: int, n: int) -> list:
    """95 % Wilson score interval of a proportion x/n (sensible at small rates, unlike Wald)."""
    if n == 0:
        return [NAN, NAN]
    z = float(_st.norm.ppf(1 - (1 - CONFIDENCE) / 2))
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [centre - half, centre + half]


def jsonable(x):
    """NaN → None and ±inf → "Infinity"/"-Infinity" (JSON has neither), recursively."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()  # numpy scalars
        except (AttributeError, ValueError):
            pass
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
    return x

"""The pipeline's statistics, for notebooks — same definitions as pipeline/stats/README.md.

Every function mirrors its TypeScript twin in pipeline/stats (hypothesis.ts, compare.ts) line by
line, with scipy for the distributions (the TypeScript side is pinned against scipy to 1e-9 by
pipeline/stats/golden). test/notebooks.int.test.ts checks the notebooks' results against the
TypeScript functions on the same sums.

Conventions (README): ``diff`` is FIRST minus SECOND (the shadow is passed first); p-values are
two-sided; intervals are 95 %; not computable → ``valid: False`` and NaN. The baseline of every
comparison is the shadow's control arm; its verdicts come from the always-valid sequence (safe to
look at any time), the fixed-horizon tests are kept beside them (``fixed``).
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
    """Fixed-horizon verdict (p < 0.05) — what the notebooks reported before the live verdicts
    became sequential; kept for readouts at a horizon fixed in advance."""
    if not valid or not (p < ALPHA) or diff == 0:
        return "inconclusive"
    return "better" if (diff > 0) == higher_is_better else "worse"


# ---- always-valid (sequential) comparisons: pipeline/stats/sequential.ts ----------------------
# Gaussian-mixture asymptotic confidence sequence (Waudby-Smith et al. 2024, Thm 2.2): with N
# observations in both arms, diff ± se · c_N, c_N = sqrt(2(Nρ²+1)/(Nρ²) · ln(sqrt(Nρ²+1)/α)),
# ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*; always-valid p = min(1, sqrt(1+Nρ²)·exp(−z²/2 · Nρ²/(1+Nρ²))).

SEQUENTIAL_ALPHA = 0.05
DEFAULT_SEQUENTIAL_TUNING = 5000
SEQUENTIAL_MIN_PER_ARM = 30


def rho_squared(tuning: float, alpha: float) -> float:
    l = -2 * math.log(alpha)
    return (l + math.log(l + 1)) / tuning


def sequential_multiplier(n: float, tuning: float, alpha: float) -> float:
    nr = n * rho_squared(tuning, alpha)
    return math.sqrt(((2 * (nr + 1)) / nr) * math.log(math.sqrt(nr + 1) / alpha))


def sequential_p(z: float, n: float, tuning: float, alpha: float) -> float:
    nr = n * rho_squared(tuning, alpha)
    return min(1.0, math.exp(0.5 * math.log1p(nr) - ((z * z) / 2) * (nr / (1 + nr))))


def _seq_invalid(diff, n, alpha, tuning):
    return {"valid": False, "diff": diff, "ci": [NAN, NAN], "halfWidth": NAN, "p": NAN, "significant": False,
            "se": NAN, "n": n, "alpha": alpha, "tuning": tuning}


def sequential_from_estimate(diff: float, se: float, n: float, alpha: float = SEQUENTIAL_ALPHA, tuning: float = DEFAULT_SEQUENTIAL_TUNING) -> dict:
    if not math.isfinite(diff) or not math.isfinite(se) or se < 0 or not n > 0:
        return _seq_invalid(diff, n, alpha, tuning)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return {"valid": True, "diff": diff, "ci": [diff, diff], "halfWidth": 0.0, "p": p, "significant": p < alpha,
                "se": se, "n": n, "alpha": alpha, "tuning": tuning}
    hw = se * sequential_multiplier(n, tuning, alpha)
    p = sequential_p(diff / se, n, tuning, alpha)
    return {"valid": True, "diff": diff, "ci": [diff - hw, diff + hw], "halfWidth": hw, "p": p, "significant": p < alpha,
            "se": se, "n": n, "alpha": alpha, "tuning": tuning}


def sequential_mean_diff(a: dict, b: dict, alpha: float = SEQUENTIAL_ALPHA, tuning: float = DEFAULT_SEQUENTIAL_TUNING,
                         min_per_arm: int = SEQUENTIAL_MIN_PER_ARM) -> dict:
    m = max(2, min_per_arm)
    diff = a["mean"] - b["mean"] if a["n"] > 0 and b["n"] > 0 else NAN
    if not (a["n"] >= m and b["n"] >= m) or not math.isfinite(a["variance"]) or not math.isfinite(b["variance"]):
        return _seq_invalid(diff, a["n"] + b["n"], alpha, tuning)
    return sequential_from_estimate(diff, math.sqrt(a["variance"] / a["n"] + b["variance"] / b["n"]), a["n"] + b["n"], alpha, tuning)


def sequential_proportion_diff(x1: int, n1: int, x2: int, n2: int, alpha: float = SEQUENTIAL_ALPHA,
                               tuning: float = DEFAULT_SEQUENTIAL_TUNING, min_per_arm: int = SEQUENTIAL_MIN_PER_ARM) -> dict:
    m = max(1, min_per_arm)
    p1 = x1 / n1 if n1 > 0 else NAN
    p2 = x2 / n2 if n2 > 0 else NAN
    if not (n1 >= m and n2 >= m) or x1 < 0 or x2 < 0 or x1 > n1 or x2 > n2:
        return _seq_invalid(p1 - p2, n1 + n2, alpha, tuning)
    return sequential_from_estimate(p1 - p2, math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2), n1 + n2, alpha, tuning)


def _seq_verdict(significant: bool, diff: float, higher_is_better: bool) -> str:
    if not significant or not math.isfinite(diff) or diff == 0:
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


def _compare_means(shadow: dict, control: dict, higher_is_better: bool, alpha: float, tuning: float) -> dict:
    s = summary_from_sums(shadow["count"], shadow["sum"], shadow["sumSq"])
    c = summary_from_sums(control["count"], control["sum"], control["sumSq"])
    seq = sequential_mean_diff(s, c, alpha, tuning)
    fixed = welch_t_test(s, c)
    return {"valid": seq["valid"], "diff": seq["diff"],
            "relativeDiff": NAN if c["mean"] == 0 or c["n"] == 0 else seq["diff"] / c["mean"],
            "ci": seq["ci"], "p": seq["p"], "significant": seq["significant"],
            "verdict": _seq_verdict(seq["significant"], seq["diff"], higher_is_better),
            "shadow": {"n": s["n"], "mean": s["mean"]}, "control": {"n": c["n"], "mean": c["mean"]},
            "sequential": seq, "fixed": fixed}


def _compare_rates(x1: int, n1: int, x2: int, n2: int, higher_is_better: bool, alpha: float, tuning: float) -> dict:
    seq = sequential_proportion_diff(x1, n1, x2, n2, alpha, tuning)
    fixed = two_proportion_z_test(x1, n1, x2, n2)
    p1 = x1 / n1 if n1 > 0 else NAN
    p2 = x2 / n2 if n2 > 0 else NAN
    return {"valid": seq["valid"], "diff": seq["diff"],
            "relativeLift": NAN if p2 == 0 or math.isnan(p2) else (p1 - p2) / p2,
            "ci": seq["ci"], "p": seq["p"], "significant": seq["significant"],
            "verdict": _seq_verdict(seq["significant"], seq["diff"], higher_is_better),
            "shadow": {"n": n1, "x": x1, "rate": p1}, "control": {"n": n2, "x": x2, "rate": p2},
            "sequential": seq, "fixed": fixed}


def compare_variants(control: dict, shadow: dict, alpha: float = SEQUENTIAL_ALPHA, tuning: float = DEFAULT_SEQUENTIAL_TUNING) -> dict:
    """Shadow vs its control arm on cumulative totals, as pipeline/stats/compare.ts: always-valid
    sequential intervals decide the verdicts, the fixed-horizon tests sit beside them.

    Totals: {variant, sessions, errorSessions, latency: {count, sum, sumSq}, perf: {name: {count, sum, sumSq}},
    conversions: {point: sessions}}.
    """
    latency = _compare_means(shadow["latency"], control["latency"], False, alpha, tuning)
    error_rate = _compare_rates(shadow["errorSessions"], shadow["sessions"], control["errorSessions"], control["sessions"], False, alpha, tuning)
    points = sorted(set(control["conversions"]) | set(shadow["conversions"]))
    conversions = {pt: _compare_rates(shadow["conversions"].get(pt, 0), shadow["sessions"],
                                      control["conversions"].get(pt, 0), control["sessions"], True, alpha, tuning) for pt in points}
    s_perf = shadow.get("perf") or {}
    c_perf = control.get("perf") or {}
    names = sorted(n for n in s_perf if n in c_perf)
    perf = {n: _compare_means(s_perf[n], c_perf[n], False, alpha, tuning) for n in names}
    verdict = {
        "latency": latency["verdict"], "errorRate": error_rate["verdict"],
        "conversions": {pt: conversions[pt]["verdict"] for pt in points},
        "perf": {n: perf[n]["verdict"] for n in names},
    }
    findings = []
    if latency["verdict"] != "inconclusive":
        findings.append(f"{'slower' if latency['verdict'] == 'worse' else 'faster'}: mean latency {_pct(latency['relativeDiff'])} ({_fmt_p(latency['p'])})")
    for n in names:
        m = perf[n]
        if m["verdict"] != "inconclusive":
            findings.append(f"{'worse' if m['verdict'] == 'worse' else 'better'} {n}: mean {_pct(m['relativeDiff'])} ({_fmt_p(m['p'])})")
    if error_rate["verdict"] != "inconclusive":
        findings.append(f"{'more' if error_rate['verdict'] == 'worse' else 'fewer'} error sessions: {_pp(error_rate['diff'])} ({_fmt_p(error_rate['p'])})")
    for pt in points:
        v = conversions[pt]["verdict"]
        if v != "inconclusive":
            findings.append(f"{'more' if v == 'better' else 'fewer'} \"{pt}\" conversions: {_pp(conversions[pt]['diff'])} ({_fmt_p(conversions[pt]['p'])})")
    if findings:
        sentence = f"Shadow {shadow['variant']} vs {control['variant']}: {'; '.join(findings)}."
    else:
        sentence = (f"No significant difference yet between shadow {shadow['variant']} and {control['variant']} "
                    f"({shadow['sessions']} vs {control['sessions']} sessions).")
    return {"shadow": shadow["variant"], "baseline": control["variant"], "latency": latency, "errorRate": error_rate,
            "conversions": conversions, "perf": perf, "verdict": verdict, "sentence": sentence,
            "method": {"kind": "asymptotic-confidence-sequence", "alpha": alpha, "tuning": tuning}}


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

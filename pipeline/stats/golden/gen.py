"""Golden numbers for pipeline/stats, computed independently with scipy/numpy.

Run:  python3 pipeline/stats/golden/gen.py   (writes cases.json beside this file)
The jest test (pipeline/stats/golden.test.ts) reads only cases.json. Data sets are fixed
(seeded numpy Generator), so re-running reproduces the file byte for byte for a given
scipy/numpy version. JSON has no NaN/Infinity: NaN is written as null, ±inf as "Infinity"/"-Infinity".
Cases whose behaviour is a Penumbra DEFINITION rather than a scipy result (zero variance, no
variation, zero-share variants) are marked "source": "definition" and documented in README.md.
"""
import json
import math
import os

import numpy as np
import scipy
from scipy import stats

rng = np.random.default_rng(20240607)


def enc(x):
    if isinstance(x, (list, tuple, np.ndarray)):
        return [enc(v) for v in x]
    if isinstance(x, dict):
        return {k: enc(v) for k, v in x.items()}
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    return x


# ---------------------------------------------------------------- distributions
dist = {
    "normalSf": [[z, stats.norm.sf(z)] for z in [-3.5, -1.0, 0.0, 0.5, 1.959963984540054, 2.5, 5.0, 8.0, 12.0]],
    "normalQuantile": [[p, stats.norm.ppf(p)] for p in [1e-12, 1e-6, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999999]],
    "studentTTwoSidedP": [[t, df, 2 * stats.t.sf(abs(t), df)] for t, df in
                          [(0.0, 3), (0.3, 1), (2.1, 5), (-2.7, 9.5), (1.5, 1e6), (4.0, 2.2), (10.0, 30), (0.001, 7), (25.0, 3)]],
    "studentTQuantile": [[p, df, stats.t.ppf(p, df)] for p, df in
                         [(0.975, 1), (0.975, 2), (0.975, 3.7), (0.975, 10), (0.975, 1000), (0.975, 1e5), (0.9, 4), (0.999, 6), (0.025, 12)]],
    "chiSquareSf": [[x, df, stats.chi2.sf(x, df)] for x, df in
                    [(0.01, 1), (3.2, 1), (3.841458820694124, 1), (7.0, 2), (50.0, 3), (0.5, 10), (120.0, 100), (10.83, 1)]],
}

# ---------------------------------------------------------------- Welch t-test
def welch_case(name, a, b):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(0.95)
    return {
        "name": name, "source": "scipy.stats.ttest_ind(equal_var=False)",
        "a": {"n": len(a), "mean": a.mean(), "variance": a.var(ddof=1)},
        "b": {"n": len(b), "mean": b.mean(), "variance": b.var(ddof=1)},
        "raw": {"a": a.tolist(), "b": b.tolist()} if len(a) + len(b) <= 60 else None,
        "expected": {"t": r.statistic, "df": r.df, "p": r.pvalue, "diff": a.mean() - b.mean(), "ci": [ci.low, ci.high], "valid": True},
    }


def welch_from_stats(name, n1, m1, v1, n2, m2, v2):
    r = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
    se = math.sqrt(v1 / n1 + v2 / n2)
    df = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    crit = stats.t.ppf(0.975, df)
    d = m1 - m2
    return {
        "name": name, "source": "scipy.stats.ttest_ind_from_stats(equal_var=False) + t.ppf",
        "a": {"n": n1, "mean": m1, "variance": v1}, "b": {"n": n2, "mean": m2, "variance": v2}, "raw": None,
        "expected": {"t": r.statistic, "df": df, "p": r.pvalue, "diff": d, "ci": [d - crit * se, d + crit * se], "valid": True},
    }


welch = [
    welch_case("hand small", [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]),
    welch_case("tiny n=2 each", [10.0, 12.0], [11.0, 15.0]),
    welch_case("equal means", [1.0, 2.0, 3.0, 4.0, 5.0], [3.0, 3.0, 2.0, 4.0]),
    welch_case("one side zero variance", [5.0, 5.0, 5.0], [4.0, 6.0, 7.0, 3.5]),
    welch_case("latency lognormal 1000 vs 1200", rng.lognormal(5.0, 0.5, 1000), rng.lognormal(5.05, 0.6, 1200)),
    welch_case("normal 30 vs 45 unequal variance", rng.normal(100, 5, 30), rng.normal(97, 20, 45)),
    welch_case("very different", rng.normal(200, 10, 50), rng.normal(100, 10, 50)),
    welch_from_stats("huge n", 2_000_000, 181.2, 3600.0, 1_800_000, 181.0, 3700.0),
    welch_from_stats("huge n, tiny diff", 5_000_000, 100.0, 400.0, 5_000_000, 100.01, 400.0),
    {"name": "zero variance both, equal means", "source": "definition", "raw": None,
     "a": {"n": 3, "mean": 5.0, "variance": 0.0}, "b": {"n": 4, "mean": 5.0, "variance": 0.0},
     "expected": {"t": 0.0, "df": 5, "p": 1.0, "diff": 0.0, "ci": [0.0, 0.0], "valid": True}},
    {"name": "zero variance both, different means", "source": "definition", "raw": None,
     "a": {"n": 3, "mean": 6.0, "variance": 0.0}, "b": {"n": 4, "mean": 5.0, "variance": 0.0},
     "expected": {"t": math.inf, "df": 5, "p": 0.0, "diff": 1.0, "ci": [1.0, 1.0], "valid": True}},
    {"name": "n=1 is insufficient", "source": "definition", "raw": None,
     "a": {"n": 1, "mean": 5.0, "variance": math.nan}, "b": {"n": 4, "mean": 5.0, "variance": 1.0},
     "expected": {"t": math.nan, "df": math.nan, "p": math.nan, "diff": 0.0, "ci": [math.nan, math.nan], "valid": False}},
]

# ---------------------------------------------------------------- two-proportion z
def z_case(name, x1, n1, x2, n2):
    p1, p2 = x1 / n1, x2 / n2
    pool = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se0
    crit = stats.norm.ppf(0.975)
    sew = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return {"name": name, "source": "numpy + scipy.stats.norm", "x1": x1, "n1": n1, "x2": x2, "n2": n2,
            "expected": {"z": z, "p": 2 * stats.norm.sf(abs(z)), "diff": p1 - p2, "ci": [p1 - p2 - crit * sew, p1 - p2 + crit * sew],
                         "p1": p1, "p2": p2, "relativeLift": (p1 - p2) / p2 if p2 > 0 else math.nan, "valid": True}}


zt = [
    z_case("hand 30/100 vs 20/100", 30, 100, 20, 100),
    z_case("no difference", 50, 500, 100, 1000),
    z_case("small n", 1, 4, 3, 5),
    z_case("lower", 120, 2000, 180, 2100),
    z_case("shadow zero successes", 0, 300, 12, 310),
    z_case("huge n", 1_204_000, 10_000_000, 1_200_000, 10_000_000),
    z_case("all succeed in one", 40, 40, 30, 40),
    {"name": "no variation at all", "source": "definition", "x1": 0, "n1": 100, "x2": 0, "n2": 80,
     "expected": {"z": 0.0, "p": 1.0, "diff": 0.0, "ci": [0.0, 0.0], "p1": 0.0, "p2": 0.0, "relativeLift": math.nan, "valid": True}},
    {"name": "empty sample", "source": "definition", "x1": 0, "n1": 0, "x2": 3, "n2": 10,
     "expected": {"z": math.nan, "p": math.nan, "diff": math.nan, "ci": [math.nan, math.nan], "p1": math.nan, "p2": 0.3,
                  "relativeLift": math.nan, "valid": False}},
]

# ---------------------------------------------------------------- SRM chi-square
def srm_case(name, observed, shares):
    keys = sorted(set(observed) | set(shares))
    tot_s = sum(shares.get(k, 0) for k in keys)
    obs = np.array([observed.get(k, 0) for k in keys], float)
    exp = np.array([shares.get(k, 0) / tot_s for k in keys]) * obs.sum()
    r = stats.chisquare(obs, exp)
    return {"name": name, "source": "scipy.stats.chisquare", "observed": observed, "shares": shares,
            "expected": {"chiSquare": r.statistic, "df": len(keys) - 1, "p": r.pvalue, "mismatch": bool(r.pvalue < 0.001)}}


srm = [
    srm_case("50/50 balanced", {"original": 5012, "checkout-v2": 4988}, {"original": 50, "checkout-v2": 50}),
    srm_case("50/50 mismatch", {"original": 5200, "checkout-v2": 4800}, {"original": 50, "checkout-v2": 50}),
    srm_case("90/10 fine", {"original": 9040, "s": 960}, {"original": 90, "s": 10}),
    srm_case("A/B/n shares not summing to 1", {"original": 801, "a": 102, "b": 97}, {"original": 0.8, "a": 0.1, "b": 0.1}),
    srm_case("borderline", {"original": 1000, "s": 1160}, {"original": 1, "s": 1}),
    {"name": "unexpected variant", "source": "definition", "observed": {"original": 100, "ghost": 1}, "shares": {"original": 1},
     "expected": {"chiSquare": math.inf, "df": 0, "p": 0.0, "mismatch": True}},
    {"name": "no observations", "source": "definition", "observed": {}, "shares": {"original": 50, "s": 50},
     "expected": {"chiSquare": 0.0, "df": 1, "p": 1.0, "mismatch": False}},
]

# ---------------------------------------------------------------- quantile_cont (window percentiles)
quant = []
for name, data in [("hand", [3.0, 1.0, 2.0, 10.0]), ("single", [42.0]), ("two", [1.0, 2.0]),
                   ("lognormal 37", rng.lognormal(5, 1, 37).tolist()), ("ties", [5.0, 5.0, 5.0, 7.0, 7.0, 100.0])]:
    quant.append({"name": name, "source": "numpy.quantile(method='linear')", "values": data,
                  "expected": {str(p): float(np.quantile(np.asarray(data), p, method="linear")) for p in [0.5, 0.95, 0.99]}})

# ---------------------------------------------------------------- EWMA (Finch 2009 recurrences, plain Python)
def ewma_case(name, xs, alpha):
    out = []
    mean = var = None
    for x in xs:
        if mean is None:
            out.append(0.0)
            mean, var = x, 0.0
            continue
        d = x - mean
        sd = math.sqrt(var)
        out.append(0.0 if d == 0 else (math.copysign(math.inf, d) if sd == 0 else d / sd))
        mean = mean + alpha * d
        var = (1 - alpha) * (var + alpha * d * d)
    return {"name": name, "source": "python recurrence", "alpha": alpha, "xs": xs, "z": out, "mean": mean, "variance": var}


ewma = [
    ewma_case("steady then spike", [100, 102, 98, 101, 99, 100, 103, 97, 100, 101, 160], 0.2),
    ewma_case("noisy", rng.normal(50, 5, 40).tolist(), 0.1),
]

# ---------------------------------------------------------------- sequential (asymptotic confidence sequence)
# Waudby-Smith et al. (2024), Theorem 2.2, Gaussian mixture: mu_hat ± sigma_hat * sqrt(2(t rho^2 + 1)/(t^2 rho^2)
# * log(sqrt(t rho^2 + 1)/alpha)), with t = N (total observations), sigma_hat^2 = N * se^2 and
# rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / N* (their closed-form choice for a target time N*).
# The p-value is found INDEPENDENTLY of the TypeScript closed form: the alpha at which the interval's
# half-width equals |diff|, by root finding (scipy.optimize.brentq) on the interval formula itself.
from scipy import optimize


def cs_halfwidth(se, n, tuning, alpha, rho_alpha):
    l = -2 * math.log(rho_alpha)
    rho2 = (l + math.log(l + 1)) / tuning
    sigma = math.sqrt(n) * se
    return sigma * math.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))


def cs_case(name, diff, se, n, tuning=5000, alpha=0.05, extra=None):
    hw = cs_halfwidth(se, n, tuning, alpha, alpha)
    # rho stays the one tuned for the nominal alpha; only the level in the log varies.
    f = lambda a: cs_halfwidth(se, n, tuning, a, alpha) - abs(diff)
    if f(1.0) >= 0:
        p = 1.0  # even at level 1 the interval covers 0
    else:
        p = optimize.brentq(f, 1e-300, 1.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    out = {"name": name, "source": "published formula (Waudby-Smith et al. 2024, Thm 2.2) + scipy.optimize.brentq",
           "diff": diff, "se": se, "n": n, "tuning": tuning, "alpha": alpha,
           "expected": {"halfWidth": hw, "ci": [diff - hw, diff + hw], "p": p, "significant": bool(p < alpha)}}
    if extra:
        out.update(extra)
    return out


def cs_means(name, a, b, tuning=5000, alpha=0.05):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return cs_case(name, float(a.mean() - b.mean()), se, len(a) + len(b), tuning, alpha,
                   {"kind": "means", "a": {"n": len(a), "mean": a.mean(), "variance": a.var(ddof=1)},
                    "b": {"n": len(b), "mean": b.mean(), "variance": b.var(ddof=1)}})


def cs_props(name, x1, n1, x2, n2, tuning=5000, alpha=0.05):
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return cs_case(name, p1 - p2, se, n1 + n2, tuning, alpha, {"kind": "proportions", "x1": x1, "n1": n1, "x2": x2, "n2": n2})


sequential = [
    cs_case("estimate at N = N*", 3.0, 1.0, 5000),
    cs_case("estimate early, N = 200", 0.8, 0.3, 200),
    cs_case("estimate late, N = 1e6, tuning 50000", -0.01, 0.004, 1_000_000, 50_000),
    cs_case("alpha 0.01", 2.5, 0.5, 20_000, 5000, 0.01),
    cs_case("small effect, not significant", 0.05, 1.0, 3000),
    cs_means("latency lognormal 1500 vs 1400", rng.lognormal(5.3, 0.5, 1500), rng.lognormal(5.25, 0.5, 1400)),
    cs_means("latency normal 40 vs 35 (A/A)", rng.normal(200, 30, 40), rng.normal(200, 30, 35)),
    cs_means("web vital cls 800 vs 800", rng.gamma(2.0, 0.05, 800), rng.gamma(2.0, 0.06, 800)),
    cs_props("error sessions 60/1000 vs 20/1000", 60, 1000, 20, 1000),
    cs_props("error sessions 40/1000 vs 20/1000", 40, 1000, 20, 1000),
    cs_props("conversion 180/1000 vs 100/1000, tuning 20000", 180, 1000, 100, 1000, 20_000),
]

cases = {
    "generator": {"scipy": scipy.__version__, "numpy": np.__version__},
    "tolerance": "abs <= 1e-9 or rel <= 1e-9",
    "distributions": dist, "welch": welch, "twoProportion": zt, "srm": srm, "quantile": quant, "ewma": ewma,
    "sequential": sequential,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.json")
with open(path, "w") as f:
    json.dump(enc(cases), f, indent=1, allow_nan=False)
    f.write("\n")
print("wrote", path)

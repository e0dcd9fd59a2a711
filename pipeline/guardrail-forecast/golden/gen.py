"""Golden cases for pipeline/guardrail-forecast, computed independently (scipy, numpy).

Run:  python3 pipeline/guardrail-forecast/golden/gen.py   (writes cases.json beside this file)
The jest test (forecast.test.ts) reads only cases.json.

For each case: the analytic projection (README "The projection") with scipy's normal CDF, and a
Monte Carlo check of its meaning: draw the true rates from the flat-prior posterior of each arm
(normal approximation, as the projection assumes) and the rest of the step's observations as
Bernoulli draws, then apply the guardrail's rule (the always-valid interval at the final counts
lies beyond the margin) to the final counts. `mc` is the share of draws that fire; the test
checks the analytic value against it with the Monte Carlo error plus the normal approximation's.
"""
import json
import math
import os

import numpy as np
from scipy import stats

ALPHA = 0.05


def rho2(tuning, alpha=ALPHA):
    l = -2 * math.log(alpha)
    return (l + math.log(l + 1)) / tuning


def mult(n, tuning, alpha=ALPHA):
    nr = n * rho2(tuning, alpha)
    return math.sqrt(2 * (nr + 1) / nr * math.log(math.sqrt(nr + 1) / alpha))


def analytic(c):
    ks, ns, kc, nc = c["shadow"]["k"], c["shadow"]["n"], c["control"]["k"], c["control"]["n"]
    ps, pc = ks / ns, kc / nc
    vs, vc = ps * (1 - ps), pc * (1 - pc)
    el, rem, tun, m = c["elapsed"], c["remaining"], c["tuning"], c["maxDelta"]
    nS = ns + ns / el * rem
    nC = nc + nc / el * rem
    d = ps - pc
    se = math.sqrt(vs / ns + vc / nc)
    h = se * mult(ns + nc, tun)
    se2 = math.sqrt(vs / nS + vc / nC)
    h2 = se2 * mult(nS + nC, tun)
    spread = math.sqrt(max(0.0, se * se - se2 * se2))
    if c["direction"] == "increase":
        if d - h > m:
            return {"status": "regressed"}
        b = m + h2
        p = float(stats.norm.sf((b - d) / spread))
    else:
        if d + h < -m:
            return {"status": "regressed"}
        b = -m - h2
        p = float(stats.norm.cdf((b - d) / spread))
    return {"status": "forecast", "probability": p, "projectedShadowN": nS, "projectedControlN": nC, "boundary": b, "spread": spread, "halfWidthNow": h, "halfWidthProjected": h2}


def monte_carlo(c, draws, rng):
    ks, ns, kc, nc = c["shadow"]["k"], c["shadow"]["n"], c["control"]["k"], c["control"]["n"]
    el, rem, tun, m = c["elapsed"], c["remaining"], c["tuning"], c["maxDelta"]
    addS = int(round(ns / el * rem))
    addC = int(round(nc / el * rem))
    ps, pc = ks / ns, kc / nc
    ts = np.clip(rng.normal(ps, math.sqrt(ps * (1 - ps) / ns), draws), 1e-9, 1 - 1e-9)
    tc = np.clip(rng.normal(pc, math.sqrt(pc * (1 - pc) / nc), draws), 1e-9, 1 - 1e-9)
    fs = (ks + rng.binomial(addS, ts)) / (ns + addS)
    fc = (kc + rng.binomial(addC, tc)) / (nc + addC)
    se = np.sqrt(fs * (1 - fs) / (ns + addS) + fc * (1 - fc) / (nc + addC))
    h = se * mult(ns + addS + nc + addC, tun)
    fire = (fs - fc - h > m) if c["direction"] == "increase" else (fs - fc + h < -m)
    return float(np.mean(fire))


CASES = [
    # name, shadow (k/n), control (k/n), elapsed, remaining, tuning, direction, maxDelta
    ("crash-level regression early in a long step", (12, 60), (2, 60), 15, 105, 600, "increase", 0.01),
    ("moderate regression, half the step left", (14, 200), (5, 200), 60, 60, 600, "increase", 0.01),
    ("healthy shadow, same rate as control", (4, 200), (4, 200), 60, 60, 600, "increase", 0.01),
    ("healthy shadow, slightly better", (3, 300), (6, 300), 90, 30, 1000, "increase", 0.015),
    ("regression not yet certain, near the end", (20, 400), (10, 400), 110, 10, 1000, "increase", 0.01),
    ("uneven arms: shadow at a third of the control's rate", (9, 60), (5, 180), 30, 90, 400, "increase", 0.01),
    ("conversion drop (harm is a decrease)", (20, 200), (40, 200), 40, 80, 600, "decrease", 0.02),
    ("already fires: the guardrail rolls back itself", (60, 200), (4, 200), 60, 60, 400, "increase", 0.01),
]


def main():
    rng = np.random.default_rng(20261206)
    out = []
    for name, s, c0, el, rem, tun, direction, m in CASES:
        c = {"name": name, "shadow": {"k": s[0], "n": s[1]}, "control": {"k": c0[0], "n": c0[1]}, "elapsed": el, "remaining": rem, "tuning": tun, "direction": direction, "maxDelta": m}
        a = analytic(c)
        c["expected"] = a
        if a["status"] == "forecast":
            c["mc"] = monte_carlo(c, 200_000, rng)
        out.append(c)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.json")
    with open(path, "w") as f:
        json.dump({"generatedBy": "pipeline/guardrail-forecast/golden/gen.py", "alpha": ALPHA, "cases": out}, f, indent=1)
        f.write("\n")
    for c in out:
        print(c["name"], c["expected"].get("probability"), c.get("mc"))


if __name__ == "__main__":
    main()

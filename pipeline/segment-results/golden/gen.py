"""Golden values for holm.ts: statsmodels' multipletests (an independent implementation).

    pip install statsmodels numpy && python3 pipeline/segment-results/golden/gen.py

Writes holm.json: for each case the raw p-values, alpha, and statsmodels' Holm-adjusted p-values
and rejections. holm.test.ts checks ours against them.
"""
import json
import os
import numpy as np
from statsmodels.stats.multitest import multipletests

rng = np.random.default_rng(20261206)
cases = [
    {"name": "textbook", "p": [0.01, 0.04, 0.03, 0.005], "alpha": 0.05},
    {"name": "ties", "p": [0.02, 0.02, 0.02, 0.5], "alpha": 0.05},
    {"name": "all null", "p": [0.9, 0.5, 0.7], "alpha": 0.05},
    {"name": "ones and zeros", "p": [0.0, 1.0, 0.0, 1.0], "alpha": 0.05},
    {"name": "single", "p": [0.03], "alpha": 0.05},
    {"name": "step-down stops", "p": [0.001, 0.013, 0.014, 0.3], "alpha": 0.05},
    {"name": "alpha 0.1", "p": [0.02, 0.03, 0.04, 0.05, 0.06], "alpha": 0.1},
]
for i in range(6):
    n = int(rng.integers(2, 40))
    p = np.concatenate([rng.uniform(0, 1, n - n // 4), rng.uniform(0, 0.002, n // 4)])
    rng.shuffle(p)
    cases.append({"name": f"random {i} (n={n})", "p": [float(x) for x in p], "alpha": 0.05})

out = []
for c in cases:
    reject, adj, _, _ = multipletests(c["p"], alpha=c["alpha"], method="holm")
    out.append({**c, "adjusted": [float(x) for x in adj], "reject": [bool(x) for x in reject]})
path = os.path.join(os.path.dirname(__file__), "holm.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print(f"wrote {len(out)} cases to {path}")

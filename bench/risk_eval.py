"""Held-out evaluation of the rollout-risk model on a warehouse filled by the history generator
(GENERATED DATA), for bench/risk.bench.ts.

    python3 bench/risk_eval.py --data-dir DIR --truth truth.json --test-items a,b,c

Reads the training set with the trainer's own TRAINING_QUERY (pipeline/risk-model/train_risk.py),
splits it by item (the test items never appear in training, so an item's own history cannot leak),
fits the production estimator on the training items with (a) every input — the model — and
(b) the history inputs only — the baseline that ignores the change features — and scores the test
items. Prints one JSON line: ROC AUC, precision and recall at p >= 0.5 for both, the oracle's AUC
(the generator's true probabilities, a ceiling no model can beat on these labels), sizes.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HISTORY_ONLY = ["prior_rollouts", "prior_regression_share", "last_outcome_regression", "current_error_rate", "first_version"]


def trainer():
    spec = importlib.util.spec_from_file_location("train_risk", HERE.parent / "pipeline" / "risk-model" / "train_risk.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def pr(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> tuple[float | None, float | None]:
    hit = p >= threshold
    tp = int((hit & (y == 1)).sum())
    precision = tp / int(hit.sum()) if hit.sum() else None
    recall = tp / int((y == 1).sum()) if (y == 1).sum() else None
    return precision, recall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--truth", required=True, help="JSON {itemId@version: true probability}")
    ap.add_argument("--test-items", required=True)
    args = ap.parse_args()
    from sklearn.metrics import roc_auc_score

    tr = trainer()
    now = int(time.time() * 1000)
    names, X, y, recs = tr.load_training_set(args.data_dir, now - 365 * 86_400_000, now)
    truth = json.loads(Path(args.truth).read_text())
    test_items = set(args.test_items.split(","))
    is_test = np.array([r["item_id"] in test_items for r in recs])
    keep = np.array([r["item_id"].startswith("gen.") for r in recs])
    tr_mask, te_mask = keep & ~is_test, keep & is_test
    out = {"generated": True, "train": int(tr_mask.sum()), "test": int(te_mask.sum()),
           "trainPositives": int(y[tr_mask].sum()), "testPositives": int(y[te_mask].sum())}
    if len(set(y[tr_mask])) < 2 or len(set(y[te_mask])) < 2:
        out["error"] = "both outcomes are needed in the training and the test part"
        print(json.dumps(out))
        return 0
    cols = {n: i for i, n in enumerate(names)}
    hist = [cols[n] for n in HISTORY_ONLY if n in cols]
    for label, idx in (("model", list(range(len(names)))), ("historyOnly", hist)):
        est = tr.make_estimator().fit(X[tr_mask][:, idx], y[tr_mask])
        p = est.predict_proba(X[te_mask][:, idx])[:, 1]
        precision, recall = pr(y[te_mask], p)
        out[label] = {"auc": float(roc_auc_score(y[te_mask], p)), "precision": precision, "recall": recall,
                      "flagged": int((p >= 0.5).sum())}
    oracle = np.array([truth.get(f"{r['item_id']}@{r['version']}", np.nan) for r, m in zip(recs, te_mask) if m])
    if not np.isnan(oracle).any():
        out["oracleAuc"] = float(roc_auc_score(y[te_mask], oracle))
        precision, recall = pr(y[te_mask], oracle)
        out["oracle"] = {"precision": precision, "recall": recall}
    out["baseRate"] = float(y[tr_mask].mean())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
